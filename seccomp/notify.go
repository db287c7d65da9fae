package seccomp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// notifySetup lists the syscalls the child may still make between [Program.Load] and execve, and
// so may not be trapped with SCMP_ACT_NOTIFY: until the listener fd has travelled child → parent
// → agent, nobody can answer a notification, and the child would hang in the very syscall that
// sends the fd. The list covers passing the fd and the start barrier (read/write/sendmsg/recvmsg,
// polling), the Go runtime (futexes, memory, signals, threads, timers), the steps that may follow
// the filter when no_new_privs is off and the filter goes in before the capability and user switch
// (capset, prctl, set*id, setgroups), closing fds (close_range) and execve itself. The root package
// must make no other syscall after Load: in particular it closes stray fds with close_range, not by
// listing /proc/self/fd (openat and getdents64 stay available to agents).
var notifySetup = []string{
	// talking to the parent
	"read", "readv", "pread64", "write", "writev", "pwrite64", "sendmsg", "sendto", "recvmsg", "recvfrom",
	"poll", "ppoll", "select", "pselect6", "epoll_wait", "epoll_pwait", "epoll_pwait2", "epoll_ctl",
	"fcntl", "close", "close_range",
	// the Go runtime
	"futex", "futex_waitv", "futex_wait", "futex_wake", "futex_requeue", "mmap", "munmap", "mprotect",
	"madvise", "brk", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "sched_yield",
	"nanosleep", "clock_nanosleep", "clock_gettime", "gettid", "getpid", "tgkill", "tkill", "clone",
	"clone3", "set_robust_list", "rseq", "sched_getaffinity", "getrandom", "restart_syscall",
	"exit", "exit_group",
	// steps that may follow the filter
	"capget", "capset", "prctl", "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid",
	"setgroups", "setfsuid", "setfsgid",
	// the end of setup
	"execve", "execveat",
}

var notifyForbidden = func() map[string]bool {
	m := make(map[string]bool, len(notifySetup))
	for _, n := range notifySetup {
		m[n] = true
	}
	return m
}()

// NotifyForbidden returns the syscall names SCMP_ACT_NOTIFY may not be used on (see [Compile]):
// the syscalls the container's setup makes after the filter is loaded. The root package must keep
// to these between [Program.Load] and execve.
func NotifyForbidden() []string { return slices.Clone(notifySetup) }

// SendTimeout bounds [SendListener] when its context has no deadline.
const SendTimeout = 10 * time.Second

// maxStateLen is what seccomp agents commonly read in one message; a longer state would reach
// them truncated.
const maxStateLen = 4096

// SendListener runs in the parent: it connects to the unix stream socket at p.ListenerPath and
// sends, in one message, the OCI "ContainerProcessState" JSON as data and the listener fd as
// SCM_RIGHTS, the format runc and crun use and seccomp agents expect. It fills state.Fds
// (["seccompFd"]), state.Metadata (p.ListenerMetadata) and empty versions; state.Pid defaults to
// state.State.Pid. The caller keeps (and closes) listener: the agent has its own copy.
func SendListener(p *Program, listener *os.File, state specs.ContainerProcessState) error {
	return SendListenerContext(context.Background(), p, listener, state)
}

// SendListenerContext is [SendListener] with a context; without a deadline, [SendTimeout] applies.
func SendListenerContext(ctx context.Context, p *Program, listener *os.File, state specs.ContainerProcessState) error {
	if p == nil || !p.Notify {
		return fmt.Errorf("seccomp: send listener: %w: the program uses no SCMP_ACT_NOTIFY", ErrInvalid)
	}
	if listener == nil {
		return fmt.Errorf("seccomp: send listener: %w: no listener fd", ErrInvalid)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, SendTimeout)
		defer cancel()
	}
	if state.Version == "" {
		state.Version = specs.Version
	}
	if state.State.Version == "" {
		state.State.Version = specs.Version
	}
	if state.Pid == 0 {
		state.Pid = state.State.Pid
	}
	state.Fds = []string{specs.SeccompFdName}
	state.Metadata = p.ListenerMetadata
	msg, err := json.Marshal(state)
	if err != nil {
		return fmt.Errorf("seccomp: send listener: encode state: %w", err)
	}
	if len(msg) > maxStateLen {
		return fmt.Errorf("seccomp: send listener: %w: container state is %d bytes, agents read at most %d", ErrInvalid, len(msg), maxStateLen)
	}

	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", p.ListenerPath)
	if err != nil {
		return fmt.Errorf("seccomp: send listener to linux.seccomp.listenerPath %q: %w", p.ListenerPath, err)
	}
	defer conn.Close()
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return fmt.Errorf("seccomp: send listener: unexpected connection type %T", conn)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = uc.SetWriteDeadline(dl)
	}
	// SyscallConn rather than Fd: Fd would switch the file description, which the agent shares,
	// to blocking mode as a side effect.
	rc, err := listener.SyscallConn()
	if err != nil {
		return fmt.Errorf("seccomp: send listener: %w", err)
	}
	var n, oobn int
	cerr := rc.Control(func(fd uintptr) {
		n, oobn, err = uc.WriteMsgUnix(msg, unix.UnixRights(int(fd)), nil)
	})
	if cerr != nil {
		return fmt.Errorf("seccomp: send listener: %w", cerr)
	}
	if err != nil {
		return fmt.Errorf("seccomp: send listener to %q: %w", p.ListenerPath, err)
	}
	if n != len(msg) || oobn == 0 {
		return fmt.Errorf("seccomp: send listener to %q: %w", p.ListenerPath, errors.New("short write"))
	}
	return nil
}
