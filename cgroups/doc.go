// Package cgroups owns Linux.CgroupsPath and Linux.Resources (all but devices) of the OCI runtime
// spec, on cgroupfs directly: no systemd, which a VM guest agent usually lacks.
//
// # Plan, then apply
//
// [Plan] is pure: it resolves the cgroup path (absolute, or relative to [Options.Parent]) in every
// mounted hierarchy and converts each resource field to interface-file writes ([Write]) in the
// hierarchy whose controller can honour it. On a [Hybrid] machine a v1 controller wins when one is
// mounted; what only the unified hierarchy offers goes there. A field no available controller can
// honour is a [*FieldError] naming it and wrapping [ErrNotSupported]; a malformed value wraps
// [ErrInvalid]. The plan is JSON-serialisable and prints as "<hierarchy>/<file> = <value>" lines.
//
// The v1 to v2 conversions are the ones OCI runtimes share: cpu.shares to cpu.weight
// ([SharesToWeight]), quota and period to cpu.max, blkio weights to io.bfq.weight or io.weight
// ([BlkioToIOWeight]), throttles to one io.max line per device, and the spec's memory.swap (memory
// plus swap) to memory.swap.max (swap alone).
//
// # Apply
//
// [New] returns a [Manager] for a plan. Create makes the cgroup in every hierarchy (the unified one
// too on Hybrid, so CLONE_INTO_CGROUP and cgroup.kill work) and copies cpuset.cpus/mems into new v1
// cpuset cgroups. On cgroup2 it enables controllers (cgroup.subtree_control) only in the cgroups it
// made: the parents above the cgroup, and the cgroup itself for a pod ([Options.Pod]). A controller
// the plan needs that an existing parent does not delegate is a [*FieldError] naming the field and
// that parent's subtree_control, wrapping [ErrNotSupported]: cgroups someone else made, the
// hierarchy's root first of all, are never written. Pods are nesting: plan the pod path with Pod
// set, then containers under it.
//
// # Placing processes
//
// On V2, start the process with CLONE_INTO_CGROUP using [Manager.CgroupFD] (exec.Cmd's
// SysProcAttr.UseCgroupFD): it is born in its cgroup. On Hybrid that covers only the unified
// hierarchy: call [Manager.Place] too, before the process runs anything of the container's, and
// before it unshares its cgroup namespace, whose root is taken from the cgroups the process is in
// at that moment (a namespace created by the clone itself is rooted at the caller's v1 cgroups).
// On V1, Place is the only way. Exec'd processes join the same way.
//
// # Operations
//
// Stats, Freeze (which returns once the kernel reports the cgroup frozen), Update (planned like
// Create, so a field the layout cannot honour, like disableOOMKiller on cgroup2, is refused before
// anything is written), Kill and OOMEvents use each controller where the plan found it. On cgroup2
// OOM events come from memory.events through inotify; the channel closes when the cgroup is
// removed (cgroupfs tells inotify only through the parent's IN_DELETE).
//
// # Needs
//
// Root (or delegated write access to the cgroup trees). cgroup.kill needs Linux 5.14, cgroup.freeze
// 5.2, CLONE_INTO_CGROUP 5.7; Kill falls back to freeze-and-signal without cgroup.kill.
//
// # Leaves behind
//
// A failed Create removes every directory it made. Destroy removes the cgroup, everything below it
// and the parents Create made (unless another cgroup lives there by then), in every hierarchy,
// retrying while the kernel reports it busy. Nothing else on the machine is written.
package cgroups
