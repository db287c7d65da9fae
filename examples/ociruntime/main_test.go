package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/libjail/libjail/internal/fixtures"
	"github.com/libjail/libjail/internal/testutil"
	"github.com/libjail/libjail/seccomp"
)

// bin is the ociruntime binary the tests drive, built once by TestMain.
var bin string

// requireBin skips a test when there was no toolchain to build the command.
func requireBin(t *testing.T) {
	t.Helper()
	if bin == "" {
		t.Skip("skipped: no Go toolchain to build the command")
	}
}

func TestMain(m *testing.M) {
	if os.Geteuid() == 0 {
		// A container made by `create` is reparented when create exits: to this process, which
		// reaps it, as a container engine's shim does.
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			fmt.Fprintln(os.Stderr, "subreaper:", err)
			os.Exit(1)
		}
	}
	if _, err := exec.LookPath("go"); err != nil {
		// A machine without a toolchain (the VM lane) cannot build the command: every test skips.
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "libjail-test-ociruntime-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "ociruntime")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// runtime is one --root for a test: every container it makes is deleted and reaped at cleanup.
type runtime struct {
	t    *testing.T
	root string
	ids  []string

	mu   sync.Mutex
	pids []int // processes reparented to this test, reaped in the background
	stop chan struct{}
	done chan struct{}
}

func newRuntime(t *testing.T) *runtime {
	testutil.RequireRoot(t)
	requireBin(t)
	r := &runtime{t: t, root: filepath.Join(t.TempDir(), "root"), stop: make(chan struct{}), done: make(chan struct{})}
	go r.reaper()
	t.Cleanup(r.cleanup)
	return r
}

// reaper reaps the tracked processes as they exit, as a shim does: an init waits, in its exit,
// for every process of its pid namespace to be reaped, including exec'd ones reparented here.
// Only tracked pids are waited for, so the statuses of exec.Cmd children are never stolen.
func (r *runtime) reaper() {
	defer close(r.done)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		r.mu.Lock()
		live := r.pids[:0]
		for _, pid := range r.pids {
			wpid, err := unix.Wait4(pid, nil, unix.WNOHANG, nil)
			if wpid != pid && !errors.Is(err, unix.ECHILD) {
				live = append(live, pid)
			}
		}
		r.pids = live
		n := len(live)
		r.mu.Unlock()
		select {
		case <-r.stop:
			if n == 0 {
				return
			}
		case <-tick.C:
		}
	}
}

func (r *runtime) track(pid int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pids = append(r.pids, pid)
}

func (r *runtime) cleanup() {
	for _, id := range r.ids {
		if _, _, code := r.run(nil, "delete", "--force", id); code != 0 {
			r.t.Errorf("cleanup: delete --force %s failed", id)
		}
	}
	close(r.stop)
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		r.t.Errorf("cleanup: processes not reaped: %v", r.pids)
	}
}

// run runs the binary with --root and args, stdin from in; it returns stdout, stderr and the exit
// code.
func (r *runtime) run(in *strings.Reader, args ...string) (string, string, int) {
	r.t.Helper()
	cmd := exec.Command(bin, append([]string{"--root", r.root}, args...)...)
	if in != nil {
		cmd.Stdin = in
	}
	// Files, not pipes: a created container inherits them and outlives the command, so a pipe
	// would never reach end of file.
	dir := r.t.TempDir()
	stdout, err := os.Create(filepath.Join(dir, "stdout"))
	require.NoError(r.t, err)
	defer stdout.Close()
	stderr, err := os.Create(filepath.Join(dir, "stderr"))
	require.NoError(r.t, err)
	defer stderr.Close()
	cmd.Stdout, cmd.Stderr = stdout, stderr
	err = cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else {
		require.NoError(r.t, err)
	}
	out, err := os.ReadFile(stdout.Name())
	require.NoError(r.t, err)
	errOut, err := os.ReadFile(stderr.Name())
	require.NoError(r.t, err)
	return string(out), string(errOut), code
}

// ok runs a command that must succeed.
func (r *runtime) ok(args ...string) string {
	r.t.Helper()
	out, errOut, code := r.run(nil, args...)
	require.Equal(r.t, 0, code, "%v: %s", args, errOut)
	return out
}

// fails runs a command that must fail with status 1 and a message on stderr.
func (r *runtime) fails(args ...string) string {
	r.t.Helper()
	_, errOut, code := r.run(nil, args...)
	assert.Equal(r.t, 1, code, "%v must fail", args)
	assert.NotEmpty(r.t, errOut, "%v must say why", args)
	return errOut
}

