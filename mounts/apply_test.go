package mounts

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/libjail/libjail/internal/testutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// fullSpec is a spec close to what container engines send: proc, sysfs, the /dev family, binds
// of a host directory and a host file, an lxcfs-style bind onto /proc/uptime, masked and read-only
// paths, and a read-only root.
func fullSpec(t *testing.T, root string) *specs.Spec {
	t.Helper()
	host := filepath.Join(t.TempDir(), testutil.Name(t, "hostdata"))
	if err := os.MkdirAll(host, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(host, "hello"), []byte("from the host"), 0o644); err != nil {
		t.Fatal(err)
	}
	hostFile := filepath.Join(t.TempDir(), testutil.Name(t, "uptime"))
	if err := os.WriteFile(hostFile, []byte("42.00 42.00\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"secret", "rodir"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, d, "file"), []byte(d), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return &specs.Spec{
		Root: &specs.Root{Path: root, Readonly: true},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777", "size=1m", "noatime"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/mnt/data", Source: host, Options: []string{"rbind", "ro", "nosuid"}},
			{Destination: "/etc/bound", Source: filepath.Join(host, "hello"), Options: []string{"bind"}},
			{Destination: "/proc/uptime", Source: hostFile, Options: []string{"bind", "ro"}},
		},
		Linux: &specs.Linux{
			MaskedPaths:   []string{"/proc/kcore", "/proc/timer_list", "/proc/acpi", "/secret", "/does/not/exist"},
			ReadonlyPaths: []string{"/proc/sys", "/rodir", "/not/there"},
		},
	}
}

func TestApplyFull(t *testing.T) {
	testutil.RequireRoot(t)
	root := makeRootfs(t)
	spec := fullSpec(t, root)
	before := hostMounts(t, filepath.Dir(root))
	rep := runChild(t, mustPlan(t, spec, Options{}), probe{
		Stat:     []string{"/proc/kcore", "/proc/timer_list", "/dev/null", "/dev/pts/ptmx", "/etc/bound"},
		Read:     []string{"/proc/kcore", "/proc/timer_list", "/mnt/data/hello", "/etc/bound", "/proc/uptime", "/proc/self/comm"},
		Write:    []string{"/secret/new", "/rodir/new", "/newfile", "/tmp/ok", "/mnt/data/new", "/proc/sys/kernel/hostname", "/dev/shm/ok"},
		List:     []string{"/secret", "/dev"},
		Readlink: []string{"/dev/ptmx", "/dev/fd", "/dev/stdin", "/dev/stdout", "/dev/stderr"},
		Exec:     []string{"/bin/sh", "-c", "echo $$; cat /etc/hostname; ls /dev/shm /secret; echo done"},
	})
	if rep.Err != "" {
		t.Fatalf("%s: %s", rep.Step, rep.Err)
	}
	t.Logf("%d mounts; steps took %v", len(rep.Mountinfo), rep.Took)
	wantTypes := map[string]string{
		"/": "ext4", "/proc": "proc", "/sys": "sysfs", "/tmp": "tmpfs", "/dev": "tmpfs", "/dev/pts": "devpts",
		"/dev/shm": "tmpfs", "/dev/mqueue": "mqueue", "/secret": "tmpfs", "/proc/acpi": "tmpfs",
	}
	for at, typ := range wantTypes {
		m, ok := rep.mount(at)
		if !ok || m.FSType != typ {
			t.Errorf("mount at %s: got %+v (found %v), want type %s", at, m, ok, typ)
		}
	}
	for at, opts := range map[string][]string{
		"/":          {"ro"},
		"/sys":       {"ro", "nosuid", "nodev", "noexec"},
		"/tmp":       {"rw", "nosuid", "nodev", "noatime"},
		"/mnt/data":  {"ro", "nosuid"},
		"/proc/sys":  {"ro"},
		"/rodir":     {"ro"},
		"/secret":    {"ro"},
		"/dev":       {"nosuid"},
		"/dev/pts":   {"nosuid", "noexec"},
		"/etc/bound": {"rw"},
	} {
		m, _ := rep.mount(at)
		have := strings.Split(m.Options, ",")
		for _, o := range opts {
			if !slices.Contains(have, o) {
				t.Errorf("mount at %s has options %q, want %s", at, m.Options, o)
			}
		}
	}
	// This kernel may have no /proc/kcore (then there is nothing to mask, and nothing to read);
	// /proc/timer_list always exists and is readable by root.
	for _, p := range []string{"/proc/kcore", "/proc/timer_list"} {
		st := rep.Stat[p]
		if st.Err != "" && p == "/proc/kcore" {
			if !isErr(rep.Read[p], unix.ENOENT) {
				t.Errorf("read %s: %q, want ENOENT", p, rep.Read[p])
			}
			continue
		}
		if !st.isChr(1, 3) {
			t.Errorf("masked %s is %+v, want the null device", p, st)
		}
		if got := rep.Read[p]; got != "" {
			t.Errorf("masked %s read %q, want nothing", p, got)
		}
	}
	if got := rep.List["/secret"]; len(got) != 0 {
		t.Errorf("masked /secret lists %q, want nothing", got)
	}
	for p, want := range map[string]unix.Errno{
		"/secret/new": unix.EROFS, "/rodir/new": unix.EROFS, "/newfile": unix.EROFS, "/mnt/data/new": unix.EROFS,
		"/proc/sys/kernel/hostname": unix.EROFS,
	} {
		if got := rep.Write[p]; !isErr(got, want) {
			t.Errorf("write %s: %q, want %v", p, got, want)
		}
	}
	for _, p := range []string{"/tmp/ok", "/dev/shm/ok"} {
		if rep.Write[p] != "ok" {
			t.Errorf("write %s: %q, want ok", p, rep.Write[p])
		}
	}
	for p, want := range map[string]string{
		"/mnt/data/hello": "from the host", "/etc/bound": "from the host", "/proc/uptime": "42.00 42.00\n",
		"/proc/self/comm": "mounts.test\n",
	} {
		if got := rep.Read[p]; got != want {
			t.Errorf("read %s: %q, want %q", p, got, want)
		}
	}
	for p, want := range map[string]string{
		"/dev/ptmx": "pts/ptmx", "/dev/fd": "/proc/self/fd", "/dev/stdin": "/proc/self/fd/0",
		"/dev/stdout": "/proc/self/fd/1", "/dev/stderr": "/proc/self/fd/2",
	} {
		if got := rep.Readlink[p]; got != want {
			t.Errorf("readlink %s: %q, want %q", p, got, want)
		}
	}
	if !rep.Stat["/dev/pts/ptmx"].isChr(5, 2) {
		t.Errorf("/dev/pts/ptmx: %+v", rep.Stat["/dev/pts/ptmx"])
	}
	dev := rep.List["/dev"]
	for _, n := range []string{"null", "zero", "fd", "stdin", "stdout", "stderr", "ptmx", "pts", "shm", "mqueue"} {
		if !slices.Contains(dev, n) {
			t.Errorf("/dev lacks %s: %q", n, dev)
		}
	}
	// busybox runs in the new root: pid 1 is the child itself, so the shell has another pid.
	if lines := strings.Fields(rep.Exec); len(lines) < 3 || lines[1] != "libjail" || lines[len(lines)-1] != "done" {
		t.Errorf("busybox in the root said %q", rep.Exec)
	}
	if after := hostMounts(t, filepath.Dir(root)); !slices.Equal(before, after) {
		t.Errorf("host mount table changed under the test's directories:\nbefore %v\nafter  %v", before, after)
	}
}
