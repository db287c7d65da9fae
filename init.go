package libjail

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/libjail/libjail/capabilities"
	"github.com/libjail/libjail/devices"
	"github.com/libjail/libjail/internal/nsenter"
	"github.com/libjail/libjail/namespaces"
	"github.com/libjail/libjail/syncpipe"
)

// Init must be called first thing in the embedding program's main. In the agent it returns at
// once. In a container's child (started by Create from the agent's own executable) it runs the
// container's setup and execs the container's process: it never returns.
func Init() {
	v, ok := os.LookupEnv(initEnv)
	if !ok {
		return
	}
	// Every step runs on this thread, which is the one that calls execve: capability sets are
	// per thread, and the exec'd program inherits this thread's.
	runtime.LockOSThread()
	os.Unsetenv(initEnv)
	fault := Step(os.Getenv(faultEnv))
	os.Unsetenv(faultEnv)
	fd, err := strconv.Atoi(v)
	if err != nil || fd != childFD {
		fmt.Fprintf(os.Stderr, "libjail: %s=%q: not a libjail child\n", initEnv, v)
		os.Exit(127)
	}
	conn, err := protocol.FromFile(os.NewFile(uintptr(fd), "libjail-sync"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "libjail: child: %v\n", err)
		os.Exit(127)
	}
	// Before anything else: no fd of the agent's may live on in the child, not even until
	// execve (the CVE-2024-21626 class: process.cwd "/proc/self/fd/N" would reach the host).
	keep := parseFDs(os.Getenv(keepFDsEnv))
	os.Unsetenv(keepFDsEnv)
	if err := closeInherited(keep); err != nil {
		_ = conn.SendError(context.Background(), string(StepJoinNS), err)
		os.Exit(127)
	}
	ch := &child{conn: conn, ctx: context.Background(), fault: fault}
	step, err := ch.run()
	// Only failures come back here; the parent turns this into a StepError naming the step. A
	// detached child's parent may be gone: then stderr is all there is.
	if serr := conn.SendError(ch.ctx, string(step), err); serr != nil || ch.detached {
		fmt.Fprintf(os.Stderr, "libjail: container child: %s: %v\n", step, err)
	}
	os.Exit(126)
}

type child struct {
	conn *syncpipe.Conn
	ctx  context.Context
	plan *childPlan
	// fault is the step at which a fault-injection test wants the child to die.
	fault Step
	// detached: past the ready report of a persistent container, whose creating process may
	// be gone.
	detached bool
}

// do runs one step: the fault-injection hook, the step itself, then a progress report.
func (ch *child) do(step Step, f func() error) error {
	if ch.fault == step {
		// Die at once, without a word to the parent: as pid 1 of its pid namespace the child
		// cannot SIGKILL itself, so it exits the way a killed process vanishes.
		unix.Exit(137)
	}
	if err := f(); err != nil {
		return err
	}
	if err := ch.conn.Send(ch.ctx, &progressMsg{Step: step}); err != nil && !ch.detached {
		return err
	}
	return nil
}

