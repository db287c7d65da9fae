package devices

import (
	"fmt"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Wildcard is the Major or Minor of a rule that matches every number.
const Wildcard = -1

// Rule is one device cgroup rule, with the meaning of a write to v1 devices.allow (Allow) or
// devices.deny. A list of rules is read in order from a cgroup that denies everything.
type Rule struct {
	Type   rune   `json:"type"`   // 'a' (all), 'b' or 'c'
	Major  int64  `json:"major"`  // Wildcard or >= 0
	Minor  int64  `json:"minor"`  // Wildcard or >= 0
	Access string `json:"access"` // non-empty subset of "rwm", in that order
	Allow  bool   `json:"allow"`
}

// String renders the rule as the line written to devices.allow/deny, prefixed with its verdict.
func (r Rule) String() string {
	v := "deny"
	if r.Allow {
		v = "allow"
	}
	return v + " " + r.line()
}

// line is the devices.allow/devices.deny syntax: "c 1:3 rwm", "b 8:* r", "a *:* rwm".
func (r Rule) line() string {
	return fmt.Sprintf("%c %s:%s %s", r.Type, num(r.Major), num(r.Minor), r.Access)
}

func num(n int64) string {
	if n == Wildcard {
		return "*"
	}
	return strconv.FormatInt(n, 10)
}

// PlanRules validates linux.resources.devices and turns it into rules. An unset type means 'a', an
// unset major or minor a wildcard, an empty access "rwm". A type 'a' rule with numbers or a partial
// access is expanded to the same rule for 'c' and for 'b' (the kernel would otherwise read any 'a'
// line as "every device, every access"). Errors are *SpecError wrapping ErrInvalidRule.
func PlanRules(spec []specs.LinuxDeviceCgroup) ([]Rule, error) {
	out := make([]Rule, 0, len(spec))
	for i, d := range spec {
		r := Rule{Allow: d.Allow, Major: Wildcard, Minor: Wildcard}
		switch d.Type {
		case "", "a":
			r.Type = 'a'
		case "b", "c":
			r.Type = rune(d.Type[0])
		default:
			return nil, ruleErr(i, "type", "%q is not one of a, b, c", d.Type)
		}
		if d.Major != nil {
			if *d.Major < 0 {
				return nil, ruleErr(i, "major", "%d is negative (omit it for a wildcard)", *d.Major)
			}
			r.Major = *d.Major
		}
		if d.Minor != nil {
			if *d.Minor < 0 {
				return nil, ruleErr(i, "minor", "%d is negative (omit it for a wildcard)", *d.Minor)
			}
			r.Minor = *d.Minor
		}
		acc, err := parseAccess(d.Access)
		if err != nil {
			return nil, ruleErr(i, "access", "%v", err)
		}
		r.Access = acc.String()
		if r.Type == 'a' && (r.Major != Wildcard || r.Minor != Wildcard || acc != accAll) {
			c, b := r, r
			c.Type, b.Type = 'c', 'b'
			out = append(out, c, b)
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

// DefaultRules allow what every container needs: the default nodes, the console, ptmx and the pty
// slaves, and mknod (not open) of any char or block device.
func DefaultRules() []Rule {
	c := func(major, minor int64, access string) Rule {
		return Rule{Type: 'c', Major: major, Minor: minor, Access: access, Allow: true}
	}
	return []Rule{
		c(1, 3, "rwm"),             // null
		c(1, 5, "rwm"),             // zero
		c(1, 7, "rwm"),             // full
		c(1, 8, "rwm"),             // random
		c(1, 9, "rwm"),             // urandom
		c(5, 0, "rwm"),             // tty
		c(5, 1, "rwm"),             // console
		c(5, 2, "rwm"),             // ptmx
		c(136, Wildcard, "rwm"),    // pts/*
		c(Wildcard, Wildcard, "m"), // mknod of any char device
		{Type: 'b', Major: Wildcard, Minor: Wildcard, Access: "m", Allow: true}, // and block device
	}
}

// DenyAll is the rule that resets a list to "no device".
func DenyAll() Rule { return Rule{Type: 'a', Major: Wildcard, Minor: Wildcard, Access: "rwm"} }

// AllowAll is the rule that resets a list to "every device".
func AllowAll() Rule {
	return Rule{Type: 'a', Major: Wildcard, Minor: Wildcard, Access: "rwm", Allow: true}
}

// PodDefaultRules are a pod cgroup's rules before any container: deny all, then DefaultRules.
func PodDefaultRules() []Rule { return append([]Rule{DenyAll()}, DefaultRules()...) }

// access is a set of device access bits, with the values of BPF_DEVCG_ACC_*.
type access uint8

const (
	accMknod access = 1
	accRead  access = 2
	accWrite access = 4
	accAll          = accMknod | accRead | accWrite
)

func parseAccess(s string) (access, error) {
	if s == "" {
		return accAll, nil
	}
	var a access
	for _, ch := range s {
		switch ch {
		case 'r':
			a |= accRead
		case 'w':
			a |= accWrite
		case 'm':
			a |= accMknod
		default:
			return 0, fmt.Errorf("%q has %q, not one of r, w, m", s, ch)
		}
	}
	return a, nil
}

func (a access) String() string {
	var b strings.Builder
	if a&accRead != 0 {
		b.WriteByte('r')
	}
	if a&accWrite != 0 {
		b.WriteByte('w')
	}
	if a&accMknod != 0 {
		b.WriteByte('m')
	}
	return b.String()
}
