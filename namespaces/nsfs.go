package namespaces

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// ioctl requests of nsfs (linux/nsfs.h): _IO(0xb7, n).
const (
	nsGetUserNS = 0xb701
	nsGetNSType = 0xb703
)

// openNSFile opens a namespace file for reading. The path comes from a spec and may name anything: a
// FIFO would block an open for reading and a device could act on being opened, so it is first opened
// with O_PATH (which does neither) and only reopened for real once it is known to be on nsfs.
func openNSFile(path string) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil {
		return nil, &os.PathError{Op: "fstatfs", Path: path, Err: err}
	}
	if st.Type != unix.NSFS_MAGIC {
		return nil, fmt.Errorf("%w: %s is not on nsfs", ErrNotNamespace, path)
	}
	rfd, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", fd), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "reopen", Path: path, Err: err}
	}
	return os.NewFile(uintptr(rfd), path), nil
}

// openNS opens path and checks with NS_GET_NSTYPE that it is a namespace of type want. The name of
// the file proves nothing: only nsfs answers the ioctl.
func openNS(path string, want Type) (*os.File, error) {
	f, err := openNSFile(path)
	if err != nil {
		return nil, err
	}
	got, err := nsTypeOf(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	if got != want {
		f.Close()
		return nil, fmt.Errorf("%w: %s is a %s namespace, not %s", ErrWrongType, path, got, want)
	}
	return f, nil
}

func nsTypeOf(f *os.File) (Type, error) {
	flag, err := unix.IoctlRetInt(int(f.Fd()), nsGetNSType)
	if err != nil {
		if err == unix.ENOTTY || err == unix.EINVAL {
			return "", fmt.Errorf("%w: %s (%w)", ErrNotNamespace, f.Name(), err)
		}
		return "", &os.PathError{Op: "ioctl NS_GET_NSTYPE", Path: f.Name(), Err: err}
	}
	t := typeOfFlag(flag)
	if t == "" {
		return "", fmt.Errorf("%w: %s has unknown nstype %#x", ErrNotNamespace, f.Name(), flag)
	}
	return t, nil
}

// OwningUserNS opens the user namespace that owns the namespace at nsPath (NS_GET_USERNS): given only
// a pod's network namespace, this finds the user namespace a container must join with it.
func OwningUserNS(nsPath string) (*os.File, error) {
	f, err := openNSFile(nsPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := nsTypeOf(f); err != nil {
		return nil, err
	}
	fd, err := unix.IoctlRetInt(int(f.Fd()), nsGetUserNS)
	if err != nil {
		return nil, &os.PathError{Op: "ioctl NS_GET_USERNS", Path: nsPath, Err: err}
	}
	unix.CloseOnExec(fd) // nsfs returns the new fd with O_CLOEXEC already; make sure.
	return os.NewFile(uintptr(fd), "userns-of:"+nsPath), nil
}

// nsID identifies a namespace as the kernel does (nsfs device and inode).
type nsID struct{ Dev, Ino uint64 }

func statNS(path string) (nsID, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return nsID{}, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	return nsID{st.Dev, st.Ino}, nil
}
