package mounts

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/libjail/libjail/internal/testutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestUserNamespace applies a whole root from inside a new user namespace (uid 0 → host 100000),
// as a rootless-style container would be set up: sysfs without a network namespace falls back to
// a bind of /sys, devpts gets no gid=5, masks and read-only paths still hold.
func TestUserNamespace(t *testing.T) {
	testutil.RequireRoot(t)
	root := makeRootfs(t)
	// The child runs as host uid 100000: it must reach the root, the data and its own binary.
	exe := filepath.Join(filepath.Dir(root), testutil.Name(t, "mounts.test"))
	bin, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	data := hostDir(t, "userns-data")
	for _, d := range []string{filepath.Dir(root), filepath.Dir(filepath.Dir(root)), filepath.Dir(data), filepath.Dir(filepath.Dir(data))} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"secret", "data"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "secret", "f"), []byte("s"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The image belongs to the container's root, as an engine would prepare it.
	const host = 100000
	err = filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, host, host)
	})
	if err != nil {
		t.Fatal(err)
	}
	spec := &specs.Spec{
		Root: &specs.Root{Path: root, Readonly: true},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Options: []string{"nosuid", "nodev", "noexec"}},
			{Destination: "/sys", Type: "sysfs", Options: []string{"ro", "nosuid", "nodev", "noexec"}},
			{Destination: "/tmp", Type: "tmpfs", Options: []string{"size=1m"}},
			{Destination: "/dev/mqueue", Type: "mqueue"},
			{Destination: "/data", Source: data, Options: []string{"rbind", "rro"}},
		},
		Linux: &specs.Linux{
			Namespaces:    []specs.LinuxNamespace{{Type: specs.UserNamespace}, {Type: specs.MountNamespace}, {Type: specs.PIDNamespace}},
			MaskedPaths:   []string{"/proc/timer_list", "/secret"},
			ReadonlyPaths: []string{"/proc/sys"},
		},
	}
	plan := mustPlan(t, spec, Options{})
	if !plan.UserNamespace {
		t.Fatal("the spec's user namespace was not noticed")
	}
	ids := []syscall.SysProcIDMap{{ContainerID: 0, HostID: host, Size: 65536}}
	attr := &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWUSER | unix.CLONE_NEWIPC, UidMappings: ids, GidMappings: ids,
		Credential: &syscall.Credential{Uid: 0, Gid: 0}}
	rep := runChildAttr(t, plan, probe{
		Read:  []string{"/proc/timer_list", "/proc/self/uid_map"},
		Write: []string{"/x", "/proc/sys/kernel/hostname", "/tmp/ok", "/data/x"},
		List:  []string{"/secret"},
	}, attr, nil, exe)
	if rep.Err != "" {
		t.Fatalf("%s: %s", rep.Step, rep.Err)
	}
	if !strings.Contains(rep.Read["/proc/self/uid_map"], "100000") {
		t.Errorf("not in the user namespace: uid_map %q", rep.Read["/proc/self/uid_map"])
	}
	if m, ok := rep.mount("/sys"); !ok || m.FSType != "sysfs" {
		t.Errorf("/sys: %+v", m)
	}
	hasOpts(t, rep, "/sys", "ro", "nosuid", "nodev", "noexec")
	if m, _ := rep.mount("/dev/pts"); strings.Contains(m.Super, "gid=5") {
		t.Errorf("devpts in a user namespace: %q", m.Super)
	}
	if rep.Read["/proc/timer_list"] != "" || len(rep.List["/secret"]) != 0 {
		t.Errorf("masks: timer_list %q, /secret %q", rep.Read["/proc/timer_list"], rep.List["/secret"])
	}
	for _, p := range []string{"/x", "/proc/sys/kernel/hostname", "/data/x"} {
		if got := rep.Write[p]; !strings.HasPrefix(got, "error") {
			t.Errorf("write %s: %q, want an error", p, got)
		}
	}
	if rep.Write["/tmp/ok"] != "ok" {
		t.Errorf("write /tmp/ok: %q", rep.Write["/tmp/ok"])
	}
}
