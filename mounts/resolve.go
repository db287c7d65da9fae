package mounts

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// resolver opens paths inside a container root. Every lookup goes through openat2(2) with
// RESOLVE_IN_ROOT, so ".." and absolute symlinks stop at the root, and RESOLVE_NO_MAGICLINKS, so
// /proc/*/fd links cannot jump out of it. Mounts are then made on the returned fds, so a path
// swapped for a symlink after the lookup redirects nothing.
type resolver struct {
	root int    // O_PATH fd of the root
	path string // host path of the root, for messages and /proc checks
}

func openRoot(path string) (*resolver, error) {
	fd, err := unix.Open(path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open root %s: %w", path, err)
	}
	r, err := newResolver(fd, path)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return r, nil
}

// newResolver takes over fd, the root directory known to the caller as path.
func newResolver(fd int, path string) (*resolver, error) {
	// Inside the new root ("/") there may be no /proc, and nothing to resolve.
	if path == "/" {
		return &resolver{root: fd, path: "/"}, nil
	}
	// The kernel's name for it: fdPath compares against what readlink of an fd says, and the
	// caller's path may go through symlinks.
	real, err := readlinkFD(fd)
	if err != nil {
		return nil, fmt.Errorf("resolve root %s: %w", path, err)
	}
	return &resolver{root: fd, path: real}, nil
}

func (r *resolver) close() {
	if r != nil && r.root >= 0 {
		unix.Close(r.root)
		r.root = -1
	}
}

func relative(path string) string {
	rel := strings.TrimLeft(filepath.Clean("/"+path), "/")
	if rel == "" {
		return "."
	}
	return rel
}

// open resolves path inside the root and returns an O_PATH fd (plus flags such as O_DIRECTORY).
func (r *resolver) open(path string, flags int) (int, error) {
	return r.openFlags(path, unix.O_PATH|flags, 0)
}

// openFlags is open with the caller's own open(2) flags and mode.
func (r *resolver) openFlags(path string, flags int, mode uint32) (int, error) {
	how := &unix.OpenHow{
		Flags:   uint64(unix.O_CLOEXEC | flags),
		Mode:    uint64(mode),
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	for range 32 {
		fd, err := unix.Openat2(r.root, relative(path), how)
		// EAGAIN: a rename raced with a ".." lookup; the kernel asks us to retry.
		if err == unix.EAGAIN || err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, fmt.Errorf("openat2 %s in root: %w", path, err)
		}
		return fd, nil
	}
	return -1, fmt.Errorf("openat2 %s in root: %w", path, unix.EAGAIN)
}

// mkdirAll creates path and its parents inside the root and returns an O_PATH fd of it. Each new
// directory is made with mkdirat(2) in the parent just opened inside the root, so a symlink can
// never make it create something outside.
func (r *resolver) mkdirAll(path string) (int, error) { return r.mkdirAllDepth(path, 0) }

// maxLinks bounds how many dangling symlinks one creation follows (the kernel's own limit is 40).
const maxLinks = 40

func (r *resolver) mkdirAllDepth(path string, depth int) (int, error) {
	fd, err := r.open("/", unix.O_DIRECTORY)
	if err != nil {
		return -1, err
	}
	cur := ""
	for _, c := range strings.Split(relative(path), "/") {
		if c == "." {
			continue
		}
		next := cur + "/" + c
		nfd, err := r.open(next, unix.O_DIRECTORY)
		if errors.Is(err, unix.ENOENT) {
			merr := unix.Mkdirat(fd, c, 0o755)
			if merr == unix.EEXIST {
				// A dangling symlink: make what it points to, inside the root.
				merr = r.followDangling(fd, c, depth, func(p string, d int) error {
					cfd, err := r.mkdirAllDepth(p, d)
					if err == nil {
						unix.Close(cfd)
					}
					return err
				})
			}
			if merr != nil {
				unix.Close(fd)
				return -1, fmt.Errorf("mkdir %s in root: %w", next, merr)
			}
			nfd, err = r.open(next, unix.O_DIRECTORY)
		}
		unix.Close(fd)
		if err != nil {
			return -1, err
		}
		fd, cur = nfd, next
	}
	return fd, nil
}

// mkfile creates an empty file at path inside the root (and its parents), as a mount point for a
// bind of a file.
func (r *resolver) mkfile(path string) (int, error) { return r.mkfileDepth(path, 0) }

func (r *resolver) mkfileDepth(path string, depth int) (int, error) {
	dir, base := filepath.Split(filepath.Clean("/" + path))
	dfd, err := r.mkdirAllDepth(dir, depth)
	if err != nil {
		return -1, err
	}
	defer unix.Close(dfd)
	fd, err := unix.Openat(dfd, base, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err == unix.EEXIST {
		err = r.followDangling(dfd, base, depth, func(p string, d int) error {
			ffd, err := r.mkfileDepth(p, d)
			if err == nil {
				unix.Close(ffd)
			}
			return err
		})
	} else if err == nil {
		unix.Close(fd)
	}
	if err != nil {
		return -1, fmt.Errorf("create %s in root: %w", path, err)
	}
	return r.open(path, 0)
}

// followDangling is called when name exists in dir but does not resolve: if it is a symlink, the
// path it points to (read as the kernel would inside the root: absolute means from the root, and
// ".." stops at it) is created with create. Anything else is EEXIST.
func (r *resolver) followDangling(dir int, name string, depth int, create func(string, int) error) error {
	if depth >= maxLinks {
		return unix.ELOOP
	}
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dir, name, buf)
	if err == unix.EINVAL {
		return unix.EEXIST // not a symlink
	}
	if err != nil {
		return err
	}
	target := string(buf[:n])
	if !filepath.IsAbs(target) {
		at, ok := r.fdPath(dir)
		if !ok {
			return fmt.Errorf("%w: directory outside the root", ErrUnsafe)
		}
		target = filepath.Join(at, target)
	}
	return create(filepath.Clean("/"+target), depth+1)
}

// target opens (creating it if missing) the mount point for a mount whose source is a directory or
// not, and checks the kinds match.
func (r *resolver) target(path string, dir bool) (int, error) {
	fd, err := r.open(path, 0)
	if errors.Is(err, unix.ENOENT) {
		if dir {
			fd, err = r.mkdirAll(path)
		} else {
			fd, err = r.mkfile(path)
		}
	}
	if err != nil {
		return -1, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("fstat %s: %w", path, err)
	}
	if isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR; isDir != dir {
		unix.Close(fd)
		if dir {
			return -1, fmt.Errorf("%w: cannot mount a directory on %s, which is not a directory", unix.ENOTDIR, path)
		}
		return -1, fmt.Errorf("%w: cannot mount a file on %s, which is a directory", unix.EISDIR, path)
	}
	return fd, nil
}

// fdPath returns where fd really is, relative to the root ("/proc/cpuinfo"), using the kernel's
// own record of it. ok is false when fd is not under the root at all.
func (r *resolver) fdPath(fd int) (string, bool) {
	p, err := readlinkFD(fd)
	if err != nil {
		return "", false
	}
	base := r.path
	if base == "/" {
		return p, true
	}
	if p == base {
		return "/", true
	}
	if rest, ok := strings.CutPrefix(p, base+"/"); ok {
		return "/" + rest, true
	}
	return "", false
}

func readlinkFD(fd int) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlink(fmt.Sprintf("/proc/thread-self/fd/%d", fd), buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}
