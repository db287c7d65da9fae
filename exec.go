package libjail

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/libjail/libjail/capabilities"
	"github.com/libjail/libjail/namespaces"
	"github.com/libjail/libjail/syncpipe"
)

// ExecOptions are the caller's choices for an extra process.
type ExecOptions struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// ConsoleSocket receives the pty master of a process with terminal set, as in Options;
	// empty: Process.Console has it.
	ConsoleSocket string
}

// Process is an extra process started in a running container by Exec.
type Process struct {
	cmd     *exec.Cmd
	exited  chan struct{}
	mu      sync.Mutex
	state   *os.ProcessState
	err     error
	console *os.File // the pty master until Console hands it over
}

// Pid is the process's pid as the agent sees it.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig to the process (through a pidfd: a recycled pid is never hit).
func (p *Process) Signal(sig syscall.Signal) error { return p.cmd.Process.Signal(sig) }

// Wait waits for the process to exit and returns its status.
func (p *Process) Wait() (*os.ProcessState, error) {
	<-p.exited
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state, p.err
}

// Exec starts an extra process in the running container: it joins every namespace of the
// container's init (through a pidfd) and its cgroup, and gets its own user, capabilities,
// rlimits, env, cwd and no_new_privs from spec, under the container's seccomp profile. It returns
// once the process has exec'd.
func (c *Container) Exec(ctx context.Context, spec *specs.Process, opts ExecOptions) (_ *Process, err error) {
	c.mu.Lock()
	c.refreshLocked()
	if c.status != StatusRunning {
		st := c.status
		c.mu.Unlock()
		return nil, &StateError{ID: c.id, Op: "exec", State: st}
	}
	pid, cg := c.pid, c.cg
	seccompProg := c.child.Seccomp
	userNS := c.child.UserNS
	c.mu.Unlock()

	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	stepErr := func(step Step, err error) error { return &StepError{ID: c.id + "/exec", Step: step, Err: err} }

	proc, err := planProcess(spec, haveCap(capability.CAP_SYS_RESOURCE))
	if err != nil {
		return nil, stepErr(StepPlan, err)
	}
	var caps capabilities.Set
	if caps, err = capabilities.Plan(spec.Capabilities, c.log); err != nil {
		return nil, stepErr(StepPlan, err)
	}
	plan := &childPlan{ID: c.id, Exec: true, UserNS: userNS, Process: proc, Caps: caps, Seccomp: seccompProg}
	if err := c.planExecExtras(plan, spec, opts.ConsoleSocket); err != nil {
		return nil, stepErr(StepPlan, err)
	}

	ns, err := namespaces.ForExec(pid)
	if err != nil {
		return nil, stepErr(StepJoinNS, err)
	}
	exe, err := sealedExecutable()
	if err != nil {
		return nil, stepErr(StepExecutable, err)
	}
	conn, childSock, err := protocol.Pair()
	if err != nil {
		return nil, stepErr(StepStartChild, err)
	}
	defer conn.Close()
	cmd, closers, err := c.commandFor(exe, childSock, false, opts.Stdin, opts.Stdout, opts.Stderr)
	if err != nil {
		childSock.Close()
		return nil, stepErr(StepStartChild, err)
	}
	release, err := ns.Configure(cmd)
	if err != nil {
		closeAll(closers)
		return nil, stepErr(StepStartChild, err)
	}
	err = ns.Start(cmd)
	release()
	closeAll(closers)
	if err != nil {
		if cmd.Process != nil {
			_ = cmd.Wait() // failed after the fork: the child was killed; reap it
		}
		return nil, stepErr(StepStartChild, err)
	}
	p := &Process{cmd: cmd, exited: make(chan struct{})}
	go func() {
		state, err := reap(cmd)
		p.mu.Lock()
		p.state, p.err = state, err
		p.mu.Unlock()
		close(p.exited)
	}()
	defer func() {
		if err != nil {
			_ = cmd.Process.Kill()
			<-p.exited
			p.closeConsole()
		}
	}()
	if err := cg.Place(cmd.Process.Pid); err != nil {
		return nil, stepErr(StepPlaceCgroup, err)
	}
	if a := proc.OOMScoreAdj; a != nil {
		if err := writeOOMScoreAdj(cmd.Process.Pid, *a); err != nil {
			return nil, stepErr(StepPlaceCgroup, err)
		}
	}
	if err := conn.Send(ctx, plan); err != nil {
		return nil, stepErr(StepSendPlan, err)
	}
	steps := newStepTracker()
	steps.done(StepReceivePlan)
	execing := false
	for {
		msg, files, err := conn.Recv(ctx)
		if errors.Is(err, syncpipe.ErrPeerClosed) && execing {
			return p, nil
		}
		if err != nil {
			if errors.Is(err, syncpipe.ErrPeerClosed) {
				err = fmt.Errorf("%w: %w", ErrChildDied, err)
			}
			return nil, stepErr(steps.next(), err)
		}
		switch m := msg.(type) {
		case *progressMsg:
			steps.done(m.Step)
		case *listenerMsg:
			err := c.forwardListenerOn(ctx, conn, files)
			if err != nil {
				return nil, stepErr(StepSeccomp, err)
			}
			continue
		case *ptyMsg:
			if err := p.takeConsole(ctx, m, files, plan.Terminal, opts.ConsoleSocket); err != nil {
				return nil, stepErr(StepTerminal, err)
			}
			continue
		case *execMsg:
			execing = true
		case *syncpipe.StepError:
			return nil, stepErr(Step(m.Step), m)
		default:
			closeFiles(files)
			return nil, stepErr(steps.next(), fmt.Errorf("%w: %s during exec", syncpipe.ErrUnexpected, msg.Kind()))
		}
		closeFiles(files)
	}
}

// runExec is the child of Exec: it is in the container's namespaces already (joined before the Go
// runtime started), so only the process's own steps run, in the init's order.
func (ch *child) runExec() (Step, error) {
	p := ch.plan
	nnp := p.Process.NoNewPrivs
	steps := []struct {
		step Step
		f    func() error
	}{
		{StepCPUAffinity, p.Affinity.ApplyInitial},
		{StepKeyring, joinSessionKeyring},
		{StepTerminal, ch.setupTerminal},
		{StepRlimits, p.Process.applyRlimits},
		{StepPersonality, p.Attrs.applyPersonality},
		{StepIOPriority, p.Attrs.applyIOPrio},
		{StepScheduler, p.Attrs.applyScheduler},
		{StepSeccomp, func() error { return ch.loadSeccomp(!nnp) }},
		{StepUser, ch.switchUser},
		{StepCapabilities, p.Caps.Apply},
		{StepNoNewPrivs, func() error {
			if !nnp {
				return nil
			}
			return unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
		}},
		{StepLabels, p.Attrs.applyLabels},
		{StepCPUAffinity, p.Affinity.ApplyFinal},
		{StepSeccomp, func() error { return ch.loadSeccomp(nnp) }},
		{StepExec, ch.exec},
	}
	for _, s := range steps {
		if err := ch.do(s.step, s.f); err != nil {
			return s.step, err
		}
	}
	return StepExec, errors.New("execve returned")
}
