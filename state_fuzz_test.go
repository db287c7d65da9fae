package libjail

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/libjail/libjail/cgroups"
	"github.com/libjail/libjail/internal/fixtures"
)

// FuzzParseState: any state.json content is decoded and checked by parseState or refused with an
// error; never a panic, and what it accepts has what Load relies on.
func FuzzParseState(f *testing.F) {
	good := savedState{
		State:  specs.State{Version: specs.Version, ID: "c1", Status: specs.StateCreated, Pid: 42, Bundle: "/b"},
		Spec:   fixtures.Spec("/rootfs", "/bin/true"),
		Cgroup: &cgroups.CgroupPlan{Path: "/libjail/c1", Dirs: map[string]string{"memory": "/sys/fs/cgroup/memory/libjail/c1"}},
	}
	b, _ := json.Marshal(&good)
	f.Add(b)
	f.Add([]byte(`{"state":{"id":"x","status":"running","pid":-1},"spec":{"linux":{}},"cgroup":{}}`))
	f.Add([]byte(`{"state":{"id":"../x","status":"stopped"},"spec":{"linux":{}},"cgroup":{},"pod":{"stateDir":"/","id":".."}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := parseState(data)
		if err != nil {
			return
		}
		if s.Spec == nil || s.Spec.Linux == nil || s.Cgroup == nil || s.State.Pid < 0 || validID(s.State.ID) != nil {
			t.Fatalf("accepted a state Load cannot use: %+v", s)
		}
	})
}

// FuzzReadPodRecord: any pod record file is read back or refused with an error, never a panic.
func FuzzReadPodRecord(f *testing.F) {
	f.Add([]byte(`{"id":"p","cgroup":{"path":"/libjail/p"}}`))
	f.Add([]byte(`{"id":"q"}`))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := podFile(dir, "p")
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		r, err := readPodRecord(dir, "p")
		if err == nil && (r.ID != "p" || r.Cgroup == nil) {
			t.Fatalf("accepted a damaged record: %+v", r)
		}
	})
}