func (ch *child) run() (Step, error) {
	steps := []struct {
		step Step
		f    func() error
	}{
		{StepJoinNS, nsenter.Result},
		{StepReceivePlan, ch.receivePlan},
	}
	for _, s := range steps {
		if err := ch.do(s.step, s.f); err != nil {
			return s.step, err
		}
	}
	if ch.plan.Exec {
		return ch.runExec()
	}
	p := ch.plan
	proc := &p.Process
	nnp := proc.NoNewPrivs
	// With no_new_privs the filter goes on last, after the start barrier, so it constrains as
	// little of the setup as possible — unless a detached container's notify listener must reach
	// the creating process, which is only sure to be there before the barrier.
	late := nnp && !(p.StartFIFO > 0 && p.Seccomp != nil && p.Seccomp.Notify)
	steps = []struct {
		step Step
		f    func() error
	}{
		// After the namespaces, before anything else: the agent's keys never reach the container.
		{StepKeyring, joinSessionKeyring},
		{StepCgroupNS, func() error {
			if !p.CgroupNS {
				return nil
			}
			return namespaces.UnshareCgroup()
		}},
		{StepPrepareRoot, ch.unlessJoinedMountNS(p.Mounts.PrepareRoot)},
		{StepMount, ch.unlessJoinedMountNS(p.Mounts.MountAll)},
		{StepDeviceNodes, ch.unlessJoinedMountNS(func() error { return devices.CreateNodes(p.Mounts.Rootfs(), p.Nodes, p.UserNS) })},
		{StepRuntimeHooks, ch.awaitRuntimeHooks},
		{StepContainerHooks, func() error { return ch.runHooks(HookCreateContainer, p.CreateContainer) }},
		{StepEnterRoot, ch.unlessJoinedMountNS(p.Mounts.EnterRoot)},
		// Before FinishRoot, which may make the root read-only.
		{StepCwd, func() error { return os.MkdirAll(proc.Cwd, 0o755) }},
		// Through the container's verified procfs, before FinishRoot makes /proc/sys read-only.
		{StepSysctl, func() error { return writeSysctls(p.Sysctls) }},
		{StepFinishRoot, ch.unlessJoinedMountNS(p.Mounts.FinishRoot)},
		{StepHostname, ch.setHostname},
		{StepTerminal, ch.setupTerminal},
		{StepRlimits, proc.applyRlimits},
		// Per-thread attributes of the thread that calls execve; before seccomp may forbid them.
		{StepPersonality, p.Attrs.applyPersonality},
		{StepIOPriority, p.Attrs.applyIOPrio},
		{StepScheduler, p.Attrs.applyScheduler},
		// Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it while we have it.
		{StepSeccomp, func() error { return ch.loadSeccomp(!nnp) }},
		{StepUser, func() error { return ch.switchUser() }},
		{StepCapabilities, p.Caps.Apply},
		{StepNoNewPrivs, func() error {
			if !nnp {
				return nil
			}
			return unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
		}},
		{StepSeccomp, func() error { return ch.loadSeccomp(nnp && !late) }},
	}
	for _, s := range steps {
		if err := ch.do(s.step, s.f); err != nil {
			return s.step, err
		}
	}
	ready := func() error {
		if err := ch.conn.Send(ch.ctx, &readyMsg{}); err != nil {
			return err
		}
		// A persistent container's creator may exit as soon as it reads this: from here on
		// nothing may depend on it (not even the progress report of this very step).
		ch.detached = p.StartFIFO > 0
		return nil
	}
	if err := ch.do(StepReady, ready); err != nil {
		return StepReady, err
	}
	if err := ch.do(StepWaitStart, ch.waitStart); err != nil {
		return StepWaitStart, err
	}
	if err := ch.do(StepStartHooks, func() error { return ch.runHooks(HookStartContainer, p.StartContainer) }); err != nil {
		return StepStartHooks, err
	}
	// After the hooks, which must not be exec'd with the container's labels.
	if err := ch.do(StepLabels, p.Attrs.applyLabels); err != nil {
		return StepLabels, err
	}
	if late {
		if err := ch.loadSeccomp(true); err != nil {
			return StepSeccomp, err
		}
	}
	if err := ch.do(StepExec, ch.exec); err != nil {
		return StepExec, err
	}
	return StepExec, errors.New("execve returned")
}

func (ch *child) receivePlan() error {
	plan, files, err := syncpipe.Receive[*childPlan](ch.ctx, ch.conn)
	defer closeFiles(files)
	if err != nil {
		return err
	}
	ch.plan = plan
	if len(files) > 0 {
		// The idmapped mounts the parent made, in plan order.
		if plan.Mounts == nil {
			return fmt.Errorf("%w: %d files with a plan that mounts nothing", syncpipe.ErrUnexpected, len(files))
		}
		return plan.Mounts.UseIDMapped(files)
	}
	return nil
}

func (ch *child) setHostname() error {
	if h := ch.plan.Hostname; h != nil {
		if err := unix.Sethostname([]byte(*h)); err != nil {
			return fmt.Errorf("hostname %q: %w", *h, err)
		}
	}
	if d := ch.plan.Domainname; d != nil {
		if err := unix.Setdomainname([]byte(*d)); err != nil {
			return fmt.Errorf("domainname %q: %w", *d, err)
		}
	}
	return nil
}

// switchUser drops the bounding set while still privileged, then switches uid/gid keeping the
// permitted capabilities so Apply can set the final sets.
func (ch *child) switchUser() error {
	p := ch.plan
	if err := p.Caps.DropBounding(); err != nil {
		return fmt.Errorf("bounding set: %w", err)
	}
	if err := capabilities.KeepAcrossUserSwitch(); err != nil {
		return err
	}
	if u := p.Process.Umask; u != nil {
		unix.Umask(int(*u))
	}
	return p.Process.switchUser(p.UserNS)
}

// loadSeccomp loads the parent-compiled filter when now is true (the caller picks the moment).
func (ch *child) loadSeccomp(now bool) error {
	prog := ch.plan.Seccomp
	if !now || prog == nil {
		return nil
	}
	listener, err := prog.Load()
	if err != nil {
		return err
	}
	if listener == nil {
		return nil
	}
	// The parent forwards the listener to the seccomp agent at listenerPath; wait until it has,
	// so a trapped syscall always has someone to answer it.
	defer listener.Close()
	if err := ch.conn.Send(ch.ctx, &listenerMsg{}, listener); err != nil {
		return err
	}
	_, files, err := syncpipe.Receive[*resumeMsg](ch.ctx, ch.conn)
	closeFiles(files)
	return err
}

