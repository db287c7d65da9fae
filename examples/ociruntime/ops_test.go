package main

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/libjail/libjail"
	"github.com/libjail/libjail/internal/fixtures"
	"github.com/libjail/libjail/internal/testutil"
)

// TestUpdate changes limits of a running container through flags and a resources file on stdin.
func TestUpdate(t *testing.T) {
	r := newRuntime(t)
	pidsDir := testutil.RequireCgroupV1(t, "pids")
	bundle := r.bundle("", "sleep", "1000")
	spec, err := libjail.ReadBundleSpec(bundle)
	require.NoError(t, err)
	id, _ := r.create(bundle)
	r.ok("start", id)

	r.ok("update", "--pids-limit", "42", id)
	// A container outside a pod lives in the "container" cgroup of its pod of one at cgroupsPath.
	leaf := filepath.Join(pidsDir, spec.Linux.CgroupsPath, "container")
	b, err := os.ReadFile(filepath.Join(leaf, "pids.max"))
	require.NoError(t, err)
	assert.Equal(t, "42", strings.TrimSpace(string(b)))

	_, errOut, code := r.run(strings.NewReader(`{"pids": {"limit": 17}}`), "update", "--resources", "-", id)
	require.Equal(t, 0, code, errOut)
	b, err = os.ReadFile(filepath.Join(leaf, "pids.max"))
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
