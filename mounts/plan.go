package mounts

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Options are what planning needs beyond the spec.
type Options struct {
	BundleDir       string // Root.Path and relative bind sources are relative to it
	UserNamespace   bool   // the container has a new user namespace (also true when the spec asks for one)
	CgroupNamespace bool   // the container has a new cgroup namespace (also true when the spec asks for one)
	NoPivot         bool   // use MS_MOVE+chroot instead of pivot_root (chosen anyway when "/" is the initramfs)
	Logger          *slog.Logger
}

// RootfsPlan is the whole mount work for one container, in order. It is plain data: the parent plans,
// sends it to the child as JSON, and the child applies it step by step.
type RootfsPlan struct {
	Root     string `json:"root"`               // absolute host path of the container root
	Readonly bool   `json:"readonly,omitempty"` // root.readonly
	// RootPropagation is the MS_* propagation of linux.rootfsPropagation (0: not set; the root
	// preparation then uses rslave and leaves "/" as it is after the switch).
	RootPropagation uint64   `json:"rootPropagation,omitempty"`
	Mounts          []Mount  `json:"mounts"`
	DevTmpfs        bool     `json:"privateDev,omitempty"` // /dev is a tmpfs libjail fills
	MaskedPaths     []string `json:"maskedPaths,omitempty"`
	ReadonlyPaths   []string `json:"readonlyPaths,omitempty"`
	NoPivot         bool     `json:"noPivot,omitempty"`
	UserNamespace   bool     `json:"userNamespace,omitempty"`
	CgroupNamespace bool     `json:"cgroupNamespace,omitempty"`
	// NewCgroupNamespace: the spec creates the cgroup namespace (rather than joining one), so its
	// root must be the container's own cgroup.
	NewCgroupNamespace bool `json:"newCgroupNamespace,omitempty"`

	log   *slog.Logger
	state applyState
}

// Mount is one planned mount.
type Mount struct {
	Field       string   `json:"field"`          // "mounts[3]"; "libjail" for mounts libjail adds (/dev)
	Destination string   `json:"destination"`    // absolute and clean; resolved inside the root when applied
	Type        string   `json:"type,omitempty"` // filesystem type; empty for a bind
	Source      string   `json:"source,omitempty"`
	Bind        bool     `json:"bind,omitempty"`
	Recursive   bool     `json:"recursive,omitempty"` // rbind
	Attr        Attr     `json:"attr"`                // the top mount's attributes
	RecAttr     Attr     `json:"recAttr"`             // attributes of the whole tree (rro, rnosuid...)
	SBFlags     []string `json:"sbFlags,omitempty"`   // superblock flags for fsconfig (ro, sync...)
	Data        []Param  `json:"data,omitempty"`      // filesystem parameters for fsconfig
	Propagation []uint64 `json:"propagation,omitempty"`
	IDMap       *IDMap   `json:"idmap,omitempty"`

	literal bool // a "cgroup" mount built by mountCgroup: a real cgroup v1 filesystem
}

// SetLogger sets where warnings go (nil: nowhere); a RootfsPlan decoded from JSON has none.
func (p *RootfsPlan) SetLogger(l *slog.Logger) { p.log = l }

func (p *RootfsPlan) logger() *slog.Logger {
	if p.log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.log
}

// Rootfs returns the absolute host path of the container root.
func (p *RootfsPlan) Rootfs() string { return p.Root }

// PrivateDev reports whether libjail builds /dev as a tmpfs, so the caller must create the default
// device nodes in it (after MountAll, before EnterRoot).
func (p *RootfsPlan) PrivateDev() bool { return p.DevTmpfs }

// procAllowed are the only files under /proc a mount may cover: those lxcfs-style tools emulate.
var procAllowed = map[string]bool{
	"/proc/cpuinfo":   true,
	"/proc/meminfo":   true,
	"/proc/stat":      true,
	"/proc/uptime":    true,
	"/proc/loadavg":   true,
	"/proc/diskstats": true,
	"/proc/swaps":     true,
	"/proc/net/dev":   true,
}

// rootPropagation are the values of linux.rootfsPropagation: the same names as the mount options.
var rootPropagation = propagationOptions

