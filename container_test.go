package libjail

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"github.com/cilium/ebpf"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/libjail/libjail/internal/fixtures"
	"github.com/libjail/libjail/internal/probe"
	"github.com/libjail/libjail/internal/testutil"
)

func TestMain(m *testing.M) {
	Init()
	if os.Getenv(createHelperEnv) != "" {
		runCreateHelper()
	}
	// The sealed executable lives as long as the process: make it before counting fds.
	if err := Prepare(); err != nil {
		panic(err)
	}
	os.Exit(testutil.CheckFDLeaks(m))
}

// probeSpec is a spec running the probe in a rootfs of its own, in a cgroup named for the test.
func probeSpec(t *testing.T, probeArgs ...string) *specs.Spec {
	t.Helper()
	spec := fixtures.Spec(fixtures.Rootfs(t), append([]string{fixtures.ProbePath}, probeArgs...)...)
	spec.Linux.CgroupsPath = "/" + testutil.Name(t, "ctr")
	return spec
}

// runProbe runs spec to completion and decodes the probe's report.
func runProbe(t *testing.T, spec *specs.Spec, opts Options) probe.Report {
	t.Helper()
	var out, errb bytes.Buffer
	opts.Stdout, opts.Stderr = &out, &errb
	c, err := New(testutil.Name(t, "c"), spec, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Destroy(true) })
	require.NoError(t, c.Start(context.Background()))
	st, err := c.Wait()
	require.NoError(t, err)
	require.True(t, st.Success(), "probe exited %v; stderr: %s", st, errb.String())
	require.NoError(t, c.Destroy(false))
	return decodeReport(t, out.String())
}

func decodeReport(t *testing.T, out string) probe.Report {
	t.Helper()
	var r probe.Report
	require.NoError(t, json.Unmarshal([]byte(out), &r), "probe output: %q", out)
	return r
}

func hostNS(t *testing.T, typ string) uint64 {
	var st unix.Stat_t
	require.NoError(t, unix.Stat("/proc/self/ns/"+typ, &st))
	return st.Ino
}

func TestRunProbe(t *testing.T) {
	testutil.RequireRoot(t)
	spec := probeSpec(t)
	spec.Hostname = "probe-host"
	r := runProbe(t, spec, Options{})

	assert.Equal(t, 1, r.PID, "the probe is pid 1 of a new pid namespace")
	assert.Equal(t, "probe-host", r.Hostname)
	for _, ns := range []string{"pid", "mnt", "uts", "ipc", "net"} {
		assert.NotEqual(t, hostNS(t, ns), r.Namespaces[ns], "a new %s namespace", ns)
	}
	assert.Equal(t, hostNS(t, "user"), r.Namespaces["user"], "no user namespace was asked for")

	var rootLine, procLine string
	for _, l := range r.Mountinfo {
		f := strings.Fields(l)
		if len(f) < 5 {
			continue
		}
		switch f[4] {
		case "/":
			rootLine = l
		case "/proc":
			procLine = l
		}
	}
	require.NotEmpty(t, rootLine, "mountinfo has a root mount: %v", r.Mountinfo)
	// After pivot_root the root mount is the bundle's rootfs directory of the host.
	assert.Contains(t, strings.Fields(rootLine)[3], "rootfs", "root mount: %s", rootLine)
	require.NotEmpty(t, procLine, "/proc is mounted")
	assert.Contains(t, procLine, " - proc ", "/proc is a proc filesystem: %s", procLine)
	assert.Empty(t, r.Errors)
}

func TestExitStatus(t *testing.T) {
	testutil.RequireRoot(t)
	spec := fixtures.Spec(fixtures.Rootfs(t), "/bin/sh", "-c", "exit 7")
	spec.Linux.CgroupsPath = "/" + testutil.Name(t, "ctr")
	c, err := New(testutil.Name(t, "c"), spec, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Destroy(true) })
	require.NoError(t, c.Start(context.Background()))
	st, err := c.Wait()
	require.NoError(t, err)
	assert.Equal(t, 7, st.ExitCode())
	assert.Equal(t, StatusStopped, c.Status())
}

func TestLifecycleStateErrors(t *testing.T) {
	testutil.RequireRoot(t)
	spec := fixtures.Spec(fixtures.Rootfs(t), "/bin/sleep", "60")
	spec.Linux.CgroupsPath = "/" + testutil.Name(t, "ctr")
	c, err := New(testutil.Name(t, "c"), spec, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Destroy(true) })

	var se *StateError
	require.NoError(t, c.Create(context.Background()))
	assert.Equal(t, StatusCreated, c.Status())
	require.ErrorAs(t, c.Create(context.Background()), &se, "create twice")
	require.NoError(t, c.Start(context.Background()))
	assert.Equal(t, StatusRunning, c.Status())
	require.ErrorAs(t, c.Start(context.Background()), &se, "start twice")
	require.ErrorAs(t, c.Destroy(false), &se, "destroy a running container without force")

	require.NoError(t, c.Signal(syscall.SIGKILL))
	st, err := c.Wait()
	require.NoError(t, err)
	assert.Equal(t, syscall.SIGKILL, st.Sys().(syscall.WaitStatus).Signal())
	require.ErrorAs(t, c.Signal(syscall.SIGTERM), &se, "signal a stopped container")
	require.NoError(t, c.Destroy(false))
}

