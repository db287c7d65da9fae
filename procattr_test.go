package libjail

import (
	"context"
	"errors"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/libjail/libjail/cgroups"
	"github.com/libjail/libjail/internal/fixtures"
	"github.com/libjail/libjail/internal/testutil"
)

func TestProcAttrPlanErrors(t *testing.T) {
	rootfs := t.TempDir()
	sched := func(s specs.Scheduler) func(*testing.T, *specs.Spec) {
		return func(_ *testing.T, sp *specs.Spec) { sp.Process.Scheduler = &s }
	}
	cases := map[string]struct {
		edit  func(t *testing.T, s *specs.Spec)
		field string
	}{
		"personality domain": {func(t *testing.T, s *specs.Spec) { s.Linux.Personality = &specs.LinuxPersonality{Domain: "PER_BSD"} }, "linux.personality.domain"},
		"personality flags": {func(t *testing.T, s *specs.Spec) {
			s.Linux.Personality = &specs.LinuxPersonality{Domain: specs.PerLinux, Flags: []specs.LinuxPersonalityFlag{"ADDR_NO_RANDOMIZE"}}
		}, "linux.personality.flags"},
		"ioprio class": {func(t *testing.T, s *specs.Spec) {
			s.Process.IOPriority = &specs.LinuxIOPriority{Class: "IOPRIO_CLASS_NONE"}
		}, "process.ioPriority.class"},
		"ioprio level": {func(t *testing.T, s *specs.Spec) {
			s.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 8}
		}, "process.ioPriority.priority"},
		"sched policy":            {sched(specs.Scheduler{Policy: "SCHED_FAIR"}), "process.scheduler.policy"},
		"sched iso":               {sched(specs.Scheduler{Policy: specs.SchedISO}), "process.scheduler.policy"},
		"sched flag":              {sched(specs.Scheduler{Policy: specs.SchedOther, Flags: []specs.LinuxSchedulerFlag{"SCHED_FLAG_FAST"}}), "process.scheduler.flags[0]"},
		"sched nice":              {sched(specs.Scheduler{Policy: specs.SchedOther, Nice: 20}), "process.scheduler.nice"},
		"sched prio other":        {sched(specs.Scheduler{Policy: specs.SchedBatch, Priority: 5}), "process.scheduler.priority"},
		"sched prio fifo":         {sched(specs.Scheduler{Policy: specs.SchedFIFO}), "process.scheduler.priority"},
		"sched prio rr":           {sched(specs.Scheduler{Policy: specs.SchedRR, Priority: 100}), "process.scheduler.priority"},
		"sched deadline on other": {sched(specs.Scheduler{Policy: specs.SchedOther, Runtime: 1}), "process.scheduler"},
		"sched deadline fork":     {sched(specs.Scheduler{Policy: specs.SchedDeadline, Runtime: 10, Deadline: 20}), "SCHED_FLAG_RESET_ON_FORK"},
		"sched deadline order": {sched(specs.Scheduler{Policy: specs.SchedDeadline, Runtime: 10, Deadline: 5, Period: 20,
			Flags: []specs.LinuxSchedulerFlag{specs.SchedFlagResetOnFork}}), "runtime <= deadline <= period"},
		"apparmor": {func(t *testing.T, s *specs.Spec) {
			if appArmorEnabled() {
				t.Skip("skipped: AppArmor is enabled here, a label is not an error")
			}
			s.Process.ApparmorProfile = "docker-default"
		}, "process.apparmorProfile"},
		"selinux": {func(t *testing.T, s *specs.Spec) {
			if selinuxEnabled() {
				t.Skip("skipped: SELinux is enabled here, a label is not an error")
			}
			s.Process.SelinuxLabel = "system_u:system_r:container_t:s0"
		}, "process.selinuxLabel"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			spec := fixtures.Spec(rootfs, "/bin/true")
			tc.edit(t, spec)
			_, err := New("attr-plan", spec, Options{})
			require.Error(t, err)
			var se *StepError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, StepPlan, se.Step)
			assert.ErrorIs(t, err, ErrInvalidSpec)
			assert.Contains(t, err.Error(), tc.field)
			if name == "apparmor" || name == "selinux" {
				assert.ErrorIs(t, err, ErrNotSupported)
			}
		})
	}
}

func TestProcAttrPlan(t *testing.T) {
	spec := fixtures.Spec(t.TempDir(), "/bin/true")
	spec.Linux.Personality = &specs.LinuxPersonality{Domain: specs.PerLinux32}
	spec.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 5}
	spec.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedDeadline, Runtime: 10, Deadline: 20,
		Flags: []specs.LinuxSchedulerFlag{specs.SchedFlagResetOnFork, specs.SchedFlagDLOverrun}}
	a, err := planProcAttrs(spec)
	require.NoError(t, err)
	assert.Equal(t, uint32(8), *a.Personality)
	assert.Equal(t, uint32(2<<13|5), *a.IOPrio)
	assert.Equal(t, unix.SchedAttr{Policy: 6, Flags: 0x05, Runtime: 10, Deadline: 20}, *a.Sched)
}

