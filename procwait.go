package libjail

import (
	"errors"
	"os"
	"os/exec"

	"golang.org/x/sys/unix"
)

// awaitExit blocks until the process pid has exited, without reaping it and without holding an
// OS thread: its pidfd (non-blocking) waits in the Go netpoller, where a blocking wait would pin a
// thread per live container. The caller reaps with cmd.Wait, which then returns at once.
func awaitExit(pid int) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return // gone already, or no pidfd: the caller's Wait blocks instead
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Read(func(fd uintptr) bool {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PIDFD, int(fd), &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
		// Done when it has exited (the kernel then fills si_signo with SIGCHLD; it writes
		// nothing while the child runs) or cannot be waited for at all.
		return err != nil || info.Signo != 0
	})
}

// reap waits for cmd's process (in the netpoller, see awaitExit) and reaps it. An exit status is
// not an error; the error is a failure to wait.
func reap(cmd *exec.Cmd) (*os.ProcessState, error) {
	awaitExit(cmd.Process.Pid)
	err := cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		err = nil
	}
	return cmd.ProcessState, err
}
