package mounts

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/libjail/libjail/internal/testutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// hostDir makes an empty directory outside the root that an attack tries to reach.
func hostDir(t *testing.T, what string) string {
	t.Helper()
	d := filepath.Join(t.TempDir(), testutil.Name(t, what))
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

func assertUntouched(t *testing.T, rep report, dirs ...string) {
	t.Helper()
	for _, m := range rep.PreEnter {
		for _, d := range dirs {
			if m.Mountpoint == d || strings.HasPrefix(m.Mountpoint, d+"/") {
				t.Errorf("host directory %s got a mount in the child: %+v", d, m)
			}
		}
	}
	for _, d := range dirs {
		ents, err := os.ReadDir(d)
		if err != nil || len(ents) != 0 {
			t.Errorf("host directory %s changed: %v %v", d, ents, err)
		}
	}
}

// TestSymlinkAttack: a hostile rootfs whose mount destinations are symlinks (absolute, relative with
// "..", and a parent component) pointing at host directories. Every mount must land inside the
// root, and the host directories must neither receive a mount nor a new file.
func TestSymlinkAttack(t *testing.T) {
	testutil.RequireRoot(t)
	root := makeRootfs(t)
	abs, rel, parent, file := hostDir(t, "abs"), hostDir(t, "rel"), hostDir(t, "parent"), hostDir(t, "file")
	up := strings.Repeat("../", strings.Count(root, "/")+2)
	links := map[string]string{
		"mnt/abs":    abs,
		"mnt/rel":    up + strings.TrimPrefix(rel, "/"),
		"mnt/parent": parent,
		"etc/file":   filepath.Join(file, "victim"),
		// A way into the host's /proc: "/mnt/proc" is really "/proc/sys" on the host.
		"mnt/procsys": "/proc/sys",
	}
	for l, target := range links {
		if err := os.Symlink(target, filepath.Join(root, l)); err != nil {
			t.Fatal(err)
		}
	}
	// A working directory made through a link to a host directory stays inside the root too.
	cwdVictim := hostDir(t, "cwd")
	if err := os.Symlink(cwdVictim, filepath.Join(root, "work")); err != nil {
		t.Fatal(err)
	}
	src := hostDir(t, "source")
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := &specs.Spec{
		Root: &specs.Root{Path: root},
		Mounts: []specs.Mount{
			{Destination: "/mnt/abs", Type: "tmpfs"},
			{Destination: "/mnt/rel", Source: src, Options: []string{"bind"}},
			{Destination: "/mnt/parent/deeper/dir", Type: "tmpfs"},
			{Destination: "/etc/file", Source: filepath.Join(src, "f"), Options: []string{"bind"}},
		},
	}
	watch := []string{abs, rel, parent, file, filepath.Dir(root)}
	before := hostMounts(t, watch...)
	rep := runChild(t, mustPlan(t, spec, Options{}), probe{List: []string{abs, rel, parent + "/deeper", file}, Mkdir: []string{"/work/app/dir"}})
	if rep.Err != "" {
		t.Fatalf("%s: %s", rep.Step, rep.Err)
	}
	assertUntouched(t, rep, abs, rel, parent, file, cwdVictim)
	if _, err := os.Stat(filepath.Join(root, cwdVictim, "app", "dir")); err != nil {
		t.Errorf("MkdirAllInRoot did not create the directory inside the root: %v", err)
	}
	// The links were followed inside the root: the mounts are where the links point, under it.
	for _, at := range []string{abs, rel, parent + "/deeper/dir", filepath.Join(file, "victim")} {
		found := false
		for _, m := range rep.PreEnter {
			found = found || m.Mountpoint == root+at
		}
		if !found {
			t.Errorf("no mount at %s inside the root; mountinfo %v", root+at, rep.PreEnter)
		}
	}
	if after := hostMounts(t, watch...); !slices.Equal(before, after) {
		t.Errorf("host mount table changed:\nbefore %v\nafter  %v", before, after)
	}

	// The same through a link into the (container's) procfs is refused, not followed.
	spec.Mounts = []specs.Mount{
		{Destination: "/proc", Type: "proc"},
		{Destination: "/mnt/procsys", Type: "tmpfs"},
	}
	rep = runChild(t, mustPlan(t, spec, Options{}), probe{})
	if rep.Step != "MountAll" || !strings.Contains(rep.Err, "mounts[1]") || !strings.Contains(rep.Err, ErrUnsafe.Error()) {
		t.Errorf("mount through a link into /proc: step %q err %q, want MountAll refused for safety", rep.Step, rep.Err)
	}
	// And through a link to /proc itself: a tmpfs would hide the real procfs behind a fake one.
	if err := os.Symlink("/proc", filepath.Join(root, "mnt", "procdir")); err != nil {
		t.Fatal(err)
	}
	spec.Mounts[1] = specs.Mount{Destination: "/mnt/procdir", Type: "tmpfs"}
	rep = runChild(t, mustPlan(t, spec, Options{}), probe{})
	if rep.Step != "MountAll" || !strings.Contains(rep.Err, "mounts[1]") || !strings.Contains(rep.Err, ErrUnsafe.Error()) {
		t.Errorf("tmpfs through a link onto /proc: step %q err %q, want MountAll refused for safety", rep.Step, rep.Err)
	}
	// A /proc that is itself a symlink (to a directory a later tmpfs covers) is refused.
	if err := os.Remove(filepath.Join(root, "proc")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/tmp/fakeproc", filepath.Join(root, "proc")); err != nil {
		t.Fatal(err)
	}
	spec.Mounts = []specs.Mount{{Destination: "/proc", Type: "proc"}, {Destination: "/tmp", Type: "tmpfs"}}
	rep = runChild(t, mustPlan(t, spec, Options{}), probe{})
	if rep.Step != "MountAll" || !strings.Contains(rep.Err, "mounts[0]") || !strings.Contains(rep.Err, "symlink") {
		t.Errorf("proc onto a symlinked /proc: step %q err %q, want MountAll refused", rep.Step, rep.Err)
	}

	// A /dev that is a symlink to a host directory: the device nodes are made under
	// Rootfs()/dev by path, so it is refused rather than followed (even inside the root).
	devTarget := hostDir(t, "dev-target")
	if err := os.Remove(filepath.Join(root, "dev")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(devTarget, filepath.Join(root, "dev")); err != nil {
		t.Fatal(err)
	}
	spec.Mounts = nil
	rep = runChild(t, mustPlan(t, spec, Options{}), probe{})
	if rep.Step != "MountAll" || !strings.Contains(rep.Err, "(/dev)") || !strings.Contains(rep.Err, "symlink") {
		t.Errorf("/dev as a symlink: step %q err %q, want MountAll refused", rep.Step, rep.Err)
	}
	assertUntouched(t, rep, devTarget)
}

// TestSymlinkRace swaps a path between a directory and a symlink to a host directory while the
// child mounts again and again, both on a path below it and on the path itself (a bind of a
// directory and a tmpfs): whatever the timing, nothing reaches the host.
func TestSymlinkRace(t *testing.T) {
	testutil.RequireRoot(t)
	for _, tt := range []struct {
		name  string
		mount specs.Mount
	}{
		{"parent", specs.Mount{Destination: "/mnt/race/sub", Type: "tmpfs"}},
		{"itself", specs.Mount{Destination: "/mnt/race", Type: "tmpfs"}},
		{"bind", specs.Mount{Destination: "/mnt/race", Source: "/etc", Options: []string{"bind", "ro"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := makeRootfs(t)
			victim := hostDir(t, "victim")
			if err := os.Mkdir(filepath.Join(root, "mnt", "race"), 0o755); err != nil {
				t.Fatal(err)
			}
			spec := &specs.Spec{
				Root:   &specs.Root{Path: root},
				Mounts: []specs.Mount{{Destination: "/dev", Source: "/dev", Options: []string{"rbind"}}, tt.mount},
			}
			rounds := 300
			if testing.Short() {
				rounds = 30
			}
			before := hostMounts(t, victim)
			rep := runChild(t, mustPlan(t, spec, Options{}), probe{Race: &race{Path: "mnt/race", Target: victim, Rounds: rounds}})
			if rep.Err != "" {
				t.Fatalf("%s: %s", rep.Step, rep.Err)
			}
			if rep.RaceRounds < 2 {
				t.Fatalf("the path was swapped %d times; the race was not exercised", rep.RaceRounds)
			}
			inRoot := 0
			for _, m := range rep.PreEnter {
				if strings.HasPrefix(m.Mountpoint, victim) {
					t.Errorf("the race reached the host directory: %+v", m)
				}
				if strings.HasPrefix(m.Mountpoint, root+"/") && m.Mountpoint != root+"/dev" && !strings.HasPrefix(m.Mountpoint, root+"/dev/") {
					inRoot++
				}
			}
			t.Logf("%d swaps; %d mounts landed inside the root", rep.RaceRounds, inRoot)
			if ents, err := os.ReadDir(victim); err != nil || len(ents) != 0 {
				t.Errorf("victim changed: %v %v", ents, err)
			}
			if after := hostMounts(t, victim); !slices.Equal(before, after) {
				t.Errorf("host mount table changed:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}