// TestProcAttrs: personality, I/O priority and scheduler as the container's process sees them.
func TestProcAttrs(t *testing.T) {
	testutil.RequireRoot(t)
	spec := probeSpec(t)
	spec.Linux.Personality = &specs.LinuxPersonality{Domain: specs.PerLinux32}
	spec.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 6}
	spec.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedBatch, Nice: 7}
	r := runProbe(t, spec, Options{})
	assert.Equal(t, "00000008", r.Personality)
	assert.Equal(t, 2<<13|6, r.IOPrio)
	assert.Equal(t, [3]int{3, 7, 0}, r.Sched, "SCHED_BATCH, nice 7")

	// The idle classes, and the defaults of a container that asks for nothing.
	spec = probeSpec(t)
	spec.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_IDLE}
	spec.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedIdle}
	r = runProbe(t, spec, Options{})
	assert.Equal(t, 3<<13, r.IOPrio)
	assert.Equal(t, 5, r.Sched[0], "SCHED_IDLE")
	assert.Equal(t, "00000000", runProbe(t, probeSpec(t), Options{}).Personality)
}

// TestSessionKeyring: each container has a session keyring of its own, neither the agent's nor
// another container's.
func TestSessionKeyring(t *testing.T) {
	testutil.RequireRoot(t)
	agent, err := unix.KeyctlGetKeyringID(unix.KEY_SPEC_SESSION_KEYRING, false)
	require.NoError(t, err)
	a := runProbe(t, probeSpec(t), Options{})
	b := runProbe(t, probeSpec(t), Options{})
	require.NotZero(t, a.Keyring)
	assert.NotEqual(t, int32(agent), a.Keyring, "not the agent's keyring")
	assert.NotEqual(t, a.Keyring, b.Keyring, "not shared between containers")
}

// TestRealtimeScheduler: SCHED_RR with a priority, in a cgroup given realtime runtime (where the
// kernel groups realtime tasks, a cgroup without it refuses them).
func TestRealtimeScheduler(t *testing.T) {
	testutil.RequireRoot(t)
	spec := probeSpec(t)
	rt := int64(10000)
	spec.Linux.Resources = &specs.LinuxResources{CPU: &specs.LinuxCPU{RealtimeRuntime: &rt}}
	spec.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedRR, Priority: 10}
	if _, err := New("rt-plan", spec, Options{}); errors.Is(err, cgroups.ErrNotSupported) {
		spec.Linux.Resources = nil // cgroup v2 has no realtime runtime: its tasks are not grouped
	}
	r := runProbe(t, spec, Options{})
	assert.Equal(t, [3]int{2, 0, 10}, r.Sched, "SCHED_RR, priority 10")
}

// TestAppArmorLabel: where AppArmor is enabled (the VM lane's kernel), the process is exec'd with
// the spec's profile. "unconfined" exists without any policy loaded.
func TestAppArmorLabel(t *testing.T) {
	testutil.RequireRoot(t)
	if !appArmorEnabled() {
		t.Skip("skipped: AppArmor is not enabled on this kernel (TestProcAttrPlanErrors covers the error)")
	}
	spec := probeSpec(t, "-read", "/proc/self/attr/apparmor/current")
	spec.Process.ApparmorProfile = "unconfined"
	r := runProbe(t, spec, Options{})
	assert.Equal(t, "unconfined", r.Reads["/proc/self/attr/apparmor/current"])

	// A profile the kernel does not know: the request reaches AppArmor, which refuses it.
	spec = probeSpec(t)
	spec.Process.ApparmorProfile = "libjail-test-no-such-profile"
	c, err := New(testutil.Name(t, "c"), spec, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Destroy(true) })
	err = c.Start(context.Background())
	var se *StepError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, StepLabels, se.Step, "%v", err)
	assert.Contains(t, err.Error(), "process.apparmorProfile")
}

// TestDeadlineScheduler: SCHED_DEADLINE (with the reset-on-fork flag it requires) while the child
// still forks a startContainer hook.
func TestDeadlineScheduler(t *testing.T) {
	testutil.RequireRoot(t)
	spec := probeSpec(t)
	spec.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedDeadline, Runtime: 10_000_000, Deadline: 30_000_000,
		Period: 100_000_000, Flags: []specs.LinuxSchedulerFlag{specs.SchedFlagResetOnFork}}
	spec.Hooks = &specs.Hooks{StartContainer: []specs.Hook{{Path: "/bin/true"}}}
	r := runProbe(t, spec, Options{})
	assert.Equal(t, 6, r.Sched[0], "SCHED_DEADLINE")
}

func TestPlanStrings(t *testing.T) {
	spec := fixtures.Spec(t.TempDir(), "/bin/true")
	spec.Linux.Personality = &specs.LinuxPersonality{Domain: specs.PerLinux32}
	spec.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_IDLE, Priority: 0}
	a, err := planProcAttrs(spec)
	require.NoError(t, err)
	assert.Equal(t, "personality 0x8; ioprio class 3 level 0", a.String())
	assert.Equal(t, "(none)", procAttrs{}.String())
	assert.Equal(t, `/proc/sys/kernel/sem = "1 2 3 4"`, sysctl{Key: "kernel.sem", Path: "kernel/sem", Value: "1 2 3 4"}.String())
	assert.Equal(t, "pty 80x24, slave owned by 0:0", (&terminalPlan{Rows: 24, Cols: 80}).String())
}
