package cgroups

import (
	"bytes"
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// FuzzPlan: any cgroupsPath and resources section, on every layout, either plans or returns an
// error; never panics. A plan stays under its parent when the path is relative, names no ".."
// directory, and serialises.
func FuzzPlan(f *testing.F) {
	limit, shares, pids := int64(1<<30), uint64(512), int64(64)
	seeds := []*specs.LinuxResources{
		nil, {},
		{Memory: &specs.LinuxMemory{Limit: &limit, Swap: &limit}, CPU: &specs.LinuxCPU{Shares: &shares, Cpus: "0-1"}, Pids: &specs.LinuxPids{Limit: &pids}},
		{Unified: map[string]string{"memory.high": "max"}},
		{BlockIO: &specs.LinuxBlockIO{ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{{Rate: 1}}}},
	}
	for _, s := range seeds {
		b, _ := json.Marshal(s)
		for _, p := range []string{"ctr", "/libjail/pod/ctr", "../../escape", ""} {
			f.Add(p, b, uint8(0))
		}
	}
	f.Fuzz(func(t *testing.T, cgPath string, resJSON []byte, l uint8) {
		var res *specs.LinuxResources
		if err := json.Unmarshal(resJSON, &res); err != nil {
			return
		}
		layout := []Layout{V1, V2, Hybrid}[int(l)%3]
		plan, err := Plan(cgPath, res, layout, Options{Parent: "/libjail"})
		if err != nil {
			return
		}
		if strings.Contains(plan.Path, "..") && path.Clean(plan.Path) != plan.Path {
			t.Fatalf("path %q is not clean", plan.Path)
		}
		if !strings.HasPrefix(cgPath, "/") && plan.Path != "/libjail" && !strings.HasPrefix(plan.Path, "/libjail/") {
			t.Fatalf("relative path %q planned outside the parent: %q", cgPath, plan.Path)
		}
		for k, d := range plan.Dirs {
			if filepath.Clean(d) != d {
				t.Fatalf("dir %s=%q is not clean", k, d)
			}
		}
		_ = plan.String()
		if _, err := json.Marshal(plan); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzParseHierarchies: any mountinfo text parses or fails without a panic (mount points inside a
// container's namespace can be named by the container).
func FuzzParseHierarchies(f *testing.F) {
	for _, name := range []string{"mountinfo-hybrid.txt", "mountinfo-v1.txt", "mountinfo-v2.txt", "mountinfo-none.txt"} {
		if b, err := os.ReadFile(filepath.Join("testdata", name)); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		hs, err := ParseHierarchies(bytes.NewReader(data))
		if err == nil {
			_ = LayoutOf(hs)
		}
	})
}
