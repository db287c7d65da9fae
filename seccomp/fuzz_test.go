package seccomp

import (
	"encoding/json"
	"errors"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// FuzzCompile feeds arbitrary profiles (as JSON) to the translation: it must never panic, and
// what it accepts must be a program the interpreter can run to a decision.
func FuzzCompile(f *testing.F) {
	seed, _ := json.Marshal(Default())
	f.Add(seed)
	f.Add([]byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}],"listenerPath":"/x"}`))
	f.Add([]byte(`{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86"],"syscalls":[{"names":["getpid"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":255,"valueTwo":1,"op":"SCMP_CMP_MASKED_EQ"},{"index":0,"value":2,"op":"SCMP_CMP_GT"}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var spec specs.LinuxSeccomp
		if json.Unmarshal(data, &spec) != nil {
			return
		}
		p, err := compile(&spec, nil)
		if err != nil {
			var fe *FieldError
			if p != nil || (!errors.As(err, &fe) && err.Error() == "") {
				t.Fatalf("bad error result: %v, %v", p, err)
			}
			return
		}
		a := nativeArch(t)
		for _, nr := range []int32{0, 1, 60, 1000, -1} {
			if _, err := run(decode(p.Filter), seccompData{nr: nr, arch: a.audit}); err != nil {
				t.Fatalf("program does not run: %v", err)
			}
		}
	})
}
