package libjail

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/libjail/libjail/cgroups"
	"github.com/libjail/libjail/seccomp"
	"github.com/libjail/libjail/syncpipe"
)

// initEnv names the fd of the child's syncpipe socket; its presence makes Init run the child.
const initEnv = "_LIBJAIL_INIT"

// faultEnv names the step at which a fault-injection test's child dies.
const faultEnv = "_LIBJAIL_FAULT"

// childFD is the fd number of the syncpipe socket in the child (ExtraFiles[0]).
const childFD = 3

// Create starts the container's child and sets it up completely: namespaces, cgroup, root
// filesystem, user, capabilities. The child is then held at the start barrier until Start. On
// error everything created so far is torn down, and the error is a *StepError naming the step.
func (c *Container) Create(ctx context.Context) (err error) {
	c.mu.Lock()
	if c.status != StatusNew {
		st := c.status
		c.mu.Unlock()
		return &StateError{ID: c.id, Op: "create", State: st}
	}
	c.status = StatusCreating
	c.mu.Unlock()

	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	defer func() {
		if err != nil {
			_ = c.teardown()
		}
	}()
	step, err := c.create(ctx)
	if err != nil {
		return c.stepErr(step, err)
	}
	c.mu.Lock()
	c.status = StatusCreated
	c.mu.Unlock()
	return nil
}

func (c *Container) create(ctx context.Context) (Step, error) {
	exe, err := sealedExecutable()
	if err != nil {
		return StepExecutable, err
	}
	cg, err := cgroups.New(c.cgPlan)
	if err != nil {
		return StepCgroup, err
	}
	if err := cg.Create(); err != nil {
		_ = cg.Destroy()
		return StepCgroup, err
	}
	c.mu.Lock()
	c.cg = cg
	c.mu.Unlock()
	if err := c.applyDeviceRules(); err != nil {
		return StepDevices, err
	}

	parent, childSock, err := protocol.Pair()
	if err != nil {
		return StepStartChild, err
	}
	c.mu.Lock()
	c.conn = parent
	c.mu.Unlock()
	cmd, closeAfterStart, err := c.command(exe, childSock)
	if err != nil {
		childSock.Close()
		return StepStartChild, err
	}
	release, err := c.ns.Configure(cmd)
	if err != nil {
		closeAll(closeAfterStart)
		return StepStartChild, err
	}
	err = c.ns.Start(cmd)
	release()
	closeAll(closeAfterStart)
	if err != nil {
		return StepStartChild, err
	}
	c.startReaper(cmd)

	if err := cg.Place(cmd.Process.Pid); err != nil {
		if errors.Is(err, unix.ESRCH) {
			// The child is already gone: report how, at the step it died in.
			return c.failedStep(), c.childGone(ctx, fmt.Errorf("%w: %w", syncpipe.ErrPeerClosed, err))
		}
		return StepPlaceCgroup, err
	}
	if a := c.child.Process.OOMScoreAdj; a != nil {
		// Written by the parent: raising it needs CAP_SYS_RESOURCE, which the child may lose.
		p := "/proc/" + strconv.Itoa(cmd.Process.Pid) + "/oom_score_adj"
		if err := os.WriteFile(p, []byte(strconv.Itoa(*a)), 0); err != nil {
			return StepPlaceCgroup, fmt.Errorf("process.oomScoreAdj: %w", err)
		}
	}
	c.mu.Lock()
	c.child.State = c.ociStateLocked()
	c.mu.Unlock()
	if err := parent.Send(ctx, &c.child); err != nil {
		return StepSendPlan, c.childGone(ctx, err)
	}
	return c.awaitReady(ctx)
}

