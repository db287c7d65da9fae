package libjail

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/libjail/libjail/cgroups"
	"github.com/libjail/libjail/mounts"
	"github.com/libjail/libjail/namespaces"
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
	if c.opts.StateDir != "" {
		if err := c.makeStateDir(); err != nil {
			return StepState, err
		}
	}
	if c.ownPodPath != "" && c.opts.pod == nil {
		pod, err := NewPod(ownPodID(c.id), PodOptions{
			CgroupPath: c.ownPodPath, Resources: c.ownPodRes, Share: []namespaces.Type{},
			StateDir: c.opts.StateDir, Logger: c.opts.Logger,
		})
		if err != nil {
			return StepCgroup, err
		}
		c.mu.Lock()
		c.ownPod, c.opts.pod = pod, pod
		c.mu.Unlock()
	}
	cg, err := cgroups.New(c.cgPlan)
	if err != nil {
		return StepCgroup, err
	}
	if err := cg.Create(); err != nil {
		return StepCgroup, err // Create removed what it made, and nothing else
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
	cmd, closeAfterStart, err := c.commandFor(exe, childSock, c.opts.StateDir != "", c.opts.Stdin, c.opts.Stdout, c.opts.Stderr)
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
		if cmd.Process != nil {
			_ = cmd.Wait() // failed after the fork: the child was killed; reap it
		}
		return StepStartChild, err
	}
	c.startReaper(cmd)

	if err := cg.Place(cmd.Process.Pid); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return c.diedEarly(ctx, fmt.Errorf("%w: %w", syncpipe.ErrPeerClosed, err))
		}
		return StepPlaceCgroup, err
	}
	if a := c.child.Process.OOMScoreAdj; a != nil {
		if err := writeOOMScoreAdj(cmd.Process.Pid, *a); err != nil {
			return StepPlaceCgroup, err
		}
	}
	c.mu.Lock()
	c.child.State = c.ociStateLocked()
	c.mu.Unlock()
	idmapped, err := c.openIDMapped(cmd.Process.Pid)
	if err != nil {
		return StepMount, err
	}
	err = parent.Send(ctx, &c.child, idmapped...)
	closeFiles(idmapped)
	if err != nil {
		if errors.Is(err, syncpipe.ErrPeerClosed) {
			return c.diedEarly(ctx, err)
		}
		return StepSendPlan, c.childGone(ctx, err)
	}
	if step, err := c.awaitReady(ctx); err != nil {
		return step, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.created = time.Now()
	if c.opts.StateDir != "" {
		// The state names the init by pid and start time, so a recycled pid is never taken for it.
		st, err := procStartTime(c.pid)
		if err != nil {
			return StepState, err
		}
		c.pidStart = st
		c.status = StatusCreated
		if err := c.saveLocked(); err != nil {
			return StepState, err
		}
	}
	return StepReady, nil
}

