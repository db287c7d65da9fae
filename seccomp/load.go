package seccomp

import (
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Load installs the program for the calling process: seccomp(SECCOMP_SET_MODE_FILTER, Flags,
// Filter). It runs in the child just before execve and does not call into libseccomp.
//
// The caller needs no_new_privs set (prctl PR_SET_NO_NEW_PRIVS) or CAP_SYS_ADMIN in its user
// namespace; otherwise the kernel answers EACCES. So with process.noNewPrivileges the root package
// loads after dropping capabilities (the smallest attack surface for the setup), and without it
// before, while CAP_SYS_ADMIN is still held.
//
// no_new_privs and capabilities are per thread in Linux, and Go moves goroutines between threads:
// the root package must lock the OS thread (runtime.LockOSThread) from setting no_new_privs or
// dropping capabilities through Load. TSYNC then copies no_new_privs to every other thread.
//
// TSYNC is always among the flags: every thread of the process gets the filter, so it does not
// matter which thread the Go scheduler runs Load or the later execve on, and threads the runtime
// creates afterwards inherit it. All threads must be free of other filters (true in a fresh
// child) or the load fails with ESRCH.
//
// With Notify, the returned file is the listener fd (O_CLOEXEC), to be sent to the parent and on
// with [SendListener]; otherwise it is nil.
func (p *Program) Load() (listener *os.File, err error) {
	if p == nil {
		return nil, &LoadError{Err: fmt.Errorf("%w: no program", ErrInvalid)}
	}
	n := len(p.Filter)
	if n == 0 || n%8 != 0 || n/8 > maxInsns {
		return nil, &LoadError{Err: fmt.Errorf("%w: filter of %d bytes is not a program of 1-%d instructions", ErrInvalid, n, maxInsns)}
	}
	if p.Flags&^knownFlags != 0 {
		return nil, &LoadError{Err: fmt.Errorf("%w: unknown flags %#x", ErrInvalid, p.Flags&^knownFlags)}
	}
	if p.Notify != (p.Flags&unix.SECCOMP_FILTER_FLAG_NEW_LISTENER != 0) {
		return nil, &LoadError{Err: fmt.Errorf("%w: notify and NEW_LISTENER flag disagree", ErrInvalid)}
	}
	insns := decode(p.Filter)
	prog := unix.SockFprog{Len: uint16(len(insns)), Filter: &insns[0]}
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(p.Flags), uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(insns)
	if errno != 0 {
		err := error(errno)
		if errno == unix.EACCES {
			err = fmt.Errorf("%w (set no_new_privs or keep CAP_SYS_ADMIN until the filter is loaded)", errno)
		}
		return nil, &LoadError{Err: err}
	}
	if p.Notify {
		return os.NewFile(r, "seccomp-listener"), nil
	}
	if r != 0 {
		// Without TSYNC_ESRCH a failed TSYNC returns the id of the thread that could not be
		// synchronised; the filter is then not installed.
		return nil, &LoadError{Err: fmt.Errorf("thread %d could not be synchronised: %w", r, unix.ESRCH)}
	}
	return nil, nil
}
