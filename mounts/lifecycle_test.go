package mounts

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/libjail/libjail/internal/testutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestNoPivot enters the root with MS_MOVE+chroot, the fallback for an initramfs root.
func TestNoPivot(t *testing.T) {
	testutil.RequireRoot(t)
	// Reached through a symlink, which must not confuse the checks that compare paths.
	real := makeRootfs(t)
	root := filepath.Join(t.TempDir(), testutil.Name(t, "rootlink"))
	if err := os.Symlink(real, root); err != nil {
		t.Fatal(err)
	}
	spec := &specs.Spec{
		Root:   &specs.Root{Path: root, Readonly: true},
		Mounts: []specs.Mount{{Destination: "/proc", Type: "proc"}},
		Linux:  &specs.Linux{MaskedPaths: []string{"/proc/timer_list"}},
	}
	rep := runChild(t, mustPlan(t, spec, Options{NoPivot: true}), probe{
		Read:  []string{"/etc/hostname", "/proc/timer_list", "/proc/self/cmdline"},
		Write: []string{"/x"},
		List:  []string{"/"},
	})
	if rep.Err != "" {
		t.Fatalf("%s: %s", rep.Step, rep.Err)
	}
	if rep.Read["/etc/hostname"] != "libjail\n" {
		t.Errorf("/etc/hostname: %q: not inside the root", rep.Read["/etc/hostname"])
	}
	if rep.Read["/proc/timer_list"] != "" {
		t.Errorf("masked file readable: %q", rep.Read["/proc/timer_list"])
	}
	if !isErr(rep.Write["/x"], unix.EROFS) {
		t.Errorf("write to read-only root: %q", rep.Write["/x"])
	}
	// mountinfo only lists what is reachable from the process's root: the host's mounts are gone.
	for _, m := range rep.Mountinfo {
		if m.Mountpoint == "/dev/vda" || strings.HasPrefix(m.Mountpoint, "/sys/fs/cgroup") {
			t.Errorf("host mount visible after the move: %+v", m)
		}
	}
	if m, ok := rep.mount("/"); !ok || !strings.Contains(m.Options, "ro") {
		t.Errorf("root mount %+v", m)
	}
	if !slices.Contains(rep.List["/"], "bin") {
		t.Errorf("root lists %q", rep.List["/"])
	}
}

