package mounts

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Idmapped mounts need CAP_SYS_ADMIN over the filesystem's user namespace (the host's, for host
// directories), which the container's init no longer has once it is in its own user namespace. So
// the parent makes them: it clones the source, idmaps it and sets its attributes while the mount is
// still detached ([RootfsPlan.OpenIDMapped]), and sends the mount fds to the child, which attaches
// them in order like any other mount ([RootfsPlan.UseIDMapped]).

// IDMapped returns the fields ("mounts[3]") of the mounts that need [RootfsPlan.OpenIDMapped].
func (p *RootfsPlan) IDMapped() []string {
	var out []string
	for _, m := range p.Mounts {
		if m.IDMap != nil {
			out = append(out, m.Field)
		}
	}
	return out
}

// OpenIDMapped runs in the parent, in the host's user and mount namespaces. For each idmapped mount,
// in plan order, it returns a detached mount of the source with its id mapping and attributes
// applied, to be sent to the child (SCM_RIGHTS). userns returns an fd of a user namespace with
// the mount's mappings: the container's own when m.UIDMappings is empty (typically
// /proc/<child>/ns/user), else one made for those mappings; OpenIDMapped does not keep it.
// On error, the mounts made so far are closed (a detached mount vanishes with its last fd).
func (p *RootfsPlan) OpenIDMapped(userns func(m *IDMap) (*os.File, error)) (files []*os.File, err error) {
	defer func() {
		if err != nil {
			for _, f := range files {
				f.Close()
			}
			files = nil
		}
	}()
	for _, m := range p.Mounts {
		if m.IDMap == nil {
			continue
		}
		fail := func(op string, err error) error {
			return &Error{Field: m.Field, Path: m.Destination, Op: op, Err: err}
		}
		ns, err := userns(m.IDMap)
		if err != nil {
			return files, fail("user namespace for idmap", err)
		}
		tree, _, err := bindSource(m.Source, m.Recursive)
		if err != nil {
			ns.Close()
			return files, fail("source", err)
		}
		f := os.NewFile(uintptr(tree), "idmapped:"+m.Destination)
		files = append(files, f)
		attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(ns.Fd())}
		err = unix.MountSetattr(tree, "", uint(unix.AT_EMPTY_PATH|recursive(m.IDMap.Recursive)), attr)
		ns.Close()
		if err != nil {
			return files, fail("mount_setattr idmap", err)
		}
		if err := applyAttrs(tree, m); err != nil {
			return files, fail("mount_setattr", err)
		}
	}
	return files, nil
}

// UseIDMapped hands the child the mounts [RootfsPlan.OpenIDMapped] made, in the same order, before
// MountAll. The plan takes the fds over (it dups them; the caller closes its files).
func (p *RootfsPlan) UseIDMapped(files []*os.File) error {
	want := p.IDMapped()
	if len(files) != len(want) {
		return &Error{Field: "mounts", Op: "idmap", Err: fmt.Errorf("%w: %d idmapped mounts received, the plan has %d", ErrInvalid, len(files), len(want))}
	}
	if p.state.idmapped == nil {
		p.state.idmapped = map[string]int{}
	}
	for i, f := range files {
		fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return &Error{Field: want[i], Op: "idmap", Err: err}
		}
		if old, ok := p.state.idmapped[want[i]]; ok {
			unix.Close(old)
		}
		p.state.idmapped[want[i]] = fd
	}
	return nil
}

// idmapped takes the prepared mount for m.
func (p *RootfsPlan) idmapped(m Mount) (int, bool, error) {
	fd, ok := p.state.idmapped[m.Field]
	if !ok {
		return -1, false, fmt.Errorf("%w: the parent did not prepare this idmapped mount (OpenIDMapped, UseIDMapped)", ErrInvalid)
	}
	delete(p.state.idmapped, m.Field)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, false, err
	}
	return fd, st.Mode&unix.S_IFMT == unix.S_IFDIR, nil
}
