package libjail

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/libjail/libjail/cgroups"
	"github.com/libjail/libjail/devices"
	"github.com/libjail/libjail/mounts"
)

// With Options.StateDir set, a container keeps its state in StateDir/<id>/state.json from Create
// to Destroy, so another process (a runtime command line, a restarted agent) can Load it and
// start, signal, inspect, pause or destroy it. Its start barrier is then a FIFO in that directory
// (exec.fifo), which any process can open to release it.

const (
	stateFile = "state.json"
	fifoFile  = "exec.fifo"
)

// savedState is what state.json holds: enough to find the container's processes and to undo
// everything it created.
type savedState struct {
	State    specs.State         `json:"state"`
	PidStart uint64              `json:"pidStart"` // the init's start time, so a recycled pid is never mistaken for it
	Created  time.Time           `json:"created"`
	Spec     *specs.Spec         `json:"spec"`
	Cgroup   *cgroups.CgroupPlan `json:"cgroup"`
	Mounts   *mounts.RootfsPlan  `json:"mounts"`
	// DeviceProgram is the container's own v2 device program (0 on v1, where rules are cgroup state).
	DeviceProgram ebpf.ProgramID `json:"deviceProgram,omitempty"`
	// Pod names the persistent pod the container belongs to; OwnPod marks it as the container's
	// own pod of one, destroyed with it.
	Pod    *podRef `json:"pod,omitempty"`
	OwnPod bool    `json:"ownPod,omitempty"`
}

// ErrNotExist is returned by Load for an id with no saved state.
var ErrNotExist = errors.New("no such container")

func (c *Container) stateDir() string { return filepath.Join(c.opts.StateDir, c.id) }

// saveLocked writes state.json atomically (write, fsync, rename).
func (c *Container) saveLocked() error {
	if c.opts.StateDir == "" {
		return nil
	}
	s := savedState{
		State: c.ociStateLocked(), Created: c.created, Spec: c.spec, Cgroup: c.cgPlan,
		Mounts: c.child.Mounts, PidStart: c.pidStart,
	}
	if pod := c.opts.pod; pod != nil && pod.opts.StateDir != "" {
		s.Pod = &podRef{StateDir: pod.opts.StateDir, ID: pod.id}
		s.OwnPod = pod == c.ownPod
	}
	if v2, ok := c.devs.(*devices.V2); ok {
		id, err := v2.ProgramID()
		if err != nil {
			return err
		}
		s.DeviceProgram = id
	}
	b, err := json.Marshal(&s)
	if err != nil {
		return err
	}
	dir := c.stateDir()
	tmp, err := os.CreateTemp(dir, ".state-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, stateFile))
}

// makeStateDir creates StateDir/<id> and its FIFO; an existing directory means the id is taken.
func (c *Container) makeStateDir() error {
	if err := os.MkdirAll(c.opts.StateDir, 0o711); err != nil {
		return err
	}
	if err := os.Mkdir(c.stateDir(), 0o711); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("container %q exists in %s: %w", c.id, c.opts.StateDir, err)
		}
		return err
	}
	c.mu.Lock()
	c.ownState = true
	c.mu.Unlock()
	return unix.Mkfifo(filepath.Join(c.stateDir(), fifoFile), 0o600)
}