// Plan plans the mounts of spec. It touches nothing: every error it returns names the spec field.
func Plan(spec *specs.Spec, opts Options) (*RootfsPlan, error) {
	if spec == nil || spec.Root == nil || spec.Root.Path == "" {
		return nil, &Error{Field: "root.path", Op: "plan", Err: fmt.Errorf("%w: missing", ErrInvalid)}
	}
	root := spec.Root.Path
	if err := checkString(root); err != nil {
		return nil, &Error{Field: "root.path", Op: "plan", Err: err}
	}
	if !filepath.IsAbs(root) {
		if opts.BundleDir == "" || !filepath.IsAbs(opts.BundleDir) {
			return nil, &Error{Field: "root.path", Op: "plan", Err: fmt.Errorf("%w: %q is relative and the bundle directory is not an absolute path", ErrInvalid, root)}
		}
		root = filepath.Join(opts.BundleDir, root)
	}
	p := &RootfsPlan{
		Root:            filepath.Clean(root),
		Readonly:        spec.Root.Readonly,
		NoPivot:         opts.NoPivot,
		UserNamespace:   opts.UserNamespace,
		CgroupNamespace: opts.CgroupNamespace,
		log:             opts.Logger,
	}
	if p.Root == "/" {
		return nil, &Error{Field: "root.path", Op: "plan", Err: fmt.Errorf("%w: the host root cannot be a container root", ErrInvalid)}
	}
	if l := spec.Linux; l != nil {
		for _, ns := range l.Namespaces {
			switch ns.Type {
			case specs.UserNamespace:
				p.UserNamespace = true
			case specs.CgroupNamespace:
				p.CgroupNamespace = true
				p.NewCgroupNamespace = ns.Path == ""
			}
		}
		if l.RootfsPropagation != "" {
			f, ok := rootPropagation[l.RootfsPropagation]
			if !ok {
				return nil, &Error{Field: "linux.rootfsPropagation", Op: "plan", Err: fmt.Errorf("%w: unknown propagation %q", ErrInvalid, l.RootfsPropagation)}
			}
			p.RootPropagation = f
		}
		var err error
		if p.MaskedPaths, err = cleanPaths("linux.maskedPaths", l.MaskedPaths); err != nil {
			return nil, err
		}
		if p.ReadonlyPaths, err = cleanPaths("linux.readonlyPaths", l.ReadonlyPaths); err != nil {
			return nil, err
		}
	}
	for i, sm := range spec.Mounts {
		m, err := p.planMount(fmt.Sprintf("mounts[%d]", i), sm, opts.BundleDir)
		if err != nil {
			return nil, err
		}
		p.Mounts = append(p.Mounts, m)
	}
	p.planDev()
	if spec.Linux != nil && spec.Linux.MountLabel != "" {
		if err := p.label(spec.Linux.MountLabel); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// labelled are the filesystems that take linux.mountLabel as their SELinux context, as container
// engines do it: the ones a container writes to that have no labels of their own.
var labelled = map[string]bool{"tmpfs": true, "devpts": true, "mqueue": true}

// label adds linux.mountLabel as the context= parameter of each such mount. Without SELinux the
// kernel refuses the parameter, so a label that cannot be applied fails the mount, naming it.
func (p *RootfsPlan) label(l string) error {
	if err := checkString(l); err != nil {
		return &Error{Field: "linux.mountLabel", Op: "plan", Err: err}
	}
	for i, m := range p.Mounts {
		if m.Bind || !labelled[m.Type] {
			continue
		}
		for _, d := range m.Data {
			if d.Key == "context" {
				return &Error{Field: m.Field, Path: m.Destination, Op: "plan", Err: fmt.Errorf("%w: both a context= option and linux.mountLabel", ErrInvalid)}
			}
		}
		p.Mounts[i].Data = append(m.Data[:len(m.Data):len(m.Data)], Param{Key: "context", Value: l})
	}
	return nil
}

func cleanPaths(field string, in []string) ([]string, error) {
	var out []string
	for i, s := range in {
		if err := checkString(s); err != nil {
			return nil, &Error{Field: fmt.Sprintf("%s[%d]", field, i), Op: "plan", Err: err}
		}
		if !filepath.IsAbs(s) {
			return nil, &Error{Field: fmt.Sprintf("%s[%d]", field, i), Path: s, Op: "plan", Err: fmt.Errorf("%w: not an absolute path", ErrInvalid)}
		}
		c := filepath.Clean(s)
		if c == "/" {
			return nil, &Error{Field: fmt.Sprintf("%s[%d]", field, i), Path: s, Op: "plan", Err: fmt.Errorf("%w: cannot apply to the whole root", ErrInvalid)}
		}
		out = append(out, c)
	}
	return out, nil
}

func (p *RootfsPlan) planMount(field string, sm specs.Mount, bundle string) (Mount, error) {
	fail := func(err error) (Mount, error) {
		return Mount{}, &Error{Field: field, Path: sm.Destination, Op: "plan", Err: err}
	}
	for _, str := range append([]string{sm.Destination, sm.Type, sm.Source}, sm.Options...) {
		if err := checkString(str); err != nil {
			return fail(err)
		}
	}
	if !filepath.IsAbs(sm.Destination) {
		return fail(fmt.Errorf("%w: destination is not an absolute path", ErrInvalid))
	}
	dest := filepath.Clean(sm.Destination)
	if dest == "/" {
		return fail(fmt.Errorf("%w: a mount cannot cover the whole root (that is root.path)", ErrInvalid))
	}
	o, err := parseOptions(sm.Options)
	if err != nil {
		return fail(err)
	}
	m := Mount{
		Field:       field,
		Destination: dest,
		Source:      sm.Source,
		Bind:        o.bind || sm.Type == "bind",
		Recursive:   o.rbind,
		Attr:        o.attr.attr(),
		RecAttr:     o.recAttr.attr(),
		Propagation: o.propagation,
		IDMap:       o.idmap,
	}
	if len(sm.UIDMappings) > 0 || len(sm.GIDMappings) > 0 {
		if m.IDMap == nil {
			return fail(fmt.Errorf("%w: uidMappings/gidMappings without the idmap or ridmap option", ErrInvalid))
		}
		m.IDMap.UIDMappings, m.IDMap.GIDMappings = sm.UIDMappings, sm.GIDMappings
	}
	if m.Bind {
		if sm.Type != "" && sm.Type != "bind" && sm.Type != "none" {
			p.logger().Warn("mounts: the type of a bind mount is ignored", "field", field, "type", sm.Type)
		}
		if sm.Source == "" {
			return fail(fmt.Errorf("%w: a bind mount needs a source", ErrInvalid))
		}
		if !filepath.IsAbs(sm.Source) {
			if bundle == "" {
				return fail(fmt.Errorf("%w: relative bind source %q and no bundle directory", ErrInvalid, sm.Source))
			}
			m.Source = filepath.Join(bundle, sm.Source)
		}
		for _, f := range o.sb {
			if f != "ro" && f != "rw" {
				return fail(fmt.Errorf("option %q: %w: a bind mount shares its source's superblock", f, ErrUnsupported))
			}
		}
		if len(o.data) > 0 {
			return fail(fmt.Errorf("option %q: %w: filesystem options have no effect on a bind mount", o.data[0], ErrUnsupported))
		}
	} else {
		if sm.Type == "" || sm.Type == "none" {
			return fail(fmt.Errorf("%w: no filesystem type and not a bind mount", ErrInvalid))
		}
		if strings.ContainsAny(sm.Type, "/ ,\x00") {
			return fail(fmt.Errorf("%w: filesystem type %q", ErrInvalid, sm.Type))
		}
		if m.IDMap != nil {
			return fail(fmt.Errorf("%w: idmap is only supported on bind mounts", ErrUnsupported))
		}
		if !m.RecAttr.Empty() {
			// A new filesystem has no submounts yet: the recursive form is the plain one.
			m.Attr = Attr{Set: m.Attr.Set&^m.RecAttr.Clr | m.RecAttr.Set, Clr: m.Attr.Clr&^m.RecAttr.Set | m.RecAttr.Clr}
			m.RecAttr = Attr{}
		}
		if sm.Type == "cgroup" && (len(o.data) > 0 || len(o.sb) > 1 || len(o.sb) == 1 && o.sb[0] != "ro" && o.sb[0] != "rw") {
			return fail(fmt.Errorf("%w: filesystem options on a cgroup mount (the view is built from the container's own cgroups)", ErrUnsupported))
		}
		m.Type = sm.Type
		m.SBFlags = o.sb
		m.Data = o.data
		if m.Source == "" {
			m.Source = sm.Type
		}
	}
	if m.IDMap != nil && !p.UserNamespace && len(m.IDMap.UIDMappings) == 0 && len(m.IDMap.GIDMappings) == 0 {
		return fail(fmt.Errorf("%w: idmap without mappings needs a container user namespace", ErrInvalid))
	}
	if m.IDMap != nil && (len(m.IDMap.UIDMappings) == 0) != (len(m.IDMap.GIDMappings) == 0) {
		return fail(fmt.Errorf("%w: idmap needs both uidMappings and gidMappings, or neither", ErrInvalid))
	}
	switch {
	case dest == "/proc":
		if !m.Bind && m.Type != "proc" {
			return fail(fmt.Errorf("%w: only proc (or a bind of a procfs) may be mounted on /proc", ErrUnsafe))
		}
	case strings.HasPrefix(dest, "/proc/"):
		if !m.Bind || !procAllowed[dest] {
			return fail(fmt.Errorf("%w: only binds onto the allow-list (%s) may go inside /proc", ErrUnsafe, allowedList()))
		}
	}
	if m.Type == "proc" && dest != "/proc" {
		p.logger().Warn("mounts: proc mounted away from /proc", "field", field, "destination", dest)
	}
	return m, nil
}

func allowedList() string {
	l := make([]string, 0, len(procAllowed))
	for k := range procAllowed {
		l = append(l, k)
	}
	slices.Sort(l)
	return strings.Join(l, ", ")
}

// String renders the plan one step a line, for logs and test failures.
func (p *RootfsPlan) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "root %s", p.Root)
	if p.Readonly {
		b.WriteString(" ro")
	}
	if p.RootPropagation != 0 {
		fmt.Fprintf(&b, " propagation=%s", propagationName(p.RootPropagation))
	}
	if p.NoPivot {
		b.WriteString(" no-pivot")
	}
	b.WriteByte('\n')
	for _, m := range p.Mounts {
		b.WriteString(m.String())
		b.WriteByte('\n')
	}
	if p.DevTmpfs {
		b.WriteString("dev: private tmpfs, symlinks fd stdin stdout stderr ptmx\n")
	}
	for _, s := range p.MaskedPaths {
		fmt.Fprintf(&b, "mask %s\n", s)
	}
	for _, s := range p.ReadonlyPaths {
		fmt.Fprintf(&b, "readonly %s\n", s)
	}
	return b.String()
}

