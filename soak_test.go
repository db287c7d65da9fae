package libjail

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/libjail/libjail/internal/fixtures"
	"github.com/libjail/libjail/internal/testutil"
)

// soakCycles is how many create/destroy cycles TestSoak runs: LIBJAIL_SOAK, else 1000 (about
// 15 s here; 50 in the make test-vm guest); -short skips it.
func soakCycles(t *testing.T) int {
	if testing.Short() {
		t.Skip("skipped in -short mode")
	}
	if v := os.Getenv("LIBJAIL_SOAK"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err, "LIBJAIL_SOAK")
		return n
	}
	if os.Getenv("LIBJAIL_VM") != "" {
		return 50 // the emulated guest of make test-vm is ~10x slower; it still checks v2 programs
	}
	return 1000
}

// soakCounts are the resources a cycle could leak. Other test processes on the machine create
// mounts and device programs of their own at the same time, so mounts are the ones naming this
// test's directory, and programs are libjail's device programs counted machine-wide (a leak shows
// as growth with the number of cycles).
type soakCounts struct {
	FDs, Goroutines, Mounts, Cgroups, Programs int
}

func countSoak(t *testing.T, dir, cgPrefix string) soakCounts {
	t.Helper()
	var c soakCounts
	fds, err := testutil.OpenFDs()
	require.NoError(t, err)
	for _, target := range fds {
		if target != "" && target != "anon_inode:[eventpoll]" && target != "anon_inode:[eventfd]" {
			c.FDs++
		}
	}
	c.Goroutines = runtime.NumGoroutine()
	f, err := os.Open("/proc/self/mountinfo")
	require.NoError(t, err)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.Contains(sc.Text(), dir) {
			c.Mounts++
		}
	}
	f.Close()
	roots, _ := filepath.Glob("/sys/fs/cgroup/*")
	roots = append(roots, "/sys/fs/cgroup")
	for _, r := range roots {
		m, _ := filepath.Glob(filepath.Join(r, cgPrefix+"*"))
		c.Cgroups += len(m)
	}
	c.Programs = deviceProgramCount()
	return c
}

// deviceProgramCount counts loaded libjail device programs (-1 when they cannot be listed).
func deviceProgramCount() int {
	n := 0
	var id ebpf.ProgramID
	for {
		next, err := ebpf.ProgramGetNextID(id)
		if errors.Is(err, os.ErrNotExist) {
			return n
		}
		if err != nil {
			return -1
		}
		id = next
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue // unloaded meanwhile
		}
		if info, err := p.Info(); err == nil && info.Type == ebpf.CGroupDevice && strings.HasPrefix(info.Name, "libjail") {
			n++
		}
		p.Close()
	}
}

// TestSoak runs many create/start/wait/destroy cycles of a /bin/true container with a cgroup and
// device rules, and checks that this process's fds and goroutines, the test's mounts and
// cgroups, and libjail's device programs come back to their starting counts.
func TestSoak(t *testing.T) {
	testutil.RequireRoot(t)
	cycles := soakCycles(t)
	rootfs := fixtures.Rootfs(t)
	prefix := testutil.Name(t, "soak")
	dir := filepath.Dir(rootfs)
	// A first cycle outside the count: one-time work (the sealed executable, the cgroup layout,
	// the runtime's poller) is not a leak.
	cycle := func(i int) {
		spec := fixtures.Spec(rootfs, "/bin/true")
		spec.Linux.CgroupsPath = "/" + prefix + "-" + strconv.Itoa(i)
		c, err := New(prefix+"-"+strconv.Itoa(i), spec, Options{})
		require.NoError(t, err)
		require.NoError(t, c.Start(t.Context()))
		st, err := c.Wait()
		require.NoError(t, err)
		require.True(t, st.Success(), "cycle %d: %v", i, st)
		require.NoError(t, c.Destroy(false))
	}
	cycle(-1)
	before := countSoak(t, dir, prefix)
	begin := time.Now()
	for i := 0; i < cycles; i++ {
		cycle(i)
	}
	t.Logf("%d cycles in %v (%v each)", cycles, time.Since(begin), time.Since(begin)/time.Duration(max(cycles, 1)))
	var after soakCounts
	// Reaper goroutines end just after Wait returns: give them a moment.
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		after = countSoak(t, dir, prefix)
		if after.Goroutines <= before.Goroutines || time.Now().After(deadline) {
			break
		}
	}
	assert.Equal(t, before.FDs, after.FDs, "fds")
	assert.LessOrEqual(t, after.Goroutines, before.Goroutines, "goroutines")
	assert.Equal(t, 0, after.Mounts, "mounts of the test's rootfs")
	assert.Equal(t, 0, after.Cgroups, "cgroups of the test")
	if before.Programs >= 0 {
		// Other processes load programs too: a leak of one per cycle is what this catches.
		assert.Less(t, after.Programs-before.Programs, max(cycles/2, 2), "device programs: %d before, %d after", before.Programs, after.Programs)
	}
}