// Load finds a container saved under stateDir by another process (or an earlier life of this
// one). The returned Container can be started (if created), signalled, inspected, paused, resumed,
// exec'd into and destroyed; Wait only reports that it exited (its exit status belongs to its
// parent).
func Load(stateDir, id string, opts Options) (*Container, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(stateDir, id, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("libjail: load %q: %w", id, ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("libjail: load %q: %w", id, err)
	}
	s, err := parseState(b)
	if err != nil {
		return nil, fmt.Errorf("libjail: load %q: %s: %w", id, filepath.Join(stateDir, id, stateFile), err)
	}
	if s.State.ID != id {
		return nil, fmt.Errorf("libjail: load %q: %w: state names %q", id, ErrInvalidSpec, s.State.ID)
	}
	opts = opts.withDefaults()
	opts.StateDir = stateDir
	if opts.Bundle == "" {
		opts.Bundle = s.State.Bundle
	}
	c := &Container{id: id, spec: s.Spec, opts: opts, status: Status(s.State.Status), created: s.Created, steps: newStepTracker(),
		cgPlan: s.Cgroup, pidStart: s.PidStart, loaded: true, ownState: true}
	c.log = discardIfNil(opts.Logger)
	c.child.Mounts = s.Mounts
	if c.cg, err = cgroups.New(s.Cgroup); err != nil {
		return nil, fmt.Errorf("libjail: load %q: %w", id, err)
	}
	if s.DeviceProgram != 0 {
		dir, _ := c.cg.DevicesDir()
		if v2, err := devices.OpenV2(dir, s.DeviceProgram, nil); err == nil {
			c.devs = v2
		}
	}
	if s.Pod != nil {
		if c.opts.pod, err = LoadPod(s.Pod.StateDir, s.Pod.ID, PodOptions{Logger: opts.Logger}); err != nil {
			return nil, fmt.Errorf("libjail: load %q: %w", id, err)
		}
		if s.OwnPod {
			c.ownPod = c.opts.pod
		}
	}
	c.attach(s.State.Pid)
	return c, nil
}

// parseState decodes and checks a state file: a damaged one is an error, never a panic.
func parseState(b []byte) (*savedState, error) {
	var s savedState
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, err
	}
	switch {
	case s.Spec == nil || s.Spec.Linux == nil:
		return nil, errors.New("no spec")
	case s.Cgroup == nil:
		return nil, errors.New("no cgroup")
	case s.State.Pid < 0:
		return nil, fmt.Errorf("pid %d", s.State.Pid)
	case validID(s.State.ID) != nil:
		return nil, fmt.Errorf("id %q", s.State.ID)
	}
	switch Status(s.State.Status) {
	case StatusCreated, StatusRunning, StatusPaused, StatusStopped:
	default:
		return nil, fmt.Errorf("status %q", s.State.Status)
	}
	return &s, nil
}

func discardIfNil(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// attach follows a loaded container's init through a pidfd, checking its start time so a
// recycled pid is never taken for it.
func (c *Container) attach(pid int) {
	exited := make(chan struct{})
	c.exited = exited
	c.pid = pid
	if pid <= 0 {
		close(exited)
		return
	}
	st, err := procStartTime(pid)
	if err != nil || st != c.pidStart {
		close(exited)
		return
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		close(exited)
		return
	}
	// Re-check after opening the pidfd: it pins the process, so the start time now stays true.
	if st, err := procStartTime(pid); err != nil || st != c.pidStart {
		unix.Close(fd)
		close(exited)
		return
	}
	c.pidfd = os.NewFile(uintptr(fd), "pidfd")
	released := make(chan struct{})
	c.released = released
	go func() {
		// A pidfd becomes readable when its process exits. Poll in slices, so Release can end
		// the watch without closing an fd that is being polled.
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			if n, _ := unix.Poll(fds, 100); n > 0 {
				close(exited)
				return
			}
			select {
			case <-released:
				return
			default:
			}
		}
	}()
}

// Release lets go of a container without touching it: the handle's fds and watcher are closed,
// and the container goes on (a persistent one can be loaded again). A container created by this
// process without StateDir dies with its parent's connection, so release only persistent ones.
func (c *Container) Release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.releaseLocked()
}

// releaseLocked drops this handle's fds and watcher; the container itself is untouched.
func (c *Container) releaseLocked() {
	if v2, ok := c.devs.(*devices.V2); ok {
		v2.Release() // the program stays attached
		c.devs = nil
	}
	if c.released != nil {
		close(c.released)
		c.released = nil
	}
	if c.pidfd != nil {
		c.pidfd.Close()
		c.pidfd = nil
	}
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

// procStartTime is field 22 of /proc/<pid>/stat: the process's start time in clock ticks.
func procStartTime(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces and parentheses: count from its closing one.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("malformed stat")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, errors.New("malformed stat")
	}
	return strconv.ParseUint(f[19], 10, 64)
}
