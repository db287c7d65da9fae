package libjail

import (
	"errors"
	"fmt"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/libjail/libjail/cgroups"
	"github.com/libjail/libjail/devices"
)

// Pause freezes every process of a running container (v1 freezer or v2 cgroup.freeze) and returns
// once they are frozen.
func (c *Container) Pause() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refreshLocked()
	if c.status != StatusRunning {
		return &StateError{ID: c.id, Op: "pause", State: c.status}
	}
	if err := c.cg.Freeze(); err != nil {
		return fmt.Errorf("libjail: pause %q: %w", c.id, err)
	}
	c.status = StatusPaused
	return c.saveLocked()
}

// Resume thaws a paused container.
func (c *Container) Resume() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refreshLocked()
	if c.status != StatusPaused {
		return &StateError{ID: c.id, Op: "resume", State: c.status}
	}
	if err := c.cg.Thaw(); err != nil {
		return fmt.Errorf("libjail: resume %q: %w", c.id, err)
	}
	c.status = StatusRunning
	return c.saveLocked()
}

// Stats reads the container's cgroup statistics.
func (c *Container) Stats() (*cgroups.Stats, error) {
	c.mu.Lock()
	cg := c.cg
	c.mu.Unlock()
	if cg == nil {
		return nil, &StateError{ID: c.id, Op: "stats", State: c.Status()}
	}
	return cg.Stats()
}

// Update changes the resources of a created, running or paused container. Device rules go to the
// pod first, then to the container (hot-plug), on v1 or v2 alike.
func (c *Container) Update(res *specs.LinuxResources) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refreshLocked()
	if c.status != StatusCreated && c.status != StatusRunning && c.status != StatusPaused {
		return &StateError{ID: c.id, Op: "update", State: c.status}
	}
	if res == nil {
		return nil
	}
	r := *res
	if r.Devices != nil {
		rules, err := devices.PlanRules(r.Devices)
		if err != nil {
			return fmt.Errorf("libjail: update %q: %w", c.id, err)
		}
		all := containerRules(rules)
		dir, v2 := c.cg.DevicesDir()
		switch d := c.devs.(type) {
		case nil:
			if c.opts.pod != nil {
				err = c.opts.pod.updateContainerRules(dir, all)
			} else if v2 {
				err = fmt.Errorf("no device program to update: %w", unix.ENOENT)
			} else {
				err = devices.ApplyV1(dir, all)
			}
		case *devices.V2:
			err = d.Replace(all)
		default:
			err = fmt.Errorf("device rules of type %T: %w", d, unix.ENOTSUP)
		}
		if err != nil {
			return fmt.Errorf("libjail: update %q: linux.resources.devices: %w", c.id, err)
		}
		c.rules = rules
		r.Devices = nil
	}
	if err := c.cg.Update(&r); err != nil {
		return fmt.Errorf("libjail: update %q: %w", c.id, err)
	}
	return nil
}

// SignalAll sends sig to every process of the container (the OCI `kill --all`): SIGKILL through
// the cgroup's kill where the kernel has it, other signals to each pid of the cgroup.
func (c *Container) SignalAll(sig syscall.Signal) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refreshLocked()
	if c.status != StatusCreated && c.status != StatusRunning && c.status != StatusPaused {
		return &StateError{ID: c.id, Op: "signal", State: c.status}
	}
	if sig == unix.SIGKILL {
		return c.cg.Kill()
	}
	pids, err := c.pidsLocked()
	if err != nil {
		return err
	}
	var errs []error
	for _, pid := range pids {
		if err := unix.Kill(pid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("pid %d: %w", pid, err))
		}
	}
	return errors.Join(errs...)
}

// Pids lists the pids (as the agent sees them) of every process in the container's cgroup.
func (c *Container) Pids() ([]int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cg == nil {
		return nil, &StateError{ID: c.id, Op: "list processes", State: c.status}
	}
	return c.pidsLocked()
}

func (c *Container) pidsLocked() ([]int, error) {
	return c.cg.Pids()
}