func (m Mount) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: ", m.Field)
	switch {
	case m.Bind && m.Recursive:
		fmt.Fprintf(&b, "rbind %s", m.Source)
	case m.Bind:
		fmt.Fprintf(&b, "bind %s", m.Source)
	default:
		fmt.Fprintf(&b, "%s %s", m.Type, m.Source)
	}
	fmt.Fprintf(&b, " on %s", m.Destination)
	var opts []string
	opts = append(opts, attrNames(m.Attr, "")...)
	opts = append(opts, attrNames(m.RecAttr, "r")...)
	for _, f := range m.SBFlags {
		if f != "ro" && f != "rw" { // the superblock's ro/rw mirror the mount's, shown above
			opts = append(opts, f)
		}
	}
	for _, d := range m.Data {
		opts = append(opts, d.String())
	}
	for _, f := range m.Propagation {
		opts = append(opts, propagationName(f))
	}
	if m.IDMap != nil {
		opts = append(opts, "idmap")
		if m.IDMap.Recursive {
			opts[len(opts)-1] = "ridmap"
		}
	}
	if len(opts) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(opts, ","))
	}
	return b.String()
}

func attrNames(a Attr, prefix string) []string {
	var out []string
	bits := []struct {
		bit      uint64
		set, clr string
	}{
		{unix.MOUNT_ATTR_RDONLY, "ro", "rw"},
		{unix.MOUNT_ATTR_NOSUID, "nosuid", "suid"},
		{unix.MOUNT_ATTR_NODEV, "nodev", "dev"},
		{unix.MOUNT_ATTR_NOEXEC, "noexec", "exec"},
		{unix.MOUNT_ATTR_NODIRATIME, "nodiratime", "diratime"},
		{unix.MOUNT_ATTR_NOSYMFOLLOW, "nosymfollow", "symfollow"},
	}
	for _, x := range bits {
		switch {
		case a.Set&x.bit != 0:
			out = append(out, prefix+x.set)
		case a.Clr&x.bit != 0:
			out = append(out, prefix+x.clr)
		}
	}
	if a.Clr&unix.MOUNT_ATTR__ATIME != 0 {
		switch a.Set & unix.MOUNT_ATTR__ATIME {
		case unix.MOUNT_ATTR_NOATIME:
			out = append(out, prefix+"noatime")
		case unix.MOUNT_ATTR_STRICTATIME:
			out = append(out, prefix+"strictatime")
		default:
			out = append(out, prefix+"relatime")
		}
	}
	return out
}

func propagationName(f uint64) string {
	for k, v := range rootPropagation {
		if v == f {
			return k
		}
	}
	return fmt.Sprintf("%#x", f)
}

// checkString refuses what the kernel would truncate (NUL) and what JSON, which carries the plan to
// the child, cannot carry unchanged (invalid UTF-8).
func checkString(s string) error {
	if strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("%w: %q contains a NUL byte", ErrInvalid, s)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %q is not valid UTF-8", ErrInvalid, s)
	}
	return nil
}
