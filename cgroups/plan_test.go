package cgroups

import (
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func hybridHierarchies(t *testing.T) []Hierarchy {
	t.Helper()
	hs := parseSample(t, "mountinfo-hybrid.txt")
	for i := range hs {
		if hs[i].Unified {
			hs[i].Controllers = []string{"hugetlb"}
		}
	}
	return hs
}

func writes(p *CgroupPlan) []string {
	var out []string
	for _, w := range p.Writes {
		out = append(out, w.String())
	}
	return out
}

func dev(major, minor int64) specs.LinuxBlockIODevice {
	return specs.LinuxBlockIODevice{Major: major, Minor: minor}
}

func TestPlanConversions(t *testing.T) {
	v1, v2 := DefaultHierarchies(V1), DefaultHierarchies(V2)
	hybrid := hybridHierarchies(t)
	for _, tc := range []struct {
		name string
		hs   []Hierarchy
		res  specs.LinuxResources
		want []string
	}{
		{"cpu v1", v1, specs.LinuxResources{CPU: &specs.LinuxCPU{
			Shares: ptr[uint64](1024), Quota: ptr[int64](50000), Period: ptr[uint64](100000), Burst: ptr[uint64](10000),
			RealtimeRuntime: ptr[int64](950000), RealtimePeriod: ptr[uint64](1000000), Cpus: "0-1", Mems: "0", Idle: ptr[int64](1),
		}}, []string{
			"cpuset/cpuset.cpus = 0-1", "cpuset/cpuset.mems = 0",
			"cpu/cpu.shares = 1024", "cpu/cpu.cfs_period_us = 100000", "cpu/cpu.cfs_quota_us = 50000",
			"cpu/cpu.cfs_burst_us = 10000", "cpu/cpu.rt_period_us = 1000000", "cpu/cpu.rt_runtime_us = 950000", "cpu/cpu.idle = 1",
		}},
		{"cpu v2", v2, specs.LinuxResources{CPU: &specs.LinuxCPU{
			Shares: ptr[uint64](1024), Quota: ptr[int64](50000), Period: ptr[uint64](100000), Burst: ptr[uint64](10000),
			Cpus: "0-1", Mems: "0", Idle: ptr[int64](0),
		}}, []string{
			"unified/cpuset.cpus = 0-1", "unified/cpuset.mems = 0",
			"unified/cpu.weight = 39", "unified/cpu.max = 50000 100000", "unified/cpu.max.burst = 10000", "unified/cpu.idle = 0",
		}},
		{"cpu v2 unlimited quota", v2, specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: ptr[int64](-1)}},
			[]string{"unified/cpu.max = max"}},
		{"cpu v2 period only", v2, specs.LinuxResources{CPU: &specs.LinuxCPU{Period: ptr[uint64](20000)}},
			[]string{"unified/cpu.max = max 20000"}},
		{"cpu v2 shares bounds", v2, specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: ptr[uint64](2)}},
			[]string{"unified/cpu.weight = 1"}},
		{"cpu v2 shares max", v2, specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: ptr[uint64](262144)}},
			[]string{"unified/cpu.weight = 10000"}},
		{"memory v1", v1, specs.LinuxResources{Memory: &specs.LinuxMemory{
			Limit: ptr[int64](1 << 30), Swap: ptr[int64](2 << 30), Reservation: ptr[int64](512 << 20),
			Kernel: ptr[int64](-1), KernelTCP: ptr[int64](-1), Swappiness: ptr[uint64](10),
			DisableOOMKiller: ptr(true), UseHierarchy: ptr(true),
		}}, []string{
			"memory/memory.limit_in_bytes = 1073741824", "memory/memory.memsw.limit_in_bytes = 2147483648",
			"memory/memory.soft_limit_in_bytes = 536870912", "memory/memory.kmem.limit_in_bytes = -1",
			"memory/memory.kmem.tcp.limit_in_bytes = -1", "memory/memory.swappiness = 10",
			"memory/memory.oom_control = 1", "memory/memory.use_hierarchy = 1",
		}},
		{"memory v1 unlimited", v1, specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](-1), Swap: ptr[int64](-1)}},
			[]string{"memory/memory.limit_in_bytes = -1", "memory/memory.memsw.limit_in_bytes = -1"}},
		{"memory v2 swap is memory plus swap", v2, specs.LinuxResources{Memory: &specs.LinuxMemory{
			Limit: ptr[int64](1 << 30), Swap: ptr[int64](3 << 30), Reservation: ptr[int64](512 << 20),
		}}, []string{"unified/memory.max = 1073741824", "unified/memory.swap.max = 2147483648", "unified/memory.low = 536870912"}},
		{"memory v2 swap equal to limit disables swap", v2, specs.LinuxResources{Memory: &specs.LinuxMemory{
			Limit: ptr[int64](1 << 30), Swap: ptr[int64](1 << 30),
		}}, []string{"unified/memory.max = 1073741824", "unified/memory.swap.max = 0"}},
		{"memory v2 unlimited", v2, specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](-1), Swap: ptr[int64](-1)}},
			[]string{"unified/memory.max = max", "unified/memory.swap.max = max"}},
		{"memory v2 tolerates v1 defaults", v2, specs.LinuxResources{Memory: &specs.LinuxMemory{
			Limit: ptr[int64](1 << 20), DisableOOMKiller: ptr(false), UseHierarchy: ptr(true),
		}}, []string{"unified/memory.max = 1048576"}},
		{"memory zero limit is unset", v1, specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](0)}}, nil},
		{"pids", v1, specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](32)}}, []string{"pids/pids.max = 32"}},
		{"pids unlimited", v2, specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](-1)}}, []string{"unified/pids.max = max"}},
		{"pids zero is unlimited", v1, specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](0)}}, []string{"pids/pids.max = max"}},
		{"blkio v1", v1, specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{
			Weight: ptr[uint16](500), LeafWeight: ptr[uint16](300),
			WeightDevice:            []specs.LinuxWeightDevice{{LinuxBlockIODevice: dev(8, 0), Weight: ptr[uint16](600), LeafWeight: ptr[uint16](200)}},
			ThrottleReadBpsDevice:   []specs.LinuxThrottleDevice{{LinuxBlockIODevice: dev(8, 0), Rate: 1000}},
			ThrottleWriteBpsDevice:  []specs.LinuxThrottleDevice{{LinuxBlockIODevice: dev(8, 0), Rate: 2000}},
			ThrottleReadIOPSDevice:  []specs.LinuxThrottleDevice{{LinuxBlockIODevice: dev(8, 16), Rate: 30}},
			ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: dev(8, 16), Rate: 40}},
		}}, []string{
			"blkio/blkio.weight = 500 (else blkio.bfq.weight = 500)", "blkio/blkio.leaf_weight = 300",
			"blkio/blkio.weight_device = 8:0 600 (else blkio.bfq.weight_device = 8:0 600)", "blkio/blkio.leaf_weight_device = 8:0 200",
			"blkio/blkio.throttle.read_bps_device = 8:0 1000", "blkio/blkio.throttle.write_bps_device = 8:0 2000",
			"blkio/blkio.throttle.read_iops_device = 8:16 30", "blkio/blkio.throttle.write_iops_device = 8:16 40",
		}},
		{"io v2", v2, specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{
			Weight:                  ptr[uint16](500),
			WeightDevice:            []specs.LinuxWeightDevice{{LinuxBlockIODevice: dev(8, 0), Weight: ptr[uint16](1000)}},
			ThrottleReadBpsDevice:   []specs.LinuxThrottleDevice{{LinuxBlockIODevice: dev(8, 0), Rate: 1000}},
			ThrottleWriteBpsDevice:  []specs.LinuxThrottleDevice{{LinuxBlockIODevice: dev(8, 0), Rate: 0}},
			ThrottleReadIOPSDevice:  []specs.LinuxThrottleDevice{{LinuxBlockIODevice: dev(8, 16), Rate: 30}},
			ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: dev(8, 0), Rate: 40}},
		}}, []string{
			"unified/io.bfq.weight = 500 (else io.weight = 4950)",
			"unified/io.bfq.weight = 8:0 1000 (else io.weight = 8:0 10000)",
			"unified/io.max = 8:0 rbps=1000 wbps=max wiops=40", "unified/io.max = 8:16 riops=30",
		}},
		{"hugetlb v1", v1, specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}, {Pagesize: "1GB", Limit: 0}}},
			[]string{"hugetlb/hugetlb.2MB.limit_in_bytes = 4194304", "hugetlb/hugetlb.1GB.limit_in_bytes = 0"}},
		{"hugetlb v2", v2, specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}}},
			[]string{"unified/hugetlb.2MB.max = 4194304"}},
		{"hugetlb hybrid goes to the unified hierarchy", hybrid, specs.LinuxResources{
			Memory: &specs.LinuxMemory{Limit: ptr[int64](1 << 20)}, HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}},
		}, []string{"memory/memory.limit_in_bytes = 1048576", "unified/hugetlb.2MB.max = 4194304"}},
		{"network v1", v1, specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: ptr[uint32](0x100001),
			Priorities: []specs.LinuxInterfacePriority{{Name: "eth0", Priority: 5}, {Name: "lo", Priority: 1}}}},
			[]string{"net_cls/net_cls.classid = 1048577", "net_prio/net_prio.ifpriomap = eth0 5", "net_prio/net_prio.ifpriomap = lo 1"}},
		{"rdma v1", v1, specs.LinuxResources{Rdma: map[string]specs.LinuxRdma{
			"mlx5_1": {HcaHandles: ptr[uint32](3)}, "mlx5_0": {HcaHandles: ptr[uint32](2), HcaObjects: ptr[uint32](2000)}, "idle": {},
		}}, []string{"rdma/rdma.max = mlx5_0 hca_handle=2 hca_object=2000", "rdma/rdma.max = mlx5_1 hca_handle=3"}},
		{"rdma v2", v2, specs.LinuxResources{Rdma: map[string]specs.LinuxRdma{"mlx5_0": {HcaObjects: ptr[uint32](10)}}},
			[]string{"unified/rdma.max = mlx5_0 hca_object=10"}},
		{"unified v2 after the converted fields", v2, specs.LinuxResources{
			Memory:  &specs.LinuxMemory{Limit: ptr[int64](1 << 20)},
			Unified: map[string]string{"memory.high": "900000", "cgroup.max.descendants": "10", "io.latency": "8:0 target=10"},
		}, []string{"unified/memory.max = 1048576", "unified/cgroup.max.descendants = 10", "unified/io.latency = 8:0 target=10", "unified/memory.high = 900000"}},
		{"unified on hybrid for the unified controllers", hybrid, specs.LinuxResources{Unified: map[string]string{"hugetlb.2MB.rsvd.max": "0"}},
			[]string{"unified/hugetlb.2MB.rsvd.max = 0"}},
		{"devices are not ours", v1, specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Plan("/c", &tc.res, LayoutOf(tc.hs), Options{Hierarchies: tc.hs})
			if err != nil {
				t.Fatal(err)
			}
			if got := writes(p); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("writes\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestPlanErrors(t *testing.T) {
	v1, v2 := DefaultHierarchies(V1), DefaultHierarchies(V2)
	hybrid := hybridHierarchies(t)
	for _, tc := range []struct {
		name  string
		hs    []Hierarchy
		path  string
		res   specs.LinuxResources
		field string
		err   error
	}{
		{"empty path", v1, "", specs.LinuxResources{}, "linux.cgroupsPath", ErrInvalid},
		{"dotdot", v1, "/a/../../b", specs.LinuxResources{}, "linux.cgroupsPath", ErrInvalid},
		{"root", v1, "/", specs.LinuxResources{}, "linux.cgroupsPath", ErrInvalid},
		{"systemd form", v1, "system.slice:libjail:abc", specs.LinuxResources{}, "linux.cgroupsPath", ErrNotSupported},
		{"negative limit", v1, "/c", specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](-2)}}, "linux.resources.memory.limit", ErrInvalid},
		{"swap below limit", v1, "/c", specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](2048), Swap: ptr[int64](1024)}}, "linux.resources.memory.swap", ErrInvalid},
		{"swap with unlimited memory", v1, "/c", specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](-1), Swap: ptr[int64](1024)}}, "linux.resources.memory.swap", ErrInvalid},
		{"swappiness range", v1, "/c", specs.LinuxResources{Memory: &specs.LinuxMemory{Swappiness: ptr[uint64](101)}}, "linux.resources.memory.swappiness", ErrInvalid},
		{"v2 swap without limit", v2, "/c", specs.LinuxResources{Memory: &specs.LinuxMemory{Swap: ptr[int64](1024)}}, "linux.resources.memory.swap", ErrInvalid},
		{"v2 kernel", v2, "/c", specs.LinuxResources{Memory: &specs.LinuxMemory{Kernel: ptr[int64](1024)}}, "linux.resources.memory.kernel", ErrNotSupported},
		{"v2 kernelTCP", v2, "/c", specs.LinuxResources{Memory: &specs.LinuxMemory{KernelTCP: ptr[int64](1024)}}, "linux.resources.memory.kernelTCP", ErrNotSupported},
		{"v2 swappiness", v2, "/c", specs.LinuxResources{Memory: &specs.LinuxMemory{Swappiness: ptr[uint64](60)}}, "linux.resources.memory.swappiness", ErrNotSupported},
		{"v2 disableOOMKiller", v2, "/c", specs.LinuxResources{Memory: &specs.LinuxMemory{DisableOOMKiller: ptr(true)}}, "linux.resources.memory.disableOOMKiller", ErrNotSupported},
		{"v2 useHierarchy false", v2, "/c", specs.LinuxResources{Memory: &specs.LinuxMemory{UseHierarchy: ptr(false)}}, "linux.resources.memory.useHierarchy", ErrNotSupported},
		{"cpus list", v1, "/c", specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "0-"}}, "linux.resources.cpu.cpus", ErrInvalid},
		{"mems list", v2, "/c", specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "1", Mems: "a"}}, "linux.resources.cpu.mems", ErrInvalid},
		{"quota zero", v1, "/c", specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: ptr[int64](0)}}, "linux.resources.cpu.quota", ErrInvalid},
		{"idle range", v1, "/c", specs.LinuxResources{CPU: &specs.LinuxCPU{Idle: ptr[int64](2)}}, "linux.resources.cpu.idle", ErrInvalid},
		{"v2 realtime runtime", v2, "/c", specs.LinuxResources{CPU: &specs.LinuxCPU{RealtimeRuntime: ptr[int64](1000)}}, "linux.resources.cpu.realtimeRuntime", ErrNotSupported},
		{"v2 realtime period", v2, "/c", specs.LinuxResources{CPU: &specs.LinuxCPU{RealtimePeriod: ptr[uint64](1000)}}, "linux.resources.cpu.realtimePeriod", ErrNotSupported},
		{"blkio weight range", v1, "/c", specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{Weight: ptr[uint16](5)}}, "linux.resources.blockIO.weight", ErrInvalid},
		{"blkio device weight range", v1, "/c", specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{WeightDevice: []specs.LinuxWeightDevice{{LinuxBlockIODevice: dev(8, 0), Weight: ptr[uint16](2000)}}}}, "linux.resources.blockIO.weightDevice[0].weight", ErrInvalid},
		{"blkio negative device", v1, "/c", specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: dev(-1, 0)}}}}, "linux.resources.blockIO.throttleReadBpsDevice[0]", ErrInvalid},
		{"v2 leaf weight", v2, "/c", specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{LeafWeight: ptr[uint16](100)}}, "linux.resources.blockIO.leafWeight", ErrNotSupported},
		{"v2 device leaf weight", v2, "/c", specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{WeightDevice: []specs.LinuxWeightDevice{{LinuxBlockIODevice: dev(8, 0), LeafWeight: ptr[uint16](100)}}}}, "linux.resources.blockIO.weightDevice[0].leafWeight", ErrNotSupported},
		{"pagesize", v1, "/c", specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2M"}}}, "linux.resources.hugepageLimits[0].pageSize", ErrInvalid},
		{"v2 classID", v2, "/c", specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: ptr[uint32](1)}}, "linux.resources.network.classID", ErrNotSupported},
		{"v2 priorities", v2, "/c", specs.LinuxResources{Network: &specs.LinuxNetwork{Priorities: []specs.LinuxInterfacePriority{{Name: "eth0", Priority: 1}}}}, "linux.resources.network.priorities[0]", ErrNotSupported},
		{"bad interface", v1, "/c", specs.LinuxResources{Network: &specs.LinuxNetwork{Priorities: []specs.LinuxInterfacePriority{{Name: "a b"}}}}, "linux.resources.network.priorities[0].name", ErrInvalid},
		{"bad rdma device", v1, "/c", specs.LinuxResources{Rdma: map[string]specs.LinuxRdma{"a b": {HcaHandles: ptr[uint32](1)}}}, `linux.resources.rdma["a b"]`, ErrInvalid},
		{"unified on v1", v1, "/c", specs.LinuxResources{Unified: map[string]string{"memory.high": "1"}}, `linux.resources.unified["memory.high"]`, ErrNotSupported},
		{"unified bad key", v2, "/c", specs.LinuxResources{Unified: map[string]string{"../x": "1"}}, `linux.resources.unified["../x"]`, ErrInvalid},
		{"unified core file", v2, "/c", specs.LinuxResources{Unified: map[string]string{"cgroup.procs": "1"}}, `linux.resources.unified["cgroup.procs"]`, ErrInvalid},
		{"unified no dot", v2, "/c", specs.LinuxResources{Unified: map[string]string{"memory": "1"}}, `linux.resources.unified["memory"]`, ErrInvalid},
		// Hybrid here: no net_cls, net_prio, rdma anywhere; memory is v1 so memory.* v2 keys have no home.
		{"hybrid classID", hybrid, "/c", specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: ptr[uint32](1)}}, "linux.resources.network.classID", ErrNotSupported},
		{"hybrid rdma", hybrid, "/c", specs.LinuxResources{Rdma: map[string]specs.LinuxRdma{"mlx5_0": {HcaHandles: ptr[uint32](1)}}}, `linux.resources.rdma["mlx5_0"]`, ErrNotSupported},
		{"hybrid unified memory key", hybrid, "/c", specs.LinuxResources{Unified: map[string]string{"memory.high": "1"}}, `linux.resources.unified["memory.high"]`, ErrNotSupported},
		{"v1 without hugetlb", hybrid[:len(hybrid)-1], "/c", specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB"}}}, "linux.resources.hugepageLimits[0]", ErrNotSupported},
		{"mems without cpuset", []Hierarchy{{Mount: "/m", Root: "/", Controllers: []string{"memory"}}}, "/c", specs.LinuxResources{CPU: &specs.LinuxCPU{Mems: "0"}}, "linux.resources.cpu.mems", ErrNotSupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Plan(tc.path, &tc.res, LayoutOf(tc.hs), Options{Hierarchies: tc.hs})
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("got %v, want a *FieldError", err)
			}
			if fe.Field != tc.field || !errors.Is(err, tc.err) {
				t.Errorf("got field %q err %v, want %q and %v", fe.Field, err, tc.field, tc.err)
			}
		})
	}
}

