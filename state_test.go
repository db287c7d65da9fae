package libjail

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/libjail/libjail/internal/fixtures"
	"github.com/libjail/libjail/internal/testutil"
)

// createHelperEnv makes the test binary a one-shot "create" command: it creates the container
// described by the spec file, persistent in the state dir, and exits, leaving it created.
const createHelperEnv = "LIBJAIL_TEST_CREATE"

func runCreateHelper() {
	args := strings.SplitN(os.Getenv(createHelperEnv), ",", 3) // stateDir,id,specFile
	b, err := os.ReadFile(args[2])
	if err == nil {
		var spec specs.Spec
		if err = json.Unmarshal(b, &spec); err == nil {
			var c *Container
			c, err = New(args[1], &spec, Options{StateDir: args[0], Stdout: os.Stdout, Stderr: os.Stderr})
			if err == nil {
				err = c.Create(t0())
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "create helper:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// TestStateReloadFromSecondProcess: one process creates a persistent container and exits; this
// one loads it by id, starts, pauses, resumes, lists, signals and destroys it.
func TestStateReloadFromSecondProcess(t *testing.T) {
	testutil.RequireRoot(t)
	// The created init outlives its creator: adopt it, so it is reaped here, not by the host's init.
	require.NoError(t, unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0))
	t.Cleanup(func() { _ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) })

	dir := t.TempDir()
	stateDir := filepath.Join(dir, "state")
	out := filepath.Join(dir, "out")
	spec := fixtures.Spec(fixtures.Rootfs(t), "/bin/sh", "-c", "echo started; exec sleep 60")
	spec.Linux.CgroupsPath = "/" + testutil.Name(t, "ctr")
	b, err := json.Marshal(spec)
	require.NoError(t, err)
	specFile := filepath.Join(dir, "config.json")
	require.NoError(t, os.WriteFile(specFile, b, 0o644))
	id := testutil.Name(t, "c")

	outFile, err := os.Create(out)
	require.NoError(t, err)
	defer outFile.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), createHelperEnv+"="+stateDir+","+id+","+specFile)
	cmd.Stdout, cmd.Stderr = outFile, os.Stderr
	require.NoError(t, cmd.Run())

	t.Cleanup(func() {
		// Whatever happened, the created container goes: through its state, or its cgroup.
		if c, err := Load(stateDir, id, Options{}); err == nil {
			_ = c.Destroy(true)
		}
		killCgroup(t, spec.Linux.CgroupsPath)
		reapAll()
	})
	c, err := Load(stateDir, id, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Destroy(true) })
	assert.Equal(t, StatusCreated, c.Status())
	st := c.State()
	assert.Equal(t, id, st.ID)
	assert.NotZero(t, st.Pid)
	require.NoError(t, c.Start(t0()))
	assert.Equal(t, StatusRunning, c.Status())
	require.Eventually(t, func() bool {
		b, _ := os.ReadFile(out)
		return string(b) == "started\n"
	}, 5*time.Second, 10*time.Millisecond, "the process ran after the loaded start")

	// A second Load sees it running; operations work from there too.
	c2, err := Load(stateDir, id, Options{})
	require.NoError(t, err)
	defer c2.Release()
	assert.Equal(t, StatusRunning, c2.Status())
	require.NoError(t, c2.Pause())
	c3, err := Load(stateDir, id, Options{})
	require.NoError(t, err)
	defer c.Release()
	assert.Equal(t, StatusPaused, c3.Status())
	require.NoError(t, c3.Resume())
	pids, err := c3.Pids()
	require.NoError(t, err)
	assert.Contains(t, pids, st.Pid)

	var se *StateError
	require.ErrorAs(t, c3.Destroy(false), &se, "a running container needs force")
	require.NoError(t, c3.Signal(syscall.SIGKILL))
	_, err = c3.Wait()
	require.NoError(t, err)
	assert.Equal(t, StatusStopped, c3.Status())
	require.NoError(t, c3.Destroy(false))
	assertNoCgroup(t, spec.Linux.CgroupsPath)
	_, err = os.Stat(filepath.Join(stateDir, id))
	assert.True(t, errors.Is(err, os.ErrNotExist), "state removed")
	_, err = Load(stateDir, id, Options{})
	assert.ErrorIs(t, err, ErrNotExist)
}

func TestLoadRejectsDamagedState(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"not json":  "{",
		"no spec":   `{"state":{"id":"x","status":"created","pid":1},"cgroup":{}}`,
		"bad field": `{"state":{"id":"x"},"bogus":1}`,
	} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, "x"), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "x", stateFile), []byte(content), 0o644))
		_, err := Load(dir, "x", Options{})
		assert.Error(t, err, name)
	}
	_, err := Load(dir, "../x", Options{})
	assert.ErrorIs(t, err, ErrInvalidSpec)
}

func t0() context.Context { return context.Background() }

// reapAll waits for adopted orphans.
func reapAll() {
	for {
		pid, err := unix.Wait4(-1, nil, unix.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}

// killCgroup kills whatever is left in a test's cgroup and removes it, in every hierarchy.
func killCgroup(t *testing.T, path string) {
	for _, root := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup/pids", "/sys/fs/cgroup"} {
		b, err := os.ReadFile(filepath.Join(root, path, "cgroup.procs"))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				_ = unix.Kill(pid, unix.SIGKILL)
			}
		}
	}
	time.Sleep(50 * time.Millisecond)
	ents, _ := os.ReadDir("/sys/fs/cgroup")
	for _, e := range ents {
		_ = os.Remove(filepath.Join("/sys/fs/cgroup", e.Name(), path))
	}
	_ = os.Remove(filepath.Join("/sys/fs/cgroup", path))
}
