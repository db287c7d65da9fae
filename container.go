package libjail

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/libjail/libjail/capabilities"
	"github.com/libjail/libjail/cgroups"
	"github.com/libjail/libjail/devices"
	"github.com/libjail/libjail/mounts"
	"github.com/libjail/libjail/namespaces"
	"github.com/libjail/libjail/seccomp"
	"github.com/libjail/libjail/syncpipe"
)

// Status is a container's lifecycle state, with the OCI state names.
type Status string

const (
	StatusNew      Status = "new" // planned, nothing created yet
	StatusCreating Status = "creating"
	StatusCreated  Status = "created"
	StatusRunning  Status = "running"
	StatusPaused   Status = "paused"
	StatusStopped  Status = "stopped"
)

// Options are the caller's choices that are not in the spec.
type Options struct {
	// Bundle is the directory a relative root.path is resolved against.
	Bundle string
	// Stdin, Stdout and Stderr are the container process's stdio (nil: /dev/null). *os.File values
	// are passed as they are; other readers and writers get a pipe copied by the agent.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// CgroupParent is the parent of a relative linux.cgroupsPath, and of the default path <parent>/<id>
	// when the spec gives none. Default "/libjail".
	CgroupParent string
	// ConsoleSocket is the path of a unix socket that receives the pty master of a container with
	// process.terminal (the OCI --console-socket convention); empty: the master is kept for
	// Container.Console. With a terminal, the pty slave is the process's stdio and Stdin, Stdout
	// and Stderr are not used. A container that outlives its creating process (StateDir) needs
	// the socket: a master held by this process closes with it, hanging up the container's tty.
	ConsoleSocket string
	// NoPivot switches into the root with MS_MOVE and chroot instead of pivot_root.
	NoPivot bool
	// Timeout bounds Create and Start when their context has no deadline. Default 30s.
	Timeout time.Duration
	// SeccompCacheDir, when set, keeps compiled seccomp programs on disk there, for programs that
	// run one container per process (a runtime command line); it must be private to root.
	SeccompCacheDir string
	// StateDir, when set, makes the container persistent: its state is kept in StateDir/<id> from
	// Create to Destroy so that another process can Load it, and its start barrier is a FIFO there
	// that any process may open (see Load). The creating process may then exit after Create.
	StateDir string
	// Logger receives warnings (unknown syscall or capability names). Nil: nothing is logged.
	Logger *slog.Logger

	pod   *Pod // set by Pod.NewContainer
	fault Step // fault injection for tests: the child kills itself at this step
}

func (o Options) withDefaults() Options {
	if o.CgroupParent == "" {
		o.CgroupParent = "/libjail"
	}
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	return o
}

// Container is one container: planned by New, then created, started, waited for and destroyed.
// Its methods are safe for concurrent use.
type Container struct {
	id   string
	spec *specs.Spec
	opts Options
	log  *slog.Logger

	// The plan, made by New.
	ns     *namespaces.NSPlan
	cgPlan *cgroups.CgroupPlan
	rules  []devices.Rule
	child  childPlan

	mu        sync.Mutex
	status    Status
	cg        cgroups.Manager
	devs      io.Closer // the container's device rules, when something must be removed at destroy
	conn      *syncpipe.Conn
	cmd       *exec.Cmd
	pid       int
	exited    chan struct{} // closed when the init process has been reaped
	waitErr   error
	state     *os.ProcessState
	steps     stepTracker
	destroyed bool
	console   *os.File // the pty master until Console hands it over
	created   time.Time
	pidStart  uint64        // the init's start time (clock ticks since boot), saved with the state
	loaded    bool          // found by Load: the init is not this process's child
	pidfd     *os.File      // the init of a loaded container
	ownState  bool          // StateDir/<id> is this container's, to remove at destroy
	released  chan struct{} // closed by Release to stop watching a loaded init
	// deviceProgram is the id of the container's own v2 device program, for leak checks.
	deviceProgram ebpf.ProgramID
	// ownPodPath is the cgroup of the pod of one a container outside a pod lives in; ownPod is that
	// pod once made.
	ownPodPath string
	ownPodRes  *specs.LinuxResources
	ownPod     *Pod
}

// ownPodResources is what a pod of one must grant for its container's limits to be valid below it:
// a v1 realtime budget (a new cgroup has none, and a child cannot exceed its parent's).
func ownPodResources(res *specs.LinuxResources) *specs.LinuxResources {
	if res == nil || res.CPU == nil || (res.CPU.RealtimeRuntime == nil && res.CPU.RealtimePeriod == nil) {
		return nil
	}
	return &specs.LinuxResources{CPU: &specs.LinuxCPU{
		RealtimeRuntime: res.CPU.RealtimeRuntime, RealtimePeriod: res.CPU.RealtimePeriod,
	}}
}

