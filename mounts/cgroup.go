package mounts

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// A mount of type "cgroup" in the spec asks for the container's view of its cgroups, whatever the
// host layout; it is built when applied, from the child's own mountinfo and /proc/self/cgroup
// (the parent has already placed the child in its cgroups):
//
//   - cgroup v2 only: a fresh cgroup2 mount inside a cgroup namespace, else a bind of the
//     container's own cgroup directory;
//   - v1 or hybrid: a tmpfs with one entry per hierarchy (cpu, memory, ..., unified), each a fresh
//     mount of that hierarchy inside a cgroup namespace, else a bind of the container's directory
//     in it. The mount's flags (usually ro,nosuid,nodev,noexec) apply to every entry and the tmpfs.
//
// A spec mount of type "cgroup2" is taken literally, like any other filesystem.

// hierarchy is one cgroup hierarchy mounted on the host, with the child's place in it.
type hierarchy struct {
	name     string   // entry name under the destination: the host mount point's base name
	v2       bool     // cgroup2
	opts     []string // v1: controllers and name=, for a fresh mount
	hostPath string   // the child's own cgroup directory, on the host mount
}

func (p *RootfsPlan) mountCgroup(r *resolver, m Mount) error {
	ns := p.CgroupNamespace
	if p.NewCgroupNamespace {
		if err := checkCgroupNSRoot(); err != nil {
			return &Error{Field: m.Field, Path: m.Destination, Op: "cgroup namespace", Err: err}
		}
	}
	hs, err := cgroupHierarchies(ns)
	if err != nil {
		return &Error{Field: m.Field, Path: m.Destination, Op: "cgroup layout", Err: err}
	}
	if len(hs) == 1 && hs[0].v2 {
		return p.mount(r, cgroupEntry(m, m.Destination, hs[0], ns))
	}
	top := m
	top.Type, top.Source, top.Data, top.SBFlags = "tmpfs", "cgroup", []Param{{Key: "mode", Value: "755"}}, nil
	top.Attr = Attr{Set: m.Attr.Set &^ unix.MOUNT_ATTR_RDONLY, Clr: m.Attr.Clr}
	top.Propagation = nil
	if err := p.mount(r, top); err != nil {
		return err
	}
	for _, h := range hs {
		if err := p.mount(r, cgroupEntry(m, filepath.Join(m.Destination, h.name), h, ns)); err != nil {
			return err
		}
	}
	fd, err := r.open(m.Destination, unix.O_DIRECTORY)
	if err != nil {
		return &Error{Field: m.Field, Path: m.Destination, Op: "open", Err: err}
	}
	defer unix.Close(fd)
	// Co-mounted controllers ("cpu,cpuacct") are also reachable by each name, as on the host.
	for _, h := range hs {
		if h.v2 || !strings.Contains(h.name, ",") {
			continue
		}
		for _, c := range strings.Split(h.name, ",") {
			if err := unix.Symlinkat(h.name, fd, c); err != nil && err != unix.EEXIST {
				return &Error{Field: m.Field, Path: filepath.Join(m.Destination, c), Op: "symlink", Err: err}
			}
		}
	}
	// Read-only last, so the entries could be created in it.
	if err := setattr(fd, false, m.Attr); err != nil {
		return &Error{Field: m.Field, Path: m.Destination, Op: "mount_setattr", Err: err}
	}
	for _, f := range m.Propagation {
		if err := unix.MountSetattr(fd, "", uint(unix.AT_EMPTY_PATH|recursive(f&unix.MS_REC != 0)),
			&unix.MountAttr{Propagation: f &^ unix.MS_REC}); err != nil {
			return &Error{Field: m.Field, Path: m.Destination, Op: "propagation", Err: err}
		}
	}
	return nil
}

func cgroupEntry(m Mount, dest string, h hierarchy, ns bool) Mount {
	e := Mount{Field: m.Field, Destination: dest, Attr: m.Attr, literal: true}
	switch {
	case ns && h.v2:
		e.Type, e.Source = "cgroup2", "cgroup2"
	case ns:
		e.Type, e.Source = "cgroup", "cgroup"
		for _, o := range h.opts {
			k, v, ok := strings.Cut(o, "=")
			e.Data = append(e.Data, Param{Key: k, Value: v, Flag: !ok})
		}
	default:
		e.Bind, e.Recursive, e.Source = true, true, h.hostPath
	}
	return e
}

// cgroupOptions are the v1 mount options that are not controllers (or name=).
var cgroupOptions = map[string]bool{
	"rw": true, "ro": true, "noprefix": true, "xattr": true, "clone_children": true,
	"cpuset_v2_mode": true, "favordynmods": true, "nofavordynmods": true,
}

// cgroupHierarchies reads the hierarchies mounted in this mount namespace and this process's
// cgroup in each, one entry per hierarchy. Inside a cgroup namespace (ns) the paths are not needed:
// fresh mounts show the namespace's root.
func cgroupHierarchies(ns bool) ([]hierarchy, error) {
	own, err := ownCgroups()
	if err != nil {
		return nil, err
	}
	infos, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		return nil, err
	}
	var out []hierarchy
	seen := map[string]bool{}
	for _, i := range infos {
		h := hierarchy{name: filepath.Base(i.Mountpoint), v2: i.FSType == "cgroup2"}
		key := ""
		if !h.v2 {
			for _, o := range strings.Split(i.VFSOptions, ",") {
				if o != "" && !cgroupOptions[o] && !strings.HasPrefix(o, "release_agent=") {
					h.opts = append(h.opts, o)
				}
			}
			slices.Sort(h.opts)
			key = strings.Join(h.opts, ",")
		}
		if seen[key] {
			continue // the same hierarchy mounted twice
		}
		path, ok := own[key]
		if !ok {
			// A hierarchy this process is not in (e.g. a named one made by someone else).
			continue
		}
		seen[key] = true
		if ns {
			out = append(out, h)
			continue
		}
		rel, ok := strings.CutPrefix(path, i.Root)
		if !ok || (rel != "" && !strings.HasPrefix(rel, "/") && i.Root != "/") {
			return nil, fmt.Errorf("cgroup %s of this process is outside the mount at %s (root %s)", path, i.Mountpoint, i.Root)
		}
		if i.Root == "/" {
			rel = path
		}
		h.hostPath = filepath.Join(i.Mountpoint, rel)
		out = append(out, h)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no cgroup hierarchy mounted", unix.ENOENT)
	}
	return out, nil
}

// ownCgroups parses /proc/self/cgroup into controller list (sorted, comma-joined; "" for v2) →
// path.
func ownCgroups() (map[string]string, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		parts := strings.SplitN(s.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		ctrls := strings.Split(parts[1], ",")
		slices.Sort(ctrls)
		out[strings.Trim(strings.Join(ctrls, ","), ",")] = parts[2]
	}
	return out, s.Err()
}

// checkCgroupNSRoot makes sure a cgroup namespace created for the container has the container's
// cgroups as its root: /proc/self/cgroup then shows "/" everywhere. Anything else means the
// namespace is missing, or was created before the child was placed in its cgroups, and a fresh
// mount would show cgroups that are not the container's.
func checkCgroupNSRoot() error {
	own, err := ownCgroups()
	if err != nil {
		return err
	}
	for ctrl, path := range own {
		if path != "/" {
			return fmt.Errorf("%w: the container's cgroup namespace does not start at its cgroup (%q is at %s): create it after placing the child in its cgroups", ErrUnsafe, ctrl, path)
		}
	}
	return nil
}