// TestFailedStart: a mount that fails half way reports the mount and the option, keeps the
// errno, and leaves nothing on the host.
func TestFailedStart(t *testing.T) {
	testutil.RequireRoot(t)
	root := makeRootfs(t)
	tests := []struct {
		name  string
		mount specs.Mount
		want  []string
		errno unix.Errno
	}{
		{"unknown tmpfs parameter", specs.Mount{Destination: "/x", Type: "tmpfs", Options: []string{"size=1m", "bogus=1"}},
			[]string{"mounts[2] (/x)", "bogus=1"}, unix.EINVAL},
		{"missing bind source", specs.Mount{Destination: "/x", Source: "/nonexistent/libjail-test", Options: []string{"bind"}},
			[]string{"mounts[2] (/x)", "open_tree /nonexistent/libjail-test"}, unix.ENOENT},
		{"unknown filesystem", specs.Mount{Destination: "/x", Type: "libjailfs"},
			[]string{"mounts[2] (/x)", "fsopen libjailfs"}, unix.ENODEV},
		{"proc onto a file", specs.Mount{Destination: "/etc/hostname", Type: "proc"},
			[]string{"mounts[2] (/etc/hostname)", "not a directory"}, unix.ENOTDIR},
		{"bind of a non-procfs onto /proc", specs.Mount{Destination: "/proc", Source: "/tmp", Options: []string{"rbind"}},
			[]string{"mounts[2] (/proc)", "only a procfs"}, 0},
		{"file onto a directory", specs.Mount{Destination: "/etc", Source: "/etc/hostname", Options: []string{"bind"}},
			[]string{"mounts[2] (/etc)", "which is a directory"}, unix.EISDIR},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := &specs.Spec{Root: &specs.Root{Path: root}, Mounts: []specs.Mount{
				{Destination: "/proc", Type: "proc"}, {Destination: "/tmp", Type: "tmpfs"}, tt.mount, {Destination: "/sys", Type: "sysfs"},
			}}
			before := hostMounts(t, filepath.Dir(root))
			rep := runChild(t, mustPlan(t, spec, Options{}), probe{})
			if rep.Step != "MountAll" {
				t.Fatalf("step %q err %q, want MountAll to fail", rep.Step, rep.Err)
			}
			for _, w := range tt.want {
				if !strings.Contains(rep.Err, w) {
					t.Errorf("error %q lacks %q", rep.Err, w)
				}
			}
			t.Logf("%s", rep.Err)
			if tt.errno != 0 && !strings.HasSuffix(rep.Err, tt.errno.Error()) {
				t.Errorf("error %q does not end with %v", rep.Err, tt.errno)
			}
			if after := hostMounts(t, filepath.Dir(root)); !slices.Equal(before, after) {
				t.Errorf("host mount table changed:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}

// TestApplyErrno checks errors.Is through the *Error of an apply step, in process (no root needed:
// the step fails before touching anything).
func TestApplyErrno(t *testing.T) {
	p := mustPlan(t, &specs.Spec{Root: &specs.Root{Path: "/r"}}, Options{})
	err := p.MountAll()
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "PrepareRoot") {
		t.Errorf("MountAll before PrepareRoot: %v", err)
	}
	for _, step := range []func() error{p.EnterRoot, p.FinishRoot} {
		if err := step(); !errors.Is(err, ErrInvalid) {
			t.Errorf("a step before PrepareRoot: %v", err)
		}
	}
	p.Close()
	p.Close()
}

// TestCycles creates and destroys containers many times: the host mount table under the test's
// directories is unchanged afterwards.
func TestCycles(t *testing.T) {
	testutil.RequireRoot(t)
	n := 100
	if testing.Short() {
		n = 10
	}
	root := makeRootfs(t)
	spec := fullSpec(t, root)
	plan := mustPlan(t, spec, Options{})
	watch := []string{filepath.Dir(root), filepath.Dir(spec.Mounts[4].Source)}
	before := hostMounts(t, watch...)
	all, err := readMountinfo("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if rep := runChild(t, plan, probe{}); rep.Err != "" {
			t.Fatalf("cycle %d: %s: %s", i, rep.Step, rep.Err)
		}
	}
	if after := hostMounts(t, watch...); !slices.Equal(before, after) {
		t.Errorf("host mount table changed:\nbefore %v\nafter  %v", before, after)
	}
	// The rest of the table belongs to the machine (and other tests); report, do not fail.
	if now, err := readMountinfo("/proc/self/mountinfo"); err == nil && len(now) != len(all) {
		t.Logf("host mount table: %d entries before, %d after (other processes may mount too)", len(all), len(now))
	}
	if ents, err := os.ReadDir(filepath.Join(root, "dev")); err != nil || len(ents) != 0 {
		t.Errorf("the root's own /dev changed: %v %v", ents, err)
	}
}

// TestRootIsInitramfs: this machine's root is ext4, so pivot_root is chosen; the initramfs case
// itself needs a guest booted from one (the VM test lane).
func TestRootIsInitramfs(t *testing.T) {
	got, err := rootIsInitramfs()
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs("/", &st); err != nil {
		t.Fatal(err)
	}
	if want := st.Type == unix.RAMFS_MAGIC || st.Type == unix.TMPFS_MAGIC; got && !want {
		t.Errorf("rootIsInitramfs() = true on a root of type %#x", st.Type)
	}
}

// TestMountLabelWithoutSELinux: a mount label on a machine without SELinux fails the first mount
// that would carry it, rather than being dropped.
func TestMountLabelWithoutSELinux(t *testing.T) {
	testutil.RequireRoot(t)
	if _, err := os.Stat("/sys/fs/selinux"); err == nil {
		t.Skip("skipped: SELinux is enabled here")
	}
	root := makeRootfs(t)
	spec := &specs.Spec{
		Root:   &specs.Root{Path: root},
		Mounts: []specs.Mount{{Destination: "/proc", Type: "proc"}},
		Linux:  &specs.Linux{MountLabel: "system_u:object_r:container_file_t:s0"},
	}
	rep := runChild(t, mustPlan(t, spec, Options{}), probe{})
	if rep.Step != "MountAll" || !strings.Contains(rep.Err, "(/dev)") || !strings.Contains(rep.Err, "context=") {
		t.Errorf("step %q err %q, want MountAll to fail on /dev's context", rep.Step, rep.Err)
	}
}
