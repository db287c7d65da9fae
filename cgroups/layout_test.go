package cgroups

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

func parseSample(t *testing.T, name string) []Hierarchy {
	t.Helper()
	f, err := os.Open("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hs, err := ParseHierarchies(f)
	if err != nil {
		t.Fatal(err)
	}
	return hs
}

func keys(hs []Hierarchy) string {
	var ks []string
	for _, h := range hs {
		ks = append(ks, h.Key()+"@"+h.Mount+":"+h.Root)
	}
	return strings.Join(ks, " ")
}

func TestParseHierarchies(t *testing.T) {
	for _, tc := range []struct {
		file   string
		layout Layout
		keys   string
	}{
		{"mountinfo-hybrid.txt", Hybrid, "blkio@/sys/fs/cgroup/blkio:/ cpu@/sys/fs/cgroup/cpu:/ cpuacct@/sys/fs/cgroup/cpuacct:/ " +
			"cpuset@/sys/fs/cgroup/cpuset:/ devices@/sys/fs/cgroup/devices:/ freezer@/sys/fs/cgroup/freezer:/ " +
			"memory@/sys/fs/cgroup/memory:/ name=systemd@/sys/fs/cgroup/systemd:/ pids@/sys/fs/cgroup/pids:/ unified@/sys/fs/cgroup/unified:/"},
		{"mountinfo-v1.txt", V1, "blkio@/sys/fs/cgroup/blkio:/ cpu,cpuacct@/sys/fs/cgroup/cpu,cpuacct:/ cpuset@/sys/fs/cgroup/cpuset:/ " +
			"devices@/sys/fs/cgroup/devices:/ freezer@/sys/fs/cgroup/freezer:/ hugetlb@/sys/fs/cgroup/hugetlb:/ memory@/sys/fs/cgroup/memory:/ " +
			"name=systemd@/sys/fs/cgroup/systemd:/ net_cls,net_prio@/sys/fs/cgroup/net_cls,net_prio:/ perf_event@/sys/fs/cgroup/perf_event:/ " +
			"pids@/sys/fs/cgroup/pids:/ rdma@/sys/fs/cgroup/rdma:/"},
		{"mountinfo-v2.txt", V2, "unified@/sys/fs/cgroup:/"},
		// The same hierarchy mounted twice counts once (the first mount).
		{"mountinfo-v1-container.txt", V1, "cpu,cpuacct@/sys/fs/cgroup/cpu,cpuacct:/docker/abc memory@/sys/fs/cgroup/memory:/docker/abc"},
		{"mountinfo-none.txt", 0, ""},
	} {
		t.Run(tc.file, func(t *testing.T) {
			hs := parseSample(t, tc.file)
			if got := LayoutOf(hs); got != tc.layout {
				t.Errorf("layout %v, want %v", got, tc.layout)
			}
			if got := keys(hs); got != tc.keys {
				t.Errorf("hierarchies\n got %s\nwant %s", got, tc.keys)
			}
		})
	}
}

func TestParseHierarchiesBadInput(t *testing.T) {
	if _, err := ParseHierarchies(strings.NewReader("1 2 3\n")); err == nil {
		t.Fatal("want an error for a truncated line")
	}
}

func TestDirInSubCgroupMount(t *testing.T) {
	hs := parseSample(t, "mountinfo-v1-container.txt")
	p, err := Plan("/docker/abc/ctr", nil, V1, Options{Hierarchies: hs})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Dirs["memory"]; got != "/sys/fs/cgroup/memory/ctr" {
		t.Errorf("dir %s", got)
	}
}

func TestDetect(t *testing.T) {
	l, err := Detect()
	if errors.Is(err, ErrNoCgroups) {
		t.Skip("skipped: no cgroups mounted")
	}
	if err != nil {
		t.Fatal(err)
	}
	hs, err := DetectHierarchies()
	if err != nil {
		t.Fatal(err)
	}
	if LayoutOf(hs) != l {
		t.Fatalf("Detect %v, hierarchies say %v", l, LayoutOf(hs))
	}
	for _, h := range hs {
		if h.Unified {
			b, _ := os.ReadFile(h.Mount + "/cgroup.controllers")
			if !reflect.DeepEqual(h.Controllers, strings.Fields(string(b))) {
				t.Errorf("unified controllers %v, file says %q", h.Controllers, b)
			}
		}
	}
}

func TestLayoutString(t *testing.T) {
	for l, s := range map[Layout]string{V1: "v1", V2: "v2", Hybrid: "hybrid", 9: "Layout(9)"} {
		if l.String() != s {
			t.Errorf("%d: %s", int(l), l.String())
		}
	}
}
