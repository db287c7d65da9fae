package libjail

import (
	"github.com/libjail/libjail/devices"
)

// containerRules is what a container's cgroup gets: deny all, the spec's rules, then the default
// devices every container needs. The defaults come last because nearly every engine's spec starts
// its list with a deny-all rule, which would otherwise cancel them (runc orders them so too).
func containerRules(spec []devices.Rule) []devices.Rule {
	rules := append([]devices.Rule{devices.DenyAll()}, spec...)
	return append(rules, devices.DefaultRules()...)
}

// applyDeviceRules restricts the container's cgroup before its child exists. v1 rules are kernel
// state of the cgroup and go with it; a v2 program is held by the container until destroy.
func (c *Container) applyDeviceRules() error {
	rules := containerRules(c.rules)
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
	id, _ := prog.ProgramID()
	c.mu.Lock()
	c.devs, c.deviceProgram = prog, id
	c.mu.Unlock()
	return nil
}
