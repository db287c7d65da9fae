package devices

import (
	"encoding/json"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// FuzzPlanRules: any rule section either plans, with a program that generates and a v1
// transition that replays to the same state, or is an error; never a panic.
func FuzzPlanRules(f *testing.F) {
	f.Add([]byte(`[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":3,"access":"rw"}]`))
	f.Add([]byte(`[{"allow":true,"type":"a","major":5,"access":"m"},{"allow":false,"type":"b"}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var spec []specs.LinuxDeviceCgroup
		if json.Unmarshal(b, &spec) != nil {
			return
		}
		rules, err := PlanRules(spec)
		if err != nil {
			return
		}
		if _, err := Program(rules); err != nil && validateRules(rules) == nil {
			// Only numbers beyond 32 bits may fail generation.
			for _, r := range rules {
				if r.Major > 1<<32-1 || r.Minor > 1<<32-1 {
					return
				}
			}
			t.Fatalf("%v: %v", rules, err)
		}
		s := effective(PodDefaultRules())
		for _, w := range V1Transition(PodDefaultRules(), rules) {
			s.apply(w.rule())
		}
		if want := effective(rules); !s.equal(want) && !(s.allowsAll() && want.allowsAll()) {
			t.Fatalf("%v: replayed %v, want %v", rules, s, want)
		}
	})
}

// FuzzPlanNodes: any device section plans or errors, never panics, and planned nodes stay under /dev.
func FuzzPlanNodes(f *testing.F) {
	f.Add([]byte(`[{"path":"/dev/fuse","type":"c","major":10,"minor":229,"fileMode":8630}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var spec []specs.LinuxDevice
		if json.Unmarshal(b, &spec) != nil {
			return
		}
		nodes, err := PlanNodes(spec, true)
		if err != nil {
			return
		}
		for _, n := range nodes {
			if len(n.Path) < 6 || n.Path[:5] != "/dev/" {
				t.Fatalf("node outside /dev: %v", n)
			}
		}
	})
}

// FuzzParseList: devices.list contents parse or error, never panic.
func FuzzParseList(f *testing.F) {
	f.Add([]byte("c 1:3 rwm\nb *:* m\n"))
	f.Add([]byte("a *:* rwm\n"))
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = parseList(b) })
}