func TestPlanPaths(t *testing.T) {
	hybrid := hybridHierarchies(t)
	for _, tc := range []struct {
		path, parent, want string
	}{
		{"/a/b", "", "/a/b"},
		{"/a/b/", "/ignored", "/a/b"},
		{"ctr", "", "/ctr"},
		{"ctr", "/libjail/pod1", "/libjail/pod1/ctr"},
		{"x/./y", "/p", "/p/x/y"},
	} {
		p, err := Plan(tc.path, nil, Hybrid, Options{Parent: tc.parent, Hierarchies: hybrid})
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		if p.Path != tc.want {
			t.Errorf("%q under %q: %s, want %s", tc.path, tc.parent, p.Path, tc.want)
		}
		if d := p.Dirs["memory"]; d != "/sys/fs/cgroup/memory"+tc.want {
			t.Errorf("memory dir %s", d)
		}
		if d := p.Dirs[UnifiedKey]; d != "/sys/fs/cgroup/unified"+tc.want {
			t.Errorf("unified dir %s", d)
		}
	}
	if _, err := Plan("c", nil, Hybrid, Options{Parent: "rel", Hierarchies: hybrid}); !errors.Is(err, ErrInvalid) {
		t.Errorf("relative parent: %v", err)
	}
	if _, err := Plan("/c", nil, V2, Options{Hierarchies: hybrid}); !errors.Is(err, ErrInvalid) {
		t.Errorf("layout mismatch: %v", err)
	}
}

