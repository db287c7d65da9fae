package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/libjail/libjail/internal/testutil"
	"github.com/libjail/libjail/seccomp"
)

// TestLifecycle drives create, start, state, exec, ps, pause, resume, kill and delete, and checks
// the state at each step.
func TestLifecycle(t *testing.T) {
	r := newRuntime(t)
	bundle := r.bundle("", loop...)
	id, pid := r.create(bundle)

	st := r.state(id)
	assert.Equal(t, specs.StateCreated, st.Status)
	assert.Equal(t, id, st.ID)
	assert.Equal(t, pid, st.Pid, "state and --pid-file name the same init")
	assert.Equal(t, bundle, st.Bundle)
	assert.Equal(t, filepath.Join(bundle, "rootfs"), st.Rootfs)
	assert.Equal(t, specs.Version, st.Version)

	assert.Contains(t, strings.Fields(r.ok("list", "--quiet")), id)
	var list []stateJSON
	require.NoError(t, json.Unmarshal([]byte(r.ok("list", "--format", "json")), &list))
	require.Len(t, list, 1)
	assert.Equal(t, st, list[0])
	assert.Contains(t, r.ok("list"), id)

	r.ok("start", id)
	st = r.state(id)
	assert.Equal(t, specs.StateRunning, st.Status)
	assert.Equal(t, pid, st.Pid)

	// exec: output and exit status come through.
	assert.Equal(t, "hello from libjail\n", r.ok("exec", id, "sh", "-c", "echo hello from $(hostname)"))
	_, _, code := r.run(nil, "exec", id, "sh", "-c", "exit 7")
	assert.Equal(t, 7, code)
	assert.Equal(t, "/tmp x=1\n", r.ok("exec", "--cwd", "/tmp", "--env", "X=1", id, "sh", "-c", "echo $(pwd) x=$X"))
	assert.Equal(t, "65534:65534\n", r.ok("exec", "--user", "65534:65534", id, "sh", "-c", "echo $(id -u):$(id -g)"))
	// --tty in the foreground: the pty is relayed through exec's stdio.
	out, errOut, code := r.run(nil, "exec", "--tty", id, "sh", "-c", "test -t 1 && echo on-a-tty")
	assert.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "on-a-tty")

	// exec --process --detach: the process shows in ps.
	proc := filepath.Join(t.TempDir(), "process.json")
	b, err := json.Marshal(specs.Process{Args: []string{"sleep", "1000"}, Cwd: "/", Env: []string{"PATH=/bin"}})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(proc, b, 0o644))
	pidFile := filepath.Join(t.TempDir(), "exec.pid")
	r.ok("exec", "--process", proc, "--detach", "--pid-file", pidFile, id)
	b, err = os.ReadFile(pidFile)
	require.NoError(t, err)
	execPid, err := strconv.Atoi(string(b))
	require.NoError(t, err)
	r.track(execPid)

	var pids []int
	require.NoError(t, json.Unmarshal([]byte(r.ok("ps", "--format", "json", id)), &pids))
	assert.Contains(t, pids, pid)
	assert.Contains(t, pids, execPid)
	table := r.ok("ps", id)
	assert.Contains(t, table, "PID")
	assert.Contains(t, table, "sleep 1000")

	r.ok("pause", id)
	assert.Equal(t, specs.ContainerState("paused"), r.state(id).Status)
	r.fails("pause", id)
	r.ok("resume", id)
	assert.Equal(t, specs.StateRunning, r.state(id).Status)

	// Default signal SIGTERM: the trap ends the init.
	r.waitTrapped(id)
	r.ok("kill", id)
	r.waitStatus(id, specs.StateStopped)
	assert.Zero(t, r.state(id).Pid)
	r.fails("kill", id, "KILL")

	r.ok("delete", id)
	assert.Contains(t, r.fails("state", id), "does not exist")
	_, err = os.Stat(filepath.Join(r.root, id))
	assert.ErrorIs(t, err, os.ErrNotExist, "delete removes the state")
}

// TestErrors checks unknown ids and illegal transitions: exit status 1 and a message.
func TestErrors(t *testing.T) {
	r := newRuntime(t)
	for _, cmd := range [][]string{
		{"state", "nope"}, {"start", "nope"}, {"kill", "nope"}, {"delete", "nope"}, {"pause", "nope"},
		{"resume", "nope"}, {"ps", "nope"}, {"exec", "nope", "true"}, {"update", "--pids-limit", "5", "nope"},
	} {
		assert.Contains(t, r.fails(cmd...), "does not exist", "%v", cmd)
	}
	r.fails("no-such-command")
	r.fails("state")
	r.fails("kill", "x", "SIGNOPE")
	// delete --force of an unknown id succeeds, as with runc.
	r.ok("delete", "--force", "nope")

	id, _ := r.create(r.bundle("", loop...))
	r.fails("create", "--bundle", r.bundle("", "true"), id) // the id is taken
	r.fails("resume", id)
	r.fails("pause", id)
	r.fails("exec", id, "true")
	r.ok("start", id)
	assert.Contains(t, r.fails("start", id), "running")
	assert.Contains(t, r.fails("delete", id), "not stopped")
	assert.Equal(t, specs.StateRunning, r.state(id).Status)
	r.ok("delete", "--force", id)
	r.fails("state", id)
}