// bundle writes a busybox bundle running args, in a cgroup named for the test (under parent
// when given, else at the root).
func (r *runtime) bundle(parent string, args ...string) string {
	r.t.Helper()
	return r.bundleWith(parent, nil, args...)
}

// bundleWith is bundle with the spec changed by edit first.
func (r *runtime) bundleWith(parent string, edit func(*specs.Spec), args ...string) string {
	r.t.Helper()
	dir := filepath.Join(r.t.TempDir(), "bundle")
	rootfs := filepath.Join(dir, "rootfs")
	require.NoError(r.t, fixtures.BuildRootfs(rootfs, true))
	spec := fixtures.Spec(rootfs, args...)
	spec.Linux.CgroupsPath = parent + "/" + testutil.Name(r.t, "ctr")
	if edit != nil {
		edit(spec)
	}
	require.NoError(r.t, fixtures.WriteBundle(dir, spec))
	return dir
}

// create creates a container from bundle and registers it for cleanup.
func (r *runtime) create(bundle string) (string, int) {
	r.t.Helper()
	id := testutil.Name(r.t, "c")
	pidFile := filepath.Join(r.t.TempDir(), "pid")
	r.ids = append(r.ids, id)
	r.ok("create", "--bundle", bundle, "--pid-file", pidFile, id)
	b, err := os.ReadFile(pidFile)
	require.NoError(r.t, err)
	pid, err := strconv.Atoi(string(b))
	require.NoError(r.t, err)
	r.track(pid)
	return id, pid
}

func (r *runtime) state(id string) stateJSON {
	r.t.Helper()
	var st stateJSON
	require.NoError(r.t, json.Unmarshal([]byte(r.ok("state", id)), &st))
	return st
}

// waitStatus polls the state until it is want.
func (r *runtime) waitStatus(id string, want specs.ContainerState) {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := r.state(id)
		if st.Status == want {
			return
		}
		require.True(r.t, time.Now().Before(deadline), "container %s is %s, want %s", id, st.Status, want)
		time.Sleep(20 * time.Millisecond)
	}
}

// loop is a container process that exits 0 on SIGTERM (an init without a handler ignores it);
// /tmp/trapped says its handler is in place.
var loop = []string{"/bin/sh", "-c", "trap 'exit 0' TERM; touch /tmp/trapped; while true; do sleep 0.05; done"}

// waitTrapped waits until a running loop container can take SIGTERM.
func (r *runtime) waitTrapped(id string) {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, _, code := r.run(nil, "exec", id, "test", "-e", "/tmp/trapped"); code == 0 {
			return
		}
		require.True(r.t, time.Now().Before(deadline), "container %s never set its SIGTERM trap", id)
		time.Sleep(20 * time.Millisecond)
	}
}

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

// TestUpdate changes limits of a running container through flags and a resources file on stdin.
func TestUpdate(t *testing.T) {
	r := newRuntime(t)
	pidsDir := testutil.RequireCgroupV1(t, "pids")
	bundle := r.bundle("", "sleep", "1000")
	spec, err := loadSpec(bundle)
	require.NoError(t, err)
	id, _ := r.create(bundle)
	r.ok("start", id)

	r.ok("update", "--pids-limit", "42", id)
	b, err := os.ReadFile(filepath.Join(pidsDir, spec.Linux.CgroupsPath, "pids.max"))
	require.NoError(t, err)
	assert.Equal(t, "42", strings.TrimSpace(string(b)))

	_, errOut, code := r.run(strings.NewReader(`{"pids": {"limit": 17}}`), "update", "--resources", "-", id)
	require.Equal(t, 0, code, errOut)
	b, err = os.ReadFile(filepath.Join(pidsDir, spec.Linux.CgroupsPath, "pids.max"))
	require.NoError(t, err)
	assert.Equal(t, "17", strings.TrimSpace(string(b)))
	r.fails("update", "--memory", "lots", id)
	r.ok("delete", "--force", id)
}

// TestFeatures checks the features document parses and names what the library supports.
func TestFeatures(t *testing.T) {
	requireBin(t)
	out, err := exec.Command(bin, "features").Output()
	require.NoError(t, err)
	var f features.Features
	require.NoError(t, json.Unmarshal(out, &f))
	assert.Equal(t, specs.Version, f.OCIVersionMax)
	require.NotNil(t, f.Linux)
	assert.Contains(t, f.Linux.Namespaces, "pid")
	assert.Contains(t, f.Linux.Capabilities, "CAP_SYS_ADMIN")
	require.NotNil(t, f.Linux.Seccomp)
	assert.True(t, *f.Linux.Seccomp.Enabled)
	assert.Contains(t, f.Hooks, "createRuntime")
}

