package namespaces

import (
	"fmt"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Namespace is one entry of a plan: a new namespace of Type when Path is empty, else the one at Path.
type Namespace struct {
	Type Type   `json:"type"`
	Path string `json:"path,omitempty"`
}

// NSPlan is what a container's (or an exec'd process's) namespaces are to be. It is plain data: the
// parent sends it to the child as JSON.
type NSPlan struct {
	// Namespaces has at most one entry per type, in the order of [Types].
	Namespaces  []Namespace                      `json:"namespaces,omitempty"`
	UIDMappings []specs.LinuxIDMapping           `json:"uidMappings,omitempty"`
	GIDMappings []specs.LinuxIDMapping           `json:"gidMappings,omitempty"`
	TimeOffsets map[string]specs.LinuxTimeOffset `json:"timeOffsets,omitempty"`
	// DeferCgroup leaves a new cgroup namespace out of the clone: the child creates it with
	// [UnshareCgroup] once the parent has placed it in its cgroup (cgroup v1 cannot place a process
	// before it runs, and a cgroup namespace's root is the cgroup its creator is in).
	DeferCgroup bool `json:"deferCgroup,omitempty"`
	// Exec, when set, joins every namespace of a running process instead (see [ForExec]).
	Exec *ExecJoin `json:"exec,omitempty"`
}

// ExecJoin joins the namespaces Types of process PID through a pidfd.
type ExecJoin struct {
	PID   int    `json:"pid"`
	Types []Type `json:"types"`
}

// maxIDRanges is the kernel's limit on lines in uid_map and gid_map.
const maxIDRanges = 340

// Plan validates the namespace part of spec and returns the plan. Paths are opened and checked with
// the nsfs ioctl (so planning reads the filesystem), but no kernel state is created.
func Plan(spec *specs.Spec) (*NSPlan, error) {
	p := &NSPlan{}
	if spec == nil {
		return p, nil
	}
	var lin specs.Linux
	if spec.Linux != nil {
		lin = *spec.Linux
	}
	seen := map[Type]int{}
	for i, ns := range lin.Namespaces {
		field := fmt.Sprintf("linux.namespaces[%d]", i)
		t := Type(ns.Type)
		if !t.Valid() {
			return nil, fieldErr(field+".type", ErrUnknownType, "%q", ns.Type)
		}
		if j, dup := seen[t]; dup {
			return nil, fieldErr(field+".type", ErrDuplicate, "%q (also linux.namespaces[%d])", t, j)
		}
		seen[t] = i
		if ns.Path != "" {
			if !strings.HasPrefix(ns.Path, "/") {
				return nil, fieldErr(field+".path", ErrNotNamespace, "%q is not absolute", ns.Path)
			}
			f, err := openNS(ns.Path, t)
			if err != nil {
				return nil, &FieldError{Field: field + ".path", Err: err}
			}
			f.Close()
		}
	}
	for _, t := range Types {
		if i, ok := seen[t]; ok {
			p.Namespaces = append(p.Namespaces, Namespace{Type: t, Path: lin.Namespaces[i].Path})
		}
	}

	newUser := p.Creates(User)
	for _, m := range []struct {
		field string
		maps  []specs.LinuxIDMapping
	}{{"linux.uidMappings", lin.UIDMappings}, {"linux.gidMappings", lin.GIDMappings}} {
		if len(m.maps) > 0 && !newUser {
			return nil, fieldErr(m.field, ErrNoUserNS, "")
		}
		if newUser && len(m.maps) == 0 {
			return nil, fieldErr(m.field, ErrNoMappings, "")
		}
		if err := checkMappings(m.field, m.maps); err != nil {
			return nil, err
		}
	}
	p.UIDMappings = clone(lin.UIDMappings)
	p.GIDMappings = clone(lin.GIDMappings)

	if len(lin.TimeOffsets) > 0 {
		if !p.Creates(Time) {
			return nil, fieldErr("linux.timeOffsets", ErrTimeOffsets, "set without a new time namespace")
		}
		p.TimeOffsets = make(map[string]specs.LinuxTimeOffset, len(lin.TimeOffsets))
		for clock, off := range lin.TimeOffsets {
			if clock != "monotonic" && clock != "boottime" {
				return nil, fieldErr(fmt.Sprintf("linux.timeOffsets[%q]", clock), ErrTimeOffsets, "unknown clock (want monotonic or boottime)")
			}
			if off.Nanosecs >= 1e9 {
				return nil, fieldErr(fmt.Sprintf("linux.timeOffsets[%q].nanosecs", clock), ErrTimeOffsets, "%d is not below 1e9", off.Nanosecs)
			}
			p.TimeOffsets[clock] = off
		}
	}

	if spec.Hostname != "" && !p.Creates(UTS) {
		return nil, fieldErr("hostname", ErrNeedUTS, "")
	}
	if spec.Domainname != "" && !p.Creates(UTS) {
		return nil, fieldErr("domainname", ErrNeedUTS, "")
	}

	return p, nil
}

func checkMappings(field string, maps []specs.LinuxIDMapping) error {
	if len(maps) > maxIDRanges {
		return fieldErr(field, ErrMappings, "%d ranges, the kernel takes at most %d", len(maps), maxIDRanges)
	}
	sorted := clone(maps)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].ContainerID < sorted[j].ContainerID })
	for i, m := range maps {
		f := fmt.Sprintf("%s[%d]", field, i)
		if m.Size == 0 {
			return fieldErr(f+".size", ErrMappings, "size 0")
		}
		if uint64(m.ContainerID)+uint64(m.Size) >= 1<<32 || uint64(m.HostID)+uint64(m.Size) >= 1<<32 {
			return fieldErr(f, ErrMappings, "range reaches 2^32 (the kernel reserves id 4294967295)")
		}
	}
	for i := 1; i < len(sorted); i++ {
		if uint64(sorted[i-1].ContainerID)+uint64(sorted[i-1].Size) > uint64(sorted[i].ContainerID) {
			return fieldErr(field, ErrMappings, "container ranges overlap at %d", sorted[i].ContainerID)
		}
	}
	hostSorted := clone(maps)
	sort.Slice(hostSorted, func(i, j int) bool { return hostSorted[i].HostID < hostSorted[j].HostID })
	for i := 1; i < len(hostSorted); i++ {
		if uint64(hostSorted[i-1].HostID)+uint64(hostSorted[i-1].Size) > uint64(hostSorted[i].HostID) {
			return fieldErr(field, ErrMappings, "host ranges overlap at %d", hostSorted[i].HostID)
		}
	}
	return nil
}

