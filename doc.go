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
//	parent: seal the executable (once per process), create the cgroup, start the child in its
//	        namespaces, place it in its cgroups, send the plan
//	child:  join namespaces (before the Go runtime) → receive plan → prepare root → mount →
//	        device nodes → enter root (pivot_root) → finish root (masked, read-only) → hostname →
//	        rlimits → user → capabilities (seccomp first unless no_new_privs) → ready
//	parent: (Start) → child: no_new_privs seccomp → close fds → execve
package libjail
