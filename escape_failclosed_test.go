package libjail

import (
	"os"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"

	"github.com/libjail/libjail/internal/fixtures"
)

// TestSecurityFieldsFailClosed: a spec asking for a security control libjail does not apply must
// be refused, not run without it (fail closed). Each case names the field; planning needs no root.
// When a field is wired (applied for real), delete its case: its own test then shows it applied.
func TestSecurityFieldsFailClosed(t *testing.T) {
	cases := map[string]func(s *specs.Spec){
		"process.apparmorProfile": func(s *specs.Spec) { s.Process.ApparmorProfile = "libjail-test" },
		"process.selinuxLabel":    func(s *specs.Spec) { s.Process.SelinuxLabel = "system_u:system_r:container_t:s0" },
		"linux.intelRdt":          func(s *specs.Spec) { s.Linux.IntelRdt = &specs.LinuxIntelRdt{ClosID: "x"} },
	}
	for field, edit := range cases {
		t.Run(field, func(t *testing.T) {
			if b, _ := os.ReadFile("/sys/module/apparmor/parameters/enabled"); field == "process.apparmorProfile" && strings.TrimSpace(string(b)) == "Y" {
				t.Skip("skipped: AppArmor is enabled here, so the profile is applied, not refused (TestAppArmorLabel)")
			}
			spec := fixtures.Spec(t.TempDir(), "/bin/true")
			edit(spec)
			_, err := New("failclosed", spec, Options{})
			assert.Error(t, err, "%s must be applied or refused", field)
		})
	}
}
