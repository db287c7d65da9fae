package cgroups

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
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

// requireV2Controller skips unless the unified root delegates controller c to its children, where
// the tests make their cgroups: the package never enables a controller in a cgroup it did not make.
func requireV2Controller(t *testing.T, hs []Hierarchy, c string) {
	t.Helper()
	for _, h := range hs {
		if !h.Unified {
			continue
		}
		if !h.has(c) {
			t.Skipf("skipped: the unified hierarchy at %s has no %s controller (cgroup.controllers: %q); the pure cgroup-v2 VM lane runs this", h.Mount, c, strings.Join(h.Controllers, " "))
		}
		on, err := readFile(h.Mount, "cgroup.subtree_control")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(strings.Fields(on), c) {
			t.Skipf("skipped: controller %s is not enabled in %s/cgroup.subtree_control (the package does not write the root's)", c, h.Mount)
		}
		return
	}
	t.Skipf("skipped: no unified hierarchy for the %s controller", c)
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
	pod, err := Plan("/"+testutil.Name(t, "pod"), &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](20)}}, LayoutOf(hs), Options{Hierarchies: hs, Pod: true})
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
	// On cgroup2 the pod delegates its controllers to its containers (the package made it).
	if d := pod.Dirs[UnifiedKey]; d != "" && onV2(pm, "pids") {
		if on := readBack(t, d, "cgroup.subtree_control"); !slices.Contains(strings.Fields(on), "pids") {
			t.Errorf("pod's cgroup.subtree_control = %q, want pids in it", on)
		}
	}
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

// requireUnified returns the unified hierarchy alone, skipping unless its root delegates every
// controller of cs: on this hybrid machine those live in v1, in the VM lane they are all there.
func requireUnified(t *testing.T, cs ...string) []Hierarchy {
	t.Helper()
	hs := unifiedOnly(t)
	for _, c := range cs {
		requireV2Controller(t, hs, c)
	}
	return hs
}

func TestUpdateRunningLimitsV2(t *testing.T) {
	hs := requireUnified(t, "memory", "pids", "cpu")
	_, m := newManager(t, hs, &specs.LinuxResources{
		Pids:   &specs.LinuxPids{Limit: ptr[int64](100)},
		Memory: &specs.LinuxMemory{Limit: ptr[int64](256 << 20)},
		CPU:    &specs.LinuxCPU{Quota: ptr[int64](50000), Period: ptr[uint64](100000)},
	})
	d := m.Paths()[UnifiedKey]
	want := func(file, v string) {
		t.Helper()
		if got := readBack(t, d, file); got != v {
			t.Errorf("%s = %q, want %q", file, got, v)
		}
	}
	want("pids.max", "100")
	want("memory.max", "268435456")
	want("cpu.max", "50000 100000")
	// The shell waits for a second line, then tries one fork.
	c := startInCgroup(t, m, shell(`read y; sleep 0 && echo forked; exit 0`))
	c.release(t)
	if err := m.Update(&specs.LinuxResources{
		Pids:   &specs.LinuxPids{Limit: ptr[int64](1)},
		Memory: &specs.LinuxMemory{Limit: ptr[int64](128 << 20), Swap: ptr[int64](256 << 20)},
		CPU:    &specs.LinuxCPU{Quota: ptr[int64](20000), Period: ptr[uint64](100000)},
	}); err != nil {
		t.Fatal(err)
	}
	want("pids.max", "1")
	want("memory.max", "134217728")
	want("memory.swap.max", "134217728") // memory+swap 256M over memory 128M
	want("cpu.max", "20000 100000")
	if err := m.Update(&specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: ptr[int64](-1), Swap: ptr[int64](-1)},
		CPU:    &specs.LinuxCPU{Quota: ptr[int64](-1)},
	}); err != nil {
		t.Fatal(err)
	}
	want("memory.max", "max")
	want("memory.swap.max", "max")
	want("cpu.max", "max 100000")
	c.release(t)
	waitExit(t, c, 10*time.Second)
	if out := c.out.String(); strings.Contains(out, "forked") {
		t.Errorf("fork allowed after pids.max lowered to 1: %q", out)
	}
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Pids.Limit != 1 || st.Memory.Limit != ^uint64(0) {
		t.Errorf("stats after update: pids %+v, memory limit %d", st.Pids, st.Memory.Limit)
	}
}

