package devices

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func TestProgramGolden(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rules []string
	}{
		{"deny-all", []string{"deny a *:* rwm"}},
		{"allow-all", []string{"allow a *:* rwm"}},
		{"empty", nil},
		{"null-only", []string{"deny a *:* rwm", "allow c 1:3 rwm"}},
		{"pod-defaults", nil},
		{"wildcards-and-access", []string{"deny a *:* rwm", "allow c 136:* rw", "allow b *:* m", "allow b 8:0 r"}},
		{"allow-with-denials", []string{"allow a *:* rwm", "deny b 254:* rwm", "deny c 5:1 w"}},
		{"later-rules-override", []string{"deny a *:* rwm", "allow c 1:3 rwm", "allow c 1:5 r", "deny c 1:3 rwm", "allow c 1:5 w"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rules := r(t, tc.rules...)
			if tc.name == "pod-defaults" {
				rules = PodDefaultRules()
			}
			insns, err := Program(rules)
			if err != nil {
				t.Fatal(err)
			}
			got := fmt.Sprintf("; rules: %v\n; state: %v\n%v", rules, effective(rules), insns)
			golden := filepath.Join("testdata", "program-"+tc.name+".txt")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Fatalf("program differs from %s (run with -update after checking):\n%s", golden, got)
			}
		})
	}
}

func TestProgramSize(t *testing.T) {
	// Each exception costs at most 8 instructions, the prologue at most 7, the default 2.
	for _, n := range []int{0, 1, 10, 100} {
		insns, err := Program(benchRules(n))
		if err != nil {
			t.Fatal(err)
		}
		if max := 7 + 8*n + 2; len(insns) > max {
			t.Errorf("%d rules: %d instructions, more than %d", n, len(insns), max)
		}
	}
}

func TestProgramErrors(t *testing.T) {
	for _, rules := range [][]Rule{
		{{Type: 'x', Major: 1, Minor: 1, Access: "r"}},
		{{Type: 'c', Major: -2, Minor: 1, Access: "r"}},
		{{Type: 'c', Major: 1, Minor: 1, Access: ""}},
		{{Type: 'c', Major: 1, Minor: 1, Access: "rx"}},
		{{Type: 'c', Major: 1 << 33, Minor: 1, Access: "r", Allow: true}},
	} {
		if _, err := Program(rules); err == nil {
			t.Errorf("%v: no error", rules)
		}
	}
}

// benchRules is deny all and n distinct allowed char devices.
func benchRules(n int) []Rule {
	rules := []Rule{DenyAll()}
	for i := range n {
		rules = append(rules, Rule{Type: 'c', Major: 200, Minor: int64(i), Access: "rw", Allow: true})
	}
	return rules
}
