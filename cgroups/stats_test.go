package cgroups

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// v2StatFiles are interface files as a v2 kernel prints them, for the one part of Stats this
// machine's unified hierarchy (hugetlb only) cannot exercise live: the v2 memory, pids and io files.
var v2StatFiles = map[string]string{
	"cpu.stat":               "usage_usec 123456\nuser_usec 100000\nsystem_usec 23456\nnr_periods 10\nnr_throttled 2\nthrottled_usec 5000\nnr_bursts 0\nburst_usec 0\n",
	"memory.current":         "1048576\n",
	"memory.peak":            "2097152\n",
	"memory.max":             "max\n",
	"memory.swap.current":    "4096\n",
	"memory.swap.max":        "0\n",
	"memory.events":          "low 0\nhigh 0\nmax 5\noom 2\noom_kill 1\noom_group_kill 0\n",
	"memory.stat":            "anon 4096\nfile 8192\nkernel 12288\n",
	"pids.current":           "3\n",
	"pids.max":               "10\n",
	"io.stat":                "8:0 rbytes=1024 wbytes=2048 rios=1 wios=2 dbytes=0 dios=0\n254:16 rbytes=7 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n",
	"hugetlb.2MB.current":    "2097152\n",
	"hugetlb.2MB.max":        "4194304\n",
	"hugetlb.2MB.events":     "max 1\n",
	"hugetlb.2MB.rsvd.max":   "max\n",
	"cgroup.events":          "populated 1\nfrozen 0\n",
	"cgroup.procs":           "",
	"cgroup.freeze":          "0\n",
	"cgroup.subtree_control": "",
}

func TestStatsV2Files(t *testing.T) {
	mount := t.TempDir()
	hs := []Hierarchy{{Mount: mount, Root: "/", Unified: true, Controllers: allV2Controllers}}
	plan, err := Plan("/c", nil, V2, Options{Hierarchies: hs})
	if err != nil {
		t.Fatal(err)
	}
	dir := plan.Dirs[UnifiedKey]
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for f, v := range v2StatFiles {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m, err := New(plan)
	if err != nil {
		t.Fatal(err)
	}
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	want := &Stats{
		CPU: CPUStats{UsageNS: 123456000, UserNS: 100000000, SystemNS: 23456000, Periods: 10, ThrottledPeriods: 2, ThrottledNS: 5000000},
		Memory: MemoryStats{Usage: 1 << 20, MaxUsage: 2 << 20, Limit: ^uint64(0), SwapUsage: 4096, SwapLimit: 0, OOMEvents: 2, OOMKills: 1,
			Stat: map[string]uint64{"anon": 4096, "file": 8192, "kernel": 12288}},
		Pids: PidsStats{Current: 3, Limit: 10},
		IO: []IODeviceStats{
			{Major: 8, Minor: 0, ReadBytes: 1024, WriteBytes: 2048, ReadIOs: 1, WriteIOs: 2},
			{Major: 254, Minor: 16, ReadBytes: 7, ReadIOs: 1},
		},
	}
	if _, err := os.Stat("/sys/kernel/mm/hugepages/hugepages-2048kB"); err == nil {
		want.Hugetlb = map[string]HugetlbStats{"2MB": {Usage: 2 << 20, Max: 4 << 20, Failcnt: 1}}
	}
	if !reflect.DeepEqual(st, want) {
		t.Errorf("stats\n got %+v\nwant %+v", st, want)
	}
}

func TestCreateRefusesNonCgroupMount(t *testing.T) {
	mount := t.TempDir()
	hs := []Hierarchy{{Mount: mount, Root: "/", Unified: true, Controllers: allV2Controllers}}
	plan, err := Plan("/c", nil, V2, Options{Hierarchies: hs})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := New(plan)
	if err := m.Create(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("got %v, want ErrInvalid", err)
	}
	if _, err := os.Stat(plan.Dirs[UnifiedKey]); err == nil {
		t.Error("made a directory on a non-cgroup mount")
	}
}
