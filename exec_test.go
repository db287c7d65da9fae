package libjail

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/libjail/libjail/internal/fixtures"
	"github.com/libjail/libjail/internal/testutil"
)

func nsInode(t *testing.T, pid int, ns string) uint64 {
	var st unix.Stat_t
	require.NoError(t, unix.Stat(fmt.Sprintf("/proc/%d/ns/%s", pid, ns), &st))
	return st.Ino
}

// TestExec: an extra process joins every namespace and the cgroup of the running container's
// init, with its own user, capabilities, env and cwd.
func TestExec(t *testing.T) {
	testutil.RequireRoot(t)
	spec := fixtures.Spec(fixtures.Rootfs(t), "/bin/sleep", "60")
	spec.Linux.CgroupsPath = "/" + testutil.Name(t, "ctr")
	c, err := New(testutil.Name(t, "c"), spec, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Destroy(true) })

	var se *StateError
	_, err = c.Exec(t.Context(), &specs.Process{Args: []string{"/bin/true"}}, ExecOptions{})
	require.ErrorAs(t, err, &se, "exec into a container that is not running")
	require.NoError(t, c.Start(t.Context()))

	var out, errb bytes.Buffer
	caps := []string{"CAP_KILL"}
	p, err := c.Exec(t.Context(), &specs.Process{
		Args: []string{fixtures.ProbePath}, Env: []string{"EXEC=1"}, Cwd: "/tmp",
		User:         specs.User{UID: 1234, GID: 1234},
		Capabilities: &specs.LinuxCapabilities{Bounding: caps, Ambient: caps, Inheritable: caps, Permitted: caps, Effective: caps},
	}, ExecOptions{Stdout: &out, Stderr: &errb})
	require.NoError(t, err)
	st, err := p.Wait()
	require.NoError(t, err)
	require.True(t, st.Success(), "stderr: %s", errb.String())
	r := decodeReport(t, out.String())

	init := c.Pid()
	for _, ns := range []string{"pid", "mnt", "uts", "ipc", "net", "cgroup", "user"} {
		assert.Equal(t, nsInode(t, init, ns), r.Namespaces[ns], "joined the init's %s namespace", ns)
	}
	assert.NotEqual(t, 1, r.PID)
	assert.Equal(t, 1234, r.UID)
	assert.Equal(t, []string{"EXEC=1"}, r.Env)
	assert.Equal(t, "/tmp", r.Cwd)
	assert.Equal(t, fmt.Sprintf("%016x", uint64(1<<unix.CAP_KILL)), r.Status["CapEff"])
	hostCg, err := os.ReadFile("/proc/" + strconv.Itoa(init) + "/cgroup")
	require.NoError(t, err)
	assert.ElementsMatch(t, strings.Split(strings.TrimSpace(string(hostCg)), "\n"), r.Cgroup, "the init's cgroups")

	// A failing exec names its step and leaves the container running.
	_, err = c.Exec(t.Context(), &specs.Process{Args: []string{"/no/such/binary"}, Cwd: "/"}, ExecOptions{})
	var stepErr *StepError
	require.ErrorAs(t, err, &stepErr)
	assert.Equal(t, StepExec, stepErr.Step)
	assert.ErrorIs(t, err, unix.ENOENT)
	assert.Equal(t, StatusRunning, c.Status())

	require.NoError(t, c.Signal(syscall.SIGKILL))
	_, err = c.Wait()
	require.NoError(t, err)
}

func threads(t *testing.T) int {
	b, err := os.ReadFile("/proc/self/status")
	require.NoError(t, err)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			require.NoError(t, err)
			return n
		}
	}
	t.Fatal("no Threads line")
	return 0
}

// TestNoThreadPerLiveContainer: waiting for live containers costs no OS thread each (an agent
// runs hundreds).
func TestNoThreadPerLiveContainer(t *testing.T) {
	testutil.RequireRoot(t)
	rootfs := fixtures.Rootfs(t)
	const n = 30
	var cs []*Container
	t.Cleanup(func() {
		for _, c := range cs {
			_ = c.Destroy(true)
		}
	})
	// One container first, so the runtime's own threads for the work are there before counting.
	for i := 0; i <= n; i++ {
		spec := fixtures.Spec(rootfs, "/bin/sleep", "60")
		spec.Linux.CgroupsPath = "/" + testutil.Name(t, "ctr")
		c, err := New(testutil.Name(t, "c"), spec, Options{})
		require.NoError(t, err)
		cs = append(cs, c)
		require.NoError(t, c.Start(t.Context()))
	}
	before := threads(t)
	for i := 0; i < n; i++ {
		spec := fixtures.Spec(rootfs, "/bin/sleep", "60")
		spec.Linux.CgroupsPath = "/" + testutil.Name(t, "ctr")
		c, err := New(testutil.Name(t, "c"), spec, Options{})
		require.NoError(t, err)
		cs = append(cs, c)
		require.NoError(t, c.Start(t.Context()))
	}
	assert.Less(t, threads(t)-before, n/2, "threads grew from %d with %d more live containers", before, n)
}

// TestExecCwdThroughLeakedFD: the CVE-2024-21626 class for an exec'd process: a cwd naming an fd
// the agent holds without O_CLOEXEC never gives it a directory outside the container's root.
func TestExecCwdThroughLeakedFD(t *testing.T) {
	testutil.RequireRoot(t)
	spec := fixtures.Spec(fixtures.Rootfs(t), "/bin/sleep", "60")
	spec.Linux.CgroupsPath = "/" + testutil.Name(t, "ctr")
	c, err := New(testutil.Name(t, "c"), spec, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Destroy(true) })
	require.NoError(t, c.Start(t.Context()))
	top := slices.Max(leakDirFDs(t, t.TempDir(), t.TempDir()))
	for n := 3; n <= top+3; n++ {
		var out strings.Builder
		p, err := c.Exec(t.Context(), &specs.Process{Args: []string{fixtures.ProbePath}, Cwd: "/proc/self/fd/" + strconv.Itoa(n)},
			ExecOptions{Stdout: &out})
		if err != nil {
			continue // refused: the defence
		}
		_, err = p.Wait()
		require.NoError(t, err)
		if out.Len() > 0 {
			r := decodeReport(t, out.String())
			assert.True(t, strings.HasPrefix(r.Cwd, "/"), "fd %d: cwd %q is outside the root", n, r.Cwd)
			for fd, target := range r.FDs {
				if m, _ := strconv.Atoi(fd); m > 2 {
					assert.Contains(t, []string{"", "anon_inode:[eventpoll]", "anon_inode:[eventfd]"}, target, "fd %s of the agent reached the exec'd process", fd)
				}
			}
		}
	}
}
