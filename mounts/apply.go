package mounts

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// applyState is what the child keeps between the apply steps.
type applyState struct {
	r        *resolver
	idmapped map[string]int // mount field → detached idmapped mount from the parent
}

// PrepareRoot sets the propagation of the child's mount namespace, makes the mount holding the root
// private (pivot_root refuses a shared parent) and binds the root onto itself, so it is a mount of
// its own. It must run in the container's new mount namespace.
//
// Unless linux.rootfsPropagation asks for sharing (shared, rshared), every mount is first made
// rslave, so nothing mounted for the container can reach the host, and the spec's mode (private,
// slave or their r-forms; unbindable only after the switch) is applied on top: a non-recursive mode
// changes "/" only and leaves the rest rslave. shared/rshared are applied as asked, and mounts
// inside a shared volume then reach the host by design ([RootfsPlan.HostLeaks]).
func (p *RootfsPlan) PrepareRoot() error {
	if p.RootPropagation&unix.MS_SHARED == 0 {
		if err := unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
			return &Error{Field: "linux.rootfsPropagation", Path: "/", Op: "mount propagation", Err: err}
		}
	}
	// Unbindable mounts could not be bound (the root, the volumes): that mode waits for the switch.
	if p.RootPropagation != 0 && p.RootPropagation&unix.MS_UNBINDABLE == 0 {
		if err := unix.Mount("", "/", "", uintptr(p.RootPropagation), ""); err != nil {
			return &Error{Field: "linux.rootfsPropagation", Path: "/", Op: "mount propagation", Err: err}
		}
	}
	fail := func(op string, err error) error {
		return &Error{Field: "root.path", Path: p.Root, Op: op, Err: err}
	}
	dir, err := unix.Open(p.Root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail("open", err)
	}
	defer unix.Close(dir)
	if err := makeParentPrivate(dir); err != nil {
		return fail("make parent mount private", err)
	}
	tree, err := unix.OpenTree(dir, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH|unix.AT_RECURSIVE)
	if err != nil {
		return fail("bind root onto itself: open_tree", err)
	}
	if err := unix.MoveMount(tree, "", dir, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		unix.Close(tree)
		return fail("bind root onto itself: move_mount", err)
	}
	// The attached tree's fd is the root of the new mount: every later lookup starts there.
	r, err := newResolver(tree, p.Root)
	if err != nil {
		unix.Close(tree)
		return fail("open", err)
	}
	p.state.r.close()
	p.state.r = r
	return nil
}

// makeParentPrivate makes the mount that holds dir private when it is shared. It is found by mount
// id (statx on the fd), not by path prefix, so symlinks in the path cannot mislead it.
func makeParentPrivate(dir int) error {
	var stx unix.Statx_t
	if err := unix.Statx(dir, "", unix.AT_EMPTY_PATH, unix.STATX_MNT_ID, &stx); err != nil {
		return fmt.Errorf("statx: %w", err)
	}
	infos, err := mountinfo.GetMounts(func(i *mountinfo.Info) (skip, stop bool) {
		return uint64(i.ID) != stx.Mnt_id, false
	})
	if err != nil {
		return err
	}
	if len(infos) == 0 {
		return fmt.Errorf("mount %d not in mountinfo: %w", stx.Mnt_id, unix.ENOENT)
	}
	if !strings.Contains(infos[0].Optional, "shared:") {
		return nil
	}
	return unix.Mount("", infos[0].Mountpoint, "", unix.MS_PRIVATE, "")
}

func (p *RootfsPlan) resolver() (*resolver, error) {
	if p.state.r == nil {
		return nil, fmt.Errorf("%w: PrepareRoot has not run", ErrInvalid)
	}
	return p.state.r, nil
}

// MountAll makes every planned mount in order, each resolved inside the root and attached through
// an fd, then the /dev symlinks when libjail owns /dev. The device nodes come next, from the
// caller, under Rootfs()/dev.
func (p *RootfsPlan) MountAll() error {
	r, err := p.resolver()
	if err != nil {
		return &Error{Field: "mounts", Op: "mount", Err: err}
	}
	for _, m := range p.Mounts {
		if err := p.mount(r, m); err != nil {
			return err
		}
	}
	if p.DevTmpfs {
		return r.makeDevSymlinks()
	}
	return nil
}

