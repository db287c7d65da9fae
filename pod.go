package libjail

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/libjail/libjail/cgroups"
	"github.com/libjail/libjail/devices"
	"github.com/libjail/libjail/namespaces"
)

// PodOptions shape a Pod.
type PodOptions struct {
	// CgroupPath is the pod's cgroup: absolute, or relative to CgroupParent. Default: the pod id.
	CgroupPath   string
	CgroupParent string // default "/libjail"
	// Resources are the pod-level limits (devices excepted: the pod's device rules are its
	// containers' union on top of the defaults).
	Resources *specs.LinuxResources
	// Share lists the namespaces the pod pins and every container joins. Default: network, ipc, uts.
	Share []namespaces.Type
	// UIDMappings and GIDMappings, when set, make the pod pin a user namespace too, and create the
	// shared namespaces inside it, so containers that join both are privileged over the network
	// namespace (they can mount sysfs) without being privileged on the host.
	UIDMappings, GIDMappings []specs.LinuxIDMapping
	// Hostname is set in the pod's uts namespace (when the pod shares one).
	Hostname string
	// PinDir is where the shared namespaces are pinned. Default /run/libjail/pods/<id>.
	PinDir string
	// StateDir, when set, makes the pod persistent: its record is kept in StateDir/pods/<id>.json
	// so other processes can LoadPod it (a runtime command line, a restarted agent), and its
	// containers made with Options.StateDir find it again when loaded.
	StateDir string
	Logger   *slog.Logger
}

// Pod is a group of containers sharing a parent cgroup and pinned namespaces. Creating it
// restricts the pod cgroup first (deny all, then the default devices); each container's device
// rules are then added to the pod (the pod's set is the union) and applied to the container.
type Pod struct {
	id     string
	opts   PodOptions
	log    *slog.Logger
	cg     cgroups.Manager
	cgPlan *cgroups.CgroupPlan
	cgPath string
	devs   *devices.Pod
	pinned *namespaces.Pinned

	mu         sync.Mutex
	containers map[string]*Container
	destroyed  bool
	persisted  bool // the record under StateDir is this pod's, to remove at destroy
}

