package cgroups

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"golang.org/x/sys/unix"

	"github.com/libjail/libjail/internal/testutil"
)

// These run on this machine's v1 controllers (Hybrid or V1 layouts).

func TestMemoryLimitOOMKillsWithEvent(t *testing.T) {
	testutil.RequireCgroupV1(t, "memory")
	const limit = 64 << 20
	_, m := newManager(t, nil, &specs.LinuxResources{Memory: &specs.LinuxMemory{
		Limit: ptr[int64](limit),
		Swap:  ptr[int64](limit), // memory+swap = memory: no swapping out of the OOM
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
	err = waitExit(t, c, 30*time.Second)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child not OOM-killed: %v; output: %s", err, c.out.String())
	}
	select {
	case ev, ok := <-events:
		if !ok || ev.Count == 0 {
			t.Fatalf("bad event %+v (open %v)", ev, ok)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no OOM event delivered")
	}
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Memory.OOMKills == 0 || st.Memory.Limit != limit {
		t.Errorf("stats after OOM: %+v", st.Memory)
	}
}

func TestOOMEventsChannelClosesOnStop(t *testing.T) {
	testutil.RequireCgroupV1(t, "memory")
	_, m := newManager(t, nil, nil)
	events, stop, err := m.OOMEvents()
	if err != nil {
		t.Fatal(err)
	}
	stop()
	stop() // idempotent
	select {
	case _, ok := <-events:
		if ok {
			t.Fatal("event without OOM")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("channel not closed after stop")
	}
}

func TestPidsLimitStopsForks(t *testing.T) {
	dir := testutil.RequireCgroupV1(t, "pids")
	_ = dir
	_, m := newManager(t, nil, &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](4)}})
	// The shell is 1 task; of ten background sleeps at most 3 can start.
	c := startChild(t, shell(`n=0; for i in 1 2 3 4 5 6 7 8 9 10; do sleep 5 >/dev/null 2>&1 & done; echo started; exit 0`))
	if err := m.Place(c.cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	c.release(t)
	waitExit(t, c, 20*time.Second)
	out := c.out.String()
	if !strings.Contains(out, "fork") {
		t.Errorf("no fork failure reported: %q", out)
	}
	d := m.Paths()["pids"]
	if ev := readBack(t, d, "pids.events"); ev == "max 0" {
		t.Errorf("pids.events shows no refused fork: %q", ev)
	}
}

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

func testFreeze(t *testing.T, m Manager) {
	spinning(t, m)
	time.Sleep(100 * time.Millisecond)
	if cpuUsage(t, m) == 0 {
		t.Fatal("busy loop uses no cpu")
	}
	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	a := cpuUsage(t, m)
	time.Sleep(300 * time.Millisecond)
	if b := cpuUsage(t, m); b != a {
		t.Errorf("cpu usage moved while frozen: %d -> %d", a, b)
	}
	if err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
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

func TestStatsMove(t *testing.T) {
	testutil.RequireCgroupV1(t, "cpuacct")
	testutil.RequireCgroupV1(t, "memory")
	_, m := newManager(t, nil, &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](50)}})
	before, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	// Memory is charged where it is allocated: allocate after being placed, then spin.
	c := startChild(t, shell(`x=$(`+busybox+` head -c 1000000 /dev/zero | `+busybox+` tr '\0' a); while :; do :; done`))
	if err := m.Place(c.cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	c.release(t)
	time.Sleep(300 * time.Millisecond)
	after, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if after.CPU.UsageNS <= before.CPU.UsageNS {
		t.Errorf("cpu usage did not move: %d -> %d", before.CPU.UsageNS, after.CPU.UsageNS)
	}
	if after.Memory.Usage == 0 {
		t.Errorf("memory usage 0 with a process inside")
	}
	if after.Pids.Current != 1 || after.Pids.Limit != 50 {
		t.Errorf("pids %+v, want 1 of 50", after.Pids)
	}
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

func TestUpdateCheckBeforeUpdate(t *testing.T) {
	testutil.RequireCgroupV1(t, "memory")
	_, m := newManager(t, nil, &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](256 << 20)}})
	// Memory is charged where it is allocated: the shell allocates 2 MB after being placed.
	c := startChild(t, shell(`x=$(`+busybox+` head -c 2000000 /dev/zero | `+busybox+` tr '\0' a); echo ready; while :; do sleep 1; done`))
	if err := m.Place(c.cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	c.release(t)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		st, err := m.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if st.Memory.Usage > 1<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("usage stays at %d", st.Memory.Usage)
		}
	}
	err := m.Update(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](4096), CheckBeforeUpdate: ptr(true)}})
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "linux.resources.memory.limit" || !errors.Is(err, ErrInvalid) {
		t.Fatalf("got %v, want a limit-below-usage error", err)
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

func TestCreateFailureLeavesNothing(t *testing.T) {
	testutil.RequireRoot(t)
	hs, err := DetectHierarchies()
	if err != nil {
		t.Fatal(err)
	}
	if LayoutOf(hs) == V2 {
		t.Skip("skipped: needs v1 memory")
	}
	testutil.RequireCgroupV1(t, "memory")
	// Planned fine, refused by the kernel: a cpuset no CPU has.
	plan, err := Plan("/"+testutil.Name(t, "fail")+"/ctr", &specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "4000"}}, LayoutOf(hs), Options{Hierarchies: hs})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := New(plan)
	t.Cleanup(func() { m.Destroy() })
	err = m.Create()
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "linux.resources.cpu.cpus" || !errors.Is(err, syscall.ERANGE) {
		t.Fatalf("got %v, want ERANGE naming linux.resources.cpu.cpus", err)
	}
	assertGone(t, plan)
	for k, d := range plan.Dirs {
		parent := d[:strings.LastIndex(d, "/")]
		if _, err := osStat(parent); err == nil {
			t.Errorf("intermediate cgroup left in %s: %s", k, parent)
		}
	}
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

