package cgroups

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/libjail/libjail/internal/testutil"
)

// These run on whichever hierarchy holds each controller: the v1 ones on this hybrid machine, the
// unified one in the pure cgroup-v2 VM lane (make test-vm).

// requireController skips unless controller c can be used by a cgroup made at the top of the
// hierarchies: a mounted v1 hierarchy has it, or the unified root delegates it (its
// cgroup.subtree_control, which the package never writes, lists it).
// v2name, when given, is the controller's cgroup2 name (io for blkio).
func requireController(t *testing.T, c string, v2name ...string) {
	t.Helper()
	testutil.RequireRoot(t)
	hs, err := DetectHierarchies()
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hs {
		if !h.Unified && h.has(c) {
			return
		}
	}
	if len(v2name) > 0 {
		c = v2name[0]
	}
	for _, h := range hs {
		if h.Unified {
			requireV2Controller(t, []Hierarchy{h}, c)
			return
		}
	}
	t.Skipf("skipped: no mounted hierarchy has the %s controller", c)
}

// onV2 reports whether the manager uses the cgroup2 files for controller c.
func onV2(m Manager, c string) bool {
	p := m.Paths()
	return p[c] != "" && p[c] == p[UnifiedKey]
}

func TestMemoryLimitOOMKillsWithEvent(t *testing.T) {
	requireController(t, "memory")
	const limit = 64 << 20
	_, m := newManager(t, nil, &specs.LinuxResources{Memory: &specs.LinuxMemory{
		Limit: ptr[int64](limit),
		Swap:  ptr[int64](limit), // memory+swap = memory: no swapping out of the OOM
	}})
	if onV2(m, "memory") {
		d := m.Paths()["memory"]
		if v := readBack(t, d, "memory.max"); v != fmt.Sprint(limit) {
			t.Errorf("memory.max = %s", v)
		}
		if v := readBack(t, d, "memory.swap.max"); v != "0" {
			t.Errorf("memory.swap.max = %s, want 0 (swap = limit)", v)
		}
	}
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
	err = waitExit(t, c, 60*time.Second)
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
	// v1 has no OOM counter (OOMEvents is memory.failcnt there, and the memsw limit hit first).
	if st.Memory.OOMKills == 0 || onV2(m, "memory") && st.Memory.OOMEvents == 0 || st.Memory.Limit != limit {
		t.Errorf("stats after OOM: %+v", st.Memory)
	}
}

func TestOOMEventsChannelClosesOnStop(t *testing.T) {
	requireController(t, "memory")
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

func TestOOMEventsChannelClosesOnDestroy(t *testing.T) {
	requireController(t, "memory")
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

func TestPidsLimitStopsForks(t *testing.T) {
	requireController(t, "pids")
	_, m := newManager(t, nil, &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](4)}})
	// The shell is 1 task; of ten background sleeps at most 3 can start.
	c := startChild(t, shell(`for i in 1 2 3 4 5 6 7 8 9 10; do sleep 5 >/dev/null 2>&1 & done; echo started; exit 0`))
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
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Pids.Limit != 4 || st.Pids.Current == 0 || st.Pids.Current > 4 {
		t.Errorf("pids stats %+v, want 1 to 4 of 4 (the sleeps live on)", st.Pids)
	}
}

func TestStatsMove(t *testing.T) {
	requireController(t, "memory")
	requireController(t, "pids")
	_, m := newManager(t, nil, &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](50)}})
	if !onV2(m, "memory") {
		testutil.RequireCgroupV1(t, "cpuacct")
	}
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
	// Until the allocation's pipeline is done (slow under the VM lane's emulation) and the loop spun.
	var after *Stats
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var err error
		if after, err = m.Stats(); err != nil {
			t.Fatal(err)
		}
		if after.Pids.Current == 1 && after.CPU.UsageNS > before.CPU.UsageNS+uint64(50*time.Millisecond) || time.Now().After(deadline) {
			break
		}
	}
	if after.CPU.UsageNS <= before.CPU.UsageNS || after.CPU.UserNS+after.CPU.SystemNS == 0 {
		t.Errorf("cpu usage did not move: %+v -> %+v", before.CPU, after.CPU)
	}
	if after.Memory.Usage == 0 || len(after.Memory.Stat) == 0 {
		t.Errorf("memory usage 0 with a process inside: %+v", after.Memory)
	}
	if onV2(m, "memory") && after.Memory.Stat["anon"] == 0 {
		t.Errorf("memory.stat anon = 0: %v", after.Memory.Stat)
	}
	if after.Pids.Current != 1 || after.Pids.Limit != 50 {
		t.Errorf("pids %+v, want 1 of 50", after.Pids)
	}
}

