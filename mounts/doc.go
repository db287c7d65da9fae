// Package mounts owns Root, Mounts, Linux.RootfsPropagation, Linux.MaskedPaths,
// Linux.ReadonlyPaths and Linux.MountLabel of the OCI runtime spec, and the switch into the new
// root. (The mount label becomes the context= of tmpfs, devpts and mqueue mounts; without SELinux
// the kernel refuses it and the mount fails.)
//
// [Plan] turns those fields into a [RootfsPlan]: pure, JSON-serialisable data that the parent
// builds and sends to the container's init. Every spec error is found there, before any kernel
// state exists, as an [*Error] naming the field ("mounts[3]") and wrapping [ErrInvalid],
// [ErrUnsupported] or [ErrUnsafe]. Option strings follow mount(8): flags, propagation, bind/rbind,
// the recursive rro/rnosuid/... family and idmap/ridmap; anything else is a filesystem parameter
// that the kernel validates one by one (fsconfig), so a parameter it refuses is named in the error.
// Options that mean nothing to the kernel (fstab-only ones, remount, mand) are errors, not silence.
//
// The child applies the plan in four steps, in its new mount namespace:
//
//	PrepareRoot  propagation (everything rslave, then linux.rootfsPropagation), the mount holding
//	             the root made private, the root bound onto itself
//	MountAll     every mount in order, then the /dev symlinks; the caller then creates the device
//	             nodes under Rootfs()/dev when PrivateDev() (the devices package)
//	EnterRoot    pivot_root, or MS_MOVE+chroot (NoPivot, or "/" is the initramfs); afterwards the
//	             spec's proc mount is the process's /proc
//	FinishRoot   masked paths, read-only paths, then root.readonly
//
// Between PrepareRoot and FinishRoot, [RootfsPlan.OpenInRoot] and [RootfsPlan.MkdirAllInRoot] give
// the caller's own steps (device nodes, the working directory) the same in-root resolution.
//
// Two steps belong to the parent, in the host's namespaces: [RootfsPlan.OpenIDMapped] makes the
// idmapped mounts (the child, in its own user namespace, may not) for the child to attach after
// [RootfsPlan.UseIDMapped]; and [RootfsPlan.Cleanup], at Destroy, for the one case where mounts
// reach the host (below).
//
// A mount of type "cgroup" is the container's view of its cgroups, built from the layout the child
// finds: a cgroup2 mount (in a cgroup namespace) or a bind of its own cgroup on a v2 host, and on a
// v1 or hybrid host a tmpfs holding one entry per hierarchy, each a fresh mount in a cgroup
// namespace or a bind of the container's own directory, all with the mount's flags (ro...). A cgroup
// namespace the spec creates must start at the container's cgroups, i.e. be created after the child
// was placed in them (clone3 CLONE_INTO_CGROUP, or unshare once placed); otherwise a fresh mount
// would show other cgroups, and MountAll refuses with [ErrUnsafe].
// sysfs in a user namespace without its own network namespace, which the kernel refuses, is a bind
// of the host's /sys instead (with a warning).
//
// # Safety
//
// Every destination is resolved inside the root with openat2(RESOLVE_IN_ROOT|
// RESOLVE_NO_MAGICLINKS): ".." and symlinks, absolute or not, stop at the root. Missing mount points
// are created one component at a time with mkdirat in the directory just opened inside the root.
// Mounts are then built detached (open_tree or fsopen/fsmount), given their attributes with
// mount_setattr, and attached with move_mount onto the opened fd, so a symlink swapped in after the
// lookup (the CVE-2021-30465 class) cannot redirect anything to the host. A mount point that turns
// out to be on a procfs is refused unless it is /proc or a bind onto an allow-listed file; proc,
// sysfs and /dev must be reached without any symlink (a symlinked /proc could later be covered,
// leaving a fake one; device nodes are made under Rootfs()/dev by path). Masked
// files get a bind of /dev/null that is checked by fstat to be the 1:3 character device; masked
// directories get an empty read-only tmpfs.
//
// # Needs
//
// CAP_SYS_ADMIN in the mount namespace's owning user namespace, and Linux 5.12 (openat2,
// the new mount API, mount_setattr). This package does not create the mount namespace.
//
// # Teardown
//
// Everything is mounted in the container's private mount namespace, so it all disappears when the
// last process of that namespace exits; a failed start needs no unmounting. Nothing reaches the
// host: unless sharing is asked for, every mount of the namespace is made rslave before anything
// is mounted (a non-recursive linux.rootfsPropagation such as "private" then changes "/" only),
// the mount holding the root is made private (so the root's bind is in no host peer group), and
// the old root is made rslave before it is detached.
//
// linux.rootfsPropagation=shared/rshared asks for the opposite on purpose (the "bidirectional"
// volumes of container engines): binds of shared host mounts stay peers of them, so a mount made
// inside such a volume also appears on the host and outlives the namespace. Mounts the container's
// processes make there are the caller's business; those this package makes from the spec are
// listed by [RootfsPlan.HostLeaks] and removed by [RootfsPlan.Cleanup], which the caller runs on
// the host side at Destroy (it does nothing for other propagations).
//
// Masks and read-only binds hold against the container's processes only as long as they lack
// CAP_SYS_ADMIN (or mount(2) is blocked by seccomp): mounts made by the container's init inside its
// own user namespace are not locked by the kernel.
package mounts
