package mounts

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// HostLeaks lists the host paths where mounts of this plan can appear in the caller's (host) mount
// namespace: mounts nested under a bind's destination, seen through the bind's source, when
// linux.rootfsPropagation is shared or rshared (otherwise nothing is ever propagated). Deepest first.
func (p *RootfsPlan) HostLeaks() []string {
	if p.RootPropagation&unix.MS_SHARED == 0 {
		return nil
	}
	var out []string
	for i, b := range p.Mounts {
		if !b.Bind {
			continue
		}
		for _, m := range p.Mounts[i+1:] {
			rel, ok := strings.CutPrefix(m.Destination, b.Destination+"/")
			if ok {
				out = append(out, filepath.Join(b.Source, rel))
			}
		}
	}
	slices.SortFunc(out, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	return slices.Compact(out)
}

// Cleanup runs in the caller's (host) mount namespace after the container is gone and detaches
// every mount found at [RootfsPlan.HostLeaks]. It is a no-op unless linux.rootfsPropagation is
// shared or rshared, and safe to call more than once.
func (p *RootfsPlan) Cleanup() error {
	var errs []error
	for _, path := range p.HostLeaks() {
		for {
			err := unix.Unmount(path, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW)
			if err == unix.EINVAL || err == unix.ENOENT {
				break // not a mount point (any more)
			}
			if err != nil {
				errs = append(errs, &Error{Field: "linux.rootfsPropagation", Path: path, Op: "cleanup: umount", Err: err})
				break
			}
		}
	}
	return errors.Join(errs...)
}