// TestDeleteCreated deletes a container that was never started: no force needed.
func TestDeleteCreated(t *testing.T) {
	r := newRuntime(t)
	id, _ := r.create(r.bundle("", "true"))
	r.ok("delete", id)
	r.fails("state", id)
}

// TestKillAll signals every process of the container.
func TestKillAll(t *testing.T) {
	r := newRuntime(t)
	id, _ := r.create(r.bundle("", "sleep", "1000"))
	r.ok("start", id)
	r.ok("kill", "--all", id, "9")
	r.waitStatus(id, specs.StateStopped)
	r.ok("delete", id)
}

// TestRun runs containers in the foreground: the exit status is the container's, stdio is
// attached, nothing is left behind.
func TestRun(t *testing.T) {
	r := newRuntime(t)
	id := testutil.Name(t, "run")
	r.ids = append(r.ids, id)
	out, errOut, code := r.run(strings.NewReader("hello\n"), "run", "--bundle",
		r.bundle("", "/bin/sh", "-c", "read line; echo \"got $line\"; exit 3"), id)
	assert.Equal(t, 3, code, errOut)
	assert.Equal(t, "got hello\n", out)
	assert.Contains(t, r.fails("state", id), "does not exist", "run deletes the container")

	_, _, code = r.run(nil, "run", "--bundle", r.bundle("", "false"), testutil.Name(t, "run"))
	assert.Equal(t, 1, code)

	// A terminal in the foreground is relayed through run's own stdio.
	tty := r.bundleWith("", func(s *specs.Spec) { s.Process.Terminal = true },
		"/bin/sh", "-c", "read line; test -t 0 && echo \"tty $line\"; exit 4")
	out, errOut, code = r.run(strings.NewReader("hi\n"), "run", "--bundle", tty, testutil.Name(t, "run"))
	assert.Equal(t, 4, code, errOut)
	assert.Contains(t, out, "tty hi")

	// The default seccomp profile: compiled once, then found in the root's cache.
	sc := r.bundleWith("", func(s *specs.Spec) { s.Linux.Seccomp = seccomp.Default() }, "true")
	for range 2 {
		_, errOut, code = r.run(nil, "run", "--bundle", sc, testutil.Name(t, "run"))
		assert.Equal(t, 0, code, errOut)
	}
	cached, err := filepath.Glob(filepath.Join(r.root, seccompCacheDir, "*.json"))
	require.NoError(t, err)
	assert.Len(t, cached, 1)

	// --keep leaves the stopped container to delete.
	id = testutil.Name(t, "run")
	r.ids = append(r.ids, id)
	r.ok("run", "--keep", "--bundle", r.bundle("", "true"), id)
	assert.Equal(t, specs.StateStopped, r.state(id).Status)
	r.ok("delete", id)

	// --detach returns with the container running.
	id = testutil.Name(t, "run")
	r.ids = append(r.ids, id)
	pidFile := filepath.Join(t.TempDir(), "pid")
	r.ok("run", "--detach", "--pid-file", pidFile, "--bundle", r.bundle("", "sleep", "1000"), id)
	b, err := os.ReadFile(pidFile)
	require.NoError(t, err)
	pid, err := strconv.Atoi(string(b))
	require.NoError(t, err)
	r.track(pid)
	st := r.state(id)
	assert.Equal(t, specs.StateRunning, st.Status)
	assert.Equal(t, pid, st.Pid)
	r.ok("delete", "--force", id)
}

// TestHooks checks the runtime's hooks run in the command that reaches their moment, each with
// the state of that moment: createRuntime in create, poststart in start, poststop in delete.
func TestHooks(t *testing.T) {
	r := newRuntime(t)
	out := t.TempDir()
	hook := func(name string) specs.Hook {
		return specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", "cat > " + filepath.Join(out, name)}}
	}
	bundle := r.bundleWith("", func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{
			CreateRuntime: []specs.Hook{hook("createRuntime")},
			Poststart:     []specs.Hook{hook("poststart")},
			Poststop:      []specs.Hook{hook("poststop")},
		}
	}, loop...)
	id, pid := r.create(bundle)
	read := func(name string) *specs.State {
		b, err := os.ReadFile(filepath.Join(out, name))
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		require.NoError(t, err)
		var st specs.State
		require.NoError(t, json.Unmarshal(b, &st), "%s: %s", name, b)
		return &st
	}
	st := read("createRuntime")
	require.NotNil(t, st, "createRuntime ran in create")
	assert.Equal(t, specs.StateCreating, st.Status)
	assert.Equal(t, id, st.ID)
	assert.Equal(t, pid, st.Pid)
	assert.Nil(t, read("poststart"))

	r.ok("start", id)
	st = read("poststart")
	require.NotNil(t, st, "poststart ran in start")
	assert.Equal(t, specs.StateRunning, st.Status)
	assert.Nil(t, read("poststop"))

	r.ok("kill", id, "KILL")
	r.waitStatus(id, specs.StateStopped)
	r.ok("delete", id)
	st = read("poststop")
	require.NotNil(t, st, "poststop ran in delete")
	assert.Equal(t, specs.StateStopped, st.Status)
	assert.Equal(t, bundle, st.Bundle)
}
