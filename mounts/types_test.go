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

func hasOpts(t *testing.T, rep report, at string, opts ...string) {
	t.Helper()
	m, ok := rep.mount(at)
	if !ok {
		t.Errorf("no mount at %s", at)
		return
	}
	have := strings.Split(m.Options+","+m.Super, ",")
	for _, o := range opts {
		if !slices.Contains(have, o) {
			t.Errorf("mount at %s: options %q super %q, want %s", at, m.Options, m.Super, o)
		}
	}
}

// TestMountFamilies exercises each option family on real mounts: atime modes, nosymfollow,
// superblock flags, recursive attributes on a bind with a submount (and the plain form, which
// leaves the submount alone), propagation, and an overlay.
func TestMountFamilies(t *testing.T) {
	testutil.RequireRoot(t)
	root := makeRootfs(t)
	// A host tree with a submount, to tell rro from ro. The submount lives in the child's
	// namespace only: the child's first mount makes it, before the binds.
	tree := hostDir(t, "tree")
	if err := os.Mkdir(filepath.Join(tree, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	ov := hostDir(t, "overlay")
	for _, d := range []string{"lower", "upper", "work"} {
		if err := os.Mkdir(filepath.Join(ov, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(ov, "lower", "l"), []byte("lower"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := &specs.Spec{
		Root: &specs.Root{Path: root},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc"},
			// Builds the submount of tree through the root: /mnt/treesrc is tree itself.
			{Destination: "/mnt/treesrc", Source: tree, Options: []string{"bind", "rshared"}},
			{Destination: "/mnt/treesrc/sub", Type: "tmpfs", Options: []string{"size=1m"}},
			{Destination: "/a/noatime", Type: "tmpfs", Options: []string{"noatime", "nodiratime"}},
			{Destination: "/a/strict", Type: "tmpfs", Options: []string{"strictatime"}},
			{Destination: "/a/nosym", Type: "tmpfs", Options: []string{"nosymfollow", "sync", "dirsync"}},
			{Destination: "/a/lazy", Type: "tmpfs", Options: []string{"lazytime", "noexec"}},
			{Destination: "/b/rro", Source: filepath.Join(root, "mnt", "treesrc"), Options: []string{"rbind", "rro", "rnosuid"}},
			{Destination: "/b/ro", Source: filepath.Join(root, "mnt", "treesrc"), Options: []string{"rbind", "ro"}},
			{Destination: "/b/shared", Type: "tmpfs", Options: []string{"shared"}},
			{Destination: "/b/slave", Source: filepath.Join(root, "mnt", "treesrc"), Options: []string{"bind", "slave"}},
			{Destination: "/b/private", Type: "tmpfs", Options: []string{"private"}},
			{Destination: "/b/unbindable", Type: "tmpfs", Options: []string{"unbindable"}},
			{Destination: "/ov", Type: "overlay", Source: "overlay", Options: []string{
				"lowerdir=" + filepath.Join(ov, "lower"), "upperdir=" + filepath.Join(ov, "upper"), "workdir=" + filepath.Join(ov, "work")}},
			{Destination: "/mq", Type: "mqueue", Source: "mqueue", Options: []string{"nodev"}},
		},
	}
	rep := runChild(t, mustPlan(t, spec, Options{}), probe{
		Read:  []string{"/ov/l"},
		Write: []string{"/b/rro/x", "/b/rro/sub/x", "/b/ro/x", "/b/ro/sub/x", "/ov/new"},
	})
	if rep.Err != "" {
		t.Fatalf("%s: %s", rep.Step, rep.Err)
	}
	hasOpts(t, rep, "/a/noatime", "noatime", "nodiratime")
	hasOpts(t, rep, "/a/nosym", "nosymfollow", "sync", "dirsync")
	hasOpts(t, rep, "/a/lazy", "noexec", "lazytime")
	hasOpts(t, rep, "/b/rro", "ro", "nosuid")
	hasOpts(t, rep, "/b/rro/sub", "ro", "nosuid")
	hasOpts(t, rep, "/b/ro", "ro")
	hasOpts(t, rep, "/b/ro/sub", "rw")
	hasOpts(t, rep, "/ov", "rw")
	hasOpts(t, rep, "/mq", "nodev")
	if m, _ := rep.mount("/a/strict"); strings.Contains(m.Options, "relatime") || strings.Contains(m.Options, "noatime") {
		t.Errorf("strictatime mount shows %q", m.Options)
	}
	for p, want := range map[string]string{"/b/rro/x": "read-only file system", "/b/rro/sub/x": "read-only file system",
		"/b/ro/x": "read-only file system", "/b/ro/sub/x": "ok", "/ov/new": "ok"} {
		if got := rep.Write[p]; !strings.HasSuffix(got, want) {
			t.Errorf("write %s: %q, want %q", p, got, want)
		}
	}
	if rep.Read["/ov/l"] != "lower" {
		t.Errorf("overlay read: %q", rep.Read["/ov/l"])
	}
	for at, want := range map[string]string{"/b/shared": "shared:", "/b/slave": "master:", "/b/unbindable": "unbindable"} {
		if m, _ := rep.mount(at); !strings.Contains(m.Optional, want) {
			t.Errorf("%s propagation %q, want %s", at, m.Optional, want)
		}
	}
	if m, _ := rep.mount("/b/private"); m.Optional != "" {
		t.Errorf("/b/private propagation %q, want none", m.Optional)
	}
	if _, err := os.Stat(filepath.Join(ov, "upper", "new")); err != nil {
		t.Errorf("overlay write did not reach the upper dir: %v", err)
	}
}

// TestCgroupMount builds the container's cgroup view on this hybrid host, with and without a cgroup
// namespace, and checks every hierarchy is there, read-only, and the container's own.
func TestCgroupMount(t *testing.T) {
	testutil.RequireRoot(t)
	hs, err := cgroupHierarchies(false)
	if err != nil {
		t.Skipf("skipped: %v", err)
	}
	own, err := ownCgroups()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name      string
		planNS    bool // the plan says there is a cgroup namespace
		cloneNS   bool // and there is one
		wantFresh bool
	}{
		{"bind", false, false, false},
		{"cgroupns", true, true, true},
		// Asked for by the spec but missing: refused, rather than showing the host's tree.
		{"cgroupns missing", true, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.planNS && !tt.cloneNS && checkCgroupNSRoot() == nil {
				t.Skip("skipped: this process is in the root cgroups, where a missing namespace cannot be told apart")
			}
			ns := tt.cloneNS
			root := makeRootfs(t)
			spec := &specs.Spec{
				Root: &specs.Root{Path: root},
				Mounts: []specs.Mount{
					{Destination: "/proc", Type: "proc"},
					{Destination: "/sys", Type: "sysfs", Options: []string{"ro", "nosuid", "nodev", "noexec"}},
					{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "nosuid", "nodev", "noexec"}},
				},
			}
			var flags uintptr
			if ns {
				flags = unix.CLONE_NEWCGROUP
			}
			pr := probe{List: []string{"/sys/fs/cgroup"}, Write: []string{"/sys/fs/cgroup/x"}}
			for _, h := range hs {
				pr.Write = append(pr.Write, "/sys/fs/cgroup/"+h.name+"/cgroup.procs")
				pr.Read = append(pr.Read, "/sys/fs/cgroup/"+h.name+"/cgroup.procs")
			}
			if tt.planNS {
				spec.Linux = &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.CgroupNamespace}}}
			}
			rep := runChildFlags(t, mustPlan(t, spec, Options{}), pr, flags)
			if tt.planNS && !tt.cloneNS {
				if rep.Step != "MountAll" || !strings.Contains(rep.Err, "cgroup namespace does not start") {
					t.Errorf("missing cgroup namespace: step %q err %q, want MountAll refused", rep.Step, rep.Err)
				}
				return
			}
			if rep.Err != "" {
				t.Fatalf("%s: %s", rep.Step, rep.Err)
			}
			hasOpts(t, rep, "/sys/fs/cgroup", "ro", "nosuid")
			for _, h := range hs {
				at := "/sys/fs/cgroup/" + h.name
				key := strings.Join(h.opts, ",")
				if m, _ := rep.mount(at); !tt.wantFresh && m.Root != own[key] {
					t.Errorf("%s shows %s of its hierarchy, want the container's own %s", at, m.Root, own[key])
				} else if tt.wantFresh && m.Root != "/" {
					t.Errorf("%s shows %s of its hierarchy, want the namespace's root", at, m.Root)
				}
				want := map[bool]string{false: "cgroup", true: "cgroup2"}[h.v2]
				if m, ok := rep.mount(at); !ok || m.FSType != want {
					t.Errorf("%s: %+v, want a %s mount", at, m, want)
				}
				hasOpts(t, rep, at, "ro", "nosuid", "nodev", "noexec")
				if got := rep.Write[at+"/cgroup.procs"]; got == "ok" {
					t.Errorf("%s is writable", at)
				}
				// Only the child (pid 1 in its pid namespace) is in its cgroup... or nobody
				// else the container can see; the host's processes never show.
				if procs := rep.Read[at+"/cgroup.procs"]; strings.HasPrefix(procs, "error") {
					t.Errorf("read %s/cgroup.procs: %s", at, procs)
				}
			}
			if got := rep.Write["/sys/fs/cgroup/x"]; !isErr(got, unix.EROFS) {
				t.Errorf("write into the cgroup tmpfs: %q", got)
			}
		})
	}
}