func TestCpuAndCpusetV2(t *testing.T) {
	hs := requireUnified(t, "cpu", "cpuset")
	_, m := newManager(t, hs, &specs.LinuxResources{CPU: &specs.LinuxCPU{
		Shares: ptr[uint64](512), Quota: ptr[int64](10000), Period: ptr[uint64](100000),
		Burst: ptr[uint64](1000), Cpus: "0", Mems: "0", Idle: ptr[int64](0),
	}})
	d := m.Paths()[UnifiedKey]
	for file, want := range map[string]string{
		"cpu.weight": fmt.Sprint(SharesToWeight(512)), "cpu.max": "10000 100000", "cpu.max.burst": "1000",
		"cpu.idle": "0", "cpuset.cpus": "0", "cpuset.mems": "0", "cpuset.cpus.effective": "0", "cpuset.mems.effective": "0",
	} {
		if v := readBack(t, d, file); v != want {
			t.Errorf("%s = %s, want %s", file, v, want)
		}
	}
	c := spinning(t, m)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(status), "Cpus_allowed_list:\t0\n") {
		t.Errorf("cpuset not effective on the process:\n%s", status)
	}
	// A running process follows an updated cpuset.
	if runtime.NumCPU() > 1 {
		if err := m.Update(&specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "1"}}); err != nil {
			t.Fatal(err)
		}
		if status, err = os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid)); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(status), "Cpus_allowed_list:\t1\n") {
			t.Errorf("updated cpuset not effective on the process:\n%s", status)
		}
	}
	// 10% of a CPU: a busy loop gets far less than the wall time.
	start, a := time.Now(), cpuUsage(t, m)
	time.Sleep(time.Second)
	used, wall := cpuUsage(t, m)-a, time.Since(start)
	if used > uint64(wall)/2 {
		t.Errorf("cpu.max 10%%: the busy loop used %s of %s", time.Duration(used), wall)
	}
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.CPU.ThrottledPeriods == 0 || st.CPU.Periods == 0 {
		t.Errorf("no throttling counted: %+v", st.CPU)
	}
}

func TestMemorySwapV2(t *testing.T) {
	hs := requireUnified(t, "memory")
	_, m := newManager(t, hs, &specs.LinuxResources{Memory: &specs.LinuxMemory{
		Limit: ptr[int64](64 << 20), Swap: ptr[int64](96 << 20), Reservation: ptr[int64](16 << 20),
	}})
	d := m.Paths()[UnifiedKey]
	// The spec's swap is memory plus swap; memory.swap.max is swap alone.
	for file, want := range map[string]string{"memory.max": "67108864", "memory.swap.max": "33554432", "memory.low": "16777216"} {
		if v := readBack(t, d, file); v != want {
			t.Errorf("%s = %s, want %s", file, v, want)
		}
	}
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Memory.SwapLimit != 32<<20 || st.Memory.Limit != 64<<20 {
		t.Errorf("stats %+v", st.Memory)
	}
	t.Run("enforced", func(t *testing.T) {
		swaps, err := os.ReadFile("/proc/swaps")
		if err != nil {
			t.Fatal(err)
		}
		if lines := strings.Split(strings.TrimSpace(string(swaps)), "\n"); len(lines) < 2 {
			t.Skip("skipped: no swap device (/proc/swaps lists none): memory.swap.max is written and read back, its enforcement cannot be observed")
		}
		// Memory plus swap is bounded: the allocating child dies at 96 MiB.
		c := startInCgroup(t, m, goChild("alloc"))
		c.release(t)
		err = waitExit(t, c, 120*time.Second)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("child not killed with swap bounded: %v; output: %s", err, c.out.String())
		}
	})
}

func TestDisableOOMKillerV2(t *testing.T) {
	hs := requireUnified(t, "memory")
	// cgroup2 has no switch for the OOM killer: the field is refused, at planning and on update,
	// rather than silently ignored.
	res := &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](32 << 20), DisableOOMKiller: ptr(true)}}
	_, err := Plan("/"+testutil.Name(t, "nooom"), res, V2, Options{Hierarchies: hs})
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "linux.resources.memory.disableOOMKiller" || !errors.Is(err, ErrNotSupported) {
		t.Fatalf("plan: got %v, want ErrNotSupported naming linux.resources.memory.disableOOMKiller", err)
	}
	_, m := newManager(t, hs, &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](64 << 20)}})
	err = m.Update(res)
	if !errors.As(err, &fe) || fe.Field != "linux.resources.memory.disableOOMKiller" || !errors.Is(err, ErrNotSupported) {
		t.Fatalf("update: got %v, want ErrNotSupported naming linux.resources.memory.disableOOMKiller", err)
	}
	if v := readBack(t, m.Paths()[UnifiedKey], "memory.max"); v != "67108864" {
		t.Errorf("memory.max = %s after a refused update", v)
	}
	// disableOOMKiller false is no request: accepted.
	if err := m.Update(&specs.LinuxResources{Memory: &specs.LinuxMemory{DisableOOMKiller: ptr(false)}}); err != nil {
		t.Fatal(err)
	}
}

