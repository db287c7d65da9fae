package mounts

import (
	"errors"
	"fmt"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// EnterRoot makes the prepared root the process's "/" and its working directory: pivot_root, with
// the old root detached, or MS_MOVE+chroot when NoPivot is set or "/" is the initramfs (on which
// pivot_root fails). Afterwards the container's /proc (if the spec mounts one) is at /proc.
func (p *RootfsPlan) EnterRoot() error {
	r, err := p.resolver()
	if err != nil {
		return &Error{Field: "root.path", Op: "enter root", Err: err}
	}
	noPivot := p.NoPivot
	if !noPivot {
		noPivot, err = rootIsInitramfs()
		if err != nil {
			return &Error{Field: "root.path", Path: p.Root, Op: "inspect /", Err: err}
		}
	}
	if noPivot {
		err = moveRoot(r.root)
	} else {
		err = pivotRoot(r.root)
	}
	if err != nil {
		return &Error{Field: "root.path", Path: p.Root, Op: "enter root", Err: err}
	}
	if p.RootPropagation != 0 && p.RootPropagation&unix.MS_UNBINDABLE == 0 {
		// Applied to the new "/" now, not to its source before the switch, where it could
		// join a peer group with the host. Unbindable waits for the end of FinishRoot: masks
		// and read-only paths are binds.
		if err := unix.Mount("", "/", "", uintptr(p.RootPropagation), ""); err != nil {
			return &Error{Field: "linux.rootfsPropagation", Path: "/", Op: "mount propagation", Err: err}
		}
	}
	nr, err := openRoot("/")
	if err != nil {
		return &Error{Field: "root.path", Path: "/", Op: "open", Err: err}
	}
	r.close()
	p.state.r = nr
	return nil
}

// pivotRoot uses the pivot_root(".", ".") form: the old root ends up stacked on the new one, is made
// rslave so its unmount cannot propagate anywhere, and is detached. The old root is named by an fd
// taken before the pivot: a path (".") would name the new root, and make the container's own
// mounts slaves too, losing the propagation the spec asked for.
func pivotRoot(root int) error {
	old, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open old root: %w", err)
	}
	defer unix.Close(old)
	if err := unix.Fchdir(root); err != nil {
		return fmt.Errorf("fchdir to root: %w", err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.MountSetattr(old, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &unix.MountAttr{Propagation: unix.MS_SLAVE}); err != nil {
		return fmt.Errorf("make old root rslave: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir /: %w", err)
	}
	return nil
}

// moveRoot is the fallback for roots pivot_root cannot leave (the initramfs): the root's mount is
// moved onto "/" and the process chroots into it. The old root stays reachable to a process with
// CAP_SYS_CHROOT, which is why pivot_root is preferred.
func moveRoot(root int) error {
	if err := unix.Fchdir(root); err != nil {
		return fmt.Errorf("fchdir to root: %w", err)
	}
	// "." is the root of the root's own mount (the bind PrepareRoot made).
	if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move root onto /: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir /: %w", err)
	}
	return nil
}

// rootIsInitramfs reports whether "/" is the kernel's initial rootfs, which cannot be pivoted away.
func rootIsInitramfs() (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs("/", &st); err != nil {
		return false, err
	}
	if st.Type != unix.RAMFS_MAGIC && st.Type != unix.TMPFS_MAGIC {
		return false, nil
	}
	infos, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter("/"))
	if err != nil {
		return false, err
	}
	for _, i := range infos {
		if i.FSType == "rootfs" || i.ID == i.Parent {
			return true, nil
		}
	}
	return false, nil
}

// FinishRoot masks linux.maskedPaths, makes linux.readonlyPaths read-only, then the root itself
// when root.readonly is set. It runs inside the new root, after the device nodes exist (a masked
// file is covered by /dev/null). Paths that do not exist are skipped.
func (p *RootfsPlan) FinishRoot() error {
	r, err := p.resolver()
	if err != nil {
		return &Error{Field: "linux.maskedPaths", Op: "finish root", Err: err}
	}
	defer p.Close()
	for i, path := range p.MaskedPaths {
		if err := r.mask(path); err != nil {
			return &Error{Field: fmt.Sprintf("linux.maskedPaths[%d]", i), Path: path, Op: "mask", Err: err}
		}
	}
	for i, path := range p.ReadonlyPaths {
		if err := r.readonly(path); err != nil {
			return &Error{Field: fmt.Sprintf("linux.readonlyPaths[%d]", i), Path: path, Op: "make read-only", Err: err}
		}
	}
	if p.RootPropagation&unix.MS_UNBINDABLE != 0 {
		if err := unix.Mount("", "/", "", uintptr(p.RootPropagation), ""); err != nil {
			return &Error{Field: "linux.rootfsPropagation", Path: "/", Op: "mount propagation", Err: err}
		}
	}
	if p.Readonly {
		// Non-recursive, like the kernel's own remount: mounts below "/" keep their flags.
		if err := unix.MountSetattr(r.root, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}); err != nil {
			return &Error{Field: "root.readonly", Path: "/", Op: "mount_setattr", Err: err}
		}
	}
	return nil
}

// mask covers a directory with an empty read-only tmpfs and anything else with /dev/null.
func (r *resolver) mask(path string) error {
	target, err := r.open(path, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	defer unix.Close(target)
	var st unix.Stat_t
	if err := unix.Fstat(target, &st); err != nil {
		return fmt.Errorf("fstat: %w", err)
	}
	var tree int
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		tree, err = newFilesystem(Mount{Type: "tmpfs", Source: "tmpfs", Data: []Param{{Key: "size", Value: "4k"}, {Key: "mode", Value: "0555"}}})
		if err == nil {
			err = setattr(tree, false, Attr{Set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC})
			if err != nil {
				unix.Close(tree)
			}
		}
	} else {
		tree, err = r.null()
	}
	if err != nil {
		return err
	}
	defer unix.Close(tree)
	if err := unix.MoveMount(tree, "", target, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount: %w", err)
	}
	return nil
}

// null returns a detached bind of the root's /dev/null, after checking by fd that it is the null
// device (char 1:3) and not a file or link a hostile image put there.
func (r *resolver) null() (int, error) {
	fd, err := r.open("/dev/null", 0)
	if err != nil {
		return -1, err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return -1, fmt.Errorf("fstat /dev/null: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(1, 3) {
		return -1, fmt.Errorf("%w: /dev/null is not the null device (mode %#o, rdev %d:%d)", ErrUnsafe, st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	tree, err := unix.OpenTree(fd, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH)
	if err != nil {
		return -1, fmt.Errorf("open_tree /dev/null: %w", err)
	}
	return tree, nil
}

// readonly covers path with a read-only recursive bind of itself.
func (r *resolver) readonly(path string) error {
	target, err := r.open(path, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	defer unix.Close(target)
	tree, err := unix.OpenTree(target, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH|unix.AT_RECURSIVE)
	if err != nil {
		return fmt.Errorf("open_tree: %w", err)
	}
	defer unix.Close(tree)
	if err := setattr(tree, true, Attr{Set: unix.MOUNT_ATTR_RDONLY}); err != nil {
		return fmt.Errorf("mount_setattr: %w", err)
	}
	if err := unix.MoveMount(tree, "", target, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount: %w", err)
	}
	return nil
}
