package libjail

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/libjail/libjail/internal/fixtures"
	"github.com/libjail/libjail/internal/probe"
	"github.com/libjail/libjail/internal/testutil"
)

func TestTerminalPlanErrors(t *testing.T) {
	rootfs := t.TempDir()
	cases := map[string]struct {
		edit   func(s *specs.Spec)
		socket string
		want   string
	}{
		"size": {func(s *specs.Spec) {
			s.Process.Terminal = true
			s.Process.ConsoleSize = &specs.Box{Height: 70000, Width: 80}
		}, "", "process.consoleSize"},
		"no devpts": {func(s *specs.Spec) {
			s.Process.Terminal = true
			s.Mounts[2] = specs.Mount{Destination: "/dev/pts", Type: "tmpfs", Source: "tmpfs"}
		}, "", "needs a devpts mount at /dev/pts"},
		"socket without terminal": {func(s *specs.Spec) {}, "/run/console.sock", "ConsoleSocket is set"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			spec := fixtures.Spec(rootfs, "/bin/sh")
			tc.edit(spec)
			_, err := New("tty-plan", spec, Options{ConsoleSocket: tc.socket})
			require.Error(t, err)
			var se *StepError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, StepPlan, se.Step)
			assert.ErrorIs(t, err, ErrInvalidSpec)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// ttyReader collects what a pty master delivers until the slave side is gone.
type ttyReader struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	done chan struct{}
}

func readTTY(f *os.File) *ttyReader {
	r := &ttyReader{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		b := make([]byte, 4096)
		for {
			n, err := f.Read(b)
			r.mu.Lock()
			r.buf.Write(b[:n])
			r.mu.Unlock()
			if err != nil {
				return // EIO once the container's last slave fd is closed
			}
		}
	}()
	return r
}

func (r *ttyReader) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.String()
}

// waitFor waits until the output contains s.
func (r *ttyReader) waitFor(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(r.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q on the terminal; got %q", s, r.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTerminalSession drives a shell in the container through the pty master: commands written,
// their output read back, the console size seen by stty, and the slave as the controlling terminal.
func TestTerminalSession(t *testing.T) {
	testutil.RequireRoot(t)
	spec := fixtures.Spec(fixtures.Rootfs(t), "/bin/sh")
	spec.Linux.CgroupsPath = "/" + testutil.Name(t, "ctr")
	spec.Process.Terminal = true
	spec.Process.ConsoleSize = &specs.Box{Height: 33, Width: 101}
	c, err := New(testutil.Name(t, "c"), spec, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Destroy(true) })
	require.NoError(t, c.Create(context.Background()))
	master := c.Console()
	require.NotNil(t, master)
	defer master.Close()
	assert.Nil(t, c.Console(), "handed over once")
	out := readTTY(master)
	require.NoError(t, c.Start(context.Background()))

	for _, step := range []struct{ cmd, want string }{
		{"echo $((6*7))", "\n42\r\n"},
		{"busybox stty size", "\n33 101\r\n"},
		{"busybox tty", "\n/dev/pts/0\r\n"},
		// /dev/tty opens only for a process with a controlling terminal.
		{"echo ctty >/dev/tty && echo ctty-ok", "\nctty-ok\r\n"},
	} {
		_, err := master.WriteString(step.cmd + "\n")
		require.NoError(t, err)
		out.waitFor(t, step.want)
	}
	_, err = master.WriteString("exit 3\n")
	require.NoError(t, err)
	st, err := c.Wait()
	require.NoError(t, err)
	assert.Equal(t, 3, st.ExitCode())
	select {
	case <-out.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the master did not report the end of the session")
	}
	require.NoError(t, c.Destroy(false))
}

// probeThroughTTY decodes the probe's report from terminal output (the tty turns \n into \r\n,
// which JSON takes as white space).
func probeThroughTTY(t *testing.T, out string) probe.Report {
	t.Helper()
	i := strings.Index(out, "{")
	require.GreaterOrEqual(t, i, 0, "no report on the terminal: %q", out)
	var r probe.Report
	require.NoError(t, json.NewDecoder(strings.NewReader(out[i:])).Decode(&r), "terminal output: %q", out)
	return r
}

func assertProbeOnTTY(t *testing.T, r probe.Report) {
	t.Helper()
	for _, fd := range []string{"0", "1", "2"} {
		assert.Equal(t, "/dev/pts/0", r.FDs[fd], "fd %s is the slave", fd)
	}
	assert.Equal(t, [2]int{25, 90}, r.Winsize, "consoleSize applied")
	assert.Equal(t, "ok", r.Opens["/dev/tty"], "the slave is the controlling terminal")
}

func ttyProbeSpec(t *testing.T) *specs.Spec {
	spec := probeSpec(t, "-open", "/dev/tty")
	spec.Process.Terminal = true
	spec.Process.ConsoleSize = &specs.Box{Height: 25, Width: 90}
	return spec
}

func TestTerminalProbe(t *testing.T) {
	testutil.RequireRoot(t)
	c, err := New(testutil.Name(t, "c"), ttyProbeSpec(t), Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Destroy(true) })
	require.NoError(t, c.Start(context.Background()))
	master := c.Console()
	require.NotNil(t, master)
	defer master.Close()
	out := readTTY(master)
	_, err = c.Wait()
	require.NoError(t, err)
	<-out.done
	assertProbeOnTTY(t, probeThroughTTY(t, out.String()))
	require.NoError(t, c.Destroy(false))
}

