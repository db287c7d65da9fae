// Package nsenter joins the namespaces that the kernel only lets a single-threaded process enter, before
// the Go runtime starts any thread.
//
// setns(2) refuses a user namespace to a multi-threaded caller (EINVAL), a mount namespace to a caller
// that shares its filesystem context with other threads (every Go thread does), and a time namespace to
// a multi-threaded caller (EUSERS). A Go program is multi-threaded before main runs, so this package
// carries a cgo constructor (`__attribute__((constructor))`) that runs in every program importing it,
// before the Go runtime starts.
//
// The constructor reads the environment variable [EnvName]. When it is absent (every ordinary start of
// the embedding program) the constructor returns at once and does nothing else. When present, it holds
// a comma-separated list, built by [Spec.String]:
//
//	user=5,mnt=6,time=7   join the namespace file open at that fd (nstype checked by the kernel)
//	pidfd=8:0x6c020000    setns(pidfd, flags): join several namespaces of a process at once
//	timens=-3:0:9:1       new time namespace: monotonic s:ns, boottime s:ns offsets; entered first
//	unshare=0x2c020000    unshare(flags) after the joins (namespaces owned by a joined user namespace,
//	                      or by a new one when the flags hold CLONE_NEWUSER)
//	usersync=9            after unshare: write "u" on fd 9, wait for "g" (the parent wrote the id maps)
//	pdeathsig=9           PR_SET_PDEATHSIG, last (a credential change clears the inherited one)
//	hold                  pinning helper: write one byte on fd 1, block until fd 0 is at EOF, _exit
//
// Order: a new time namespace first (while /proc is surely the parent's); pidfd joins; then every
// namespace file except the user namespace while the process still has the privileges of its own user
// namespace, then the user namespace, then (retried) any file that was refused with EPERM before it;
// then unshare and the id-map handshake; the parent-death signal last. After entering a user namespace
// the process switches to uid and gid 0 there when 0 is mapped (and drops supplementary groups when
// setgroups is allowed), so it keeps its capabilities across the execve the caller does later. All
// fds named are closed and the variable is removed from the environment, success or not.
//
// The constructor never prints: the first failure (step, namespace, errno) is recorded and the rest is
// skipped. Go code reads it with [Result], which must be called first thing in the child: a failure
// means the process is in some but not all of the intended namespaces and must not go on. With "hold"
// a failure makes the helper _exit(100+step) instead, so it never runs the embedding program's main.
//
// Pid namespaces are not joined here: setns(CLONE_NEWPID) only moves the caller's future children, so
// the namespaces package joins them in the parent on a locked OS thread that is discarded after the fork.
//
// Needs: cgo, a C compiler, and the privileges setns(2) and unshare(2) ask for.
package nsenter
