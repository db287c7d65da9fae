package cgroups

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/libjail/libjail/internal/testutil"
)

// These run on this machine's v1 controllers (Hybrid or V1 layouts).

// cpuUsage reads the cgroup's cpu time through Stats.
func cpuUsage(t *testing.T, m Manager) uint64 {
	t.Helper()
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	return st.CPU.UsageNS
}

func spinning(t *testing.T, m Manager) *child {
	t.Helper()
	c := startChild(t, shell("while :; do :; done"))
	if err := m.Place(c.cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	c.release(t)
	return c
}

// assertStill checks a frozen cgroup's busy loop gets no cpu. The last slice before the freeze is
// accounted a little late (tens of ms under the VM lane's emulation): settle first, and allow a
// small fraction of the window where a running loop would use all of it.
func assertStill(t *testing.T, m Manager) {
	t.Helper()
	time.Sleep(100 * time.Millisecond)
	a := cpuUsage(t, m)
	const window = 300 * time.Millisecond
	time.Sleep(window)
	if b := cpuUsage(t, m); b-a > uint64(window/10) {
		t.Errorf("cpu usage moved while frozen: %d -> %d", a, b)
	}
}

func testFreeze(t *testing.T, m Manager) {
	spinning(t, m)
	time.Sleep(100 * time.Millisecond)
	if cpuUsage(t, m) == 0 {
		t.Fatal("busy loop uses no cpu")
	}
	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	// Freeze returns only once the kernel reports the whole cgroup frozen.
	if d := m.Paths()["freezer"]; d != "" {
		if v := readBack(t, d, "freezer.state"); v != "FROZEN" {
			t.Errorf("freezer.state = %s right after Freeze", v)
		}
	} else if ev, err := readKV(m.Paths()[UnifiedKey], "cgroup.events"); err != nil || ev["frozen"] != 1 {
		t.Errorf("cgroup.events frozen = %d (%v) right after Freeze", ev["frozen"], err)
	}
	assertStill(t, m)
	if err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
	a := cpuUsage(t, m)
	time.Sleep(300 * time.Millisecond)
	if b := cpuUsage(t, m); b <= a {
		t.Errorf("cpu usage did not move after thaw: %d -> %d", a, b)
	}
}

func TestFreezeStopsBusyLoopV1(t *testing.T) {
	testutil.RequireCgroupV1(t, "freezer")
	testutil.RequireCgroupV1(t, "cpuacct")
	_, m := newManager(t, nil, nil)
	testFreeze(t, m)
}

func TestUpdateRunningLimits(t *testing.T) {
	testutil.RequireCgroupV1(t, "pids")
	testutil.RequireCgroupV1(t, "memory")
	_, m := newManager(t, nil, &specs.LinuxResources{
		Pids:   &specs.LinuxPids{Limit: ptr[int64](100)},
		Memory: &specs.LinuxMemory{Limit: ptr[int64](256 << 20)},
	})
	// The shell waits for a second line, then tries one fork.
	c := startChild(t, shell(`read y; sleep 0 && echo forked; exit 0`))
	if err := m.Place(c.cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	c.release(t)
	if err := m.Update(&specs.LinuxResources{
		Pids:   &specs.LinuxPids{Limit: ptr[int64](1)},
		Memory: &specs.LinuxMemory{Limit: ptr[int64](128 << 20), Swap: ptr[int64](256 << 20)},
	}); err != nil {
		t.Fatal(err)
	}
	p := m.Paths()
	if v := readBack(t, p["pids"], "pids.max"); v != "1" {
		t.Errorf("pids.max = %s", v)
	}
	if v := readBack(t, p["memory"], "memory.limit_in_bytes"); v != "134217728" {
		t.Errorf("memory.limit_in_bytes = %s", v)
	}
	// Raising both limits past the old memsw needs memsw first; Update orders it.
	if err := m.Update(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](512 << 20), Swap: ptr[int64](1 << 30)}}); err != nil {
		t.Fatal(err)
	}
	if v := readBack(t, p["memory"], "memory.memsw.limit_in_bytes"); v != "1073741824" {
		t.Errorf("memory.memsw.limit_in_bytes = %s", v)
	}
	c.release(t)
	waitExit(t, c, 10*time.Second)
	if out := c.out.String(); strings.Contains(out, "forked") {
		t.Errorf("fork allowed after pids.max lowered to 1: %q", out)
	}
}

