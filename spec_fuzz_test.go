package libjail

import (
	"encoding/json"
	"errors"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/libjail/libjail/internal/fixtures"
	"github.com/libjail/libjail/seccomp"
)

// FuzzNew: any spec, as JSON, is planned by New or refused with a *StepError; New never panics and
// creates no kernel state (it only plans), so this runs without root too.
func FuzzNew(f *testing.F) {
	base := fixtures.Spec("/nonexistent/rootfs", "/bin/true")
	withSeccomp := fixtures.Spec("rootfs", "/bin/sh")
	withSeccomp.Linux.Seccomp = seccomp.Default()
	withSeccomp.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/loop0", Type: "b", Major: 7}}
	withSeccomp.Process.Capabilities = &specs.LinuxCapabilities{Bounding: []string{"CAP_KILL"}}
	for _, s := range []*specs.Spec{base, withSeccomp} {
		b, _ := json.Marshal(s)
		f.Add(b)
	}
	f.Add([]byte(`{"root":{"path":"r"},"linux":{"namespaces":[{"type":"user"}],"uidMappings":[{"containerID":0,"hostID":1000,"size":1}]},"process":{"args":["x"],"cwd":"/proc/self/fd/3"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var spec specs.Spec
		if err := json.Unmarshal(data, &spec); err != nil {
			return
		}
		c, err := New("fuzz", &spec, Options{Bundle: "/nonexistent/bundle"})
		if err != nil {
			var se *StepError
			if !errors.As(err, &se) {
				t.Fatalf("error is not a *StepError: %T %v", err, err)
			}
			return
		}
		if c.Status() != StatusNew {
			t.Fatalf("planned container in state %s", c.Status())
		}
	})
}