func TestPlanErrors(t *testing.T) {
	rootfs := t.TempDir()
	cases := map[string]struct {
		edit  func(s *specs.Spec)
		field string
	}{
		"username": {func(s *specs.Spec) { s.Process.User.Username = "root" }, "process.user.username"},
		"cwd":      {func(s *specs.Spec) { s.Process.Cwd = "relative" }, "process.cwd"},
		"no args":  {func(s *specs.Spec) { s.Process.Args = nil }, "process.args"},
		"env":      {func(s *specs.Spec) { s.Process.Env = []string{"NOEQUALS"} }, "process.env[0]"},
		"rlimit":   {func(s *specs.Spec) { s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_BOGUS"}} }, "process.rlimits[0]"},
		"rlimit raise": {func(s *specs.Spec) {
			s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1 << 40, Hard: 1 << 40}}
		}, "process.rlimits[0]"},
		"hostname": {func(s *specs.Spec) {
			s.Linux.Namespaces = []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.MountNamespace}}
		}, "hostname"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if name == "rlimit raise" && haveCap(capability.CAP_SYS_RESOURCE) {
				t.Skip("skipped: this process has CAP_SYS_RESOURCE and may raise rlimits")
			}
			spec := fixtures.Spec(rootfs, "/bin/true")
			tc.edit(spec)
			_, err := New("plan-"+strings.ReplaceAll(name, " ", "-"), spec, Options{})
			require.Error(t, err)
			var se *StepError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, StepPlan, se.Step)
			assert.Contains(t, err.Error(), tc.field)
		})
	}
	_, err := New("../escape", fixtures.Spec(rootfs, "/bin/true"), Options{})
	assert.ErrorIs(t, err, ErrInvalidSpec)
}

// TestFaultInjection kills the child at each protocol step and checks that Start fails within a
// bounded time with an error naming that step, and that no process, mount or cgroup remains.
func TestFaultInjection(t *testing.T) {
	testutil.RequireRoot(t)
	rootfs := fixtures.Rootfs(t)
	mountsBefore := hostMounts(t)
	for _, step := range childSteps {
		t.Run(string(step), func(t *testing.T) {
			spec := fixtures.Spec(rootfs, "/bin/true")
			spec.Linux.CgroupsPath = "/" + testutil.Name(t, "ctr")
			c, err := New(testutil.Name(t, "c"), spec, Options{fault: step, Timeout: 10 * time.Second})
			require.NoError(t, err)
			t.Cleanup(func() { _ = c.Destroy(true) })
			begin := time.Now()
			err = c.Start(context.Background())
			elapsed := time.Since(begin)
			require.Error(t, err)
			var se *StepError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, step, se.Step, "the error names the step: %v", err)
			assert.ErrorIs(t, err, ErrChildDied)
			assert.Less(t, elapsed, 5*time.Second, "Start returned in bounded time")

			pid := c.Pid()
			require.NotZero(t, pid)
			assert.ErrorIs(t, unix.Kill(pid, 0), unix.ESRCH, "the child is gone and reaped")
			assertNoCgroup(t, spec.Linux.CgroupsPath)
			// On v2 the container's own device program: detached and freed (the kernel frees it
			// once the cgroup is gone, which may take a moment).
			if id := c.deviceProgram; id != 0 {
				assert.Eventually(t, func() bool {
					p, err := ebpf.NewProgramFromID(id)
					if err == nil {
						p.Close()
					}
					return errors.Is(err, os.ErrNotExist)
				}, 5*time.Second, 20*time.Millisecond, "device program %d left loaded", id)
			}
			assert.Equal(t, StatusStopped, c.Status())
		})
	}
	assert.Equal(t, mountsBefore, hostMounts(t), "host mount table unchanged")

}

func hostMounts(t *testing.T) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(l)
		out = append(out, strings.Join(f[3:], " ")) // without the ids, which a remount changes
	}
	return out
}

// assertNoCgroup checks every mounted hierarchy for the cgroup path.
func assertNoCgroup(t *testing.T, path string) {
	t.Helper()
	var roots []string
	if testutil.UnifiedMount() == "/sys/fs/cgroup" {
		roots = []string{"/sys/fs/cgroup"} // pure v2: one hierarchy
	} else {
		ents, err := os.ReadDir("/sys/fs/cgroup")
		require.NoError(t, err)
		for _, e := range ents {
			if e.IsDir() {
				roots = append(roots, filepath.Join("/sys/fs/cgroup", e.Name()))
			}
		}
	}
	for _, root := range roots {
		p := filepath.Join(root, path)
		_, err := os.Stat(p)
		assert.True(t, errors.Is(err, os.ErrNotExist), "cgroup %s left behind", p)
	}
}

func trueSpec(t *testing.T) *specs.Spec {
	spec := fixtures.Spec(fixtures.Rootfs(t), "/bin/true")
	spec.Linux.CgroupsPath = "/" + testutil.Name(t, "ctr")
	return spec
}
