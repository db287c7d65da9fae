package seccomp

import (
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/libjail/libjail/internal/testutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// agentSeen is what the test's seccomp agent received and did.
type agentSeen struct {
	state   specs.ContainerProcessState
	syscall string
	pid     uint32
	err     error
}

// agent accepts one connection on ln the way seccomp agents do: one message of at most 4096
// bytes with the state JSON and the listener fd, then answers one notification with answer.
func agent(ln *net.UnixListener, answer unix.Errno) <-chan agentSeen {
	done := make(chan agentSeen, 1)
	go func() {
		var seen agentSeen
		defer func() { done <- seen }()
		_ = ln.SetDeadline(time.Now().Add(20 * time.Second))
		conn, err := ln.AcceptUnix()
		if err != nil {
			seen.err = err
			return
		}
		defer conn.Close()
		buf, oob := make([]byte, 4096), make([]byte, unix.CmsgSpace(4*4))
		n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		if err != nil {
			seen.err = err
			return
		}
		if err := json.Unmarshal(buf[:n], &seen.state); err != nil {
			seen.err = err
			return
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) != 1 {
			seen.err = errors.Join(errors.New("want one control message"), err)
			return
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) != 1 {
			seen.err = errors.Join(errors.New("want one fd"), err)
			return
		}
		listener := os.NewFile(uintptr(fds[0]), "agent-listener")
		defer listener.Close()
		req, err := libseccomp.NotifReceive(libseccomp.ScmpFd(listener.Fd()))
		if err != nil {
			seen.err = err
			return
		}
		seen.pid = req.Pid
		seen.syscall, _ = req.Data.Syscall.GetName()
		seen.err = libseccomp.NotifRespond(libseccomp.ScmpFd(listener.Fd()), &libseccomp.ScmpNotifResp{ID: req.ID, Error: int32(answer)})
	}()
	return done
}

// TestNotify runs the whole SCMP_ACT_NOTIFY path: the child loads the filter and passes the
// listener to the parent (here over a socketpair, as the root package does over syncpipe), the
// parent sends it with SendListener to an agent on listenerPath, and the agent answers the
// child's trapped mkdirat with its own errno.
func TestNotify(t *testing.T) {
	testutil.RequireRoot(t)
	dir := t.TempDir()
	sockPath := filepath.Join(dir, "agent.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sockPath, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const answer = unix.EDOM
	seenc := agent(ln, answer)

	p, err := Compile(&specs.LinuxSeccomp{
		DefaultAction:    specs.ActAllow,
		ListenerPath:     sockPath,
		ListenerMetadata: "libjail-test-metadata",
		Flags:            []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagWaitKillableRecv},
		Syscalls:         []specs.LinuxSyscall{{Names: []string{"mkdirat", "mkdir"}, Action: specs.ActNotify}},
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	parentEnd, childEnd := os.NewFile(uintptr(pair[0]), "parent"), os.NewFile(uintptr(pair[1]), "child")
	defer parentEnd.Close()
	op := "mkdir=" + filepath.Join(dir, testutil.Name(t, "notified"))
	cmd, out, errb := child(t, p, []string{op}, childEnd)
	childEnd.Close()

	// Receive the listener from the child; a child that dies first closes its end (n == 0).
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(int(parentEnd.Fd()), make([]byte, 1), oob, 0)
	if err != nil || n == 0 || oobn == 0 {
		_ = cmd.Wait()
		t.Fatalf("no listener from the child (n=%d oobn=%d err=%v); stderr: %s", n, oobn, err, errb)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		t.Fatal(err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil {
		t.Fatal(err)
	}
	listener := os.NewFile(uintptr(fds[0]), "listener")
	defer listener.Close()

	state := specs.ContainerProcessState{State: specs.State{
		ID: testutil.Name(t, "container"), Status: specs.StateCreating, Pid: cmd.Process.Pid, Bundle: dir,
		Annotations: map[string]string{"io.libjail.test": "yes"},
	}}
	if err := SendListener(p, listener, state); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatal(err)
	}

	res := childOK(t, cmd, out, errb)
	seen := <-seenc
	if seen.err != nil {
		t.Fatalf("agent: %v", seen.err)
	}
	if !res.ListenerSent {
		t.Error("child did not report sending the listener")
	}
	if got := unix.Errno(res.Errnos[op]); got != answer {
		t.Errorf("trapped mkdir: got %v, want the agent's %v", got, answer)
	}
	if seen.syscall != "mkdirat" && seen.syscall != "mkdir" {
		t.Errorf("agent saw syscall %q", seen.syscall)
	}
	st := seen.state
	if !slices.Equal(st.Fds, []string{specs.SeccompFdName}) || st.Metadata != "libjail-test-metadata" ||
		st.Pid != cmd.Process.Pid || st.State.ID != state.State.ID || st.State.Pid != cmd.Process.Pid ||
		st.Version == "" || st.State.Annotations["io.libjail.test"] != "yes" {
		t.Errorf("agent got state %+v", st)
	}
	if int(seen.pid) != cmd.Process.Pid {
		t.Errorf("notification from pid %d, want %d", seen.pid, cmd.Process.Pid)
	}
}

func TestSendListenerErrors(t *testing.T) {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := SendListener(&Program{}, f, specs.ContainerProcessState{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("no notify: %v", err)
	}
	p := &Program{Notify: true, ListenerPath: filepath.Join(t.TempDir(), "nobody-listens")}
	if err := SendListener(p, f, specs.ContainerProcessState{}); !errors.Is(err, unix.ENOENT) {
		t.Errorf("missing socket: %v, want ENOENT", err)
	}
	big := specs.ContainerProcessState{State: specs.State{Annotations: map[string]string{"a": string(make([]byte, 5000))}}}
	if err := SendListener(p, f, big); !errors.Is(err, ErrInvalid) {
		t.Errorf("oversized state: %v", err)
	}
}
