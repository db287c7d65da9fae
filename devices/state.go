package devices

import (
	"fmt"
	"slices"
	"strings"
)

// state is what a list of rules leaves in a v1 devices cgroup, computed the way the kernel does:
// a default verdict and exceptions to it. It is the normal form both the v1 writer and the v2
// program generator work from, so rules mean the same on both.
type state struct {
	allow bool        // default verdict
	ex    []exception // in insertion order, one per key; exceptions have the verdict !allow
}

type key struct {
	typ          rune // 'b' or 'c'
	major, minor int64
}

type exception struct {
	key
	acc access
}

// effective replays rules from "deny all", as successive writes to devices.allow/deny would.
func effective(rules []Rule) state {
	var s state
	for _, r := range rules {
		s.apply(r)
	}
	return s
}

func (s *state) apply(r Rule) {
	if r.Type == 'a' {
		// Any 'a' line resets the cgroup, whatever its numbers and access (kernel behaviour).
		*s = state{allow: r.Allow}
		return
	}
	acc, _ := parseAccess(r.Access)
	k := key{r.Type, r.Major, r.Minor}
	if r.Allow == s.allow {
		s.remove(k, acc)
	} else {
		s.add(k, acc)
	}
}

// add merges acc into the exception of exactly k, or appends one.
func (s *state) add(k key, acc access) {
	for i := range s.ex {
		if s.ex[i].key == k {
			s.ex[i].acc |= acc
			return
		}
	}
	s.ex = append(s.ex, exception{k, acc})
}

// remove clears acc from the exception of exactly k (never from wider or narrower ones, as v1).
func (s *state) remove(k key, acc access) {
	for i := range s.ex {
		if s.ex[i].key == k {
			s.ex[i].acc &^= acc
			if s.ex[i].acc == 0 {
				s.ex = slices.Delete(s.ex, i, i+1)
			}
			return
		}
	}
}

func (s state) find(k key) access {
	for _, e := range s.ex {
		if e.key == k {
			return e.acc
		}
	}
	return 0
}

// allowsAll reports whether every access to every device is allowed.
func (s state) allowsAll() bool {
	if s.allow {
		return len(s.ex) == 0
	}
	return s.find(key{'c', Wildcard, Wildcard}) == accAll && s.find(key{'b', Wildcard, Wildcard}) == accAll
}

// equal compares as the kernel would list them: exceptions as a set.
func (s state) equal(o state) bool {
	if s.allow != o.allow || len(s.ex) != len(o.ex) {
		return false
	}
	for _, e := range s.ex {
		if o.find(e.key) != e.acc {
			return false
		}
	}
	return true
}

// union is a state that allows what either allows. A side that allows by default makes the union
// allow everything (the pod's allow-all mode).
func union(a, b state) state {
	if a.allow || b.allow {
		return state{allow: true}
	}
	u := state{ex: slices.Clone(a.ex)}
	for _, e := range b.ex {
		u.add(e.key, e.acc)
	}
	return u
}

// rules renders s as the shortest rule list that produces it.
func (s state) rules() []Rule {
	out := []Rule{{Type: 'a', Major: Wildcard, Minor: Wildcard, Access: "rwm", Allow: s.allow}}
	for _, e := range s.ex {
		out = append(out, Rule{Type: e.typ, Major: e.major, Minor: e.minor, Access: e.acc.String(), Allow: !s.allow})
	}
	return out
}

func (s state) String() string {
	var b strings.Builder
	for i, r := range s.rules() {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(r.String())
	}
	return b.String()
}

// validateRules checks rules built by hand rather than by PlanRules.
func validateRules(rules []Rule) error {
	for i, r := range rules {
		var err error
		switch {
		case r.Type != 'a' && r.Type != 'b' && r.Type != 'c':
			err = fmt.Errorf("type %q is not one of a, b, c", r.Type)
		case r.Major < Wildcard || r.Minor < Wildcard:
			err = fmt.Errorf("%s: negative number", r.line())
		case r.Access == "":
			err = fmt.Errorf("%s: empty access", r.line())
		}
		if err == nil {
			_, err = parseAccess(r.Access)
		}
		if err != nil {
			return fmt.Errorf("rule %d: %w: %w", i, ErrInvalidRule, err)
		}
	}
	return nil
}
