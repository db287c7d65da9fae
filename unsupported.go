package libjail

import (
	"fmt"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// checkUnsupported refuses, at plan time, every part of the spec libjail does not apply: a field
// accepted and silently ignored would be a control the caller believes in and does not have.
func checkUnsupported(spec *specs.Spec) error {
	if v := spec.Version; v != "" && !strings.HasPrefix(v, "1.") {
		return specErr("ociVersion", "%q: this runtime implements the 1.x spec", v)
	}
	lx := spec.Linux
	switch {
	case lx.IntelRdt != nil:
		return unsupported("linux.intelRdt", "resctrl (Intel RDT) is not managed")
	case lx.MemoryPolicy != nil:
		return unsupported("linux.memoryPolicy", "NUMA memory policies are not applied")
	case len(lx.NetDevices) > 0:
		return unsupported("linux.netDevices", "moving network devices into the container is left to the agent")
	case spec.Solaris != nil:
		return specErr("solaris", "not a Linux section")
	case spec.Windows != nil:
		return specErr("windows", "not a Linux section")
	case spec.VM != nil:
		return specErr("vm", "hypervisor containers are not run by libjail")
	case spec.ZOS != nil:
		return specErr("zos", "not a Linux section")
	case spec.FreeBSD != nil:
		return specErr("freebsd", "not a Linux section")
	}
	return nil
}

func unsupported(field, why string) error {
	return fmt.Errorf("%w: %s: %w: %s", ErrInvalidSpec, field, ErrNotSupported, why)
}
