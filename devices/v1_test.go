package devices

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func ptr64(v int64) *int64 { return &v }

func TestPlanRules(t *testing.T) {
	got, err := PlanRules([]specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: ptr64(1), Minor: ptr64(3), Access: "mwr"},
		{Allow: true, Type: "b", Major: ptr64(8)},
		{Allow: true, Type: "a", Access: "r"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []Rule{
		{Type: 'a', Major: -1, Minor: -1, Access: "rwm"},
		{Type: 'c', Major: 1, Minor: 3, Access: "rwm", Allow: true},
		{Type: 'b', Major: 8, Minor: -1, Access: "rwm", Allow: true},
		{Type: 'c', Major: -1, Minor: -1, Access: "r", Allow: true},
		{Type: 'b', Major: -1, Minor: -1, Access: "r", Allow: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	if s := got[2].String(); s != "allow b 8:* rwm" {
		t.Fatalf("String: %q", s)
	}
}

func TestPlanRulesErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rule  specs.LinuxDeviceCgroup
		field string
	}{
		{"type", specs.LinuxDeviceCgroup{Type: "p"}, "linux.resources.devices[1].type"},
		{"access", specs.LinuxDeviceCgroup{Type: "c", Access: "rx"}, "linux.resources.devices[1].access"},
		{"major", specs.LinuxDeviceCgroup{Type: "c", Major: ptr64(-1)}, "linux.resources.devices[1].major"},
		{"minor", specs.LinuxDeviceCgroup{Type: "b", Minor: ptr64(-5)}, "linux.resources.devices[1].minor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := PlanRules([]specs.LinuxDeviceCgroup{{Allow: false}, tc.rule})
			var se *SpecError
			if !errors.As(err, &se) || !errors.Is(err, ErrInvalidRule) || se.Field != tc.field {
				t.Fatalf("got %v, want a *SpecError for %s wrapping ErrInvalidRule", err, tc.field)
			}
		})
	}
}

// r parses "allow c 1:3 rwm"-style rules for tables.
func r(t testing.TB, lines ...string) []Rule {
	var out []Rule
	for _, l := range lines {
		verdict, rest, _ := strings.Cut(l, " ")
		rule, err := parseListLine(rest)
		if err != nil {
			t.Fatal(err)
		}
		rule.Allow = verdict == "allow"
		out = append(out, rule)
	}
	return out
}

func TestV1Transition(t *testing.T) {
	for _, tc := range []struct {
		name          string
		current, want []string
		target        []string
	}{
		{"same", []string{"deny a *:* rwm", "allow c 1:3 rwm"}, nil, []string{"deny a *:* rwm", "allow c 1:3 rwm"}},
		{"from allow-all to restricted", []string{"allow a *:* rwm"},
			[]string{"devices.deny < a *:* rwm", "devices.allow < c 1:3 rwm", "devices.allow < b 8:* r"},
			[]string{"deny a *:* rwm", "allow c 1:3 rwm", "allow b 8:* r"}},
		{"add and remove, widening first", []string{"deny a *:* rwm", "allow c 1:3 rwm", "allow c 1:5 rw"},
			[]string{"devices.allow < c 1:5 m", "devices.allow < c 1:7 rwm", "devices.deny < c 1:3 rwm"},
			[]string{"deny a *:* rwm", "allow c 1:5 rwm", "allow c 1:7 rwm"}},
		{"partial access removal", []string{"deny a *:* rwm", "allow c 1:3 rwm"},
			[]string{"devices.deny < c 1:3 w"}, []string{"deny a *:* rwm", "allow c 1:3 rm"}},
		{"allow-all under a restricted parent", []string{"deny a *:* rwm", "allow c 1:3 rwm", "allow b *:* m"},
			[]string{"devices.allow < c *:* rwm", "devices.allow < b *:* rw"}, []string{"allow a *:* rwm"}},
		{"already allow-all", []string{"allow a *:* rwm"}, nil, []string{"deny a *:* rwm", "allow c *:* rwm", "allow b *:* rwm"}},
		{"allow mode denials", []string{"allow a *:* rwm", "deny c 5:1 rwm"},
			[]string{"devices.allow < c 5:1 rwm", "devices.deny < b 254:0 rwm"}, []string{"allow a *:* rwm", "deny b 254:0 rwm"}},
		{"to allow mode with denials", []string{"deny a *:* rwm"},
			[]string{"devices.allow < a *:* rwm", "devices.deny < b 254:* rw"}, []string{"allow a *:* rwm", "deny b 254:* rw"}},
		{"deny of a wider rule does not narrow (v1)", []string{"deny a *:* rwm", "allow c 1:3 rwm"},
			nil, []string{"deny a *:* rwm", "allow c 1:3 rwm", "deny c *:* rwm"}},
		{"to deny all", []string{"deny a *:* rwm", "allow c 1:3 rwm"}, []string{"devices.deny < c 1:3 rwm"}, []string{"deny a *:* rwm"}},
		{"empty lists", nil, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := V1Transition(r(t, tc.current...), r(t, tc.target...))
			var gs []string
			for _, w := range got {
				gs = append(gs, w.String())
			}
			if !reflect.DeepEqual(gs, tc.want) {
				t.Fatalf("got %q\nwant %q", gs, tc.want)
			}
			// Replaying the writes on current gives a state that allows exactly what target allows.
			s := effective(r(t, tc.current...))
			for _, w := range got {
				s.apply(w.rule())
			}
			if want := effective(r(t, tc.target...)); !s.equal(want) && !(s.allowsAll() && want.allowsAll()) {
				t.Fatalf("replayed %v, want %v", s, want)
			}
		})
	}
}

func TestParseList(t *testing.T) {
	s, err := parseList([]byte("c 1:3 rwm\nc 136:* rwm\nb *:* m\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := effective(r(t, "deny a *:* rwm", "allow c 1:3 rwm", "allow c 136:* rwm", "allow b *:* m")); !s.equal(want) {
		t.Fatalf("got %v want %v", s, want)
	}
	if s, _ := parseList([]byte("a *:* rwm\n")); !s.allowsAll() {
		t.Fatalf("allow-all: %v", s)
	}
	for _, bad := range []string{"x 1:3 rwm", "c 1 rwm", "c -1:3 r", "c 1:3 q", "c 1:3"} {
		if _, err := parseList([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