// TestConsoleSocket: with Options.ConsoleSocket the master goes to a unix socket, the OCI way,
// and Console has nothing.
func TestConsoleSocket(t *testing.T) {
	testutil.RequireRoot(t)
	path := filepath.Join(t.TempDir(), "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	require.NoError(t, err)
	defer l.Close()
	type received struct {
		name   string
		master *os.File
		err    error
	}
	got := make(chan received, 1)
	go func() {
		conn, err := l.AcceptUnix()
		if err != nil {
			got <- received{err: err}
			return
		}
		defer conn.Close()
		buf, oob := make([]byte, 256), make([]byte, unix.CmsgSpace(4))
		n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		if err != nil {
			got <- received{err: err}
			return
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) != 1 {
			got <- received{err: errors.Join(err, errors.New("one control message expected"))}
			return
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) != 1 {
			got <- received{err: errors.Join(err, errors.New("one fd expected"))}
			return
		}
		got <- received{name: string(buf[:n]), master: os.NewFile(uintptr(fds[0]), "master")}
	}()

	c, err := New(testutil.Name(t, "c"), ttyProbeSpec(t), Options{ConsoleSocket: path})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Destroy(true) })
	require.NoError(t, c.Create(context.Background()))
	assert.Nil(t, c.Console(), "the master went to the socket")
	rcv := <-got
	require.NoError(t, rcv.err)
	defer rcv.master.Close()
	assert.Equal(t, "/dev/pts/0", rcv.name)
	require.NoError(t, c.Start(context.Background()))
	out, _ := io.ReadAll(rcv.master) // ends with EIO when the probe is gone
	_, err = c.Wait()
	require.NoError(t, err)
	assertProbeOnTTY(t, probeThroughTTY(t, string(out)))
	require.NoError(t, c.Destroy(false))
}

// TestConsoleSocketMissing: a console socket nobody listens on fails the terminal step.
func TestConsoleSocketMissing(t *testing.T) {
	testutil.RequireRoot(t)
	c, err := New(testutil.Name(t, "c"), ttyProbeSpec(t), Options{ConsoleSocket: filepath.Join(t.TempDir(), "none.sock")})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Destroy(true) })
	err = c.Create(context.Background())
	var se *StepError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, StepTerminal, se.Step)
	assert.ErrorIs(t, err, unix.ENOENT)
}

// TestTerminalUser: the slave belongs to the process's user, so a non-root process (also one in a
// user namespace) can reopen its terminal by name.
func TestTerminalUser(t *testing.T) {
	testutil.RequireRoot(t)
	for name, userns := range map[string]bool{"no user namespace": false, "user namespace": true} {
		t.Run(name, func(t *testing.T) {
			spec := ttyProbeSpec(t)
			spec.Process.Args[2] = "/dev/tty,/dev/pts/0"
			spec.Process.User = specs.User{UID: 1000, GID: 1000}
			if userns {
				spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
				spec.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 300000, Size: 65536}}
				spec.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 300000, Size: 65536}}
			}
			c, err := New(testutil.Name(t, "c"), spec, Options{})
			require.NoError(t, err)
			t.Cleanup(func() { _ = c.Destroy(true) })
			require.NoError(t, c.Start(context.Background()))
			master := c.Console()
			require.NotNil(t, master)
			defer master.Close()
			out := readTTY(master)
			_, err = c.Wait()
			require.NoError(t, err)
			<-out.done
			r := probeThroughTTY(t, out.String())
			assert.Equal(t, 1000, r.UID)
			assertProbeOnTTY(t, r)
			assert.Equal(t, "ok", r.Opens["/dev/pts/0"], "the slave is the user's")
			require.NoError(t, c.Destroy(false))
		})
	}
}
