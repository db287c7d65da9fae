package namespaces

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/libjail/libjail/internal/testutil"
)

var (
	hostRange   = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	twoRanges   = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 1000}, {ContainerID: 1000, HostID: 300000, Size: 1000}}
	allNewTypes = []Type{User, Mount, PID, Network, IPC, UTS, Cgroup, Time}
)

func mustPlan(t *testing.T, spec *specs.Spec) *NSPlan {
	t.Helper()
	p, err := Plan(spec)
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	return p
}

func nsSpec(entries ...specs.LinuxNamespace) *specs.Spec {
	s := &specs.Spec{Linux: &specs.Linux{Namespaces: entries}}
	for _, e := range entries {
		if e.Type == specs.UserNamespace && e.Path == "" {
			s.Linux.UIDMappings, s.Linux.GIDMappings = hostRange, hostRange
		}
	}
	return s
}

func newNS(types ...Type) []specs.LinuxNamespace {
	var out []specs.LinuxNamespace
	for _, t := range types {
		out = append(out, specs.LinuxNamespace{Type: specs.LinuxNamespaceType(t)})
	}
	return out
}

// requireType skips when the kernel lacks namespaces of type typ (time: Linux 5.6).
func requireType(t *testing.T, typ Type) {
	t.Helper()
	if _, err := os.Stat("/proc/self/ns/" + typ.ProcName()); err != nil {
		t.Skipf("skipped: no %s namespaces on this kernel: %v", typ, err)
	}
}

func TestCreateEachType(t *testing.T) {
	testutil.RequireRoot(t)
	parent := nsLinks("self")
	for _, typ := range Types {
		t.Run(string(typ), func(t *testing.T) {
			requireType(t, typ)
			rep := runChild(t, mustPlan(t, nsSpec(newNS(typ)...)))
			for _, other := range Types {
				same := rep.NS[string(other)] == parent[string(other)]
				if other == typ && same {
					t.Errorf("%s namespace not new: %s", typ, rep.NS[string(typ)])
				}
				if other != typ && !same {
					t.Errorf("%s namespace changed too: %s -> %s", other, parent[string(other)], rep.NS[string(other)])
				}
			}
			if typ == PID && rep.PID != 1 {
				t.Errorf("pid in new pid namespace = %d, want 1", rep.PID)
			}
		})
	}
}

// TestJoinEachType joins, one type at a time, the namespaces of a running child that created all
// eight (so every joined namespace but the user one is owned by that child's user namespace).
func TestJoinEachType(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireKernel(t, 5, 6) // the target makes all eight types
	target, err := startChild(t, mustPlan(t, nsSpec(newNS(allNewTypes...)...)), "hold")
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range Types {
		t.Run(string(typ), func(t *testing.T) {
			path := fmt.Sprintf("/proc/%d/ns/%s", target.cmd.Process.Pid, typ.ProcName())
			rep := runChild(t, mustPlan(t, nsSpec(specs.LinuxNamespace{Type: specs.LinuxNamespaceType(typ), Path: path})))
			if got, want := rep.NS[string(typ)], target.rep.NS[string(typ)]; got != want {
				t.Errorf("joined %s = %s, want %s", typ, got, want)
			}
			if typ == PID && (rep.PID == 1 || rep.PID == target.cmd.Process.Pid) {
				t.Errorf("pid in joined pid namespace = %d", rep.PID)
			}
			if rep.Pdeath != int32(unix.SIGKILL) {
				t.Errorf("parent-death signal in child = %d, want SIGKILL", rep.Pdeath)
			}
		})
	}
}

// TestJoinAllButCreateUser joins net/ipc/uts/pid/cgroup of one child while creating a new user
// namespace: the parent joins those on its forking thread, where it is still privileged.
func TestJoinWhileCreatingUser(t *testing.T) {
	testutil.RequireRoot(t)
	target, err := startChild(t, mustPlan(t, nsSpec(newNS(PID, Network, IPC, UTS, Cgroup)...)), "hold")
	if err != nil {
		t.Fatal(err)
	}
	var entries []specs.LinuxNamespace
	for _, typ := range []Type{PID, Network, IPC, UTS, Cgroup} {
		entries = append(entries, specs.LinuxNamespace{Type: specs.LinuxNamespaceType(typ),
			Path: fmt.Sprintf("/proc/%d/ns/%s", target.cmd.Process.Pid, typ.ProcName())})
	}
	entries = append(entries, newNS(User, Mount)...)
	rep := runChild(t, mustPlan(t, nsSpec(entries...)))
	for _, typ := range []Type{PID, Network, IPC, UTS, Cgroup} {
		if rep.NS[string(typ)] != target.rep.NS[string(typ)] {
			t.Errorf("%s = %s, want %s", typ, rep.NS[string(typ)], target.rep.NS[string(typ)])
		}
	}
	if rep.NS["user"] == nsLinks("self")["user"] {
		t.Error("user namespace not new")
	}
}

