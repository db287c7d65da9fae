// Package seccomp owns Linux.Seccomp of the OCI runtime spec: it compiles the profile to a classic
// BPF program in the parent and loads those bytes in the child.
//
// # Plan: Compile (parent, no privileges)
//
// [Compile] translates every field of the profile with libseccomp (cgo, libseccomp ≥ 2.5):
// defaultAction and defaultErrnoRet, architectures (the native one is always included; a syscall
// from any other architecture kills the process), flags, every action (KILL and KILL_THREAD,
// KILL_PROCESS, TRAP, ERRNO and TRACE with errnoRet, defaulting to EPERM, ALLOW, LOG, NOTIFY) and
// argument conditions with every operator; for SCMP_CMP_MASKED_EQ, value is the mask and valueTwo
// the value. Conditions on different arguments must all hold; when a rule tests one argument
// twice, each condition becomes its own rule (either may hold), as profiles written for runc expect.
//
// Lenient where runtimes are lenient, strict elsewhere:
//   - syscall names this libseccomp does not know are skipped with a warning (they get ENOSYS,
//     see below); rules whose action equals the default are dropped; a second unconditional rule
//     for a syscall with another action is ignored with a warning (libseccomp keeps the first);
//     SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV without any NOTIFY rule is dropped with a warning.
//   - an unknown action, operator, flag or architecture, an argument index above 5, errnoRet on
//     an action other than ERRNO/TRACE or above 4095, or a rule without names is an error
//     ([FieldError] naming the field, wrapping [ErrInvalid]).
//   - SCMP_ACT_NOTIFY as the default action, or on a syscall of [NotifyForbidden], is refused
//     ([ErrNotifyForbidden]): the child still makes those syscalls after loading the filter, before
//     anyone holds the listener to answer them, and would hang. NOTIFY also needs listenerPath.
//
// The compiled program starts with a short stub this package generates: for each architecture,
// syscall numbers above the highest one the profile names return ENOSYS, so C libraries fall back
// from syscalls newer than the profile (clone3, openat2, …) instead of failing with the default
// errno. The stub is left out when the default action is ALLOW, LOG or ERRNO(ENOSYS); under a KILL
// or TRAP default a newer syscall also gets ENOSYS (it is refused either way, and not executed).
//
// Programs are cached per process by the profile's content: identical profiles are compiled once,
// and later calls cost a hash of the profile and a copy.
//
// # Apply: Load (child, just before execve)
//
// [Program.Load] is one seccomp(SECCOMP_SET_MODE_FILTER) call with the compiled bytes; it does not
// call into libseccomp. It needs no_new_privs, or CAP_SYS_ADMIN in the caller's user namespace:
// with process.noNewPrivileges the root package loads after dropping capabilities, otherwise
// before, while it still holds CAP_SYS_ADMIN. Both are per-thread properties, so the root package
// locks the OS thread from prctl/capset through Load and execve. SECCOMP_FILTER_FLAG_TSYNC is
// always set, so every thread of the Go child is filtered whichever one later runs execve, and
// threads the runtime makes afterwards inherit the filter. TSYNC with a listener needs TSYNC_ESRCH (Linux 5.7); LOG needs
// 4.14, SPEC_ALLOW 4.17, NOTIFY 5.0, WAIT_KILLABLE_RECV 5.19. Between Load and execve the child
// runs under the container's profile: keep that stretch short and limited to [NotifyForbidden].
//
// # Notify
//
// With SCMP_ACT_NOTIFY, Load returns the listener fd. The child hands it to the parent over
// syncpipe and the parent calls [SendListener], which connects to listenerPath and sends one message:
// the OCI ContainerProcessState JSON (fds ["seccompFd"], listenerMetadata, the container state)
// with the fd as SCM_RIGHTS, the format runc and crun use, so existing seccomp agents work.
//
// # On error
//
// Compile leaves nothing behind (libseccomp's context and the memfd used for export are released).
// A failed Load installs no filter. A loaded filter can never be removed: it ends with the process.
package seccomp