func TestPlanJSONRoundTripAndString(t *testing.T) {
	hybrid := hybridHierarchies(t)
	p, err := Plan("/pod/ctr", &specs.LinuxResources{
		Memory:         &specs.LinuxMemory{Limit: ptr[int64](1 << 20), CheckBeforeUpdate: ptr(true)},
		BlockIO:        &specs.LinuxBlockIO{Weight: ptr[uint16](100)},
		HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 0}},
	}, Hybrid, Options{Hierarchies: hybrid})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var back CgroupPlan
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p, &back) {
		t.Errorf("round trip changed the plan:\n%+v\n%+v", p, &back)
	}
	s := p.String()
	for _, want := range []string{
		"cgroup /pod/ctr (hybrid)\n",
		"  dir memory = /sys/fs/cgroup/memory/pod/ctr\n",
		"  dir unified = /sys/fs/cgroup/unified/pod/ctr\n",
		"  memory/memory.limit_in_bytes = 1048576\n",
		"  blkio/blkio.weight = 100 (else blkio.bfq.weight = 100)\n",
		"  unified/hugetlb.2MB.max = 0\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("String() lacks %q:\n%s", want, s)
		}
	}
	if !back.CheckBeforeUpdate || back.MemoryLimit != 1<<20 {
		t.Errorf("checkBeforeUpdate lost: %+v", back)
	}
}