func TestUpdateCheckBeforeUpdate(t *testing.T) {
	requireController(t, "memory")
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
	// The limit was left alone, and one above the usage goes through.
	file := "memory.limit_in_bytes"
	if onV2(m, "memory") {
		file = "memory.max"
	}
	if v := readBack(t, m.Paths()["memory"], file); v != fmt.Sprint(256<<20) {
		t.Errorf("%s = %s after a refused update", file, v)
	}
	if err := m.Update(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](128 << 20), CheckBeforeUpdate: ptr(true)}}); err != nil {
		t.Fatal(err)
	}
	if v := readBack(t, m.Paths()["memory"], file); v != fmt.Sprint(128<<20) {
		t.Errorf("%s = %s", file, v)
	}
}

func TestCreateFailureLeavesNothing(t *testing.T) {
	requireController(t, "cpuset")
	hs, err := DetectHierarchies()
	if err != nil {
		t.Fatal(err)
	}
	// Planned fine, refused by the kernel: a cpuset no CPU has.
	plan, err := Plan("/"+testutil.Name(t, "fail")+"/ctr", &specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "4000"}}, LayoutOf(hs), Options{Hierarchies: hs})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := New(plan)
	t.Cleanup(func() { m.Destroy() })
	err = m.Create()
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "linux.resources.cpu.cpus" || !(errors.Is(err, syscall.ERANGE) || errors.Is(err, syscall.EINVAL)) {
		t.Fatalf("got %v, want ERANGE or EINVAL naming linux.resources.cpu.cpus", err)
	}
	assertGone(t, plan)
	for k, d := range plan.Dirs {
		if _, err := os.Stat(filepath.Dir(d)); err == nil {
			t.Errorf("intermediate cgroup left in %s: %s", k, filepath.Dir(d))
		}
	}
}

