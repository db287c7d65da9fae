package libjail

import (
	"encoding/json"
	"net"
	"path/filepath"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/libjail/libjail/internal/testutil"
	"github.com/libjail/libjail/seccomp"
)

func seccompSpec(t *testing.T, nnp bool, rule specs.LinuxSyscall, probeArgs ...string) *specs.Spec {
	spec := probeSpec(t, probeArgs...)
	profile := seccomp.Default()
	// First: a later unconditional rule for a syscall the default allows would be ignored.
	profile.Syscalls = append([]specs.LinuxSyscall{rule}, profile.Syscalls...)
	spec.Linux.Seccomp = profile
	spec.Process.NoNewPrivileges = nnp
	return spec
}

func TestSeccompErrno(t *testing.T) {
	testutil.RequireRoot(t)
	exdev := uint(unix.EXDEV)
	rule := specs.LinuxSyscall{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: &exdev}
	for _, nnp := range []bool{true, false} {
		// With no_new_privs the filter goes on last; without, before capabilities are dropped.
		r := runProbe(t, seccompSpec(t, nnp, rule, "-mkdir", "/tmp/x"), Options{})
		assert.Equal(t, "2", r.Status["Seccomp"], "filter mode")
		assert.Equal(t, "EXDEV", r.Opens["mkdir:/tmp/x"], "the profile's errno (nnp=%v)", nnp)
	}
}

func TestSeccompKill(t *testing.T) {
	testutil.RequireRoot(t)
	rule := specs.LinuxSyscall{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActKillProcess}
	spec := seccompSpec(t, true, rule, "-mkdir", "/tmp/x")
	c, err := New(testutil.Name(t, "c"), spec, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Destroy(true) })
	require.NoError(t, c.Start(t.Context()))
	st, err := c.Wait()
	require.NoError(t, err)
	ws := st.Sys().(syscall.WaitStatus)
	assert.True(t, ws.Signaled() && ws.Signal() == syscall.SIGSYS, "killed by SIGSYS: %v", st)
}

// TestSeccompNotify: a seccomp agent listening on listenerPath receives the listener fd and the
// container's state, and answers the container's trapped mkdir.
func TestSeccompNotify(t *testing.T) {
	testutil.RequireRoot(t)
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	require.NoError(t, err)
	defer ln.Close()

	got := make(chan specs.ContainerProcessState, 1)
	agentErr := make(chan error, 1)
	go func() { agentErr <- seccompAgent(ln, unix.EDOM, got) }()

	rule := specs.LinuxSyscall{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActNotify}
	spec := seccompSpec(t, true, rule, "-mkdir", "/tmp/x")
	spec.Linux.Seccomp.ListenerPath = sock
	spec.Linux.Seccomp.ListenerMetadata = "libjail-test"
	r := runProbe(t, spec, Options{})
	require.NoError(t, <-agentErr)
	assert.Equal(t, "EDOM", r.Opens["mkdir:/tmp/x"], "the agent's answer")
	st := <-got
	assert.Equal(t, "libjail-test", st.Metadata)
	assert.Equal(t, []string{"seccompFd"}, st.Fds)
	assert.NotZero(t, st.State.Pid)
}

// seccompAgent accepts one connection, takes the listener fd, and answers one notification
// with errno.
func seccompAgent(ln *net.UnixListener, errno unix.Errno, got chan<- specs.ContainerProcessState) error {
	conn, err := ln.AcceptUnix()
	if err != nil {
		return err
	}
	defer conn.Close()
	buf := make([]byte, 8192)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return err
	}
	var st specs.ContainerProcessState
	if err := json.Unmarshal(buf[:n], &st); err != nil {
		return err
	}
	got <- st
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return err
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return err
	}
	fd := libseccomp.ScmpFd(fds[0])
	defer unix.Close(fds[0])
	req, err := libseccomp.NotifReceive(fd)
	if err != nil {
		return err
	}
	return libseccomp.NotifRespond(fd, &libseccomp.ScmpNotifResp{ID: req.ID, Error: int32(errno)}) // libseccomp negates it
}

// TestSeccompNewSyscallENOSYS: a syscall newer than every name the profile knows returns ENOSYS
// (not the default errno), so C libraries fall back to older calls.
func TestSeccompNewSyscallENOSYS(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireKernel(t, 6, 8) // 459 (lsm_get_self_attr) exists, and libseccomp 2.5 knows no name for it
	spec := probeSpec(t, "-syscall", "459")
	spec.Linux.Seccomp = seccomp.Default()
	r := runProbe(t, spec, Options{})
	assert.Equal(t, "ENOSYS", r.Opens["syscall:459"])

	// Without the filter the kernel does know it.
	r = runProbe(t, probeSpec(t, "-syscall", "459"), Options{})
	assert.NotEqual(t, "ENOSYS", r.Opens["syscall:459"])
}
