package devices

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/libjail/libjail/internal/testutil"
)

func ptr[T any](v T) *T { return &v }

func TestPlanNodes(t *testing.T) {
	fuse := specs.LinuxDevice{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229, FileMode: ptr(os.FileMode(0o660)), UID: ptr(uint32(1)), GID: ptr(uint32(2))}
	got, err := PlanNodes([]specs.LinuxDevice{fuse}, true)
	if err != nil {
		t.Fatal(err)
	}
	want := append([]Node{{Path: "/dev/fuse", Type: 'c', Major: 10, Minor: 229, FileMode: 0o660, UID: 1, GID: 2}}, DefaultNodes()...)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}

	// A spec entry replaces the default of the same path; a raw st_mode with a matching type is accepted.
	got, err = PlanNodes([]specs.LinuxDevice{{Path: "/dev/null", Type: "c", Major: 1, Minor: 3, FileMode: ptr(os.FileMode(0o20600))}}, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(DefaultNodes()) || got[0].FileMode != 0o600 {
		t.Fatalf("override: got %v", got)
	}

	got, err = PlanNodes(nil, false)
	if err != nil || len(got) != 0 {
		t.Fatalf("empty: got %v, %v", got, err)
	}
	fifo, err := PlanNodes([]specs.LinuxDevice{{Path: "/dev/sub/../fifo", Type: "p"}}, false)
	if err != nil || fifo[0].Path != "/dev/fifo" || fifo[0].Type != 'p' {
		t.Fatalf("fifo: got %v, %v", fifo, err)
	}

	// Plans travel as JSON.
	b, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	var back []Node
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, want) {
		t.Fatalf("JSON round trip: %v, %v", back, err)
	}
}

func TestPlanNodesErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		devs  []specs.LinuxDevice
		field string
	}{
		{"relative", []specs.LinuxDevice{{Path: "dev/x", Type: "c", Major: 1, Minor: 3}}, "linux.devices[0].path"},
		{"outside /dev", []specs.LinuxDevice{{Path: "/etc/x", Type: "c", Major: 1, Minor: 3}}, "linux.devices[0].path"},
		{"dot-dot out", []specs.LinuxDevice{{Path: "/dev/../etc/x", Type: "c", Major: 1, Minor: 3}}, "linux.devices[0].path"},
		{"/dev itself", []specs.LinuxDevice{{Path: "/dev", Type: "c", Major: 1, Minor: 3}}, "linux.devices[0].path"},
		{"bad type", []specs.LinuxDevice{{Path: "/dev/x", Type: "x", Major: 1, Minor: 3}}, "linux.devices[0].type"},
		{"empty type", []specs.LinuxDevice{{Path: "/dev/x", Major: 1, Minor: 3}}, "linux.devices[0].type"},
		{"negative major", []specs.LinuxDevice{{Path: "/dev/x", Type: "c", Major: -1, Minor: 3}}, "linux.devices[0].major"},
		{"negative minor", []specs.LinuxDevice{{Path: "/dev/x", Type: "b", Major: 8, Minor: -1}}, "linux.devices[0].minor"},
		{"huge major", []specs.LinuxDevice{{Path: "/dev/x", Type: "b", Major: 1 << 12, Minor: 0}}, "linux.devices[0].major"},
		{"fifo with numbers", []specs.LinuxDevice{{Path: "/dev/x", Type: "p", Major: 1}}, "linux.devices[0].major"},
		{"mode type mismatch", []specs.LinuxDevice{{Path: "/dev/x", Type: "b", Major: 8, FileMode: ptr(os.FileMode(0o20666))}}, "linux.devices[0].fileMode"},
		{"mode go flags", []specs.LinuxDevice{{Path: "/dev/x", Type: "c", Major: 1, FileMode: ptr(os.ModeDevice | 0o666)}}, "linux.devices[0].fileMode"},
		{"duplicate", []specs.LinuxDevice{
			{Path: "/dev/x", Type: "c", Major: 1, Minor: 3},
			{Path: "/dev//x", Type: "c", Major: 1, Minor: 5},
		}, "linux.devices[1].path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := PlanNodes(tc.devs, true)
			var se *SpecError
			if !errors.As(err, &se) || !errors.Is(err, ErrInvalidNode) {
				t.Fatalf("got %v, want a *SpecError wrapping ErrInvalidNode", err)
			}
			if se.Field != tc.field {
				t.Fatalf("field %q, want %q (%v)", se.Field, tc.field, err)
			}
		})
	}
}

