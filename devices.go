package libjail

import (
	"github.com/libjail/libjail/devices"
)

// applyDeviceRules restricts the container's cgroup before its child exists: the default devices
// (deny all, then the standard nodes), then the spec's rules. v1 rules are kernel state of the
// cgroup and go with it; a v2 program is held by the container until destroy.
func (c *Container) applyDeviceRules() error {
	// A rule list means what it says from "deny all": the defaults first, then the spec's.
	rules := append(devices.PodDefaultRules(), c.rules...)
	if pod := c.opts.pod; pod != nil {
		// Pod order: the pod's rules grow to include this container's, then the container's apply.
		dir, _ := c.cg.DevicesDir()
		return pod.addContainerRules(dir, rules)
	}
	dir, v2 := c.cg.DevicesDir()
	if !v2 {
		return devices.ApplyV1(dir, rules)
	}
	prog, err := devices.AttachV2(dir, rules)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.devs = prog
	c.mu.Unlock()
	return nil
}