// commandFor builds the exec.Cmd of a child: the sealed executable, the socket as fd 3, stdio, and
// the container's v2 cgroup to be born in. The returned closers are the parent's copies of what
// the child inherits, to close once it has started.
func (c *Container) commandFor(exe, childSock *os.File, withFIFO bool, stdin io.Reader, stdout, stderr io.Writer) (*exec.Cmd, []io.Closer, error) {
	cmd := &exec.Cmd{
		Path:       "/proc/self/fd/" + strconv.Itoa(int(exe.Fd())),
		Args:       []string{"libjail-init", c.id},
		Env:        []string{initEnv + "=" + strconv.Itoa(childFD)},
		ExtraFiles: []*os.File{childSock},
		Stdin:      stdin,
		Stdout:     stdout,
		Stderr:     stderr,
		SysProcAttr: &syscall.SysProcAttr{
			Setsid: true, // the container gets its own session, so a terminal can become its ctty
		},
	}
	closers := []io.Closer{childSock}
	if withFIFO {
		// The start barrier: the child opens it for writing through its own /proc/self/fd, which
		// blocks until a starter (any process) opens it for reading.
		fifo, err := os.OpenFile(filepath.Join(c.stateDir(), fifoFile), unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, nil, err
		}
		cmd.ExtraFiles = append(cmd.ExtraFiles, fifo)
		closers = append(closers, fifo)
		c.child.StartFIFO = childFD + len(cmd.ExtraFiles) - 1
		cmd.Env = append(cmd.Env, keepFDsEnv+"="+strconv.Itoa(c.child.StartFIFO))
	}
	if c.opts.fault != "" {
		cmd.Env = append(cmd.Env, faultEnv+"="+string(c.opts.fault))
	}
	if fd, err := c.cg.CgroupFD(); err == nil && fd != nil {
		// Born in its v2 cgroup: no window in which the child runs outside its limits.
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = int(fd.Fd())
		closers = append(closers, fd)
	} else if err != nil && !errors.Is(err, cgroups.ErrNotSupported) {
		closeAll(closers[1:]) // the caller closes childSock
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
		state, err := reap(cmd)
		c.mu.Lock()
		c.state, c.waitErr = state, err
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
			c.steps.done(m.Step)
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
	return c.steps.next()
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
	exited := c.exited
	c.mu.Unlock()
	if c.opts.StateDir != "" {
		if err := c.openFIFO(ctx, exited); err != nil {
			return c.stepErr(StepWaitStart, err)
		}
		c.mu.Lock()
		err := c.saveLocked()
		c.mu.Unlock()
		if err != nil {
			return c.stepErr(StepState, err)
		}
		if conn == nil {
			// Loaded by another process: the creator holds the protocol, if it still lives.
			return nil
		}
	} else if err := conn.Send(ctx, &startMsg{}); err != nil {
		return c.stepErr(StepWaitStart, c.childGone(ctx, err))
	}
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
			c.steps.done(m.Step)
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
	return c.forwardListenerOn(ctx, c.conn, files)
}

func (c *Container) forwardListenerOn(ctx context.Context, conn *syncpipe.Conn, files []*os.File) error {
	defer closeFiles(files)
	prog := c.child.Seccomp
	if len(files) != 1 || prog == nil || !prog.Notify {
		return fmt.Errorf("%w: seccomp listener without a notify profile", syncpipe.ErrUnexpected)
	}
	state := specs.ContainerProcessState{State: c.State()}
	if err := seccomp.SendListenerContext(ctx, prog, files[0], state); err != nil {
		return err
	}
	return conn.Send(ctx, &resumeMsg{})
}

// writeOOMScoreAdj is done by the parent: raising the score needs CAP_SYS_RESOURCE, which the
// child may have dropped.
func writeOOMScoreAdj(pid, adj int) error {
	p := "/proc/" + strconv.Itoa(pid) + "/oom_score_adj"
	if err := os.WriteFile(p, []byte(strconv.Itoa(adj)), 0); err != nil {
		return fmt.Errorf("process.oomScoreAdj: %w", err)
	}
	return nil
}

// openFIFO releases a child waiting at the FIFO barrier: opening the FIFO for reading lets the
// child's open for writing return; its one byte says it passed. A dead child never writes, so
// the wait also ends when the init exits or ctx ends.
func (c *Container) openFIFO(ctx context.Context, exited <-chan struct{}) error {
	path := filepath.Join(c.stateDir(), fifoFile)
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("start barrier: %w", err)
	}
	defer unix.Close(fd)
	buf := make([]byte, 1)
	for {
		n, err := unix.Read(fd, buf)
		if n == 1 {
			return os.Remove(path)
		}
		if err != nil && err != unix.EAGAIN {
			return fmt.Errorf("start barrier: %w", err)
		}
		select {
		case <-exited:
			return fmt.Errorf("start barrier: %w", ErrChildDied)
		case <-ctx.Done():
			return fmt.Errorf("start barrier: %w", ctx.Err())
		default:
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		_, _ = unix.Poll(fds, 20)
	}
}

// openIDMapped makes the plan's idmapped mounts, in the parent: they need privilege over the
// source's user namespace (the host's), which the child gave up when it entered its own. Each is
// a detached mount sent to the child with its plan.
func (c *Container) openIDMapped(pid int) ([]*os.File, error) {
	mp := c.child.Mounts
	if mp == nil || len(mp.IDMapped()) == 0 {
		return nil, nil
	}
	if len(mp.IDMapped()) > syncpipe.MaxFiles {
		return nil, fmt.Errorf("mounts: %d idmapped mounts, at most %d: %w", len(mp.IDMapped()), syncpipe.MaxFiles, unix.E2BIG)
	}
	return mp.OpenIDMapped(func(m *mounts.IDMap) (*os.File, error) {
		if len(m.UIDMappings) == 0 && len(m.GIDMappings) == 0 {
			return os.Open("/proc/" + strconv.Itoa(pid) + "/ns/user") // the container's own mappings
		}
		// The mount's own mappings: a user namespace made for them, held only by the fd.
		dir, err := os.MkdirTemp("", "libjail-idmap-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		pinned, err := namespaces.Pin(dir, []namespaces.Type{namespaces.User},
			namespaces.PinOptions{UIDMappings: m.UIDMappings, GIDMappings: m.GIDMappings})
		if err != nil {
			return nil, err
		}
		defer pinned.Release()
		return os.Open(pinned.Path(namespaces.User))
	})
}

// diedEarly reports a child found dead before the parent read its progress (placing it in its
// cgroup, or sending its plan): the step it died in comes from the reports it left in the socket.
func (c *Container) diedEarly(ctx context.Context, err error) (Step, error) {
	c.drainProgress(ctx)
	return c.failedStep(), c.childGone(ctx, err)
}

// drainProgress records the progress reports a dead child left in the socket, up to its end.
func (c *Container) drainProgress(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	for {
		msg, files, err := c.conn.Recv(ctx)
		closeFiles(files)
		if err != nil {
			return
		}
		if m, ok := msg.(*progressMsg); ok {
			c.mu.Lock()
			c.steps.done(m.Step)
			c.mu.Unlock()
		}
	}
}