// diskOf returns the whole-disk major:minor holding dir (throttles apply to disks, not partitions).
func diskOf(t *testing.T, dir string) (int64, int64) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	major, minor := int64(unix.Major(st.Dev)), int64(unix.Minor(st.Dev))
	sys := fmt.Sprintf("/sys/dev/block/%d:%d", major, minor)
	if _, err := os.Stat(sys); err != nil {
		t.Skipf("skipped: %s is not on a block device", dir)
	}
	if _, err := os.Stat(sys + "/partition"); err == nil {
		b, err := os.ReadFile(sys + "/../dev")
		if err != nil {
			t.Fatal(err)
		}
		fmt.Sscanf(string(b), "%d:%d", &major, &minor)
	}
	return major, minor
}

func TestBlkioThrottleAndStatsV1(t *testing.T) {
	testutil.RequireCgroupV1(t, "blkio")
	dir := t.TempDir()
	major, minor := diskOf(t, dir)
	const rate = 4 << 20
	_, m := newManager(t, nil, &specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{
		Weight:                 ptr[uint16](500),
		ThrottleWriteBpsDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: major, Minor: minor}, Rate: rate}},
	}})
	d := m.Paths()["blkio"]
	if v := readBack(t, d, "blkio.throttle.write_bps_device"); v != fmt.Sprintf("%d:%d %d", major, minor, rate) {
		t.Errorf("write_bps_device = %q", v)
	}
	// blkio.weight exists only with CFQ; without it the plan's alternative, the BFQ file, is used.
	if _, err := os.Stat(filepath.Join(d, "blkio.weight")); err != nil {
		if v := readBack(t, d, "blkio.bfq.weight"); v != "500" {
			t.Errorf("blkio.bfq.weight = %q", v)
		}
	}
	c := startChild(t, shell("exec "+busybox+" dd if=/dev/zero of="+dir+"/f bs=64k count=64 oflag=direct"))
	if err := m.Place(c.cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c.release(t)
	if err := waitExit(t, c, 30*time.Second); err != nil {
		t.Fatalf("dd: %v: %s", err, c.out.String())
	}
	if el := time.Since(start); el < 300*time.Millisecond {
		t.Errorf("4 MiB at %d B/s took only %s: throttle not applied", rate, el)
	}
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	var written uint64
	for _, io := range st.IO {
		if int64(io.Major) == major && int64(io.Minor) == minor {
			written = io.WriteBytes
		}
	}
	if written < 4<<20 {
		t.Errorf("io stats show %d bytes written, want >= 4 MiB: %+v", written, st.IO)
	}
}

func TestOOMEventsChannelClosesOnDestroy(t *testing.T) {
	testutil.RequireCgroupV1(t, "memory")
	plan, m := newManager(t, nil, nil)
	events, stop, err := m.OOMEvents()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	assertGone(t, plan)
	select {
	case ev, ok := <-events:
		if ok {
			t.Fatalf("event %+v without OOM", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("channel not closed after the cgroup was removed")
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