func TestConversionFormulas(t *testing.T) {
	for shares, w := range map[uint64]uint64{0: 0, 1: 1, 2: 1, 1024: 39, 262144: 10000, 1 << 30: 10000} {
		if got := SharesToWeight(shares); got != w {
			t.Errorf("SharesToWeight(%d) = %d, want %d", shares, got, w)
		}
	}
	for bw, w := range map[uint16]uint64{0: 0, 10: 1, 100: 910, 500: 4950, 1000: 10000} {
		if got := BlkioToIOWeight(bw); got != w {
			t.Errorf("BlkioToIOWeight(%d) = %d, want %d", bw, got, w)
		}
	}
}

func TestPlanChildAndWarnings(t *testing.T) {
	hybrid := hybridHierarchies(t)
	pod, err := Plan("/libjail/pod1", nil, Hybrid, Options{Hierarchies: hybrid})
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	ctr, err := pod.PlanChild("ctr1", &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](0)}}, logger)
	if err != nil {
		t.Fatal(err)
	}
	if ctr.Path != "/libjail/pod1/ctr1" || ctr.Dirs["pids"] != "/sys/fs/cgroup/pids/libjail/pod1/ctr1" {
		t.Errorf("child plan %s", ctr)
	}
	if !strings.Contains(logs.String(), "field=linux.resources.pids.limit") {
		t.Errorf("no warning logged: %q", logs.String())
	}
	if _, err := pod.PlanChild("/abs", nil, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("absolute child: %v", err)
	}
}

func TestPlanPod(t *testing.T) {
	p, err := Plan("/pod", nil, V2, Options{Pod: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(p.String(), "cgroup /pod (v2, pod)\n") {
		t.Errorf("String() = %q", p.String())
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var back CgroupPlan
	if err := json.Unmarshal(b, &back); err != nil || !back.Pod {
		t.Errorf("pod lost in JSON: %s (%v)", b, err)
	}
	child, err := p.PlanChild("ctr", nil, nil)
	if err != nil || child.Pod || child.Path != "/pod/ctr" {
		t.Errorf("child %+v, %v", child, err)
	}
}