// ownPodLeaf names the cgroup of a container in its own pod of one.
const ownPodLeaf = "container"

// ownPodID names a container's pod of one.
func ownPodID(id string) string { return "libjail-own-" + id }

// New plans a container from its id and spec. It validates every section and creates no kernel
// state; errors wrap ErrInvalidSpec or the section package's own error and name the field.
func New(id string, spec *specs.Spec, opts Options) (*Container, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	if spec == nil || spec.Linux == nil || spec.Root == nil {
		return nil, &StepError{ID: id, Step: StepPlan, Err: specErr("root, linux", "the spec needs both")}
	}
	opts = opts.withDefaults()
	log := discardIfNil(opts.Logger)
	c := &Container{id: id, spec: spec, opts: opts, log: log, status: StatusNew, steps: newStepTracker()}
	if err := c.plan(); err != nil {
		return nil, &StepError{ID: id, Step: StepPlan, Err: err}
	}
	return c, nil
}

func validID(id string) error {
	if id == "" || len(id) > 1024 || id == "." || id == ".." || filepath.Base(id) != id {
		return fmt.Errorf("%w: container id %q: must be a plain, non-empty name", ErrInvalidSpec, id)
	}
	return nil
}

// plan runs every section's planner; the order does not matter, nothing touches the kernel.
func (c *Container) plan() error {
	var err error
	spec := c.spec
	if err := checkUnsupported(spec); err != nil {
		return err
	}
	if c.ns, err = namespaces.Plan(spec); err != nil {
		return err
	}
	// On v1 the child is placed in its cgroups after it starts, and a cgroup namespace is rooted
	// where its creator is: the child makes it once placed.
	c.ns.DeferCgroup = c.ns.Creates(namespaces.Cgroup)
	userNS := c.ns.Creates(namespaces.User) || joins(spec, specs.UserNamespace)
	if joins(spec, specs.MountNamespace) {
		// The mount namespace is another container's, root and all: nothing to mount or pivot.
		if len(spec.Mounts) > 0 {
			return specErr("mounts", "%d mounts given, but the mount namespace is joined (linux.namespaces), not created", len(spec.Mounts))
		}
		if len(spec.Linux.Devices) > 0 {
			return specErr("linux.devices", "device nodes cannot be created in a joined mount namespace")
		}
		if len(spec.Linux.MaskedPaths)+len(spec.Linux.ReadonlyPaths) > 0 {
			return specErr("linux.maskedPaths", "masked and read-only paths belong to the joined mount namespace's creator")
		}
	}
	mp, err := mounts.Plan(spec, mounts.Options{
		BundleDir: c.opts.Bundle, UserNamespace: userNS,
		CgroupNamespace: hasNS(spec, specs.CgroupNamespace), NoPivot: c.opts.NoPivot, Logger: c.log,
	})
	if err != nil {
		return err
	}
	nodes, err := devices.PlanNodes(spec.Linux.Devices, mp.PrivateDev())
	if err != nil {
		return err
	}
	var res *specs.LinuxResources
	if spec.Linux.Resources != nil {
		r := *spec.Linux.Resources
		c.rules, err = devices.PlanRules(r.Devices)
		if err != nil {
			return err
		}
		r.Devices = nil // the devices package owns them
		res = &r
	}
	cgPath := spec.Linux.CgroupsPath
	if cgPath == "" {
		cgPath = c.id
	}
	layout, hs, err := cgroupLayout()
	if err != nil {
		return err
	}
	cgOpts := cgroups.Options{Parent: c.opts.CgroupParent, Hierarchies: hs, Logger: c.log}
	if c.opts.pod != nil {
		if c.cgPlan, err = cgroups.Plan(cgPath, res, layout, cgOpts); err != nil {
			return err
		}
	} else {
		// A container outside a pod is a pod of one: its cgroupsPath is a pod cgroup holding its
		// device rules, and its processes live in a "container" cgroup below. A restricted parent
		// is what keeps a container that may write its own devices.allow (or attach programs to
		// its own cgroup) within its rules: v1 lets a cgroup widen up to its parent's set.
		cgOpts.Pod = true
		c.ownPodRes = ownPodResources(res)
		podPlan, err := cgroups.Plan(cgPath, c.ownPodRes, layout, cgOpts)
		if err != nil {
			return err
		}
		c.ownPodPath = podPlan.Path
		if c.cgPlan, err = podPlan.PlanChild(ownPodLeaf, res, c.log); err != nil {
			return err
		}
	}
	proc, err := planProcess(spec.Process, haveCap(capability.CAP_SYS_RESOURCE))
	if err != nil {
		return err
	}
	caps, err := capabilities.Plan(spec.Process.Capabilities, c.log)
	if err != nil {
		return err
	}
	var prog *seccomp.Program
	if spec.Linux.Seccomp != nil {
		if prog, err = seccomp.Compile(spec.Linux.Seccomp, seccomp.Options{Logger: c.log, CacheDir: c.opts.SeccompCacheDir}); err != nil {
			return err
		}
	}
	if err := validateHooks(spec.Hooks); err != nil {
		return err
	}
	c.warnUndefendable(caps, userNS, prog)
	c.child = childPlan{
		ID: c.id, Mounts: mp, Nodes: nodes, UserNS: userNS, Process: proc, Caps: caps, Seccomp: prog,
		CgroupNS:        c.ns.DeferCgroup,
		JoinedMountNS:   joins(spec, specs.MountNamespace),
		RuntimeHooks:    len(hookList(spec.Hooks, HookPrestart))+len(hookList(spec.Hooks, HookCreateRuntime)) > 0,
		CreateContainer: hookList(spec.Hooks, HookCreateContainer),
		StartContainer:  hookList(spec.Hooks, HookStartContainer),
	}
	if spec.Hostname != "" {
		if !c.ns.Creates(namespaces.UTS) {
			return specErr("hostname", "setting it needs a new uts namespace")
		}
		h := spec.Hostname
		c.child.Hostname = &h
	}
	if spec.Domainname != "" {
		if !c.ns.Creates(namespaces.UTS) {
			return specErr("domainname", "setting it needs a new uts namespace")
		}
		d := spec.Domainname
		c.child.Domainname = &d
	}
	return c.planProcessExtras()
}

