package cgroups

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/libjail/libjail/internal/testutil"
)

// unifiedOnly returns the machine's cgroup2 hierarchy alone: a V2 layout as far as Plan and the
// manager can tell, so the v2 code paths run here even on a hybrid machine.
func unifiedOnly(t *testing.T) []Hierarchy {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireCgroupV2(t)
	hs, err := DetectHierarchies()
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hs {
		if h.Unified {
			return []Hierarchy{h}
		}
	}
	t.Skip("skipped: no cgroup2 hierarchy")
	return nil
}

func requireV2Controller(t *testing.T, hs []Hierarchy, c string) {
	t.Helper()
	for _, h := range hs {
		if h.Unified && h.has(c) {
			return
		}
	}
	t.Skipf("skipped: the unified hierarchy has no %s controller", c)
}

// startInCgroup starts cmd directly inside the cgroup with CLONE_INTO_CGROUP.
func startInCgroup(t *testing.T, m Manager, cmd *exec.Cmd) *child {
	t.Helper()
	testutil.RequireKernel(t, 5, 7)
	f, err := m.CgroupFD()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(f.Fd())}
	return startChild(t, cmd)
}

func procCgroup(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCloneIntoCgroupV2(t *testing.T) {
	plan, m := newManager(t, unifiedOnly(t), nil)
	c := startInCgroup(t, m, shell("sleep 100"))
	if cg := procCgroup(t, c.cmd.Process.Pid); !strings.Contains(cg, "0::"+plan.Path+"\n") {
		t.Fatalf("child not born in %s:\n%s", plan.Path, cg)
	}
}

func TestCloneIntoCgroupHybridThenPlace(t *testing.T) {
	hs, err := DetectHierarchies()
	if err != nil {
		t.Fatal(err)
	}
	if LayoutOf(hs) != Hybrid {
		t.Skip("skipped: needs a hybrid layout")
	}
	plan, m := newManager(t, hs, nil)
	c := startInCgroup(t, m, shell("sleep 100"))
	// Born in the unified cgroup; the v1 hierarchies follow with cgroup.procs.
	if err := m.Place(c.cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(procCgroup(t, c.cmd.Process.Pid)), "\n") {
		if !strings.HasSuffix(l, ":"+plan.Path) {
			t.Errorf("not placed: %s", l)
		}
	}
}

func TestCgroupFDWithoutV2(t *testing.T) {
	plan, err := Plan("/x", nil, V1, Options{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(plan)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.CgroupFD(); !errors.Is(err, ErrNotSupported) {
		t.Fatalf("got %v, want ErrNotSupported", err)
	}
}

func TestFreezeV2(t *testing.T) {
	_, m := newManager(t, unifiedOnly(t), nil)
	testFreeze(t, m)
}

func TestKillV2(t *testing.T) {
	plan, m := newManager(t, unifiedOnly(t), nil)
	c := startInCgroup(t, m, shell("sleep 100 >/dev/null 2>&1 & sleep 100 >/dev/null 2>&1 & while :; do :; done"))
	c.release(t)
	time.Sleep(100 * time.Millisecond)
	if pids, _ := readPids(plan.Dirs[UnifiedKey]); len(pids) != 3 {
		t.Fatalf("want 3 processes in the cgroup, have %v", pids)
	}
	if err := m.Kill(); err != nil {
		t.Fatal(err)
	}
	err := waitExit(t, c, 5*time.Second)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("shell not killed: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		pids, _ := readPids(plan.Dirs[UnifiedKey])
		if len(pids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still in the cgroup after kill: %v", pids)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestKillV1Fallback(t *testing.T) {
	testutil.RequireCgroupV1(t, "freezer")
	hs, err := DetectHierarchies()
	if err != nil {
		t.Fatal(err)
	}
	var v1 []Hierarchy
	for _, h := range hs {
		if !h.Unified {
			v1 = append(v1, h)
		}
	}
	plan, m := newManager(t, v1, nil)
	c := startChild(t, shell("sleep 100 >/dev/null 2>&1 & while :; do :; done"))
	if err := m.Place(c.cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	c.release(t)
	time.Sleep(100 * time.Millisecond)
	if err := m.Kill(); err != nil {
		t.Fatal(err)
	}
	waitExit(t, c, 5*time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for {
		pids, _ := readPids(m.Paths()["freezer"])
		if len(pids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still in the cgroup after kill: %v", pids)
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = plan
}

func TestHugetlbV2(t *testing.T) {
	hs := unifiedOnly(t)
	requireV2Controller(t, hs, "hugetlb")
	// The hybrid plan sends hugetlb to the unified hierarchy too: test both layouts.
	all, err := DetectHierarchies()
	if err != nil {
		t.Fatal(err)
	}
	for _, set := range [][]Hierarchy{hs, all} {
		_, m := newManager(t, set, &specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}}})
		d := m.Paths()["hugetlb"]
		if v := readBack(t, d, "hugetlb.2MB.max"); v != "4194304" {
			t.Errorf("%s: hugetlb.2MB.max = %s", LayoutOf(set), v)
		}
		st, err := m.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if h, ok := st.Hugetlb["2MB"]; !ok || h.Max != 4<<20 {
			t.Errorf("hugetlb stats %+v", st.Hugetlb)
		}
		if err := m.Update(&specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 2 << 20}}}); err != nil {
			t.Fatal(err)
		}
		if v := readBack(t, d, "hugetlb.2MB.max"); v != "2097152" {
			t.Errorf("after update hugetlb.2MB.max = %s", v)
		}
	}
}

func TestUnifiedKeyV2(t *testing.T) {
	hs := unifiedOnly(t)
	requireV2Controller(t, hs, "hugetlb")
	_, m := newManager(t, hs, &specs.LinuxResources{Unified: map[string]string{"hugetlb.1GB.max": "0"}})
	if v := readBack(t, m.Paths()[UnifiedKey], "hugetlb.1GB.max"); v != "0" {
		t.Errorf("hugetlb.1GB.max = %s", v)
	}
}

func TestPodHierarchy(t *testing.T) {
	testutil.RequireRoot(t)
	hs, err := DetectHierarchies()
	if err != nil {
		t.Fatal(err)
	}
	pod, err := Plan("/"+testutil.Name(t, "pod"), &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](20)}}, LayoutOf(hs), Options{Hierarchies: hs})
	if err != nil {
		t.Fatal(err)
	}
	pm, _ := New(pod)
	if err := pm.Create(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pm.Kill()
		if err := pm.Destroy(); err != nil {
			t.Error(err)
		}
		assertGone(t, pod)
	})
	var ctrs []Manager
	for _, name := range []string{"a", "b"} {
		p, err := Plan(name, &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](5)}}, LayoutOf(hs), Options{Parent: pod.Path, Hierarchies: hs})
		if err != nil {
			t.Fatal(err)
		}
		if p.Path != pod.Path+"/"+name {
			t.Fatalf("container path %s", p.Path)
		}
		m, _ := New(p)
		if err := m.Create(); err != nil {
			t.Fatal(err)
		}
		ctrs = append(ctrs, m)
		c := startChild(t, shell("sleep 100"))
		if err := m.Place(c.cmd.Process.Pid); err != nil {
			t.Fatal(err)
		}
	}
	st, err := pm.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Pids.Current != 2 {
		t.Errorf("pod counts %d tasks, want its two containers' 2", st.Pids.Current)
	}
	// Killing and destroying the pod takes its containers along.
	if err := pm.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := pm.Destroy(); err != nil {
		t.Fatal(err)
	}
	for _, m := range ctrs {
		for k, d := range m.Paths() {
			if _, err := os.Stat(d); err == nil {
				t.Errorf("container cgroup left in %s: %s", k, d)
			}
		}
	}
}