func (p *RootfsPlan) mount(r *resolver, m Mount) error {
	fail := func(op string, err error) error {
		return &Error{Field: m.Field, Path: m.Destination, Op: op, Err: err}
	}
	if m.Type == "cgroup" && !m.literal {
		return p.mountCgroup(r, m)
	}
	var tree int
	var dir bool
	var err error
	if m.IDMap != nil {
		// Made by the parent (OpenIDMapped), attributes included.
		tree, dir, err = p.idmapped(m)
		if err != nil {
			return fail("idmap", err)
		}
	} else {
		tree, dir, err = p.source(m)
		if err != nil {
			return fail("source", err)
		}
		if err := applyAttrs(tree, m); err != nil {
			unix.Close(tree)
			return fail("mount_setattr", err)
		}
	}
	defer unix.Close(tree)
	if m.Destination == "/proc" && m.Bind {
		var st unix.Statfs_t
		if err := unix.Fstatfs(tree, &st); err != nil {
			return fail("source", err)
		}
		if st.Type != unix.PROC_SUPER_MAGIC {
			return fail("source", fmt.Errorf("%w: only a procfs may be bound onto /proc", ErrUnsafe))
		}
	}
	target, err := r.target(m.Destination, dir)
	if err != nil {
		return fail("mount point", err)
	}
	defer unix.Close(target)
	if err := r.checkProc(target, m); err != nil {
		return fail("mount point", err)
	}
	if m.Type == "proc" || m.Type == "sysfs" || m.Destination == "/dev" {
		// The kernel's view must be where the container looks for it: a symlinked /proc could
		// be covered by a later mount and leave a fake one in its place. And the device nodes
		// are made under Rootfs()/dev by path: that must be this mount, not a link's target.
		if at, ok := r.fdPath(target); !ok || at != m.Destination {
			return fail("mount point", fmt.Errorf("%w: %s resolves to %s through a symlink", ErrUnsafe, m.Destination, at))
		}
	}
	if err := unix.MoveMount(tree, "", target, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fail("move_mount", err)
	}
	for _, f := range m.Propagation {
		if err := unix.MountSetattr(tree, "", uint(unix.AT_EMPTY_PATH|recursive(f&unix.MS_REC != 0)),
			&unix.MountAttr{Propagation: f &^ unix.MS_REC}); err != nil {
			return fail("propagation", err)
		}
	}
	return nil
}

func applyAttrs(tree int, m Mount) error {
	if !m.RecAttr.Empty() {
		if err := setattr(tree, true, m.RecAttr); err != nil {
			return fmt.Errorf("recursive: %w", err)
		}
	}
	if !m.Attr.Empty() {
		if err := setattr(tree, false, m.Attr); err != nil {
			return err
		}
	}
	return nil
}

// source returns a detached mount for m: a clone of the bind source, or a new filesystem.
func (p *RootfsPlan) source(m Mount) (tree int, dir bool, err error) {
	if m.Bind {
		return bindSource(m.Source, m.Recursive)
	}
	tree, err = newFilesystem(m)
	if err != nil && m.Type == "sysfs" && p.UserNamespace && errors.Is(err, unix.EPERM) {
		// A user namespace without its own network namespace may not mount sysfs: the kernel
		// ties sysfs to the netns's owner. Show the host's /sys instead, as runc does; the
		// mount's flags (usually ro) still apply.
		p.logger().Warn("mounts: sysfs not permitted here, binding /sys instead", "field", m.Field)
		return bindSource("/sys", true)
	}
	return tree, true, err
}

