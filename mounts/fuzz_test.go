package mounts

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// FuzzPlan feeds arbitrary destinations, types and option lists to Plan: it must never panic, a
// failure is always an *Error, and a plan always survives JSON and String.
func FuzzPlan(f *testing.F) {
	f.Add("/tmp", "tmpfs", "", "nosuid,nodev,mode=1777,size=1m", "rslave")
	f.Add("/data", "", "/srv", "rbind,rro,ridmap,rshared", "")
	f.Add("/proc/cpuinfo", "bind", "/x", "bind,ro", "private")
	f.Add("/x/../proc", "proc", "proc", "hidepid=2,subset=pid", "rshared")
	f.Add("rel", "none", "", "=,,x-y,remount", "bogus")
	f.Fuzz(func(t *testing.T, dest, typ, src, opts, prop string) {
		var o []string
		if opts != "" {
			o = strings.Split(opts, ",")
		}
		spec := &specs.Spec{
			Root:   &specs.Root{Path: "rootfs"},
			Mounts: []specs.Mount{{Destination: dest, Type: typ, Source: src, Options: o}},
			Linux:  &specs.Linux{RootfsPropagation: prop, MaskedPaths: []string{dest}},
		}
		p, err := Plan(spec, Options{BundleDir: "/b"})
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Field == "" {
				t.Fatalf("error %v is not an *Error naming a field", err)
			}
			return
		}
		_ = p.String()
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		var back RootfsPlan
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if back.String() != p.String() {
			t.Fatalf("round trip:\n%s\n%s", p, &back)
		}
	})
}