// TestCgroupMountV2Only builds the view on a pure cgroup v2 layout (made in the child's own mount
// namespace): one cgroup2 mount, read-only, fresh in a cgroup namespace or a bind without.
func TestCgroupMountV2Only(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireCgroupV2(t)
	for _, ns := range []bool{false, true} {
		t.Run(map[bool]string{false: "bind", true: "cgroupns"}[ns], func(t *testing.T) {
			root := makeRootfs(t)
			spec := &specs.Spec{
				Root: &specs.Root{Path: root},
				Mounts: []specs.Mount{
					{Destination: "/proc", Type: "proc"},
					{Destination: "/sys", Type: "sysfs", Options: []string{"ro"}},
					{Destination: "/sys/fs/cgroup", Type: "cgroup", Options: []string{"ro", "nosuid", "nodev", "noexec"}},
				},
			}
			var flags uintptr
			if ns {
				flags = unix.CLONE_NEWCGROUP
			}
			rep := runChildFlags(t, mustPlan(t, spec, Options{CgroupNamespace: ns}), probe{
				V2Only: true, Read: []string{"/sys/fs/cgroup/cgroup.controllers"}, Write: []string{"/sys/fs/cgroup/cgroup.procs"},
			}, flags)
			if rep.Err != "" {
				t.Fatalf("%s: %s", rep.Step, rep.Err)
			}
			if m, ok := rep.mount("/sys/fs/cgroup"); !ok || m.FSType != "cgroup2" {
				t.Errorf("/sys/fs/cgroup: %+v", m)
			}
			hasOpts(t, rep, "/sys/fs/cgroup", "ro", "nosuid", "nodev", "noexec")
			for _, m := range rep.Mountinfo {
				if strings.HasPrefix(m.Mountpoint, "/sys/fs/cgroup/") {
					t.Errorf("unexpected entry on a v2 host: %+v", m)
				}
			}
			if strings.HasPrefix(rep.Read["/sys/fs/cgroup/cgroup.controllers"], "error") {
				t.Errorf("cgroup.controllers: %s", rep.Read["/sys/fs/cgroup/cgroup.controllers"])
			}
			if rep.Write["/sys/fs/cgroup/cgroup.procs"] == "ok" {
				t.Error("the cgroup view is writable")
			}
		})
	}
}