// TestLogJSON checks an error reaches both stderr and a JSON log.
func TestLogJSON(t *testing.T) {
	testutil.RequireRoot(t)
	requireBin(t)
	dir := t.TempDir()
	log := filepath.Join(dir, "log.json")
	cmd := exec.Command(bin, "--root", filepath.Join(dir, "root"), "--log", log, "--log-format", "json", "state", "nope")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 1, ee.ExitCode())
	assert.Contains(t, stderr.String(), "does not exist")
	b, err := os.ReadFile(log)
	require.NoError(t, err)
	var rec map[string]any
	require.NoError(t, json.Unmarshal(b, &rec), "%s", b)
	assert.Equal(t, "error", rec["level"])
	assert.Contains(t, rec["msg"], "does not exist")
}

// TestPod creates two containers under one parent cgroup: they form a pod whose cgroup holds the
// pod-level device rules, removed with the last container.
func TestPod(t *testing.T) {
	r := newRuntime(t)
	devDir := testutil.RequireCgroupV1(t, "devices")
	podCg := testutil.Name(t, "pod")
	t.Cleanup(func() {
		// Whatever happened, no pod cgroup stays (containers were deleted by the runtime's cleanup,
		// registered after this one, so it runs first).
		for _, d := range []string{devDir} {
			os.Remove(filepath.Join(d, podCg))
		}
	})
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
	spec1, err := loadSpec(b1)
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

// TestConsoleSocket creates a container with a terminal: its pty master comes through the
// socket and carries the container's output.
func TestConsoleSocket(t *testing.T) {
	r := newRuntime(t)
	sock := filepath.Join(t.TempDir(), "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	require.NoError(t, err)
	defer l.Close()
	masters := make(chan *os.File, 1)
	go func() {
		defer close(masters)
		conn, err := l.AcceptUnix()
		if err != nil {
			return
		}
		defer conn.Close()
		oob := make([]byte, unix.CmsgSpace(4))
		_, oobn, _, _, err := conn.ReadMsgUnix(make([]byte, 4096), oob)
		if err != nil {
			return
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) != 1 {
			return
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) != 1 {
			return
		}
		// Non-blocking, so the file uses the poller and read deadlines work.
		if unix.SetNonblock(fds[0], true) != nil {
			unix.Close(fds[0])
			return
		}
		masters <- os.NewFile(uintptr(fds[0]), "pty-master")
	}()

	dir := filepath.Join(t.TempDir(), "bundle")
	require.NoError(t, fixtures.BuildRootfs(filepath.Join(dir, "rootfs"), true))
	spec := fixtures.Spec(filepath.Join(dir, "rootfs"), "/bin/sh", "-c", "echo tty-ok; sleep 1000")
	spec.Process.Terminal = true
	spec.Linux.CgroupsPath = "/" + testutil.Name(t, "ctr")
	require.NoError(t, fixtures.WriteBundle(dir, spec))

	// Without a socket, a terminal is refused.
	r.fails("create", "--bundle", dir, testutil.Name(t, "c"))

	id := testutil.Name(t, "c")
	r.ids = append(r.ids, id)
	pidFile := filepath.Join(t.TempDir(), "pid")
	r.ok("create", "--bundle", dir, "--console-socket", sock, "--pid-file", pidFile, id)
	if b, err := os.ReadFile(pidFile); err == nil {
		if pid, err := strconv.Atoi(string(b)); err == nil {
			r.track(pid)
		}
	}
	master, ok := <-masters
	require.True(t, ok, "no pty master received")
	defer master.Close()
	r.ok("start", id)
	require.NoError(t, master.SetReadDeadline(time.Now().Add(10*time.Second)))
	var got strings.Builder
	buf := make([]byte, 256)
	for !strings.Contains(got.String(), "tty-ok") {
		n, err := master.Read(buf)
		got.Write(buf[:n])
		require.NoError(t, err, "read so far: %q", got.String())
	}
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

// TestPodConcurrent creates and deletes the containers of one pod from parallel processes: the
// membership lock keeps the pod alive while any container is in it and removes it after the last.
func TestPodConcurrent(t *testing.T) {
	r := newRuntime(t)
	devDir := testutil.RequireCgroupV1(t, "devices")
	podCg := testutil.Name(t, "pod")
	t.Cleanup(func() { os.Remove(filepath.Join(devDir, podCg)) })
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