func TestFreezeV2Nested(t *testing.T) {
	hs := unifiedOnly(t)
	pod, pm := newManager(t, hs, nil)
	_ = pod
	child, err := pod.PlanChild("ctr", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	cm, _ := New(child)
	if err := cm.Create(); err != nil {
		t.Fatal(err)
	}
	c := startInCgroup(t, cm, shell("while :; do :; done"))
	c.release(t)
	if err := pm.Freeze(); err != nil {
		t.Fatal(err)
	}
	// Freezing the parent freezes the child cgroup with it, and Freeze waited for that.
	if ev, err := readKV(cm.Paths()[UnifiedKey], "cgroup.events"); err != nil || ev["frozen"] != 1 {
		t.Errorf("child cgroup.events frozen = %d (%v) after freezing its parent", ev["frozen"], err)
	}
	assertStill(t, cm)
	if err := pm.Thaw(); err != nil {
		t.Fatal(err)
	}
	if ev, _ := readKV(cm.Paths()[UnifiedKey], "cgroup.events"); ev["frozen"] != 0 {
		t.Errorf("child still frozen after thaw")
	}
	// Kill and Destroy of the parent take the child along (newManager's cleanup checks).
}

// reserveHugepages makes sure n free 2 MB huge pages exist. Growing the pool is machine-wide
// (vm.nr_hugepages), so only the throwaway VM guest of the VM lane does it.
func reserveHugepages(t *testing.T, n int) {
	t.Helper()
	const pool = "/sys/kernel/mm/hugepages/hugepages-2048kB/"
	free, err := readUint(pool, "free_hugepages")
	if err != nil {
		t.Skipf("skipped: no 2 MB huge pages: %v", err)
	}
	if free >= uint64(n) {
		return
	}
	if os.Getenv("LIBJAIL_VM") != "1" {
		t.Skipf("skipped: needs %d free 2 MB huge pages, %s has %d; the pool is grown only in the VM lane (LIBJAIL_VM=1)", n, pool, free)
	}
	old, err := readFile(pool, "nr_hugepages")
	if err != nil {
		t.Fatal(err)
	}
	total, _ := readUint(pool, "nr_hugepages")
	if err := writeFile(pool, "nr_hugepages", fmt.Sprint(total+uint64(n))); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { writeFile(pool, "nr_hugepages", old) })
	if free, _ = readUint(pool, "free_hugepages"); free < uint64(n) {
		t.Skipf("skipped: the kernel found only %d free 2 MB huge pages", free)
	}
}

func TestHugetlbLimitEnforcedV2(t *testing.T) {
	hs := requireUnified(t, "hugetlb")
	reserveHugepages(t, 2)
	_, m := newManager(t, hs, &specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 2 << 20}}})
	// The first page fits the limit and shows in the stats.
	a := startInCgroup(t, m, goChild("hugetlb"))
	a.release(t)
	var st *Stats
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var err error
		st, err = m.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if st.Hugetlb["2MB"].Usage != 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no huge page charged: %+v", st.Hugetlb)
		}
	}
	if h := st.Hugetlb["2MB"]; h.Usage != 2<<20 || h.Max != 2<<20 || h.Failcnt != 0 {
		t.Errorf("hugetlb stats with one page held: %+v", h)
	}
	// A second page is over the limit: the fault is a SIGBUS (which the Go runtime reports).
	b := startInCgroup(t, m, goChild("hugetlb"))
	b.release(t)
	if err := waitExit(t, b, 20*time.Second); err == nil || !strings.Contains(b.out.String(), "SIGBUS") {
		out, _, _ := strings.Cut(b.out.String(), "\n\n")
		t.Fatalf("second page: %v; output: %q", err, out)
	}
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if h := st.Hugetlb["2MB"]; h.Usage != 2<<20 || h.Failcnt == 0 {
		t.Errorf("hugetlb stats after a refused page: %+v", h)
	}
}
