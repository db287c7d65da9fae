package capabilities

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

var (
	// ErrUnknown means no name in process.capabilities is a capability this library and
	// kernel know. (Some unknown names among known ones are only warnings.)
	ErrUnknown = errors.New("unknown capability")
	// ErrInvalid means the sets cannot hold together on Linux: effective must be within
	// permitted, ambient within permitted and inheritable, inheritable within bounding.
	ErrInvalid = errors.New("invalid capability sets")
)

// Set is a planned capability state: the five sets of a process as sorted, duplicate-free
// capability numbers (JSON numbers on the wire).
type Set struct {
	Bounding    []capability.Cap `json:"bounding"`
	Effective   []capability.Cap `json:"effective"`
	Permitted   []capability.Cap `json:"permitted"`
	Inheritable []capability.Cap `json:"inheritable"`
	Ambient     []capability.Cap `json:"ambient"`
}

// Plan turns process.capabilities into a Set. A nil spec plans five empty sets: a process
// without a capabilities section gets no capability at all.
//
// Names are the spec's ("CAP_NET_RAW"), matched exactly. A name this library does not know, or
// one the running kernel does not have (above /proc/sys/kernel/cap_last_cap), is left out with a
// warning on log: no process on this kernel can hold it, and leaving it out only ever grants
// less. If no name of the whole section is usable, that is an ErrUnknown error listing them: a
// spec whose every name is wrong (lower case, no CAP_ prefix) is a spec bug, not a request for
// no capabilities.
func Plan(spec *specs.LinuxCapabilities, log *slog.Logger) (Set, error) {
	last, err := capability.LastCap()
	if err != nil {
		return Set{}, fmt.Errorf("capabilities: %w", err)
	}
	return plan(spec, log, last)
}

// plan is Plan on a kernel whose highest capability is last.
func plan(spec *specs.LinuxCapabilities, log *slog.Logger, last capability.Cap) (Set, error) {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := Set{Bounding: []capability.Cap{}, Effective: []capability.Cap{}, Permitted: []capability.Cap{},
		Inheritable: []capability.Cap{}, Ambient: []capability.Cap{}}
	if spec == nil {
		return s, nil
	}
	known := map[string]capability.Cap{}
	for _, c := range capability.ListKnown() {
		known[Name(c)] = c
	}
	var unknown []string
	usable := 0
	parse := func(field string, names []string) []capability.Cap {
		out := []capability.Cap{}
		for _, n := range names {
			c, ok := known[n]
			switch {
			case !ok:
				log.Warn("unknown capability left out", "field", "process.capabilities."+field, "name", n)
			case c > last:
				log.Warn("capability not supported by this kernel left out", "field", "process.capabilities."+field,
					"name", n, "cap_last_cap", int(last))
				ok = false
			}
			if !ok {
				if !slices.Contains(unknown, n) {
					unknown = append(unknown, n)
				}
				continue
			}
			usable++
			out = append(out, c)
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	s.Bounding = parse("bounding", spec.Bounding)
	s.Effective = parse("effective", spec.Effective)
	s.Permitted = parse("permitted", spec.Permitted)
	s.Inheritable = parse("inheritable", spec.Inheritable)
	s.Ambient = parse("ambient", spec.Ambient)
	if len(unknown) > 0 && usable == 0 {
		return Set{}, fmt.Errorf("process.capabilities: %w: every name is unknown to this kernel: %s",
			ErrUnknown, strings.Join(unknown, ", "))
	}
	if err := s.check(); err != nil {
		return Set{}, err
	}
	return s, nil
}

// check enforces what capset(2) and PR_CAP_AMBIENT_RAISE would refuse anyway, so the error comes
// from planning and names the field. Inheritable within bounding assumes the caller's
// inheritable set is empty, as an agent's is.
func (s Set) check() error {
	for _, r := range []struct {
		field, within string
		sub           []capability.Cap
		super         uint64
	}{
		{"effective", "permitted", s.Effective, mask(s.Permitted)},
		{"ambient", "permitted", s.Ambient, mask(s.Permitted)},
		{"ambient", "inheritable", s.Ambient, mask(s.Inheritable)},
		{"inheritable", "bounding", s.Inheritable, mask(s.Bounding)},
	} {
		if extra := mask(r.sub) &^ r.super; extra != 0 {
			return fmt.Errorf("process.capabilities.%s: %w: %s not in %s", r.field, ErrInvalid, names(extra), r.within)
		}
	}
	return nil
}

// Name is the spec's name of c, e.g. "CAP_NET_RAW".
func Name(c capability.Cap) string { return "CAP_" + strings.ToUpper(short(c)) }

// short is the library's lower-case name of c, or its number when the library has none.
func short(c capability.Cap) string {
	if s := c.String(); s != "unknown" {
		return s
	}
	return fmt.Sprint(int(c))
}

// Masks returns the five sets as kernel bit masks, in the order and format of
// /proc/<pid>/status: CapInh, CapPrm, CapEff, CapBnd, CapAmb.
func (s Set) Masks() (inh, prm, eff, bnd, amb uint64) {
	return mask(s.Inheritable), mask(s.Permitted), mask(s.Effective), mask(s.Bounding), mask(s.Ambient)
}

// String lists the five sets by name, e.g.
// "bounding=chown,kill effective=kill permitted=kill inheritable=none ambient=none".
func (s Set) String() string {
	var b strings.Builder
	for i, f := range []struct {
		name string
		caps []capability.Cap
	}{{"bounding", s.Bounding}, {"effective", s.Effective}, {"permitted", s.Permitted},
		{"inheritable", s.Inheritable}, {"ambient", s.Ambient}} {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(f.name + "=")
		if len(f.caps) == 0 {
			b.WriteString("none")
		}
		for j, c := range f.caps {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(short(c))
		}
	}
	return b.String()
}

func mask(caps []capability.Cap) uint64 {
	var m uint64
	for _, c := range caps {
		if c >= 0 && c < 64 {
			m |= 1 << uint(c)
		}
	}
	return m
}

func fromMask(m uint64) []capability.Cap {
	out := []capability.Cap{}
	for c := capability.Cap(0); c < 64; c++ {
		if m&(1<<uint(c)) != 0 {
			out = append(out, c)
		}
	}
	return out
}

// names lists the capabilities in m by spec name.
func names(m uint64) string {
	var out []string
	for _, c := range fromMask(m) {
		out = append(out, Name(c))
	}
	return strings.Join(out, ", ")
}
