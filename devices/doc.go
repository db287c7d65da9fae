// Package devices owns Linux.Devices (device nodes) and Linux.Resources.Devices (device rules) of
// the OCI runtime spec. It is the part of libjail that keeps a container away from devices outside
// its rules — in particular the VM's own disks — however privileged the container is.
//
// # Nodes
//
// [PlanNodes] validates linux.devices (paths under /dev, type/major/minor/fileMode consistency,
// duplicates) and adds [DefaultNodes]. [CreateNodes] runs in the container's child before
// pivot_root: it resolves every path inside the root (openat2 RESOLVE_IN_ROOT via
// filepath-securejoin's pathrs-lite) and calls mknodat on the opened parent directory, or, inside a
// user namespace where mknod is refused, bind-mounts the host's node (verified to be the planned
// device) onto an empty file through open_tree/move_mount. It needs CAP_MKNOD (or CAP_SYS_ADMIN in
// the mount namespace's owner for binds). On error, the nodes made so far stay in the rootfs; the
// caller discards the container's /dev.
//
// Validation errors are *[SpecError] values naming the spec field and wrapping [ErrInvalidNode] or
// [ErrInvalidRule]; apply errors keep the errno (errors.Is(err, unix.EPERM) works).
package devices