func TestDestroyRemovesCreatedParents(t *testing.T) {
	testutil.RequireRoot(t)
	hs, err := DetectHierarchies()
	if err != nil {
		t.Fatal(err)
	}
	top := "/" + testutil.Name(t, "tree")
	plan, err := Plan(top+"/a/b", nil, LayoutOf(hs), Options{Hierarchies: hs})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := New(plan)
	t.Cleanup(func() { m.Kill(); m.Destroy() })
	if err := m.Create(); err != nil {
		t.Fatal(err)
	}
	c := startChild(t, shell("sleep 100"))
	if err := m.Place(c.cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if err := m.Kill(); err != nil {
		t.Fatal(err)
	}
	// No wait for the child: Destroy retries while the kernel still counts it.
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	for _, h := range hs {
		if d := dirIn(h, top); exists(d) {
			t.Errorf("%s: %s left after destroy", h.Key(), d)
		}
	}
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

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

func TestIOThrottleAndStats(t *testing.T) {
	requireController(t, "blkio", "io")
	dir := t.TempDir()
	major, minor := diskOf(t, dir)
	const rate = 4 << 20
	_, m := newManager(t, nil, &specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{
		Weight:                 ptr[uint16](500),
		ThrottleWriteBpsDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: major, Minor: minor}, Rate: rate}},
	}})
	v2 := onV2(m, "io")
	dev := fmt.Sprintf("%d:%d", major, minor)
	if v2 {
		d := m.Paths()["io"]
		if v := readBack(t, d, "io.max"); !strings.Contains(v, dev+" ") || !strings.Contains(v, fmt.Sprintf("wbps=%d", rate)) {
			t.Errorf("io.max = %q", v)
		}
		// BFQ takes the v1 weight as is; without it io.weight takes the converted one.
		if exists(filepath.Join(d, "io.bfq.weight")) {
			if v := readBack(t, d, "io.bfq.weight"); !strings.Contains(v, "default 500") {
				t.Errorf("io.bfq.weight = %q", v)
			}
		} else if v := readBack(t, d, "io.weight"); !strings.Contains(v, fmt.Sprintf("default %d", BlkioToIOWeight(500))) {
			t.Errorf("io.weight = %q", v)
		}
	} else {
		d := m.Paths()["blkio"]
		if v := readBack(t, d, "blkio.throttle.write_bps_device"); v != fmt.Sprintf("%s %d", dev, rate) {
			t.Errorf("write_bps_device = %q", v)
		}
		// blkio.weight exists only with CFQ; without it the plan's alternative, the BFQ file, is used.
		if !exists(filepath.Join(d, "blkio.weight")) {
			if v := readBack(t, d, "blkio.bfq.weight"); v != "500" {
				t.Errorf("blkio.bfq.weight = %q", v)
			}
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

// TestControllerNotDelegated: a controller an existing parent (one the package did not make) does
// not delegate is an error naming the field and that parent's subtree_control, and Create writes
// no subtree_control but those of the cgroups it made.
func TestControllerNotDelegated(t *testing.T) {
	hs := unifiedOnly(t)
	mount := hs[0].Mount
	rootOn, err := readFile(mount, "cgroup.subtree_control")
	if err != nil {
		t.Fatal(err)
	}
	// A controller the package can ask for from a spec field.
	var res *specs.LinuxResources
	var ctrl, field string
	switch {
	case hs[0].has("pids"):
		ctrl, field = "pids", "linux.resources.pids.limit"
		res = &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](10)}}
	case hs[0].has("hugetlb") && slices.Contains(pagesizes(), "2MB"):
		ctrl, field = "hugetlb", "linux.resources.hugepageLimits[0]"
		res = &specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 2 << 20}}}
	default:
		t.Skip("skipped: the unified hierarchy has neither pids nor hugetlb with 2MB pages")
	}
	// The parent is the test's, not the package's: it delegates nothing.
	parent := "/" + testutil.Name(t, "parent")
	pdir := filepath.Join(mount, parent)
	if err := os.Mkdir(pdir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(pdir) })
	want := filepath.Join(pdir, "cgroup.subtree_control")
	if !slices.Contains(strings.Fields(rootOn), ctrl) {
		want = filepath.Join(mount, "cgroup.subtree_control")
	}
	for _, path := range []string{"ctr", "made/ctr"} {
		plan, err := Plan(path, res, V2, Options{Parent: parent, Hierarchies: hs})
		if err != nil {
			t.Fatal(err)
		}
		m, _ := New(plan)
		err = m.Create()
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != field || !errors.Is(err, ErrNotSupported) ||
			!strings.Contains(err.Error(), "controller "+ctrl+" is not enabled in "+want) {
			t.Errorf("%s: got %v, want %s: controller %s is not enabled in %s", path, err, field, ctrl, want)
		}
		assertGone(t, plan)
		if path == "made/ctr" && exists(filepath.Join(pdir, "made")) {
			t.Errorf("intermediate cgroup left: %s/made", pdir)
		}
		if v, _ := readFile(pdir, "cgroup.subtree_control"); v != "" {
			t.Errorf("the test's parent was written: subtree_control %q", v)
		}
		if v, _ := readFile(mount, "cgroup.subtree_control"); v != rootOn {
			t.Errorf("the root's subtree_control changed: %q -> %q", rootOn, v)
		}
	}
	// Without resources the cgroup needs no controller: created fine under the same parent.
	plan, err := Plan("made/ctr", nil, V2, Options{Parent: parent, Hierarchies: hs})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := New(plan)
	if err := m.Create(); err != nil {
		t.Fatal(err)
	}
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	assertGone(t, plan)
	if exists(filepath.Join(pdir, "made")) {
		t.Errorf("intermediate cgroup left: %s/made", pdir)
	}
}

// TestConcurrentCreatesShareAParent: cgroups made and destroyed at once under a parent that the
// first of them makes (like /libjail for an agent's containers) all get their controllers.
func TestConcurrentCreatesShareAParent(t *testing.T) {
	requireController(t, "pids")
	hs, err := DetectHierarchies()
	if err != nil {
		t.Fatal(err)
	}
	top := "/" + testutil.Name(t, "shared")
	// The shared parents stay when their maker is destroyed before the others (documented): the
	// test removes them.
	t.Cleanup(func() {
		for _, h := range hs {
			if err := removeTree(dirIn(h, top)); err != nil {
				t.Error(err)
			}
		}
	})
	for round := 0; round < 3; round++ {
		errs := make(chan error, 8)
		for i := 0; i < 8; i++ {
			go func() {
				plan, err := Plan(fmt.Sprintf("ctr%d", i), &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](10)}},
					LayoutOf(hs), Options{Parent: top + "/parent", Hierarchies: hs})
				if err != nil {
					errs <- err
					return
				}
				m, _ := New(plan)
				if err := m.Create(); err != nil {
					errs <- err
					return
				}
				errs <- m.Destroy()
			}()
		}
		for i := 0; i < 8; i++ {
			if err := <-errs; err != nil {
				t.Errorf("round %d: %v", round, err)
			}
		}
	}
}