func TestUserMappings(t *testing.T) {
	testutil.RequireRoot(t)
	file := filepath.Join(os.TempDir(), testutil.Name(t, "owned"))
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(file) })
	if err := os.Chown(file, 300001, 200002); err != nil {
		t.Fatal(err)
	}
	spec := nsSpec(newNS(User)...)
	spec.Linux.UIDMappings, spec.Linux.GIDMappings = twoRanges, twoRanges
	rep := runChild(t, mustPlan(t, spec), childStatEnv+"="+file)
	if want := "0 200000 1000;1000 300000 1000"; rep.UIDMap != want || rep.GIDMap != want {
		t.Errorf("uid_map %q gid_map %q, want %q", rep.UIDMap, rep.GIDMap, want)
	}
	if rep.UID != 0 || rep.GID != 0 {
		t.Errorf("uid/gid inside = %d/%d, want 0/0", rep.UID, rep.GID)
	}
	if rep.StatErr != "" || rep.StatUID != 1001 || rep.StatGID != 2 {
		t.Errorf("stat of host 300001:200002 inside = %d:%d (%s), want 1001:2", rep.StatUID, rep.StatGID, rep.StatErr)
	}
	if rep.CapEff == "0000000000000000" {
		t.Error("uid 0 in the new user namespace has no capabilities")
	}
}

func TestTimeOffsets(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireKernel(t, 5, 6)
	for _, withUser := range []bool{false, true} {
		t.Run(fmt.Sprintf("user=%v", withUser), func(t *testing.T) {
			types := []Type{Time}
			if withUser {
				// The time namespace is then owned by the new user namespace: offsets need root there.
				types = append(types, User)
			}
			spec := nsSpec(newNS(types...)...)
			spec.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{
				"boottime":  {Secs: 86400 * 3},
				"monotonic": {Secs: 7200, Nanosecs: 5},
			}
			before := observe().Uptime
			rep := runChild(t, mustPlan(t, spec))
			after := observe().Uptime
			if rep.Uptime < before+86400*3 || rep.Uptime > after+86400*3 {
				t.Errorf("uptime in child = %.2f, want within [%.2f, %.2f] + 3 days", rep.Uptime, before, after)
			}
			if rep.NS["time"] == nsLinks("self")["time"] {
				t.Error("time namespace not new")
			}
		})
	}
}

func TestExecJoinsAll(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireKernel(t, 5, 8) // time namespaces, setns with a pidfd
	target, err := startChild(t, mustPlan(t, nsSpec(newNS(allNewTypes...)...)), "hold")
	if err != nil {
		t.Fatal(err)
	}
	plan, err := ForExec(target.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Exec.Types) != len(Types) {
		t.Fatalf("ForExec types = %v, want all eight", plan.Exec.Types)
	}
	rep := runChild(t, plan)
	for _, typ := range Types {
		if rep.NS[string(typ)] != target.rep.NS[string(typ)] {
			t.Errorf("%s = %s, want %s", typ, rep.NS[string(typ)], target.rep.NS[string(typ)])
		}
	}
	if rep.UID != 0 || rep.UIDMap != "0 100000 65536" {
		t.Errorf("exec'd uid %d, uid_map %q; want 0 in 0 100000 65536", rep.UID, rep.UIDMap)
	}
	if _, err := ForExec(1 << 22); err == nil {
		t.Error("ForExec of a missing pid succeeded")
	}
}

func mountinfoUnder(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			out = append(out, l)
		}
	}
	return out
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func nsInode(link string) string { // "net:[4026531840]" -> "4026531840"
	return strings.TrimSuffix(link[strings.IndexByte(link, '[')+1:], "]")
}

func pin(t *testing.T, types []Type, opts PinOptions) *Pinned {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pod")
	p, err := Pin(dir, types, opts)
	if err != nil {
		t.Fatalf("Pin: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Release(); err != nil {
			t.Error(err)
		}
	})
	return p
}