// TestDockerDefaults applies the masked and read-only paths container engines send by default;
// each must be handled (or skipped when this kernel lacks it), files and directories alike.
func TestDockerDefaults(t *testing.T) {
	testutil.RequireRoot(t)
	root := makeRootfs(t)
	masked := []string{"/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
		"/sys/devices/virtual/powercap"}
	readonly := []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
	spec := &specs.Spec{
		Root: &specs.Root{Path: root},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/sys", Type: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Options: []string{"ro", "nosuid", "noexec", "nodev"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=67108864"}},
		},
		Linux: &specs.Linux{MaskedPaths: masked, ReadonlyPaths: readonly},
	}
	pr := probe{Stat: append(append([]string{}, masked...), readonly...), List: masked, Write: []string{"/proc/sysrq-trigger"}}
	rep := runChild(t, mustPlan(t, spec, Options{}), pr)
	if rep.Err != "" {
		t.Fatalf("%s: %s", rep.Step, rep.Err)
	}
	for _, p := range masked {
		st := rep.Stat[p]
		switch {
		case st.Err != "":
			// Not on this kernel: nothing to mask.
		case st.Mode&unix.S_IFMT == unix.S_IFDIR:
			if m, ok := rep.mount(p); !ok || m.FSType != "tmpfs" || !strings.Contains(m.Options, "ro") {
				t.Errorf("masked directory %s: %+v", p, m)
			}
			if len(rep.List[p]) != 0 {
				t.Errorf("masked directory %s lists %q", p, rep.List[p])
			}
		case !st.isChr(1, 3):
			t.Errorf("masked file %s: %+v", p, st)
		}
	}
	for _, p := range readonly {
		if rep.Stat[p].Err != "" {
			continue
		}
		if m, ok := rep.mount(p); !ok || !strings.HasPrefix(m.Options, "ro") {
			t.Errorf("read-only path %s: %+v", p, m)
		}
	}
	if rep.Stat["/proc/sysrq-trigger"].Err == "" && !isErr(rep.Write["/proc/sysrq-trigger"], unix.EROFS) {
		t.Errorf("write /proc/sysrq-trigger: %q", rep.Write["/proc/sysrq-trigger"])
	}
}
