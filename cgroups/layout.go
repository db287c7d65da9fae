package cgroups

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/moby/sys/mountinfo"
)

// Layout is how the cgroup hierarchies of a machine are mounted.
type Layout int

const (
	// V1 is legacy cgroups only: one hierarchy per controller (or group of co-mounted controllers).
	V1 Layout = iota + 1
	// V2 is the unified hierarchy only.
	V2
	// Hybrid is v1 controller hierarchies plus a unified hierarchy holding the controllers v1 left.
	Hybrid
)

func (l Layout) String() string {
	switch l {
	case V1:
		return "v1"
	case V2:
		return "v2"
	case Hybrid:
		return "hybrid"
	}
	return fmt.Sprintf("Layout(%d)", int(l))
}

// UnifiedKey is the key of the cgroup2 hierarchy in [CgroupPlan.Dirs] and [Write.Hierarchy].
const UnifiedKey = "unified"

// Hierarchy is one mounted cgroup hierarchy.
type Hierarchy struct {
	// Mount is where the hierarchy is mounted, e.g. /sys/fs/cgroup/memory.
	Mount string `json:"mount"`
	// Root is the cgroup seen at Mount (mountinfo's root field); "/" unless a cgroup namespace or a
	// bind mount of a sub-cgroup is in the way.
	Root string `json:"root"`
	// Controllers are, on v1, the controllers bound to the hierarchy (named hierarchies appear as
	// "name=systemd"); on v2, the root's cgroup.controllers.
	Controllers []string `json:"controllers,omitempty"`
	// Unified marks the cgroup2 hierarchy.
	Unified bool `json:"unified,omitempty"`
}

// Key names the hierarchy in plans: [UnifiedKey] for cgroup2, the sorted controller list joined by
// commas for v1 (e.g. "cpu,cpuacct").
func (h Hierarchy) Key() string {
	if h.Unified {
		return UnifiedKey
	}
	return strings.Join(h.Controllers, ",")
}

// has reports whether the hierarchy offers controller c.
func (h Hierarchy) has(c string) bool {
	for _, x := range h.Controllers {
		if x == c {
			return true
		}
	}
	return false
}

// v1Controllers are the controller names a cgroup v1 mount may carry in its super options.
var v1Controllers = map[string]bool{
	"cpu": true, "cpuacct": true, "cpuset": true, "memory": true, "devices": true, "freezer": true,
	"net_cls": true, "net_prio": true, "blkio": true, "perf_event": true, "hugetlb": true, "pids": true,
	"rdma": true, "misc": true,
}

// ParseHierarchies reads a mountinfo table (the format of /proc/self/mountinfo) and returns the
// cgroup hierarchies it mounts, one per hierarchy (the first mount of each wins), v1 first in
// key order, then the unified one. The controllers of a cgroup2 hierarchy are not in mountinfo:
// they are left empty here and filled in by [DetectHierarchies].
func ParseHierarchies(r io.Reader) ([]Hierarchy, error) {
	infos, err := mountinfo.GetMountsFromReader(r, mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		return nil, fmt.Errorf("parse mountinfo: %w", err)
	}
	seen := map[string]bool{}
	var v1 []Hierarchy
	var unified *Hierarchy
	for _, m := range infos {
		if m.FSType == "cgroup2" {
			if unified == nil {
				unified = &Hierarchy{Mount: m.Mountpoint, Root: m.Root, Unified: true}
			}
			continue
		}
		var ctrls []string
		for _, o := range strings.Split(m.VFSOptions, ",") {
			if v1Controllers[o] || strings.HasPrefix(o, "name=") {
				ctrls = append(ctrls, o)
			}
		}
		if len(ctrls) == 0 {
			continue
		}
		sort.Strings(ctrls)
		h := Hierarchy{Mount: m.Mountpoint, Root: m.Root, Controllers: ctrls}
		if seen[h.Key()] {
			continue
		}
		seen[h.Key()] = true
		v1 = append(v1, h)
	}
	sort.Slice(v1, func(i, j int) bool { return v1[i].Key() < v1[j].Key() })
	if unified != nil {
		v1 = append(v1, *unified)
	}
	return v1, nil
}

// LayoutOf classifies hierarchies. A machine whose only v1 hierarchies are named ones (no
// controllers, like name=systemd) next to a cgroup2 mount is Hybrid too: processes must be placed in
// both. It returns 0 when there is no hierarchy at all.
func LayoutOf(hs []Hierarchy) Layout {
	var v1, v2 bool
	for _, h := range hs {
		if h.Unified {
			v2 = true
		} else {
			v1 = true
		}
	}
	switch {
	case v1 && v2:
		return Hybrid
	case v2:
		return V2
	case v1:
		return V1
	}
	return 0
}

// ErrNoCgroups is returned by detection when no cgroup hierarchy is mounted.
var ErrNoCgroups = errors.New("no cgroup hierarchy mounted")

// DetectHierarchies reads /proc/self/mountinfo and the unified root's cgroup.controllers.
func DetectHierarchies() ([]Hierarchy, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	hs, err := ParseHierarchies(f)
	if err != nil {
		return nil, err
	}
	if len(hs) == 0 {
		return nil, ErrNoCgroups
	}
	for i := range hs {
		if !hs[i].Unified {
			continue
		}
		b, err := os.ReadFile(filepath.Join(hs[i].Mount, "cgroup.controllers"))
		if err != nil {
			return nil, err
		}
		hs[i].Controllers = strings.Fields(string(b))
	}
	return hs, nil
}

// Detect returns the layout of this machine's cgroup mounts.
func Detect() (Layout, error) {
	hs, err := DetectHierarchies()
	if err != nil {
		return 0, err
	}
	return LayoutOf(hs), nil
}

// allV2Controllers is what a pure v2 machine is assumed to offer when the caller gives no hierarchies.
var allV2Controllers = []string{"cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc"}

// DefaultHierarchies is the conventional mount set under /sys/fs/cgroup for a layout, used by
// [Plan] when [Options.Hierarchies] is nil. Callers that know better pass [DetectHierarchies].
func DefaultHierarchies(l Layout) []Hierarchy {
	var hs []Hierarchy
	if l == V1 || l == Hybrid {
		for _, c := range []string{"blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "hugetlb", "memory", "net_cls", "net_prio", "pids", "rdma"} {
			if l == Hybrid && c == "hugetlb" {
				continue
			}
			hs = append(hs, Hierarchy{Mount: "/sys/fs/cgroup/" + c, Root: "/", Controllers: []string{c}})
		}
	}
	switch l {
	case V2:
		hs = append(hs, Hierarchy{Mount: "/sys/fs/cgroup", Root: "/", Controllers: allV2Controllers, Unified: true})
	case Hybrid:
		hs = append(hs, Hierarchy{Mount: "/sys/fs/cgroup/unified", Root: "/", Controllers: []string{"hugetlb"}, Unified: true})
	}
	return hs
}