func bindSource(src string, rec bool) (int, bool, error) {
	flags := uint(unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC)
	if rec {
		flags |= unix.AT_RECURSIVE
	}
	tree, err := unix.OpenTree(unix.AT_FDCWD, src, flags)
	if err != nil {
		return -1, false, fmt.Errorf("open_tree %s: %w", src, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(tree, &st); err != nil {
		unix.Close(tree)
		return -1, false, fmt.Errorf("fstat %s: %w", src, err)
	}
	return tree, st.Mode&unix.S_IFMT == unix.S_IFDIR, nil
}

// newFilesystem creates m's filesystem with fsopen/fsconfig/fsmount, one parameter at a time, so
// an option the filesystem rejects is named in the error (with the kernel's own message).
func newFilesystem(m Mount) (int, error) {
	fs, err := unix.Fsopen(m.Type, unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("fsopen %s: %w", m.Type, err)
	}
	defer unix.Close(fs)
	if err := unix.FsconfigSetString(fs, "source", m.Source); err != nil {
		return -1, fsError(fs, "source="+m.Source, err)
	}
	for _, f := range m.SBFlags {
		if err := unix.FsconfigSetFlag(fs, f); err != nil {
			return -1, fsError(fs, f, err)
		}
	}
	for _, d := range m.Data {
		if d.Flag {
			err = unix.FsconfigSetFlag(fs, d.Key)
		} else {
			err = unix.FsconfigSetString(fs, d.Key, d.Value)
		}
		if err != nil {
			return -1, fsError(fs, d.String(), err)
		}
	}
	if err := unix.FsconfigCreate(fs); err != nil {
		return -1, fsError(fs, "create", err)
	}
	tree, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, 0)
	if err != nil {
		return -1, fsError(fs, "fsmount", err)
	}
	return tree, nil
}

// fsError names the option the kernel refused and adds the messages it left on the fs context.
func fsError(fs int, what string, err error) error {
	var msgs []string
	buf := make([]byte, 4096)
	for range 8 {
		n, rerr := unix.Read(fs, buf)
		if rerr != nil || n <= 0 {
			break
		}
		// Lines are "e msg", "w msg" or "i msg": error, warning, info.
		msg := string(buf[:n])
		if len(msg) > 2 && msg[1] == ' ' {
			msg = msg[2:]
		}
		msgs = append(msgs, strings.TrimSpace(msg))
	}
	if len(msgs) > 0 {
		return fmt.Errorf("fsconfig %s (%s): %w", what, strings.Join(msgs, "; "), err)
	}
	return fmt.Errorf("fsconfig %s: %w", what, err)
}

func recursive(rec bool) int {
	if rec {
		return unix.AT_RECURSIVE
	}
	return 0
}

func setattr(fd int, rec bool, a Attr) error {
	return unix.MountSetattr(fd, "", uint(unix.AT_EMPTY_PATH|recursive(rec)), &unix.MountAttr{Attr_set: a.Set, Attr_clr: a.Clr})
}

// checkProc refuses a mount point that turned out to be on a procfs (however the path led there)
// unless it is a bind onto an allow-listed file, or /proc itself.
func (r *resolver) checkProc(target int, m Mount) error {
	var st unix.Statfs_t
	if err := unix.Fstatfs(target, &st); err != nil {
		return fmt.Errorf("fstatfs: %w", err)
	}
	if st.Type != unix.PROC_SUPER_MAGIC {
		return nil
	}
	at, ok := r.fdPath(target)
	if !ok {
		return fmt.Errorf("%w: mount point on a procfs outside the root", ErrUnsafe)
	}
	if at == "/proc" && (m.Type == "proc" || m.Bind && m.Destination == "/proc") {
		return nil // a procfs over a procfs (the bind's source was checked to be one)
	}
	if m.Bind && procAllowed[at] {
		return nil
	}
	return fmt.Errorf("%w: mount point %s is on a procfs and not on the allow-list (%s)", ErrUnsafe, at, allowedList())
}

// Close releases what the apply steps hold between them (an fd of the root, idmapped mounts not
// yet attached). FinishRoot does it too; Close is for a child that stops half way. Safe to call
// more than once.
func (p *RootfsPlan) Close() {
	p.state.r.close()
	p.state.r = nil
	for k, fd := range p.state.idmapped {
		unix.Close(fd)
		delete(p.state.idmapped, k)
	}
}

// OpenInRoot opens path inside the container root the way every mount destination is resolved:
// symlinks and ".." cannot leave the root, /proc magic links are refused. flags are open(2) flags
// (O_PATH for a handle only; O_CREAT with mode creates the last component). For the caller's own
// steps between PrepareRoot and FinishRoot, e.g. making device nodes or the working directory
// (after EnterRoot the root is "/").
func (p *RootfsPlan) OpenInRoot(path string, flags int, mode uint32) (*os.File, error) {
	r, err := p.resolver()
	if err != nil {
		return nil, &Error{Field: "root.path", Path: path, Op: "open in root", Err: err}
	}
	fd, err := r.openFlags(path, flags, mode)
	if err != nil {
		return nil, &Error{Field: "root.path", Path: path, Op: "open in root", Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// MkdirAllInRoot creates path and its missing parents inside the container root, as mount points
// are created, and returns an O_PATH handle of it.
func (p *RootfsPlan) MkdirAllInRoot(path string) (*os.File, error) {
	r, err := p.resolver()
	if err != nil {
		return nil, &Error{Field: "root.path", Path: path, Op: "mkdir in root", Err: err}
	}
	fd, err := r.mkdirAll(path)
	if err != nil {
		return nil, &Error{Field: "root.path", Path: path, Op: "mkdir in root", Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}
