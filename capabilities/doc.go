// Package capabilities owns process.capabilities of the OCI runtime spec: the bounding,
// effective, permitted, inheritable and ambient sets of a container's process.
//
// [Plan] turns the spec section into a [Set] (pure but for reading the kernel's highest
// capability number; no privileges). The parent plans and sends the Set to the child as JSON.
//
// The child applies it in three steps, in this order, all from one goroutine locked to its OS
// thread (runtime.LockOSThread, never unlocked), which then calls execve. Capabilities are a
// per-thread attribute: the steps change the calling thread only, and what the container's
// program gets is what the thread that execs holds.
//
//  1. [Set.DropBounding], while the thread is still fully privileged (it needs CAP_SETPCAP).
//  2. [KeepAcrossUserSwitch] right before setresgid/setresuid to the spec's user, when that user
//     is not root: PR_SET_KEEPCAPS keeps the permitted set across the switch (the kernel still
//     empties the effective set as the effective uid leaves 0).
//  3. [Set.Apply] after the switch: effective, permitted and inheritable set exactly with
//     capset(2), then the ambient set raised, then the thread's whole state read back and
//     compared. Do this before loading a seccomp filter, which may forbid capset and prctl.
//
// A spec without a capabilities section plans five empty sets: the process gets no capability.
// Unknown names and names above this kernel's cap_last_cap are left out with a warning (an
// error, [ErrUnknown], if no name is usable); sets the kernel would refuse (effective outside
// permitted, ambient outside permitted ∩ inheritable, inheritable outside bounding) are an
// [ErrInvalid] planning error naming the field.
//
// Needs: Linux ≥ 4.3 (ambient capabilities) and, to apply, CAP_SETPCAP plus every capability in
// the planned permitted set. On error the thread is left with whatever the failing step had
// reached (a smaller bounding set, possibly raised effective set): the child must then report
// and exit, never exec.
package capabilities
