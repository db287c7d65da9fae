package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/libjail/libjail"
	"github.com/libjail/libjail/internal/testutil"
)

// TestPod creates two containers under one parent cgroup: they form a pod whose cgroup holds the
// pod-level device rules, removed with the last container.
func TestPod(t *testing.T) {
	podCg := testutil.Name(t, "pod")
	t.Cleanup(func() { removePodCgroup(podCg) }) // runs after the runtime's cleanup
	r := newRuntime(t)
	devDir := testutil.RequireCgroupV1(t, "devices")
	b1 := r.bundle("/"+podCg, "sleep", "1000")
	b2 := r.bundle("/"+podCg, "sleep", "1000")
	id1, _ := r.create(b1)
	id2, _ := r.create(b2)
	podID := podCg
	_, err := os.Stat(filepath.Join(r.root, podsDir, podID+".json"))
	require.NoError(t, err, "the pod is recorded")
	ids, err := members(r.root, podID)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{id1, id2}, ids)

	// The pod cgroup is restricted (not the allow-all of a fresh v1 devices cgroup), and both
	// containers are inside it.
	list, err := os.ReadFile(filepath.Join(devDir, podCg, "devices.list"))
	require.NoError(t, err)
	assert.NotContains(t, string(list), "a *:* rwm")
	spec1, err := libjail.ReadBundleSpec(b1)
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(devDir, spec1.Linux.CgroupsPath))
	require.NoError(t, err)

	r.ok("start", id1)
	r.ok("start", id2)
	r.ok("delete", "--force", id1)
	_, err = os.Stat(filepath.Join(devDir, podCg))
	require.NoError(t, err, "the pod outlives its first container")
	r.ok("delete", "--force", id2)
	_, err = os.Stat(filepath.Join(devDir, podCg))
	assert.ErrorIs(t, err, os.ErrNotExist, "the pod goes with its last container")
	_, err = os.Stat(filepath.Join(r.root, podsDir, podID+".json"))
	assert.ErrorIs(t, err, os.ErrNotExist)
	ids, err = members(r.root, podID)
	require.NoError(t, err)
	assert.Empty(t, ids)
}

// TestPodConcurrent creates and deletes the containers of one pod from parallel processes: the
// membership lock keeps the pod alive while any container is in it and removes it after the last.
func TestPodConcurrent(t *testing.T) {
	podCg := testutil.Name(t, "pod")
	t.Cleanup(func() { removePodCgroup(podCg) })
	r := newRuntime(t)
	devDir := testutil.RequireCgroupV1(t, "devices")
	const n = 4
	ids := make([]string, n)
	bundles := make([]string, n)
	for i := range n {
		ids[i] = testutil.Name(t, "c")
		bundles[i] = r.bundle("/"+podCg, "true")
		r.ids = append(r.ids, ids[i])
	}
	parallel := func(args func(i int) []string) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make([]error, n)
		outs := make([][]byte, n)
		for i := range n {
			wg.Go(func() {
				// The container's stdio: a file, so nothing waits for it to close.
				f, err := os.CreateTemp(t.TempDir(), "out")
				if err != nil {
					errs[i] = err
					return
				}
				defer f.Close()
				cmd := exec.Command(bin, append([]string{"--root", r.root}, args(i)...)...)
				cmd.Stdout, cmd.Stderr = f, f
				errs[i] = cmd.Run()
				outs[i], _ = os.ReadFile(f.Name())
			})
		}
		wg.Wait()
		for i := range n {
			require.NoError(t, errs[i], "%v: %s", args(i), outs[i])
		}
	}
	pidFiles := make([]string, n)
	for i := range n {
		pidFiles[i] = filepath.Join(t.TempDir(), "pid")
	}
	parallel(func(i int) []string {
		return []string{"create", "--bundle", bundles[i], "--pid-file", pidFiles[i], ids[i]}
	})
	for i := range n {
		if b, err := os.ReadFile(pidFiles[i]); err == nil {
			if pid, err := strconv.Atoi(string(b)); err == nil {
				r.track(pid)
			}
		}
	}
	got, err := members(r.root, podCg)
	require.NoError(t, err)
	assert.ElementsMatch(t, ids, got)
	parallel(func(i int) []string { return []string{"delete", ids[i]} })
	_, err = os.Stat(filepath.Join(devDir, podCg))
	assert.ErrorIs(t, err, os.ErrNotExist, "the pod goes with its last container")
	_, err = os.Stat(filepath.Join(r.root, podsDir, podCg+".json"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

// removePodCgroup removes a test's pod cgroup from every hierarchy, in case a failed test left it
// (deleting the pod's last container removes it otherwise).
func removePodCgroup(name string) {
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", name))
	for _, d := range append(dirs, filepath.Join("/sys/fs/cgroup", name)) {
		os.Remove(d)
	}
}
