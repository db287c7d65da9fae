package libjail

import (
	"errors"
	"fmt"
	"os"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ErrNotSupported means the spec asks for something this machine cannot give (a security label
// without the LSM that enforces it). It is always wrapped by a StepError naming the field.
var ErrNotSupported = errors.New("not supported on this machine")

// procAttrs are the per-task attributes the child sets on the thread that calls execve, where
// they survive the exec: personality, I/O priority, scheduler, and the security labels.
type procAttrs struct {
	// Personality is the persona for personality(2); nil leaves the agent's.
	Personality *uint32 `json:"personality,omitempty"`
	// IOPrio is the ioprio_set(2) value (class << 13 | level).
	IOPrio *uint32 `json:"ioprio,omitempty"`
	// Sched is the sched_setattr(2) request (Size is filled when applied).
	Sched *unix.SchedAttr `json:"sched,omitempty"`
	// AppArmor and SELinux are the labels the container's process is exec'd with.
	AppArmor string `json:"apparmor,omitempty"`
	SELinux  string `json:"selinux,omitempty"`
}

const ioprioClassShift = 13

var ioprioClasses = map[specs.IOPriorityClass]uint32{
	specs.IOPRIO_CLASS_RT: 1, specs.IOPRIO_CLASS_BE: 2, specs.IOPRIO_CLASS_IDLE: 3,
}

var personalities = map[specs.LinuxPersonalityDomain]uint32{
	specs.PerLinux: 0x0000, specs.PerLinux32: 0x0008,
}

// The scheduling policies of sched(7); SCHED_ISO was never merged into Linux.
var schedPolicies = map[specs.LinuxSchedulerPolicy]uint32{
	specs.SchedOther: 0, specs.SchedFIFO: 1, specs.SchedRR: 2, specs.SchedBatch: 3,
	specs.SchedIdle: 5, specs.SchedDeadline: 6,
}

var schedFlags = map[specs.LinuxSchedulerFlag]uint64{
	specs.SchedFlagResetOnFork: 0x01, specs.SchedFlagReclaim: 0x02, specs.SchedFlagDLOverrun: 0x04,
	specs.SchedFlagKeepPolicy: 0x08, specs.SchedFlagKeepParams: 0x10,
	specs.SchedFlagUtilClampMin: 0x20, specs.SchedFlagUtilClampMax: 0x40,
}

// planProcAttrs validates process.ioPriority, process.scheduler, linux.personality and the labels.
func planProcAttrs(spec *specs.Spec) (procAttrs, error) {
	var a procAttrs
	p := spec.Process
	if per := spec.Linux.Personality; per != nil {
		v, ok := personalities[per.Domain]
		if !ok {
			return a, specErr("linux.personality.domain", "unknown domain %q (LINUX or LINUX32)", per.Domain)
		}
		if len(per.Flags) > 0 {
			// The spec defines no flag yet: an unknown one must not be dropped silently.
			return a, specErr("linux.personality.flags", "unknown flags %q", per.Flags)
		}
		a.Personality = &v
	}
	if io := p.IOPriority; io != nil {
		class, ok := ioprioClasses[io.Class]
		if !ok {
			return a, specErr("process.ioPriority.class", "unknown class %q", io.Class)
		}
		if io.Priority < 0 || io.Priority > 7 {
			return a, specErr("process.ioPriority.priority", "%d is outside [0, 7]", io.Priority)
		}
		v := class<<ioprioClassShift | uint32(io.Priority)
		a.IOPrio = &v
	}
	if s := p.Scheduler; s != nil {
		attr, err := planScheduler(s)
		if err != nil {
			return a, err
		}
		a.Sched = attr
	}
	if l := p.ApparmorProfile; l != "" {
		if !appArmorEnabled() {
			return a, fmt.Errorf("%w: process.apparmorProfile: %q: %w: AppArmor is not enabled", ErrInvalidSpec, l, ErrNotSupported)
		}
		a.AppArmor = l
	}
	if l := p.SelinuxLabel; l != "" {
		if !selinuxEnabled() {
			return a, fmt.Errorf("%w: process.selinuxLabel: %q: %w: SELinux is not enabled", ErrInvalidSpec, l, ErrNotSupported)
		}
		a.SELinux = l
	}
	return a, nil
}

func planScheduler(s *specs.Scheduler) (*unix.SchedAttr, error) {
	const f = "process.scheduler"
	policy, ok := schedPolicies[s.Policy]
	if !ok {
		return nil, specErr(f+".policy", "unknown or unsupported policy %q", s.Policy)
	}
	attr := &unix.SchedAttr{Policy: policy}
	for i, fl := range s.Flags {
		v, ok := schedFlags[fl]
		if !ok {
			return nil, specErr(fmt.Sprintf("%s.flags[%d]", f, i), "unknown flag %q", fl)
		}
		attr.Flags |= v
	}
	if s.Nice < -20 || s.Nice > 19 {
		return nil, specErr(f+".nice", "%d is outside [-20, 19]", s.Nice)
	}
	realtime := s.Policy == specs.SchedFIFO || s.Policy == specs.SchedRR
	switch {
	case realtime && (s.Priority < 1 || s.Priority > 99):
		return nil, specErr(f+".priority", "%d is outside [1, 99] for %s", s.Priority, s.Policy)
	case !realtime && s.Priority != 0:
		return nil, specErr(f+".priority", "must be 0 for %s", s.Policy)
	}
	deadline := s.Policy == specs.SchedDeadline
	if !deadline && (s.Runtime != 0 || s.Deadline != 0 || s.Period != 0) {
		return nil, specErr(f, "runtime, deadline and period are for SCHED_DEADLINE only")
	}
	if deadline {
		period := s.Period
		if period == 0 {
			period = s.Deadline // the kernel's own default
		}
		if s.Runtime == 0 || s.Runtime > s.Deadline || s.Deadline > period {
			return nil, specErr(f, "SCHED_DEADLINE needs 0 < runtime <= deadline <= period")
		}
		// A deadline task cannot fork or clone (EAGAIN) unless its children reset to SCHED_OTHER:
		// the child's remaining setup (runtime threads, startContainer hooks) needs to.
		if attr.Flags&schedFlags[specs.SchedFlagResetOnFork] == 0 {
			return nil, specErr(f+".flags", "SCHED_DEADLINE needs SCHED_FLAG_RESET_ON_FORK (a deadline task cannot fork without it)")
		}
	}
	attr.Nice, attr.Priority = s.Nice, uint32(s.Priority)
	attr.Runtime, attr.Deadline, attr.Period = s.Runtime, s.Deadline, s.Period
	return attr, nil
}

func appArmorEnabled() bool {
	b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	return err == nil && strings.HasPrefix(string(b), "Y")
}

func selinuxEnabled() bool {
	var st unix.Statfs_t
	return unix.Statfs("/sys/fs/selinux", &st) == nil && st.Type == unix.SELINUX_MAGIC
}

// applyPersonality sets the persona of this thread; execve keeps it.
func (a *procAttrs) applyPersonality() error {
	if a.Personality == nil {
		return nil
	}
	if _, _, e := unix.RawSyscall(unix.SYS_PERSONALITY, uintptr(*a.Personality), 0, 0); e != 0 {
		return fmt.Errorf("linux.personality: personality(%#x): %w", *a.Personality, e)
	}
	return nil
}

// applyIOPrio sets this thread's I/O priority (who 0 is the caller); execve keeps it.
func (a *procAttrs) applyIOPrio() error {
	if a.IOPrio == nil {
		return nil
	}
	const ioprioWhoProcess = 1
	if _, _, e := unix.RawSyscall(unix.SYS_IOPRIO_SET, ioprioWhoProcess, 0, uintptr(*a.IOPrio)); e != 0 {
		return fmt.Errorf("process.ioPriority: ioprio_set(%#x): %w", *a.IOPrio, e)
	}
	return nil
}

// applyScheduler sets this thread's policy; the thread that calls execve is this one.
func (a *procAttrs) applyScheduler() error {
	if a.Sched == nil {
		return nil
	}
	attr := *a.Sched
	if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
		return fmt.Errorf("process.scheduler: sched_setattr: %w", err)
	}
	return nil
}

// joinSessionKeyring gives the container a new anonymous session keyring, so it never shares
// the agent's keys (nor another container's). A kernel without keys support has nothing to share.
func joinSessionKeyring() error {
	_, _, e := unix.RawSyscall(unix.SYS_KEYCTL, unix.KEYCTL_JOIN_SESSION_KEYRING, 0, 0)
	if e != 0 && e != unix.ENOSYS {
		return fmt.Errorf("keyctl(KEYCTL_JOIN_SESSION_KEYRING): %w", e)
	}
	return nil
}

// applyLabels asks the LSM to switch to the spec's labels at the next execve. It writes through
// the container's own verified procfs, so a fake /proc in the image cannot swallow the request.
func (a *procAttrs) applyLabels() error {
	if a.AppArmor == "" && a.SELinux == "" {
		return nil
	}
	proc, err := openProcfs()
	if err != nil {
		return err
	}
	defer proc.Close()
	if a.AppArmor != "" {
		// The LSM-specific file first (stacked LSMs), the shared one when it is absent.
		err := writeProcAttr(proc, taskPath("attr/apparmor/exec"), "exec "+a.AppArmor)
		if errors.Is(err, unix.ENOENT) {
			err = writeProcAttr(proc, taskPath("attr/exec"), "exec "+a.AppArmor)
		}
		if err != nil {
			return fmt.Errorf("process.apparmorProfile %q: %w", a.AppArmor, err)
		}
	}
	if a.SELinux != "" {
		if err := writeProcAttr(proc, taskPath("attr/exec"), a.SELinux); err != nil {
			return fmt.Errorf("process.selinuxLabel %q: %w", a.SELinux, err)
		}
	}
	return nil
}

func writeProcAttr(proc *os.File, path, value string) error {
	f, err := openInProcfs(int(proc.Fd()), path, unix.O_WRONLY)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteString(value)
	return err
}

// planProcessExtras plans the process-level settings of this file, sysctl.go and terminal.go
// into the child's plan.
func (c *Container) planProcessExtras() error {
	spec := c.spec
	var err error
	if c.child.Attrs, err = planProcAttrs(spec); err != nil {
		return err
	}
	if c.child.Sysctls, err = planSysctls(spec.Linux.Sysctl, c.ns, c.child.Mounts, spec.Hostname, spec.Domainname); err != nil {
		return err
	}
	if c.child.Terminal, err = planTerminal(spec.Process, c.child.Mounts, c.opts.ConsoleSocket); err != nil {
		return err
	}
	// Validated here for the whole spec; only exec'd processes use it (not the container's init).
	_, err = planExecCPUAffinity(spec.Process)
	return err
}

// planExecExtras plans the same settings for an exec'd process: its own process section, the
// container's linux section (personality), and its cpu affinity.
func (c *Container) planExecExtras(plan *childPlan, proc *specs.Process, consoleSocket string) error {
	spec := *c.spec
	spec.Process = proc
	var err error
	if plan.Attrs, err = planProcAttrs(&spec); err != nil {
		return err
	}
	if plan.Terminal, err = planTerminal(proc, c.child.Mounts, consoleSocket); err != nil {
		return err
	}
	plan.Affinity, err = planExecCPUAffinity(proc)
	return err
}

func (a procAttrs) String() string {
	var parts []string
	if a.Personality != nil {
		parts = append(parts, fmt.Sprintf("personality %#x", *a.Personality))
	}
	if a.IOPrio != nil {
		parts = append(parts, fmt.Sprintf("ioprio class %d level %d", *a.IOPrio>>ioprioClassShift, *a.IOPrio&0x1fff))
	}
	if s := a.Sched; s != nil {
		parts = append(parts, fmt.Sprintf("sched policy %d flags %#x nice %d priority %d runtime %d deadline %d period %d",
			s.Policy, s.Flags, s.Nice, s.Priority, s.Runtime, s.Deadline, s.Period))
	}
	if a.AppArmor != "" {
		parts = append(parts, "apparmor "+a.AppArmor)
	}
	if a.SELinux != "" {
		parts = append(parts, "selinux "+a.SELinux)
	}
	if len(parts) == 0 {
		return "(none)"
	}
	return strings.Join(parts, "; ")
}
