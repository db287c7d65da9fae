package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/libjail/libjail/internal/fixtures"
	"github.com/libjail/libjail/internal/testutil"
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
