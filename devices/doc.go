// Package devices owns Linux.Devices (device nodes) and Linux.Resources.Devices (device rules) of
// the OCI runtime spec. It is the part of libjail that keeps a container away from devices outside
// its rules — in particular the VM's own disks — however its capabilities are set.
//
// # Nodes
//
// [PlanNodes] validates linux.devices (paths under /dev, type, major/minor ranges, a fileMode whose
// file type contradicts the type, duplicates) and adds [DefaultNodes]. [CreateNodes] runs in the
// container's child before pivot_root: every parent directory is resolved inside the root
// (openat2 RESOLVE_IN_ROOT, through filepath-securejoin's pathrs-lite) and the node is made with
// mknodat on the opened directory, so a symlink in a hostile rootfs cannot place a node outside.
// Inside a user namespace, where mknod of devices is refused, the host node of the same path is
// verified to be the planned device and bind-mounted onto an empty file with open_tree and
// move_mount. It needs CAP_MKNOD (or CAP_SYS_ADMIN over the mount namespace for binds). On error,
// the nodes made so far stay in the rootfs; the caller discards the container's /dev.
//
// # Rules
//
// [PlanRules] turns linux.resources.devices into [Rule] values. A rule list means what the same
// writes to a cgroup v1 devices.allow/devices.deny would leave, starting from "deny all": a default
// verdict and exceptions to it, where a rule adds to or removes from the exception of exactly its
// type and numbers (a "deny c *:* rwm" does not remove "allow c 1:3 rwm"), and an access is granted
// when one exception covers all of it. Both back ends work from that normal form, so a list means
// the same on v1 and v2. The root package builds a container's list as runc does, e.g.
// append(PodDefaultRules(), specRules...).
//
// cgroup v1 ([ApplyV1], [V1Transition]): the shortest list of writes from what devices.list holds
// to the target, widening before narrowing so a running process never loses a device it keeps,
// then devices.list is read back ([ErrVerify] when it differs). The kernel refuses a child more
// than its parent (EPERM), which is why a pod cgroup is widened before its container.
//
// cgroup v2 ([Program], [AttachV2], [V2]): a BPF_PROG_TYPE_CGROUP_DEVICE program generated with
// cilium/ebpf's asm, one test per exception, attached with BPF_PROG_ATTACH and BPF_F_ALLOW_MULTI —
// the programs of a cgroup and of all its ancestors run and all must allow — and replaced in one
// BPF_F_REPLACE attach. The attachment belongs to the cgroup, not to a file descriptor: it stays
// when the attaching process exits (see [OpenV2] to take it over) and goes with the cgroup. It needs
// CAP_SYS_ADMIN in the initial user namespace (root in the VM) and a kernel with cgroup BPF
// (5.5+ for replace).
//
// [Pod] applies the pod order on either version: the pod cgroup is restricted first
// ([PodDefaultRules]), each container's rules widen the pod (the union of its containers) and then
// restrict the container, hot-plug goes pod then container, and an allow-all container switches the
// pod to allow-all for the rest of its life.
//
// # What holds and what does not
//
// A container process with every capability and its own cgroup mount cannot widen its rules: on v1
// the kernel refuses writes beyond the pod's list; on v2 it can attach and even replace programs on
// its own cgroup (CAP_SYS_ADMIN), but the pod's program on the parent still runs and denies. It
// can, however, reach the pod cgroup by file handle (open_by_handle_at, CAP_DAC_READ_SEARCH in the
// initial user namespace) and widen it there; such a container must run in a user namespace or
// with a seccomp profile that denies open_by_handle_at and bpf. The tests show both (TestEscape).
//
// Validation errors are *[SpecError] values naming the spec field and wrapping [ErrInvalidNode] or
// [ErrInvalidRule]; apply errors keep the errno (errors.Is(err, unix.EPERM) works). Nothing in this
// package logs.
package devices