func TestCpuAndCpusetV1(t *testing.T) {
	testutil.RequireCgroupV1(t, "cpu")
	testutil.RequireCgroupV1(t, "cpuset")
	_, m := newManager(t, nil, &specs.LinuxResources{CPU: &specs.LinuxCPU{
		Shares: ptr[uint64](512), Quota: ptr[int64](50000), Period: ptr[uint64](100000),
		Burst: ptr[uint64](1000), Cpus: "0", Mems: "0", Idle: ptr[int64](0),
	}})
	p := m.Paths()
	for file, want := range map[string]string{"cpu.shares": "512", "cpu.cfs_quota_us": "50000", "cpu.cfs_period_us": "100000", "cpu.cfs_burst_us": "1000"} {
		if v := readBack(t, p["cpu"], file); v != want {
			t.Errorf("%s = %s, want %s", file, v, want)
		}
	}
	if v := readBack(t, p["cpuset"], "cpuset.cpus"); v != "0" {
		t.Errorf("cpuset.cpus = %s", v)
	}
	// A process can join: cpuset.mems was filled.
	c := spinning(t, m)
	_ = c
}

func TestDisableOOMKillerV1(t *testing.T) {
	testutil.RequireCgroupV1(t, "memory")
	const limit = 32 << 20
	_, m := newManager(t, nil, &specs.LinuxResources{Memory: &specs.LinuxMemory{
		Limit: ptr[int64](limit), Swap: ptr[int64](limit), DisableOOMKiller: ptr(true),
	}})
	events, stop, err := m.OOMEvents()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	c := startChild(t, goChild("alloc"))
	if err := m.Place(c.cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	c.release(t)
	select {
	case <-events:
	case <-time.After(10 * time.Second):
		t.Fatal("no OOM event")
	}
	// The child now waits in the OOM path instead of dying.
	oc := readBack(t, m.Paths()["memory"], "memory.oom_control")
	if !strings.Contains(oc, "under_oom 1") || !strings.Contains(oc, "oom_kill 0") {
		t.Errorf("oom_control:\n%s", oc)
	}
	if err := m.Kill(); err != nil {
		t.Fatal(err)
	}
	waitExit(t, c, 10*time.Second)
}

func TestCgroupNamespaceAfterPlace(t *testing.T) {
	// The order the root package needs: place first (every hierarchy), then unshare the cgroup
	// namespace; the container then sees its own cgroup as / everywhere.
	_, m := newManager(t, nil, nil)
	c := startChild(t, goChild("cgroupns"))
	if err := m.Place(c.cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	c.release(t)
	if err := waitExit(t, c, 10*time.Second); err != nil {
		t.Fatalf("%v: %s", err, c.out.String())
	}
	for _, l := range strings.Split(strings.TrimSpace(c.out.String()), "\n") {
		if !strings.HasSuffix(l, ":/") {
			t.Errorf("in its cgroup namespace the child sees %s", l)
		}
	}
}

func TestDevicesDir(t *testing.T) {
	hybrid := hybridHierarchies(t)
	p, _ := Plan("/c", nil, Hybrid, Options{Hierarchies: hybrid})
	m, _ := New(p)
	if d, v2 := m.DevicesDir(); d != "/sys/fs/cgroup/devices/c" || v2 {
		t.Errorf("hybrid devices dir %s v2=%v", d, v2)
	}
	p, _ = Plan("/c", nil, V2, Options{})
	m, _ = New(p)
	if d, v2 := m.DevicesDir(); d != "/sys/fs/cgroup/c" || !v2 {
		t.Errorf("v2 devices dir %s v2=%v", d, v2)
	}
	paths := m.Paths()
	if paths["memory"] != "/sys/fs/cgroup/c" || paths[UnifiedKey] != "/sys/fs/cgroup/c" {
		t.Errorf("v2 paths %v", paths)
	}
}

func TestApplyErrorNamesFieldAndKeepsErrno(t *testing.T) {
	testutil.RequireCgroupV1(t, "blkio")
	hs, err := DetectHierarchies()
	if err != nil {
		t.Fatal(err)
	}
	// Planned fine on v1, but this kernel has no CFQ, hence no leaf weights.
	plan, err := Plan("/"+testutil.Name(t, "leaf"), &specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{LeafWeight: ptr[uint16](100)}},
		LayoutOf(hs), Options{Hierarchies: hs})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := New(plan)
	t.Cleanup(func() { m.Destroy() })
	err = m.Create()
	if _, statErr := os.Stat(filepath.Join(plan.Dirs["blkio"], "blkio.leaf_weight")); statErr == nil {
		if err != nil {
			t.Fatal(err)
		}
		t.Skip("skipped: this kernel has blkio.leaf_weight")
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "linux.resources.blockIO.leafWeight" || !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("got %v, want ENOENT naming linux.resources.blockIO.leafWeight", err)
	}
	assertGone(t, plan)
}