// NewPod creates the pod's cgroup with its device restrictions and pins its shared namespaces. On
// error nothing is left behind.
func NewPod(id string, opts PodOptions) (p *Pod, err error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	if opts.CgroupParent == "" {
		opts.CgroupParent = "/libjail"
	}
	if opts.CgroupPath == "" {
		opts.CgroupPath = id
	}
	if opts.Share == nil { // nil: the default; an empty list shares nothing
		opts.Share = []namespaces.Type{namespaces.Network, namespaces.IPC, namespaces.UTS}
	}
	if opts.PinDir == "" {
		opts.PinDir = filepath.Join("/run/libjail/pods", id)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pod := &Pod{id: id, opts: opts, log: log, containers: map[string]*Container{}}
	p = pod
	defer func() {
		if err != nil {
			_ = pod.release() // p is nil by now
		}
	}()

	layout, hs, err := cgroupLayout()
	if err != nil {
		return nil, podErr(id, StepCgroup, err)
	}
	plan, err := cgroups.Plan(opts.CgroupPath, opts.Resources, layout, cgroups.Options{Parent: opts.CgroupParent, Hierarchies: hs, Logger: log, Pod: true})
	if err != nil {
		return nil, podErr(id, StepPlan, err)
	}
	if p.cg, err = cgroups.New(plan); err != nil {
		return nil, podErr(id, StepCgroup, err)
	}
	if err := p.cg.Create(); err != nil {
		p.cg = nil // Create removed what it made, and nothing else
		return nil, podErr(id, StepCgroup, err)
	}
	p.cgPath, p.cgPlan = plan.Path, plan
	// Restrict the pod cgroup before any container exists in it.
	dir, v2 := p.cg.DevicesDir()
	if p.devs, err = devices.NewPod(dir, v2); err != nil {
		return nil, podErr(id, StepDevices, err)
	}
	types := append([]namespaces.Type(nil), opts.Share...)
	if len(opts.UIDMappings) > 0 {
		types = append(types, namespaces.User)
	}
	if len(types) > 0 {
		if err := os.MkdirAll(filepath.Dir(opts.PinDir), 0o711); err != nil {
			return nil, podErr(id, StepJoinNS, err)
		}
		exe, err := sealedExecutable()
		if err != nil {
			return nil, podErr(id, StepExecutable, err)
		}
		// The helper holding the namespaces runs the sealed copy: as a pid namespace's init it is
		// pid 1 of every container of the pod, and its executable must not be theirs to rewrite.
		p.pinned, err = namespaces.Pin(opts.PinDir, types, namespaces.PinOptions{
			UIDMappings: opts.UIDMappings, GIDMappings: opts.GIDMappings,
			Executable: "/proc/self/fd/" + strconv.Itoa(int(exe.Fd())),
		})
		if err != nil {
			return nil, podErr(id, StepJoinNS, err)
		}
	}
	if opts.Hostname != "" {
		if err := setPodHostname(p.NamespacePath(namespaces.UTS), opts.Hostname); err != nil {
			return nil, podErr(id, StepHostname, err)
		}
	}
	if opts.StateDir != "" {
		if err := p.persist(); err != nil {
			return nil, podErr(id, StepState, err)
		}
	}
	return p, nil
}

// persist writes a new persistent pod's record; an existing one means the id is taken. From then
// on the record holds the device rules, and this process's handle on them is let go.
func (p *Pod) persist() error {
	unlock, err := lockPod(p.opts.StateDir, p.id)
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := os.Stat(podFile(p.opts.StateDir, p.id)); err == nil {
		return fmt.Errorf("pod %q exists in %s: %w", p.id, p.opts.StateDir, os.ErrExist)
	}
	st, err := p.devs.State()
	if err != nil {
		return err
	}
	if err := writePodRecord(p.opts.StateDir, &podRecord{ID: p.id, Cgroup: p.cgPlan, Devices: st, Pinned: p.pinned}); err != nil {
		return err
	}
	p.persisted = true
	p.devs.Release()
	p.devs = nil
	return nil
}

func podErr(id string, step Step, err error) error {
	return &StepError{ID: "pod/" + id, Step: step, Err: err}
}

// ID returns the pod's id.
func (p *Pod) ID() string { return p.id }

// CgroupPath returns the pod cgroup's path inside the hierarchies.
func (p *Pod) CgroupPath() string { return p.cgPath }

// NamespacePath returns where the pod pinned its namespace of type t ("" if it shares none).
func (p *Pod) NamespacePath(t namespaces.Type) string {
	if p.pinned == nil {
		return ""
	}
	return p.pinned.Path(t)
}

// NewContainer plans a container of the pod: its spec joins the pod's pinned namespaces, and its
// cgroup is a child of the pod's (the spec's cgroupsPath, if any, only names the leaf).
func (p *Pod) NewContainer(id string, spec *specs.Spec, opts Options) (*Container, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.destroyed {
		return nil, fmt.Errorf("libjail: pod %q: %w", p.id, errPodDestroyed)
	}
	if _, dup := p.containers[id]; dup {
		return nil, fmt.Errorf("libjail: pod %q: container %q: %w", p.id, id, errDuplicateID)
	}
	if spec == nil || spec.Linux == nil {
		return nil, &StepError{ID: id, Step: StepPlan, Err: specErr("linux", "missing")}
	}
	s := *spec
	lx := *spec.Linux
	s.Linux = &lx
	lx.Namespaces = p.joinPodNamespaces(spec.Linux.Namespaces)
	leaf := id
	if spec.Linux.CgroupsPath != "" {
		leaf = path.Base(spec.Linux.CgroupsPath)
	}
	lx.CgroupsPath = path.Join(p.cgPath, leaf)
	opts.pod = p
	c, err := New(id, &s, opts)
	if err != nil {
		return nil, err
	}
	p.containers[id] = c
	return c, nil
}

// joinPodNamespaces replaces the spec's entries for the shared types by joins of the pod's.
func (p *Pod) joinPodNamespaces(in []specs.LinuxNamespace) []specs.LinuxNamespace {
	var out []specs.LinuxNamespace
	shared := map[specs.LinuxNamespaceType]string{}
	if p.pinned != nil {
		for t, path := range p.pinned.Paths {
			shared[specs.LinuxNamespaceType(t)] = path
		}
	}
	for _, n := range in {
		if _, ok := shared[n.Type]; !ok {
			out = append(out, n)
		}
	}
	for _, t := range namespaces.Types {
		if path, ok := shared[specs.LinuxNamespaceType(t)]; ok {
			out = append(out, specs.LinuxNamespace{Type: specs.LinuxNamespaceType(t), Path: path})
		}
	}
	return out
}

var (
	errPodDestroyed = errors.New("pod is destroyed")
	errDuplicateID  = errors.New("id already in the pod")
)

// Destroy destroys every container of the pod (killing those still running), then the pod's
// cgroup, device rules and pinned namespaces.
func (p *Pod) Destroy() error {
	p.mu.Lock()
	if p.destroyed {
		p.mu.Unlock()
		return nil
	}
	p.destroyed = true
	cs := p.containers
	p.containers = nil
	p.mu.Unlock()
	var errs []error
	for _, c := range cs {
		if err := c.Destroy(true); err != nil {
			errs = append(errs, err)
		}
	}
	if err := p.release(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (p *Pod) release() error {
	var errs []error
	if p.pinned != nil {
		if err := p.pinned.Release(); err != nil {
			errs = append(errs, fmt.Errorf("pinned namespaces: %w", err))
		}
		p.pinned = nil
	}
	if p.devs != nil {
		if err := p.devs.Close(); err != nil {
			errs = append(errs, fmt.Errorf("device rules: %w", err))
		}
		p.devs = nil
	} else if p.persisted {
		if err := p.closeRecordDevices(); err != nil && !errors.Is(err, ErrNotExist) {
			errs = append(errs, fmt.Errorf("device rules: %w", err))
		}
	}
	if p.cg != nil {
		if err := p.cg.Destroy(); err != nil {
			errs = append(errs, fmt.Errorf("cgroup: %w", err))
		}
		p.cg = nil
	}
	if p.persisted {
		if err := os.Remove(podFile(p.opts.StateDir, p.id)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("state: %w", err))
		}
		os.Remove(podFile(p.opts.StateDir, p.id) + ".lock")
		p.persisted = false
	}
	if len(errs) > 0 {
		return fmt.Errorf("libjail: destroy pod %q: %w", p.id, errors.Join(errs...))
	}
	return nil
}

// forget drops a destroyed container from the pod.
func (p *Pod) forget(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.containers, id)
}

// setPodHostname sets the hostname inside the pinned uts namespace at nsPath, from a locked
// thread that enters it and comes back (uts may be joined by one thread of a Go process).
func setPodHostname(nsPath, hostname string) error {
	if nsPath == "" {
		return fmt.Errorf("pod hostname: %w: the pod shares no uts namespace", ErrInvalidSpec)
	}
	runtime.LockOSThread()
	own, err := os.Open("/proc/thread-self/ns/uts")
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer own.Close()
	target, err := os.Open(nsPath)
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWUTS); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("setns %s: %w", nsPath, err)
	}
	herr := unix.Sethostname([]byte(hostname))
	if err := unix.Setns(int(own.Fd()), unix.CLONE_NEWUTS); err != nil {
		// This thread is stuck in the pod's namespace: leave it locked so the runtime ends it.
		return fmt.Errorf("return from %s: %w", nsPath, err)
	}
	runtime.UnlockOSThread()
	return herr
}