func hasNS(spec *specs.Spec, t specs.LinuxNamespaceType) bool {
	for _, n := range spec.Linux.Namespaces {
		if n.Type == t {
			return true
		}
	}
	return false
}

func joins(spec *specs.Spec, t specs.LinuxNamespaceType) bool {
	for _, n := range spec.Linux.Namespaces {
		if n.Type == t && n.Path != "" {
			return true
		}
	}
	return false
}

var layoutOnce struct {
	sync.Once
	layout      cgroups.Layout
	hierarchies []cgroups.Hierarchy
	err         error
}

// cgroupLayout detects the mounted cgroup hierarchies once per process.
func cgroupLayout() (cgroups.Layout, []cgroups.Hierarchy, error) {
	layoutOnce.Do(func() {
		hs, err := cgroups.DetectHierarchies()
		layoutOnce.hierarchies, layoutOnce.err = hs, err
		if err == nil {
			layoutOnce.layout = cgroups.LayoutOf(hs)
		}
	})
	return layoutOnce.layout, layoutOnce.hierarchies, layoutOnce.err
}

// State returns the container's OCI state.
func (c *Container) State() specs.State {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refreshLocked()
	return c.ociStateLocked()
}

func (c *Container) ociStateLocked() specs.State {
	st := c.status
	if st == StatusNew {
		st = StatusCreating
	}
	pid := c.pid
	if st == StatusStopped {
		pid = 0
	}
	return specs.State{
		Version: specs.Version, ID: c.id, Status: specs.ContainerState(st), Pid: pid,
		Bundle: c.opts.Bundle, Annotations: c.spec.Annotations,
	}
}

// ID returns the container's id.
func (c *Container) ID() string { return c.id }

// Status returns the container's lifecycle state.
func (c *Container) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refreshLocked()
	return c.status
}

// Pid returns the pid of the container's init process (0 before Create).
func (c *Container) Pid() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pid
}

func (c *Container) refreshLocked() {
	if c.exited == nil {
		return
	}
	select {
	case <-c.exited:
		if c.status == StatusCreated || c.status == StatusRunning || c.status == StatusPaused {
			c.status = StatusStopped
		}
	default:
	}
}

func (c *Container) stepErr(step Step, err error) error {
	var se *StepError
	if errors.As(err, &se) {
		return err
	}
	return &StepError{ID: c.id, Step: step, Err: err}
}

func (c *Container) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.opts.Timeout)
}

// Wait waits for the container's init process to exit and returns its status. For a container
// found by Load the status is nil: it belongs to the init's parent.
func (c *Container) Wait() (*os.ProcessState, error) {
	c.mu.Lock()
	exited := c.exited
	c.mu.Unlock()
	if exited == nil {
		return nil, &StateError{ID: c.id, Op: "wait", State: c.Status()}
	}
	<-exited
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state, c.waitErr
}

// Signal sends sig to the container's init process.
func (c *Container) Signal(sig syscall.Signal) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refreshLocked()
	if c.status != StatusCreated && c.status != StatusRunning && c.status != StatusPaused {
		return &StateError{ID: c.id, Op: "signal", State: c.status}
	}
	return c.signalLocked(sig)
}