// command builds the exec.Cmd of the child: the sealed executable, the socket as fd 3, stdio.
// closeAfterStart lists the parent's copies of what the child inherits.
func (c *Container) command(exe *os.File, childSock *os.File) (*exec.Cmd, []io.Closer, error) {
	cmd := &exec.Cmd{
		Path:       "/proc/self/fd/" + strconv.Itoa(int(exe.Fd())),
		Args:       []string{"libjail-init", c.id},
		Env:        []string{initEnv + "=" + strconv.Itoa(childFD)},
		ExtraFiles: []*os.File{childSock},
		Stdin:      c.opts.Stdin,
		Stdout:     c.opts.Stdout,
		Stderr:     c.opts.Stderr,
		SysProcAttr: &syscall.SysProcAttr{
			Setsid: true, // the container gets its own session, so a terminal can become its ctty
		},
	}
	if c.opts.fault != "" {
		cmd.Env = append(cmd.Env, faultEnv+"="+string(c.opts.fault))
	}
	closers := []io.Closer{childSock}
	if fd, err := c.cg.CgroupFD(); err == nil && fd != nil {
		// Born in its v2 cgroup: no window in which the child runs outside its limits.
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = int(fd.Fd())
		closers = append(closers, fd)
	} else if err != nil && !errors.Is(err, cgroups.ErrNotSupported) {
		return nil, nil, err
	}
	return cmd, closers, nil
}

func closeAll(cs []io.Closer) {
	for _, c := range cs {
		c.Close()
	}
}

// startReaper waits for the child in the background, so Wait, Status and teardown know when it
// has exited, and the process is always reaped.
func (c *Container) startReaper(cmd *exec.Cmd) {
	exited := make(chan struct{})
	c.mu.Lock()
	c.cmd, c.pid, c.exited = cmd, cmd.Process.Pid, exited
	c.mu.Unlock()
	go func() {
		err := cmd.Wait()
		c.mu.Lock()
		c.state = cmd.ProcessState
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			c.waitErr = err // a real failure to wait, not an exit status
		}
		c.mu.Unlock()
		close(exited)
	}()
}

// awaitReady reads the child's progress until it is ready at the start barrier.
func (c *Container) awaitReady(ctx context.Context) (Step, error) {
	for {
		msg, files, err := c.conn.Recv(ctx)
		if err != nil {
			return c.failedStep(), c.childGone(ctx, err)
		}
		if !keepsFiles(msg) {
			closeFiles(files)
		}
		switch m := msg.(type) {
		case *progressMsg:
			c.mu.Lock()
			c.lastStep = m.Step
			c.mu.Unlock()
		case *ptyMsg:
			if err := c.takeConsole(ctx, m, files); err != nil {
				return StepTerminal, err
			}
		case *hooksMsg:
			// The child's mounts are done and it waits before pivot_root: the runtime's hooks.
			state := c.State()
			state.Status = specs.StateCreating
			for _, kind := range []HookKind{HookPrestart, HookCreateRuntime} {
				if err := runHooks(ctx, kind, hookList(c.spec.Hooks, kind), &state); err != nil {
					return StepRuntimeHooks, err
				}
			}
			if err := c.conn.Send(ctx, &resumeMsg{}); err != nil {
				return StepRuntimeHooks, c.childGone(ctx, err)
			}
		case *listenerMsg:
			if err := c.forwardListener(ctx, files); err != nil {
				return StepSeccomp, err
			}
		case *readyMsg:
			return StepReady, nil
		case *syncpipe.StepError:
			return Step(m.Step), m
		default:
			return c.failedStep(), fmt.Errorf("%w: %s while waiting for ready", syncpipe.ErrUnexpected, msg.Kind())
		}
	}
}

// failedStep is the step after the last one the child reported done.
func (c *Container) failedStep() Step {
	c.mu.Lock()
	defer c.mu.Unlock()
	return nextStep(c.lastStep)
}

