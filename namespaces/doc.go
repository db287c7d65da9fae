// Package namespaces owns Linux.Namespaces, Linux.UIDMappings, Linux.GIDMappings and
// Linux.TimeOffsets of the OCI runtime spec: which of the eight namespace types (pid, network, mount,
// ipc, uts, user, cgroup, time) a container's init gets new, which it joins by path, the id maps of a
// new user namespace and the clock offsets of a new time namespace. It also pins namespaces for pods
// ([Pin]) and plans an exec into a running container ([ForExec]).
//
// # Plan, then apply
//
// [Plan] validates the spec section before any kernel state exists: unknown and duplicate types, a
// path that is not a namespace file or is one of another type (asked of nsfs with NS_GET_NSTYPE, never
// guessed from the name), mappings without a new user namespace, a new user namespace without both
// mappings, overlapping or overflowing ranges, offsets for an unknown clock or without a new time
// namespace, a hostname or domainname without a new uts namespace. Every error is a *[FieldError]
// naming the spec field and wrapping a sentinel (errors.Is) and the errno where there is one.
// The plan is plain data ([NSPlan], JSON and String).
//
// Applying is [NSPlan.Configure] (on an *exec.Cmd) and [NSPlan.Start]. Where each part happens:
//
//   - New namespaces are clone(2) flags, except: a new time namespace is made in the child before the
//     Go runtime starts (unshare, write the offsets while it is empty, setns into it); and when the
//     plan joins a user namespace, the other new namespaces are unshared in the child right after
//     joining it, so that user namespace owns them (the pod pattern: mount sysfs, mqueue, procfs). A
//     pid namespace unshared so holds only children: the child forks into it as its parent's child
//     (CLONE_PARENT), reports the new init's pid on a pipe and leaves; Start reaps it and puts the
//     init in cmd.Process. See below for a new user namespace with a joined mount or time namespace.
//   - Joined user, mount and time namespaces are entered in the child by internal/nsenter's cgo
//     constructor, before the Go runtime starts threads (the kernel refuses them to a multi-threaded
//     process). The embedding program's main package must therefore link internal/nsenter (the root
//     package imports it) and the child must call nsenter.Result first.
//   - Joined pid, network, ipc, uts and cgroup namespaces are entered by the parent on an OS thread
//     locked around the fork, and left again right after it. A pid namespace has to be joined there:
//     setns(CLONE_NEWPID) moves only the caller's future children, so the child is born inside it
//     (TestJoinEachType/pid checks the child's own /proc/self/ns/pid). The others are joined there
//     because the parent still has the initial user namespace's privileges, which a child cloned into
//     a new user namespace has lost.
//
// A parent-death signal (SysProcAttr.Pdeathsig) still works with a joined pid namespace: Go's child
// would kill itself (its getppid() is 0 there), so Configure moves the signal to the constructor.
//
// # What it needs
//
// Root in the initial user namespace (CAP_SYS_ADMIN) for everything but Plan; Linux 5.6 for time
// namespaces, 5.8 for setns with a pidfd ([ForExec]); cgo; /proc mounted. A new user namespace should
// map uid and gid 0: Configure then starts the child as root there (SysProcAttr.Credential), so it
// keeps its capabilities across execve (needed, for one, to set time offsets in a namespace it owns). A new cgroup namespace's root is the cgroup
// the child is in when it is created: if the caller cannot place the child in its cgroup before it
// runs (cgroup v1), set [NSPlan.DeferCgroup] and call [UnshareCgroup] in the child after placement.
//
// A plan that creates a user namespace and joins a mount or time namespace is done the other way
// round: the child joins first (from inside a new user namespace it no longer could) and then unshares
// the user namespace with the other namespaces it creates, so the new user namespace owns them; Start
// writes the id maps meanwhile, over a socket Configure adds to ExtraFiles.
//
// Pods: [Pin] bind-mounts nsfs files, so user, mount, network, ipc, uts, cgroup and time namespaces
// outlive any process. A pid namespace ends with its init, so pinning PID keeps one helper process per
// pod alive as that init; [Pinned.Release] ends it, and the kernel then kills what is left in it.
// Reap containers in a pinned pid namespace promptly: its init only finishes exiting once every
// process of the namespace, zombies included, is gone.
//
// # What it leaves behind on error
//
// Plan: nothing. Configure: nothing once release is called. Start: the caller's threads are in their
// own namespaces (a thread that could not return is ended by the runtime); if it failed before the
// fork, cmd was never started. Pin: nothing (mounts, files and a directory it made are removed; the
// helper is ended). [Pinned.Release] can be retried, also on a Pinned read back from JSON.
package namespaces