// TestPodSharedNamespaces: two containers join the net, ipc and uts namespaces of a pinned pod.
func TestPodSharedNamespaces(t *testing.T) {
	testutil.RequireRoot(t)
	pod := pin(t, []Type{Network, IPC, UTS}, PinOptions{})
	entries := newNS(Mount, PID)
	for _, typ := range []Type{Network, IPC, UTS} {
		entries = append(entries, specs.LinuxNamespace{Type: specs.LinuxNamespaceType(typ), Path: pod.Path(typ)})
	}
	a := runChild(t, mustPlan(t, nsSpec(entries...)))
	b := runChild(t, mustPlan(t, nsSpec(entries...)))
	for _, typ := range []Type{Network, IPC, UTS} {
		want := fmt.Sprint(inode(t, pod.Path(typ)))
		if nsInode(a.NS[string(typ)]) != want || nsInode(b.NS[string(typ)]) != want {
			t.Errorf("%s: containers in %s and %s, pod pinned %s", typ, a.NS[string(typ)], b.NS[string(typ)], want)
		}
	}
	if self := nsLinks("self"); a.NS["mount"] == self["mount"] || b.NS["mount"] == self["mount"] {
		t.Error("containers did not get their own mount namespace")
	}
}

// TestPodUserNet: the pod's network namespace lives in the pod's user namespace; a container joining
// both (and creating its own mount namespace, owned by that user namespace) can mount sysfs.
func TestPodUserNet(t *testing.T) {
	testutil.RequireRoot(t)
	pod := pin(t, []Type{User, Network}, PinOptions{UIDMappings: hostRange, GIDMappings: hostRange})

	owner, err := OwningUserNS(pod.Path(Network))
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	err = unix.Fstat(int(owner.Fd()), &st)
	owner.Close()
	if err != nil || st.Ino != inode(t, pod.Path(User)) {
		t.Fatalf("OwningUserNS(net) inode %d (%v), pinned user ns %d", st.Ino, err, inode(t, pod.Path(User)))
	}

	sysDir := filepath.Join(os.TempDir(), testutil.Name(t, "sys"))
	if err := os.Mkdir(sysDir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(sysDir) })
	spec := nsSpec(append(newNS(Mount, UTS, IPC, PID),
		specs.LinuxNamespace{Type: specs.UserNamespace, Path: pod.Path(User)},
		specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: pod.Path(Network)})...)
	spec.Hostname = "pod"
	rep := runChild(t, mustPlan(t, spec), childSysEnv+"="+sysDir, childProcEnv+"="+sysDir)
	if nsInode(rep.NS["user"]) != fmt.Sprint(inode(t, pod.Path(User))) ||
		nsInode(rep.NS["network"]) != fmt.Sprint(inode(t, pod.Path(Network))) {
		t.Errorf("container user %s net %s; pod pinned user %d net %d", rep.NS["user"], rep.NS["network"],
			inode(t, pod.Path(User)), inode(t, pod.Path(Network)))
	}
	if rep.UID != 0 || rep.UIDMap != "0 100000 65536" {
		t.Errorf("uid %d uid_map %q in pod user namespace", rep.UID, rep.UIDMap)
	}
	if rep.NetOwner != rep.NS["user"] {
		t.Errorf("pod network namespace owned by %s, want the pod user namespace %s", rep.NetOwner, rep.NS["user"])
	}
	if rep.MountSys != "ok" {
		t.Errorf("mount sysfs in the pod's user+net namespaces: %s", rep.MountSys)
	}
	// The new pid namespace is unshared after joining the pod's user namespace, which owns it (the
	// child forks into it): the container's root mounts its procfs.
	if rep.PID != 1 || rep.MountProc != "ok" {
		t.Errorf("container pid %d (want 1); mount procfs: %q", rep.PID, rep.MountProc)
	}

	// A network namespace pinned later inside the same user namespace (PinOptions.UserNS).
	net2 := pin(t, []Type{Network}, PinOptions{UserNS: pod.Path(User)})
	owner, err = OwningUserNS(net2.Path(Network))
	if err != nil {
		t.Fatal(err)
	}
	err = unix.Fstat(int(owner.Fd()), &st)
	owner.Close()
	if err != nil || st.Ino != inode(t, pod.Path(User)) {
		t.Errorf("net pinned with UserNS is owned by user ns %d, want %d", st.Ino, inode(t, pod.Path(User)))
	}
}

