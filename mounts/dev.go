package mounts

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// devSymlinks are the links every Linux /dev has; the nodes themselves come from the devices
// package. ptmx points into the container's own devpts instance.
var devSymlinks = [][2]string{
	{"fd", "/proc/self/fd"},
	{"stdin", "/proc/self/fd/0"},
	{"stdout", "/proc/self/fd/1"},
	{"stderr", "/proc/self/fd/2"},
	{"ptmx", "pts/ptmx"},
}

// planDev decides who owns /dev. A spec that bind-mounts /dev gets exactly that. Otherwise /dev is
// a tmpfs (the spec's own, or one libjail adds first), with /dev/pts and /dev/shm added right after
// it unless the spec mounts them itself.
func (p *RootfsPlan) planDev() {
	devAt := -1
	for i, m := range p.Mounts {
		if m.Destination == "/dev" {
			if m.Bind {
				return
			}
			devAt = i
		}
	}
	p.DevTmpfs = true
	has := func(dest string) bool {
		for _, m := range p.Mounts {
			if m.Destination == dest {
				return true
			}
		}
		return false
	}
	var add []Mount
	if devAt < 0 {
		add = append(add, Mount{
			Field: "libjail", Destination: "/dev", Type: "tmpfs", Source: "tmpfs",
			Attr: Attr{Set: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_STRICTATIME, Clr: unix.MOUNT_ATTR__ATIME},
			Data: []Param{{Key: "mode", Value: "755"}, {Key: "size", Value: "65536k"}},
		})
	}
	if !has("/dev/pts") {
		data := []Param{{Key: "newinstance", Flag: true}, {Key: "ptmxmode", Value: "0666"}, {Key: "mode", Value: "0620"}}
		if !p.UserNamespace {
			// gid 5 (tty) may not be mapped in a user namespace; there the creator's gid is used.
			data = append(data, Param{Key: "gid", Value: "5"})
		}
		add = append(add, Mount{
			Field: "libjail", Destination: "/dev/pts", Type: "devpts", Source: "devpts",
			Attr: Attr{Set: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NOEXEC},
			Data: data,
		})
	}
	if !has("/dev/shm") {
		add = append(add, Mount{
			Field: "libjail", Destination: "/dev/shm", Type: "tmpfs", Source: "shm",
			Attr: Attr{Set: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NOEXEC | unix.MOUNT_ATTR_NODEV},
			Data: []Param{{Key: "mode", Value: "1777"}, {Key: "size", Value: "65536k"}},
		})
	}
	at := devAt + 1
	p.Mounts = append(p.Mounts[:at:at], append(add, p.Mounts[at:]...)...)
}

// makeDevSymlinks creates the /dev symlinks in the root's /dev. An existing entry is left alone:
// the image or a spec mount put it there on purpose.
func (r *resolver) makeDevSymlinks() error {
	dev, err := r.open("/dev", unix.O_DIRECTORY)
	if err != nil {
		return &Error{Field: "libjail", Path: "/dev", Op: "open", Err: err}
	}
	defer unix.Close(dev)
	for _, l := range devSymlinks {
		if err := unix.Symlinkat(l[1], dev, l[0]); err != nil && !errors.Is(err, unix.EEXIST) {
			return &Error{Field: "libjail", Path: "/dev/" + l[0], Op: "symlink", Err: fmt.Errorf("symlinkat: %w", err)}
		}
	}
	return nil
}
