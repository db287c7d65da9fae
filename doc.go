// Package libjail turns an OCI runtime spec into kernel state for containers running inside a VM
// guest. An agent imports it; nothing runs beside the agent.
//
// The embedding program calls [Init] first thing in main: in the agent it returns at once, in a
// container's child it runs the container's setup and never returns. A [Container] is planned from
// an id and a spec by [New] — every validation error comes from planning, before any kernel state
// exists — then created (the child fully set up and held at a start barrier), started, waited for,
// signalled and destroyed.
//
// Needs: root (or the capabilities the spec asks for) on Linux 5.10 or later; the spec-section
// packages document what each needs. On error, every step tears down what it created: no process,
// mount, cgroup or fd is left behind.
//
// The child's steps, in order (each failure is a [StepError] naming the step):
//
//	parent: seal the executable (once per process), create the cgroup and apply its device rules
//	        (pod first), start the child in its namespaces (born in its v2 cgroup), place it in
//	        its v1 cgroups, write oom_score_adj, make idmapped mounts, send the plan
//	child:  join namespaces (a cgo constructor, before the Go runtime) → close inherited fds →
//	        receive plan (with idmapped mounts) → session keyring → cgroup namespace → prepare
//	        root → mount → device nodes → [parent: prestart, createRuntime hooks] →
//	        createContainer hooks → enter root (pivot_root, or MS_MOVE+chroot) → cwd → sysctls
//	        (through the verified procfs) → finish root (masked, read-only paths) → hostname →
//	        terminal → rlimits → personality, I/O priority, scheduler → seccomp (without
//	        no_new_privs: while CAP_SYS_ADMIN is held) → user → capabilities → no_new_privs →
//	        ready
//	parent: Start (a message, or the FIFO of a persistent container) →
//	child:  startContainer hooks → LSM labels → seccomp (with no_new_privs: last) → execve
//	parent: poststart hooks
//
// This improves on the architecture's sketch in two places: the no_new_privs seccomp filter is
// loaded after the start barrier, so it constrains the least of the setup (the barrier, hooks);
// and the cwd is made before the root may turn read-only.
package libjail