func TestPinRelease(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireKernel(t, 5, 6)
	dir := filepath.Join(t.TempDir(), "pod")
	types := []Type{User, Mount, Network, IPC, UTS, Cgroup, Time}
	p, err := Pin(dir, types, PinOptions{UIDMappings: hostRange, GIDMappings: hostRange})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Release() })
	if n := len(mountinfoUnder(t, dir)); n != len(types) {
		t.Errorf("%d mounts under %s, want %d", n, dir, len(types))
	}
	for _, typ := range types {
		f, err := openNS(p.Path(typ), typ)
		if err != nil {
			t.Errorf("pinned %s: %v", typ, err)
			continue
		}
		f.Close()
	}
	if err := p.Release(); err != nil {
		t.Fatal(err)
	}
	if left := mountinfoUnder(t, dir); len(left) > 0 {
		t.Errorf("mounts left after Release: %v", left)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("pin dir left after Release: %v", err)
	}
	if err := p.Release(); err != nil {
		t.Errorf("second Release: %v", err)
	}
}

// TestDeferCgroup: with DeferCgroup the clone leaves the cgroup namespace alone and the child makes it.
func TestDeferCgroup(t *testing.T) {
	testutil.RequireRoot(t)
	plan := mustPlan(t, nsSpec(newNS(Cgroup, Mount)...))
	plan.DeferCgroup = true
	rep := runChild(t, plan, childCgEnv+"=1")
	self := nsLinks("self")["cgroup"]
	if rep.NS["cgroup"] != self {
		t.Errorf("cgroup namespace changed at clone: %s", rep.NS["cgroup"])
	}
	if !strings.HasPrefix(rep.CgroupNS, "cgroup:[") || rep.CgroupNS == self {
		t.Errorf("UnshareCgroup in child: %s (parent %s)", rep.CgroupNS, self)
	}
}

// threadNS lists the namespaces of every thread of this process that a parent-side join touches.
func threadNS(t *testing.T) map[string]bool {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, task := range tasks {
		for _, n := range []string{"pid_for_children", "net", "ipc", "uts", "cgroup"} {
			if l, err := os.Readlink(filepath.Join("/proc/self/task", task.Name(), "ns", n)); err == nil {
				seen[l] = true
			}
		}
	}
	return seen
}

// TestStartLeavesThreadsAlone: after Start joined namespaces on its forking thread, successfully or
// failing half-way, every thread of the parent is in the parent's own namespaces again.
func TestStartLeavesThreadsAlone(t *testing.T) {
	testutil.RequireRoot(t)
	before := threadNS(t)
	target, err := startChild(t, mustPlan(t, nsSpec(newNS(PID, Network, IPC, UTS, Cgroup)...)), "hold")
	if err != nil {
		t.Fatal(err)
	}
	var entries []specs.LinuxNamespace
	for _, typ := range []Type{PID, Network, UTS, Cgroup} {
		entries = append(entries, specs.LinuxNamespace{Type: specs.LinuxNamespaceType(typ),
			Path: fmt.Sprintf("/proc/%d/ns/%s", target.cmd.Process.Pid, typ.ProcName())})
	}
	for i := 0; i < 5; i++ {
		runChild(t, mustPlan(t, nsSpec(entries...)))
	}

	// IPC is joined after pid and net: make it fail there.
	gone, err := Pin(filepath.Join(t.TempDir(), "gone"), []Type{IPC}, PinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	plan := mustPlan(t, nsSpec(append(entries, specs.LinuxNamespace{Type: specs.IPCNamespace, Path: gone.Path(IPC)})...))
	if err := gone.Release(); err != nil {
		t.Fatal(err)
	}
	_, err = startChild(t, plan, "report")
	var se *StartError
	if !errors.As(err, &se) || se.Step != "setns ipc" || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Start with a vanished ipc path: %v, want a StartError at setns ipc wrapping ENOENT", err)
	}

	after := threadNS(t)
	for l := range after {
		if !before[l] {
			t.Errorf("a thread of the parent is left in %s", l)
		}
	}
}

