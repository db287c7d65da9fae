package libjail

import (
	"bytes"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/libjail/libjail/internal/fixtures"
	"github.com/libjail/libjail/internal/testutil"
)

// runningContainer starts a sleeping container for Exec tests.
func runningContainer(t *testing.T) *Container {
	t.Helper()
	spec := fixtures.Spec(fixtures.Rootfs(t), "/bin/sleep", "60")
	spec.Linux.CgroupsPath = "/" + testutil.Name(t, "ctr")
	spec.Linux.Personality = &specs.LinuxPersonality{Domain: specs.PerLinux32}
	c, err := New(testutil.Name(t, "c"), spec, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Destroy(true) })
	require.NoError(t, c.Start(t.Context()))
	return c
}

// TestExecTerminal: an exec'd shell on a terminal of its own, driven through its master.
func TestExecTerminal(t *testing.T) {
	testutil.RequireRoot(t)
	c := runningContainer(t)
	p, err := c.Exec(t.Context(), &specs.Process{
		Args: []string{"/bin/sh"}, Cwd: "/", Terminal: true, ConsoleSize: &specs.Box{Height: 40, Width: 120},
	}, ExecOptions{})
	require.NoError(t, err)
	master := p.Console()
	require.NotNil(t, master)
	defer master.Close()
	assert.Nil(t, p.Console(), "handed over once")
	out := readTTY(master)
	for _, step := range []struct{ cmd, want string }{
		{"echo $((6*7))", "\n42\r\n"},
		{"busybox stty size", "\n40 120\r\n"},
		{"echo ctty >/dev/tty && echo ctty-ok", "\nctty-ok\r\n"},
	} {
		_, err := master.WriteString(step.cmd + "\n")
		require.NoError(t, err)
		out.waitFor(t, step.want)
	}
	_, err = master.WriteString("exit 5\n")
	require.NoError(t, err)
	st, err := p.Wait()
	require.NoError(t, err)
	assert.Equal(t, 5, st.ExitCode())
	select {
	case <-out.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the master did not report the end of the session")
	}
}

// TestExecProcessAttrs: an exec'd process gets the container's personality, its own I/O
// priority, scheduler, cpu affinity and session keyring (not the agent's).
func TestExecProcessAttrs(t *testing.T) {
	testutil.RequireRoot(t)
	c := runningContainer(t)
	var out, errb bytes.Buffer
	p, err := c.Exec(t.Context(), &specs.Process{
		Args: []string{fixtures.ProbePath}, Cwd: "/",
		IOPriority:      &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 3},
		Scheduler:       &specs.Scheduler{Policy: specs.SchedBatch, Nice: 5},
		ExecCPUAffinity: &specs.CPUAffinity{Initial: "0", Final: "0"},
	}, ExecOptions{Stdout: &out, Stderr: &errb})
	require.NoError(t, err)
	st, err := p.Wait()
	require.NoError(t, err)
	require.True(t, st.Success(), "stderr: %s", errb.String())
	r := decodeReport(t, out.String())
	assert.Equal(t, "00000008", r.Personality, "the container's linux.personality")
	assert.Equal(t, 2<<13|3, r.IOPrio)
	assert.Equal(t, [3]int{3, 5, 0}, r.Sched)
	assert.Equal(t, []int{0}, r.CPUs, "execCPUAffinity.final")
	agent, err := unix.KeyctlGetKeyringID(unix.KEY_SPEC_SESSION_KEYRING, false)
	require.NoError(t, err)
	assert.NotEqual(t, int32(agent), r.Keyring)

	_, err = c.Exec(t.Context(), &specs.Process{Args: []string{"/bin/true"}, Cwd: "/",
		ExecCPUAffinity: &specs.CPUAffinity{Final: "banana"}}, ExecOptions{})
	var se *StepError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, StepPlan, se.Step)
	assert.Contains(t, err.Error(), "process.execCPUAffinity.final")
}
