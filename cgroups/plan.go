package cgroups

import (
	"fmt"
	"log/slog"
	"path"
	"path/filepath"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Options tune [Plan].
type Options struct {
	// Parent is the cgroup (absolute, e.g. "/libjail") a relative cgroupsPath is resolved under.
	// Empty means "/".
	Parent string `json:"parent,omitempty"`
	// Hierarchies are the mounted hierarchies, normally from [DetectHierarchies]. Nil means
	// [DefaultHierarchies] of the layout.
	Hierarchies []Hierarchy `json:"hierarchies,omitempty"`
	// Pod marks a cgroup that holds only child cgroups (a pod's, whose containers get cgroups below
	// it): Create enables in its own cgroup.subtree_control every cgroup2 controller it has, so the
	// children can use them. On cgroup2 no process can then join it (the no-internal-process rule).
	Pod bool `json:"pod,omitempty"`
	// Logger receives warnings (nil discards them).
	Logger *slog.Logger `json:"-"`
}

// Write is one value written to one cgroup interface file.
type Write struct {
	// Hierarchy is the key of the directory in [CgroupPlan.Dirs] ([Hierarchy.Key]).
	Hierarchy string `json:"hierarchy"`
	File      string `json:"file"`
	Value     string `json:"value"`
	// Field is the spec field the value comes from, named in errors.
	Field string `json:"field"`
	// AltFile and AltValue are written instead when File does not exist on the running kernel
	// (e.g. blkio.weight without CFQ falls back to blkio.bfq.weight).
	AltFile  string `json:"altFile,omitempty"`
	AltValue string `json:"altValue,omitempty"`
}

func (w Write) String() string {
	s := fmt.Sprintf("%s/%s = %s", w.Hierarchy, w.File, w.Value)
	if w.AltFile != "" {
		s += fmt.Sprintf(" (else %s = %s)", w.AltFile, w.AltValue)
	}
	return s
}

// CgroupPlan is everything needed to create and configure one cgroup: plain data, JSON-serialisable.
type CgroupPlan struct {
	// Path is the resolved absolute cgroup path, e.g. "/libjail/pod1/ctr1".
	Path   string `json:"path"`
	Layout Layout `json:"layout"`
	// Hierarchies are those the plan was made against.
	Hierarchies []Hierarchy `json:"hierarchies"`
	// Dirs maps each hierarchy key to the cgroup's directory in it.
	Dirs map[string]string `json:"dirs"`
	// Writes are applied in order after the directories exist.
	Writes []Write `json:"writes,omitempty"`
	// CheckBeforeUpdate asks Update to refuse a memory limit below the current usage.
	CheckBeforeUpdate bool `json:"checkBeforeUpdate,omitempty"`
	// MemoryLimit is the planned memory limit (-1 unlimited, 0 unset), kept for CheckBeforeUpdate.
	MemoryLimit int64 `json:"memoryLimit,omitempty"`
	// Pod is [Options.Pod].
	Pod bool `json:"pod,omitempty"`
}

// String lists the directories and the writes, one per line.
func (p *CgroupPlan) String() string {
	var b strings.Builder
	pod := ""
	if p.Pod {
		pod = ", pod"
	}
	fmt.Fprintf(&b, "cgroup %s (%s%s)\n", p.Path, p.Layout, pod)
	for _, h := range p.Hierarchies {
		fmt.Fprintf(&b, "  dir %s = %s\n", h.Key(), p.Dirs[h.Key()])
	}
	for _, w := range p.Writes {
		fmt.Fprintf(&b, "  %s\n", w)
	}
	return b.String()
}

// Plan resolves cgroupsPath (absolute, or relative to opts.Parent) and converts every resource field
// but devices into file writes in the hierarchy whose controller honours it: on Hybrid a v1 controller
// when one is mounted, else the unified hierarchy. A field no available controller can honour is a
// [*FieldError] wrapping [ErrNotSupported]; a malformed value wraps [ErrInvalid]. Plan is pure.
func Plan(cgroupsPath string, res *specs.LinuxResources, layout Layout, opts Options) (*CgroupPlan, error) {
	hs := opts.Hierarchies
	if hs == nil {
		hs = DefaultHierarchies(layout)
	}
	if len(hs) == 0 {
		return nil, fieldErr("linux.cgroupsPath", ErrNotSupported, "no cgroup hierarchy")
	}
	if got := LayoutOf(hs); got != layout {
		return nil, fieldErr("linux.cgroupsPath", ErrInvalid, "hierarchies are %s, layout says %s", got, layout)
	}
	p, err := resolvePath(cgroupsPath, opts.Parent)
	if err != nil {
		return nil, err
	}
	plan := &CgroupPlan{Path: p, Layout: layout, Hierarchies: hs, Dirs: map[string]string{}, Pod: opts.Pod}
	for _, h := range hs {
		plan.Dirs[h.Key()] = dirIn(h, p)
	}
	if res != nil {
		c := converter{plan: plan, hs: hs, log: opts.Logger}
		if err := c.convert(res); err != nil {
			return nil, err
		}
	}
	return plan, nil
}

// resolvePath cleans the cgroup path and refuses anything that could climb out of the parent.
func resolvePath(cgroupsPath, parent string) (string, error) {
	const field = "linux.cgroupsPath"
	if cgroupsPath == "" {
		return "", fieldErr(field, ErrInvalid, "empty")
	}
	for _, el := range strings.Split(cgroupsPath, "/") {
		if el == ".." {
			return "", fieldErr(field, ErrInvalid, "%q has a .. element", cgroupsPath)
		}
	}
	if strings.ContainsRune(cgroupsPath, ':') {
		// systemd's slice:prefix:name form: there is no systemd to ask.
		return "", fieldErr(field, ErrNotSupported, "%q looks like a systemd path; only cgroupfs paths are supported", cgroupsPath)
	}
	if !path.IsAbs(cgroupsPath) {
		if parent == "" {
			parent = "/"
		}
		if !path.IsAbs(parent) || slices.Contains(strings.Split(parent, "/"), "..") {
			return "", fieldErr("parent", ErrInvalid, "%q is not a clean absolute cgroup path", parent)
		}
		cgroupsPath = path.Join(parent, cgroupsPath)
	}
	p := path.Clean(cgroupsPath)
	if p == "/" {
		return "", fieldErr(field, ErrInvalid, "the root cgroup cannot be managed")
	}
	return p, nil
}

// dirIn is the directory of cgroup p in hierarchy h, accounting for a mount of a sub-cgroup.
func dirIn(h Hierarchy, p string) string {
	rel := p
	if h.Root != "" && h.Root != "/" {
		if r, ok := strings.CutPrefix(p, h.Root); ok && (r == "" || r[0] == '/') {
			rel = r
		}
	}
	return filepath.Join(h.Mount, rel)
}

// PlanChild plans a cgroup nested in this one: a container's cgroup under its pod's. name is
// relative to p.Path and the layout and hierarchies are p's. On cgroup2 the child can use only the
// controllers p delegates: plan p with [Options.Pod] so its Create enables them.
func (p *CgroupPlan) PlanChild(name string, res *specs.LinuxResources, logger *slog.Logger) (*CgroupPlan, error) {
	if path.IsAbs(name) {
		return nil, fieldErr("linux.cgroupsPath", ErrInvalid, "%q: a child cgroup path is relative to its parent", name)
	}
	return Plan(name, res, p.Layout, Options{Parent: p.Path, Hierarchies: p.Hierarchies, Logger: logger})
}