// unlessJoinedMountNS skips a root filesystem step in a joined mount namespace.
func (ch *child) unlessJoinedMountNS(f func() error) func() error {
	return func() error {
		if ch.plan.JoinedMountNS {
			return nil
		}
		return f()
	}
}

// awaitRuntimeHooks stops before pivot_root while the parent runs prestart and createRuntime hooks.
func (ch *child) awaitRuntimeHooks() error {
	if !ch.plan.RuntimeHooks {
		return nil
	}
	if err := ch.conn.Send(ch.ctx, &hooksMsg{}); err != nil {
		return err
	}
	_, files, err := syncpipe.Receive[*resumeMsg](ch.ctx, ch.conn)
	closeFiles(files)
	return err
}

// runHooks runs hooks from inside the container's namespaces (createContainer before pivot_root,
// startContainer after it), with the state's status as the spec gives it for that moment.
func (ch *child) runHooks(kind HookKind, hooks []specs.Hook) error {
	state := ch.plan.State
	if kind == HookStartContainer {
		state.Status = specs.StateCreated
	}
	return runHooks(ch.ctx, kind, hooks, &state)
}

func (ch *child) waitStart() error {
	if fd := ch.plan.StartFIFO; fd > 0 {
		// Blocks until a starter opens the FIFO for reading. The creating process may be gone by
		// then: from here on nothing waits for our messages.
		f, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(fd), os.O_WRONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("start barrier: %w", err)
		}
		ch.detached = true
		_, err = f.Write([]byte{0})
		f.Close()
		unix.Close(fd)
		return err
	}
	_, files, err := syncpipe.Receive[*startMsg](ch.ctx, ch.conn)
	closeFiles(files)
	return err
}

// exec closes every fd but stdio on exec and replaces this process with the container's.
func (ch *child) exec() error {
	proc := &ch.plan.Process
	if err := os.Chdir(proc.Cwd); err != nil {
		return fmt.Errorf("process.cwd: %w", err)
	}
	// The cwd must be inside the container's root: getcwd names a directory outside it
	// "(unreachable)/...", and a magic link (/proc/self/fd/N) may point anywhere.
	if wd, err := unix.Getwd(); err != nil || !strings.HasPrefix(wd, "/") {
		return fmt.Errorf("process.cwd %q: %w: resolves outside the container's root (%q)", proc.Cwd, unix.EPERM, wd)
	}
	path, err := lookPath(proc.Args[0], proc.Env)
	if err != nil {
		return fmt.Errorf("process.args[0]: %w", err)
	}
	// Nothing of the agent's may reach the container (the CVE-2024-21626 class): every fd above
	// stdio is closed by execve, including ones the Go runtime or a library opened without O_CLOEXEC.
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return fmt.Errorf("close fds: %w", err)
	}
	if err := ch.conn.Send(ch.ctx, &execMsg{}); err != nil && !ch.detached {
		return err
	}
	if err := unix.Exec(path, proc.Args, proc.Env); err != nil {
		return fmt.Errorf("execve %s: %w", path, err)
	}
	return nil
}

// keepFDsEnv lists the fds, besides the socket, that the parent passes to the child on purpose.
const keepFDsEnv = "_LIBJAIL_FDS"

func parseFDs(v string) []int {
	var fds []int
	for _, f := range strings.Split(v, ",") {
		if n, err := strconv.Atoi(f); err == nil {
			fds = append(fds, n)
		}
	}
	return fds
}

// closeInherited closes every fd above stdio that came through execve without being asked for.
// Those are exactly the fds without FD_CLOEXEC: everything this process opened itself (the Go
// runtime's, the socket's copy) is close-on-exec, and an fd the agent held without O_CLOEXEC is
// not.
func closeInherited(keep []int) error {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("close inherited fds: %w", err)
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return fmt.Errorf("close inherited fds: %w", err)
	}
	for _, name := range names {
		fd, err := strconv.Atoi(name)
		if err != nil || fd < 3 || slices.Contains(keep, fd) {
			continue
		}
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil || flags&unix.FD_CLOEXEC != 0 {
			continue // gone (the directory's own fd), or ours
		}
		if err := unix.Close(fd); err != nil {
			return fmt.Errorf("close inherited fd %d: %w", fd, err)
		}
	}
	return nil
}
