package namespaces

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// ForExec returns the plan for an extra process that joins every namespace of the running process
// pid (a container's init) that differs from the caller's. [NSPlan.Configure] hands the child a
// pidfd that the pre-runtime joiner passes to one setns(2) for all of them at once (the kernel joins
// the user namespace first and checks the rest with its credentials); [NSPlan.Start] joins the pid
// namespace on the forking thread.
func ForExec(pid int) (*NSPlan, error) {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil, fmt.Errorf("namespaces: pid %d: %w (%w)", pid, ErrNoSuchProcess, err)
		}
		return nil, fmt.Errorf("namespaces: pidfd_open %d: %w", pid, err)
	}
	defer unix.Close(pidfd)
	join := &ExecJoin{PID: pid}
	for _, t := range Types {
		self, err := statNS("/proc/self/ns/" + t.ProcName())
		if err != nil {
			return nil, fmt.Errorf("namespaces: %w", err)
		}
		target, err := statNS(fmt.Sprintf("/proc/%d/ns/%s", pid, t.ProcName()))
		if err != nil {
			return nil, fmt.Errorf("namespaces: %w", err)
		}
		if self != target {
			join.Types = append(join.Types, t)
		}
	}
	// The namespaces read above belong to pid only if pid is still the process pidfd refers to.
	if err := unix.PidfdSendSignal(pidfd, 0, nil, 0); err != nil {
		return nil, fmt.Errorf("namespaces: pid %d: %w (%w)", pid, ErrNoSuchProcess, err)
	}
	return &NSPlan{Exec: join}, nil
}

// UnshareCgroup creates the cgroup namespace a plan with DeferCgroup left out, in the child, after
// the parent placed it in its cgroup. A cgroup namespace is per thread in the kernel: call it with the
// goroutine locked (runtime.LockOSThread) on the thread that will execve, or the new namespace stays
// on a thread the exec'd program never sees.
func UnshareCgroup() error {
	if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
		return fmt.Errorf("namespaces: unshare cgroup: %w", err)
	}
	return nil
}
