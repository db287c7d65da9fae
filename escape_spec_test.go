package libjail

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/libjail/libjail/cgroups"
	"github.com/libjail/libjail/internal/fixtures"
	"github.com/libjail/libjail/internal/testutil"
)

// TestEscapeSpecCgroupsPath (a hostile spec field): linux.cgroupsPath names a cgroup that already
// exists and holds someone else's process (here a victim cgroup this test makes, with a sleep of its
// own: the real target would be the agent's cgroup or another pod's). Creating and force-destroying
// the container must neither kill the victim process nor change the victim cgroup's device rules.
func TestEscapeSpecCgroupsPath(t *testing.T) {
	testutil.RequireRoot(t)
	layout, hs, err := cgroupLayout()
	require.NoError(t, err)
	victimPath := "/" + testutil.Name(t, "victim")
	plan, err := cgroups.Plan(victimPath, nil, layout, cgroups.Options{Hierarchies: hs})
	require.NoError(t, err)
	victim, err := cgroups.New(plan)
	require.NoError(t, err)
	require.NoError(t, victim.Create())
	sleep := exec.Command("sleep", "60")
	require.NoError(t, sleep.Start())
	t.Cleanup(func() {
		_ = sleep.Process.Kill()
		_, _ = sleep.Process.Wait()
		for i := 0; i < 50 && victim.Destroy() != nil; i++ {
			time.Sleep(20 * time.Millisecond)
		}
	})
	require.NoError(t, victim.Place(sleep.Process.Pid))
	dir, v2 := victim.DevicesDir()
	var listBefore []byte
	if !v2 {
		listBefore, err = os.ReadFile(filepath.Join(dir, "devices.list"))
		require.NoError(t, err)
	}

	spec := fixtures.Spec(fixtures.Rootfs(t), "/bin/sleep", "30")
	spec.Linux.CgroupsPath = victimPath
	c, err := New(testutil.Name(t, "c"), spec, Options{})
	if err != nil {
		t.Logf("refused at plan: %v", err)
		return
	}
	t.Cleanup(func() { _ = c.Destroy(true) })
	if err := c.Start(t.Context()); err != nil {
		t.Logf("refused at start: %v", err)
	} else {
		if !v2 {
			listDuring, err := os.ReadFile(filepath.Join(dir, "devices.list"))
			require.NoError(t, err)
			assert.Equal(t, string(listBefore), string(listDuring), "ESCAPE: the victim cgroup's device rules changed")
		}
		_ = c.Destroy(true)
	}
	assert.NoError(t, unix.Kill(sleep.Process.Pid, 0), "ESCAPE: the victim process was killed")
	var ws unix.WaitStatus
	pid, _ := unix.Wait4(sleep.Process.Pid, &ws, unix.WNOHANG, nil)
	assert.Zero(t, pid, "ESCAPE: the victim process exited: %v", ws)
}