// childGone turns a protocol error into the child's own error when it sent one, or into
// ErrChildDied with how it ended when it vanished.
func (c *Container) childGone(ctx context.Context, err error) error {
	var se *syncpipe.StepError
	if errors.As(err, &se) {
		// The child named its step: keep it.
		return &StepError{ID: c.id, Step: Step(se.Step), Err: se}
	}
	if errors.Is(err, syncpipe.ErrPeerClosed) {
		c.mu.Lock()
		exited := c.exited
		c.mu.Unlock()
		if exited != nil {
			select {
			case <-exited:
			case <-ctx.Done():
				return fmt.Errorf("%w: socket closed but the child did not exit: %w", ErrChildDied, ctx.Err())
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.state != nil {
				return fmt.Errorf("%w (%s): %w", ErrChildDied, c.state, err)
			}
		}
		return fmt.Errorf("%w: %w", ErrChildDied, err)
	}
	return err
}

// Start releases a created container's child, which then execs the container's process. A new
// container is created first.
func (c *Container) Start(ctx context.Context) (err error) {
	c.mu.Lock()
	st := c.status
	c.mu.Unlock()
	if st == StatusNew {
		if err := c.Create(ctx); err != nil {
			return err
		}
	} else if st != StatusCreated {
		return &StateError{ID: c.id, Op: "start", State: st}
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	if err := c.start(ctx); err != nil {
		_ = c.teardown()
		return err
	}
	// Poststart failures do not undo the start (the spec: warn and go on).
	if err := runHooks(ctx, HookPoststart, hookList(c.spec.Hooks, HookPoststart), ptr(c.State())); err != nil {
		c.log.Warn("poststart hook failed", "container", c.id, "err", err)
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

func (c *Container) start(ctx context.Context) error {
	c.mu.Lock()
	if c.status != StatusCreated {
		st := c.status
		c.mu.Unlock()
		return &StateError{ID: c.id, Op: "start", State: st}
	}
	c.status = StatusRunning
	conn := c.conn
	c.mu.Unlock()
	if err := conn.Send(ctx, &startMsg{}); err != nil {
		return c.stepErr(StepWaitStart, c.childGone(ctx, err))
	}
	c.mu.Lock()
	c.lastStep = StepWaitStart
	c.mu.Unlock()
	execing := false
	for {
		msg, files, err := conn.Recv(ctx)
		if _, ok := msg.(*listenerMsg); !ok {
			closeFiles(files)
		}
		if errors.Is(err, syncpipe.ErrPeerClosed) && execing {
			// The socket is O_CLOEXEC: end of stream after execMsg means execve succeeded.
			c.mu.Lock()
			conn.Close()
			c.conn = nil
			c.mu.Unlock()
			return nil
		}
		if err != nil {
			return c.stepErr(c.failedStep(), c.childGone(ctx, err))
		}
		switch m := msg.(type) {
		case *progressMsg:
			c.mu.Lock()
			c.lastStep = m.Step
			c.mu.Unlock()
		case *listenerMsg:
			if err := c.forwardListener(ctx, files); err != nil {
				return c.stepErr(StepSeccomp, err)
			}
		case *execMsg:
			execing = true
		case *syncpipe.StepError:
			return c.stepErr(Step(m.Step), m)
		default:
			return c.stepErr(c.failedStep(), fmt.Errorf("%w: %s while starting", syncpipe.ErrUnexpected, msg.Kind()))
		}
	}
}

func closeFiles(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// forwardListener hands the child's seccomp listener to the agent at the profile's listenerPath,
// with the container's state, then lets the child go on.
func (c *Container) forwardListener(ctx context.Context, files []*os.File) error {
	defer closeFiles(files)
	prog := c.child.Seccomp
	if len(files) != 1 || prog == nil || !prog.Notify {
		return fmt.Errorf("%w: seccomp listener without a notify profile", syncpipe.ErrUnexpected)
	}
	state := specs.ContainerProcessState{State: c.State()}
	if err := seccomp.SendListenerContext(ctx, prog, files[0], state); err != nil {
		return err
	}
	return c.conn.Send(ctx, &resumeMsg{})
}