func TestCreateNodes(t *testing.T) {
	testutil.RequireRoot(t)
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "dev"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A stale regular file where a node goes is replaced.
	if err := os.WriteFile(filepath.Join(root, "dev/null"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	nodes, err := PlanNodes([]specs.LinuxDevice{
		{Path: "/dev/sub/dir/blk", Type: "b", Major: 7, Minor: 200, FileMode: ptr(os.FileMode(0o600)), UID: ptr(uint32(1000)), GID: ptr(uint32(1001))},
		{Path: "/dev/fifo", Type: "p", FileMode: ptr(os.FileMode(0o640))},
	}, true)
	if err != nil {
		t.Fatal(err)
	}
	old := syscall.Umask(0o077) // the umask must not leak into node modes
	defer syscall.Umask(old)
	if err := CreateNodes(root, nodes, false); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		checkNode(t, filepath.Join(root, n.Path), n)
	}
}

func checkNode(t *testing.T, p string, n Node) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatalf("%s: %v", n.Path, err)
	}
	if st.Mode&unix.S_IFMT != n.ifmt() || st.Mode&0o7777 != n.FileMode || st.Uid != n.UID || st.Gid != n.GID {
		t.Errorf("%s: mode %#o uid %d gid %d, want %v", n.Path, st.Mode, st.Uid, st.Gid, n)
	}
	if n.Type != 'p' && (unix.Major(st.Rdev) != uint32(n.Major) || unix.Minor(st.Rdev) != uint32(n.Minor)) {
		t.Errorf("%s: rdev %d:%d, want %v", n.Path, unix.Major(st.Rdev), unix.Minor(st.Rdev), n)
	}
}

// A hostile rootfs whose /dev is a symlink to a host directory must not get nodes on the host.
func TestCreateNodesSymlinkStaysInRoot(t *testing.T) {
	testutil.RequireRoot(t)
	root, outside := t.TempDir(), t.TempDir()
	if err := os.Symlink(outside, filepath.Join(root, "dev")); err != nil {
		t.Fatal(err)
	}
	// Inside the root, the absolute link target exists too: the link must resolve to it.
	if err := os.MkdirAll(filepath.Join(root, outside), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "evil"), filepath.Join(root, "sub")); err != nil {
		t.Fatal(err)
	}
	nodes := []Node{
		{Path: "/dev/null", Type: 'c', Major: 1, Minor: 3, FileMode: 0o666},
	}
	if err := CreateNodes(root, nodes, false); err != nil {
		t.Fatal(err)
	}
	// A link whose target does not exist inside the root fails closed.
	if err := CreateNodes(root, []Node{{Path: "/dev/../sub/zero", Type: 'c', Major: 1, Minor: 5}}, false); err == nil {
		t.Error("dangling link: no error")
	}
	ents, err := os.ReadDir(outside)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		t.Fatalf("node created outside the root: %v", ents)
	}
	// The links resolved inside the root: /dev -> <root><outside>.
	checkNode(t, filepath.Join(root, outside, "null"), nodes[0])
}

func init() {
	children["bind-nodes"] = func() (any, error) {
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			return nil, err
		}
		root := os.Getenv("ROOT")
		nodes := []Node{
			{Path: "/dev/null", Type: 'c', Major: 1, Minor: 3, FileMode: 0o666},
			{Path: "/dev/zero", Type: 'c', Major: 1, Minor: 5, FileMode: 0o666},
		}
		if err := CreateNodes(root, nodes, true); err != nil {
			return nil, err
		}
		res := map[string]string{}
		for _, n := range nodes {
			var st unix.Stat_t
			if err := unix.Stat(filepath.Join(root, n.Path), &st); err != nil {
				return nil, err
			}
			res[n.Path] = fmt.Sprintf("%#o:%d:%d", st.Mode&unix.S_IFMT, unix.Major(st.Rdev), unix.Minor(st.Rdev))
		}
		// A host node that is not the planned device is refused.
		err := CreateNodes(root, []Node{{Path: "/dev/full", Type: 'c', Major: 1, Minor: 5}}, true)
		res["mismatch"] = ""
		if errors.Is(err, ErrInvalidNode) {
			res["mismatch"] = "refused"
		}
		return res, nil
	}
}

func TestCreateNodesUserNSBindsHostNodes(t *testing.T) {
	testutil.RequireRoot(t)
	root := t.TempDir()
	cmd := childCmd("bind-nodes", "ROOT="+root)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS}
	var got map[string]string
	runChild(t, cmd, &got)
	want := map[string]string{"/dev/null": "020000:1:3", "/dev/zero": "020000:1:5", "mismatch": "refused"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	// The binds lived in the child's mount namespace; what stays on the host are empty files.
	if fi, err := os.Stat(filepath.Join(root, "dev/null")); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("host view of the mount point: %v, %v", fi, err)
	}
}

// The fallback for kernels without fchmodat2 (before 6.6) sets the mode and refuses links.
func TestChmodByFD(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("f", filepath.Join(dir, "l")); err != nil {
		t.Fatal(err)
	}
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := chmodByFD(int(d.Fd()), "f", 0o640); err != nil {
		t.Fatal(err)
	}
	if err := chmodByFD(int(d.Fd()), "l", 0o666); !errors.Is(err, unix.ELOOP) {
		t.Fatalf("chmod of a symlink: %v, want ELOOP", err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "f")); fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v", fi.Mode())
	}
}