// signalLocked signals the init through a pidfd, so a recycled pid can never be hit.
func (c *Container) signalLocked(sig syscall.Signal) error {
	var err error
	if c.cmd != nil {
		err = c.cmd.Process.Signal(sig)
	} else if c.pidfd != nil {
		err = unix.PidfdSendSignal(int(c.pidfd.Fd()), sig, nil, 0)
		if errors.Is(err, unix.ESRCH) {
			err = os.ErrProcessDone
		}
	} else {
		err = os.ErrProcessDone
	}
	if errors.Is(err, os.ErrProcessDone) {
		return &StateError{ID: c.id, Op: "signal", State: StatusStopped}
	}
	return err
}

// Destroy removes everything the container created. A created or running container is refused
// unless force is set, in which case its processes are killed first.
func (c *Container) Destroy(force bool) error {
	c.mu.Lock()
	c.refreshLocked()
	if (c.status == StatusCreated || c.status == StatusRunning || c.status == StatusPaused) && !force {
		st := c.status
		c.mu.Unlock()
		return &StateError{ID: c.id, Op: "destroy without force", State: st}
	}
	if c.destroyed {
		c.mu.Unlock()
		return nil
	}
	c.destroyed = true
	created := c.cmd != nil || c.loaded
	c.mu.Unlock()
	err := c.teardown()
	if c.opts.pod != nil {
		c.opts.pod.forget(c.id)
	}
	if created {
		// Poststop hooks run once the container is gone; their failures are reported, not fatal.
		state := c.State()
		if herr := runHooks(context.Background(), HookPoststop, hookList(c.spec.Hooks, HookPoststop), &state); herr != nil {
			c.log.Warn("poststop hook failed", "container", c.id, "err", herr)
			err = errors.Join(err, herr)
		}
	}
	return err
}

// teardown kills and reaps the child, then removes device programs, cgroups and fds. It is the one
// cleanup path, used by Destroy and by every failed Create.
func (c *Container) teardown() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	if c.exited != nil {
		select {
		case <-c.exited:
		default:
			if c.cg != nil {
				_ = c.cg.Kill() // every process of the container, not only init
			}
			// A frozen init cannot die: thaw it (a no-op when it is not frozen).
			if c.status == StatusPaused && c.cg != nil {
				_ = c.cg.Thaw()
			}
			_ = c.signalLocked(unix.SIGKILL)
			c.mu.Unlock()
			<-c.exited
			c.mu.Lock()
		}
	}
	if c.devs != nil {
		if err := c.devs.Close(); err != nil {
			errs = append(errs, fmt.Errorf("device rules: %w", err))
		}
		c.devs = nil
	}
	c.releaseLocked()
	c.closeConsoleLocked() // after the kill: closing a live container's master would hang it up
	if pod := c.opts.pod; pod != nil && c.cg != nil && c.status != StatusNew {
		// The pod's union shrinks by this container's rules.
		dir, _ := c.cg.DevicesDir()
		if err := pod.removeContainerRules(dir); err != nil {
			errs = append(errs, fmt.Errorf("pod device rules: %w", err))
		}
	}
	if mp := c.child.Mounts; mp != nil && (c.cmd != nil || c.loaded) {
		// Only a shared rootfs propagation can have put mounts on the host.
		if err := mp.Cleanup(); err != nil {
			errs = append(errs, fmt.Errorf("mounts: %w", err))
		}
	}
	if c.cg != nil {
		if err := c.cg.Destroy(); err != nil {
			errs = append(errs, fmt.Errorf("cgroup: %w", err))
		}
		c.cg = nil
	}
	if c.ownPod != nil {
		if err := c.ownPod.Destroy(); err != nil {
			errs = append(errs, err)
		}
		c.ownPod, c.opts.pod = nil, nil
	}
	if c.ownState {
		if err := os.RemoveAll(c.stateDir()); err != nil {
			errs = append(errs, fmt.Errorf("state: %w", err))
		}
	}
	if c.status != StatusNew {
		c.status = StatusStopped
	}
	if len(errs) > 0 {
		return fmt.Errorf("libjail: destroy container %q: %w", c.id, errors.Join(errs...))
	}
	return nil
}

// warnUndefendable warns about a spec that grants what the kernel's own controls cannot contain:
// CAP_SYS_ADMIN in the initial user namespace with no seccomp filter can mount cgroupfs and,
// without a cgroup namespace, leave its cgroups (device rules included). SECURITY.md, "What is not
// covered". The spec is the caller's to decide; the warning says what it implies.
func (c *Container) warnUndefendable(caps capabilities.Set, userNS bool, prog *seccomp.Program) {
	if userNS || prog != nil {
		return
	}
	for _, cp := range caps.Bounding {
		if cp == capability.CAP_SYS_ADMIN {
			c.log.Warn("CAP_SYS_ADMIN in the initial user namespace without seccomp: cgroup and mount restrictions, device rules included, cannot hold against this container",
				"container", c.id, "field", "process.capabilities.bounding")
			return
		}
	}
}
