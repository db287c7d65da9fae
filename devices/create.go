package devices

import (
	"errors"
	"fmt"
	"os"
	"path"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// CreateNodes makes the planned nodes under rootfs. It runs in the container's child before
// pivot_root, with rootfs as seen there.
//
// Every parent directory is created and opened inside rootfs (never following a link out of it) and
// the node is made with mknodat on that opened directory, so a symlink in a hostile rootfs cannot
// place a node on the host. An existing non-directory entry at a node's path is replaced.
//
// With inUserNS, mknod of devices is not permitted, so the host's node at the same path is
// bind-mounted onto an empty file instead; the host node must exist and be the planned device.
func CreateNodes(rootfs string, nodes []Node, inUserNS bool) error {
	root, err := os.OpenFile(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("device nodes: open rootfs: %w", err)
	}
	defer root.Close()
	for _, n := range nodes {
		if err := createNode(root, n, inUserNS); err != nil {
			return fmt.Errorf("device node %s: %w", n.Path, err)
		}
	}
	return nil
}

func createNode(root *os.File, n Node, inUserNS bool) error {
	dir, err := pathrs.MkdirAllHandle(root, path.Dir(n.Path), 0o755)
	if err != nil {
		return fmt.Errorf("parent directory: %w", err)
	}
	defer dir.Close()
	dfd := int(dir.Fd())
	base := path.Base(n.Path)
	if err := removeExisting(dfd, base); err != nil {
		return err
	}
	if inUserNS && n.Type != 'p' {
		return bindHostNode(dfd, base, n)
	}
	dev := int(unix.Mkdev(uint32(n.Major), uint32(n.Minor)))
	if err := unix.Mknodat(dfd, base, n.ifmt()|n.FileMode, dev); err != nil {
		return &os.PathError{Op: "mknodat", Path: n.Path, Err: err}
	}
	// mknod applies the umask; set the planned mode and owner without following a link.
	if err := chmodNoFollow(dfd, base, n.FileMode); err != nil {
		return &os.PathError{Op: "fchmodat", Path: n.Path, Err: err}
	}
	if err := unix.Fchownat(dfd, base, int(n.UID), int(n.GID), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "fchownat", Path: n.Path, Err: err}
	}
	return nil
}

// removeExisting unlinks a non-directory entry (a file or a link the rootfs shipped) at name.
func removeExisting(dfd int, name string) error {
	var st unix.Stat_t
	err := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return &os.PathError{Op: "fstatat", Path: name, Err: err}
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return &os.PathError{Op: "create node", Path: name, Err: unix.EISDIR}
	}
	if err := unix.Unlinkat(dfd, name, 0); err != nil {
		return &os.PathError{Op: "unlinkat", Path: name, Err: err}
	}
	return nil
}

// bindHostNode bind-mounts the host's node onto a new empty file, through fds on both sides.
func bindHostNode(dfd int, base string, n Node) error {
	src, err := unix.OpenTree(unix.AT_FDCWD, n.Path, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return &os.PathError{Op: "open_tree", Path: n.Path, Err: err}
	}
	defer unix.Close(src)
	var st unix.Stat_t
	if err := unix.Fstat(src, &st); err != nil {
		return &os.PathError{Op: "fstat", Path: n.Path, Err: err}
	}
	if st.Mode&unix.S_IFMT != n.ifmt() || unix.Major(st.Rdev) != uint32(n.Major) || unix.Minor(st.Rdev) != uint32(n.Minor) {
		return fmt.Errorf("host node %s is %#o %d:%d, not the planned %s: %w", n.Path,
			st.Mode&unix.S_IFMT, unix.Major(st.Rdev), unix.Minor(st.Rdev), n, ErrInvalidNode)
	}
	fd, err := unix.Openat(dfd, base, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return &os.PathError{Op: "create mount point", Path: n.Path, Err: err}
	}
	defer unix.Close(fd)
	if err := unix.MoveMount(src, "", fd, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return &os.PathError{Op: "move_mount", Path: n.Path, Err: err}
	}
	return nil
}

// chmodNoFollow sets the mode of name in dfd without following a link: fchmodat2 where the kernel
// has it (6.6+), else through an O_PATH fd of the entry itself, reached via /proc/self/fd.
func chmodNoFollow(dfd int, name string, mode uint32) error {
	err := unix.Fchmodat(dfd, name, mode, unix.AT_SYMLINK_NOFOLLOW)
	if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.ENOSYS) {
		return err
	}
	return chmodByFD(dfd, name, mode)
}

func chmodByFD(dfd int, name string, mode uint32) error {
	fd, err := unix.Openat(dfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return unix.ELOOP
	}
	return unix.Chmod(fmt.Sprintf("/proc/self/fd/%d", fd), mode)
}