func clone[T any](s []T) []T {
	if s == nil {
		return nil
	}
	return append([]T(nil), s...)
}

func (p *NSPlan) find(t Type) (Namespace, bool) {
	for _, ns := range p.Namespaces {
		if ns.Type == t {
			return ns, true
		}
	}
	return Namespace{}, false
}

// Creates reports whether the plan creates a new namespace of type t.
func (p *NSPlan) Creates(t Type) bool {
	ns, ok := p.find(t)
	return ok && ns.Path == ""
}

// Path returns the path of the namespace of type t the plan joins ("" if it creates one or keeps the
// parent's).
func (p *NSPlan) Path(t Type) string {
	ns, _ := p.find(t)
	return ns.Path
}

func (p *NSPlan) String() string {
	var b strings.Builder
	if p.Exec != nil {
		fmt.Fprintf(&b, "exec pid %d:", p.Exec.PID)
		for _, t := range p.Exec.Types {
			b.WriteString(" " + string(t))
		}
		return b.String()
	}
	for i, ns := range p.Namespaces {
		if i > 0 {
			b.WriteByte(' ')
		}
		if ns.Path == "" {
			fmt.Fprintf(&b, "%s=new", ns.Type)
		} else {
			fmt.Fprintf(&b, "%s=%s", ns.Type, ns.Path)
		}
	}
	if len(p.Namespaces) == 0 {
		b.WriteString("(parent's namespaces)")
	}
	for _, m := range []struct {
		name string
		maps []specs.LinuxIDMapping
	}{{"uid_map", p.UIDMappings}, {"gid_map", p.GIDMappings}} {
		if len(m.maps) > 0 {
			fmt.Fprintf(&b, " %s=[%s]", m.name, formatMap(m.maps, ";"))
		}
	}
	if len(p.TimeOffsets) > 0 {
		b.WriteString(" timens_offsets=[" + strings.TrimSuffix(strings.ReplaceAll(formatOffsets(p.TimeOffsets), "\n", ";"), ";") + "]")
	}
	if p.DeferCgroup {
		b.WriteString(" (cgroup deferred)")
	}
	return b.String()
}

// formatMap renders mappings as the kernel's uid_map/gid_map lines, joined by sep.
func formatMap(maps []specs.LinuxIDMapping, sep string) string {
	lines := make([]string, len(maps))
	for i, m := range maps {
		lines[i] = fmt.Sprintf("%d %d %d", m.ContainerID, m.HostID, m.Size)
	}
	return strings.Join(lines, sep)
}

// formatOffsets renders offsets as /proc/<pid>/timens_offsets lines, in a stable order.
func formatOffsets(offs map[string]specs.LinuxTimeOffset) string {
	var b strings.Builder
	for _, clock := range []string{"monotonic", "boottime"} {
		if o, ok := offs[clock]; ok {
			fmt.Fprintf(&b, "%s %d %d\n", clock, o.Secs, o.Nanosecs)
		}
	}
	return b.String()
}