// TestPodSharedPID: a pod pins user, pid and net namespaces; the pid namespace is kept by a live init
// in the pod's user namespace, so containers joining all three share it and can mount their procfs.
func TestPodSharedPID(t *testing.T) {
	testutil.RequireRoot(t)
	pod := pin(t, []Type{User, PID, Network}, PinOptions{UIDMappings: hostRange, GIDMappings: hostRange})
	if pod.InitPID == 0 {
		t.Fatal("no init for the pinned pid namespace")
	}
	if s := pod.String(); !strings.Contains(s, "user="+pod.Dir+"/user pid="+pod.Dir+"/pid network="+pod.Dir+"/net") {
		t.Errorf("String: %s", s)
	}
	procDir := filepath.Join(os.TempDir(), testutil.Name(t, "proc"))
	if err := os.Mkdir(procDir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(procDir) })
	var entries []specs.LinuxNamespace
	for _, typ := range []Type{User, PID, Network} {
		entries = append(entries, specs.LinuxNamespace{Type: specs.LinuxNamespaceType(typ), Path: pod.Path(typ)})
	}
	entries = append(entries, newNS(Mount, IPC)...)
	want := fmt.Sprint(inode(t, pod.Path(PID)))
	for i := 0; i < 2; i++ {
		rep := runChild(t, mustPlan(t, nsSpec(entries...)), childProcEnv+"="+procDir)
		if nsInode(rep.NS["pid"]) != want || rep.PID <= 1 {
			t.Errorf("container %d: pid namespace %s (pod %s), pid %d", i, rep.NS["pid"], want, rep.PID)
		}
		if rep.MountProc != "ok" {
			t.Errorf("container %d: mount procfs in the pod's pid namespace: %s", i, rep.MountProc)
		}
	}

	// Release from a copy read back from JSON, as an agent that restarted would.
	b, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	var back Pinned
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	initPID := pod.InitPID
	if err := back.Release(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- pod.done() }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "killed") {
			t.Errorf("pod init after Release: %v, want killed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("pod init not ended by Release")
	}
	pod.done, pod.InitPID = nil, 0
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", initPID)); !os.IsNotExist(err) {
		t.Errorf("pod init %d still exists: %v", initPID, err)
	}
	if left := mountinfoUnder(t, pod.Dir); len(left) > 0 {
		t.Errorf("mounts left after Release: %v", left)
	}
}

// TestCreateUserJoinMountTime: a new user namespace with joined mount and time namespaces. The child
// joins those first and then unshares the user namespace (with the network namespace it creates, so
// the new user namespace owns it); the parent writes the id maps in between.
func TestCreateUserJoinMountTime(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireKernel(t, 5, 6)
	targetSpec := nsSpec(newNS(Mount, Time)...)
	targetSpec.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"boottime": {Secs: 86400}}
	target, err := startChild(t, mustPlan(t, targetSpec), "hold")
	if err != nil {
		t.Fatal(err)
	}
	entries := append(newNS(User, Network),
		specs.LinuxNamespace{Type: specs.MountNamespace, Path: fmt.Sprintf("/proc/%d/ns/mnt", target.cmd.Process.Pid)},
		specs.LinuxNamespace{Type: specs.TimeNamespace, Path: fmt.Sprintf("/proc/%d/ns/time", target.cmd.Process.Pid)})
	spec := nsSpec(entries...)
	spec.Linux.UIDMappings, spec.Linux.GIDMappings = twoRanges, twoRanges
	rep := runChild(t, mustPlan(t, spec))
	self := nsLinks("self")
	for _, typ := range []string{"mount", "time"} {
		if rep.NS[typ] != target.rep.NS[typ] {
			t.Errorf("%s = %s, want the target's %s", typ, rep.NS[typ], target.rep.NS[typ])
		}
	}
	for _, typ := range []string{"user", "network"} {
		if rep.NS[typ] == self[typ] {
			t.Errorf("%s namespace not new", typ)
		}
	}
	if rep.UID != 0 || rep.GID != 0 || rep.UIDMap != "0 200000 1000;1000 300000 1000" || rep.GIDMap != rep.UIDMap {
		t.Errorf("uid %d gid %d uid_map %q gid_map %q", rep.UID, rep.GID, rep.UIDMap, rep.GIDMap)
	}
	if rep.CapEff == "0000000000000000" {
		t.Error("root in the new user namespace has no capabilities")
	}
	if rep.NetOwner != rep.NS["user"] {
		t.Errorf("new network namespace owned by %s, want the new user namespace %s", rep.NetOwner, rep.NS["user"])
	}
	if rep.Uptime < target.rep.Uptime {
		t.Errorf("uptime %.0f: not the joined time namespace's (>= %.0f)", rep.Uptime, target.rep.Uptime)
	}
}
