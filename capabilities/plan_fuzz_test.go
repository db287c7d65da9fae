package capabilities

import (
	"encoding/json"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// FuzzPlan: any process.capabilities section plans or returns an error, never panics, and a plan
// prints and serialises (the parent sends it to the child as JSON).
func FuzzPlan(f *testing.F) {
	for _, s := range []*specs.LinuxCapabilities{
		nil, {},
		{Bounding: []string{"CAP_CHOWN", "CAP_KILL"}, Effective: []string{"CAP_KILL"}, Permitted: []string{"CAP_KILL"}},
		{Ambient: []string{"CAP_NET_BIND_SERVICE"}},
		{Bounding: []string{"cap_chown", "CAP_BOGUS", "CAP_SYS_ADMIN"}},
	} {
		b, _ := json.Marshal(s)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var spec *specs.LinuxCapabilities
		if err := json.Unmarshal(data, &spec); err != nil {
			return
		}
		s, err := Plan(spec, nil)
		if err != nil {
			return
		}
		_ = s.String()
		if _, err := json.Marshal(s); err != nil {
			t.Fatal(err)
		}
	})
}
