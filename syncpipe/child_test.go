package syncpipe_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/libjail/libjail/syncpipe"
)

// runChild plays the child's side of a protocol on fd 3, as a container's init would.
func runChild(mode string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if mode == "die-mid-message" {
		// The first of several fragments, then death.
		unix.Write(3, frame(1, 0, 200<<10, make([]byte, 64<<10)))
		return 3
	}
	c, err := proto.FromFile(os.NewFile(3, "sync"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	switch mode {
	case "hello-exit":
		c.Send(ctx, Ready{Pid: os.Getpid()})
		return 0
	case "step-error":
		err := unix.Rmdir("/nonexistent-libjail-test-dir")
		c.SendError(ctx, "rmdir", &os.PathError{Op: "rmdir", Path: "/nonexistent-libjail-test-dir", Err: err})
		return 0
	case "echo-exec":
		// Receive a plan and a pipe, write the plan's name into the pipe, report ready,
		// wait for start, then execve: the socket is close-on-exec, so the parent sees EOF.
		p, files, err := syncpipe.Receive[*Plan](ctx, c)
		if err != nil {
			c.SendError(ctx, "plan", err)
			return 1
		}
		if len(files) != 1 {
			c.SendError(ctx, "plan", fmt.Errorf("got %d files", len(files)))
			return 1
		}
		if _, err := files[0].WriteString(p.Name); err != nil {
			c.SendError(ctx, "write", err)
			return 1
		}
		files[0].Close()
		if err := c.Send(ctx, Ready{Pid: os.Getpid()}); err != nil {
			return 1
		}
		if _, _, err := syncpipe.Receive[Start](ctx, c); err != nil {
			return 1
		}
		sleep, err := exec.LookPath("sleep")
		if err != nil {
			c.SendError(ctx, "exec", err)
			return 1
		}
		err = unix.Exec(sleep, []string{"sleep", "5"}, os.Environ())
		c.SendError(ctx, "exec", err)
		return 1
	}
	fmt.Fprintln(os.Stderr, "child: unknown mode", mode)
	return 2
}

// startChild re-executes the test binary in mode with the child's end of a new pair as fd 3.
func startChild(t *testing.T, mode string) (*syncpipe.Conn, *exec.Cmd) {
	t.Helper()
	parent, child, err := proto.Pair()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode)
	cmd.ExtraFiles = []*os.File{child}
	cmd.Stderr = os.Stderr
	err = cmd.Start()
	child.Close() // or the parent would never see the child's end close
	if err != nil {
		parent.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		parent.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	return parent, cmd
}

func TestChildExits(t *testing.T) {
	parent, cmd := startChild(t, "hello-exit")
	ctx := ctxTimeout(t, 10*time.Second)
	r, _, err := syncpipe.Receive[Ready](ctx, parent)
	if err != nil || r.Pid != cmd.Process.Pid {
		t.Fatalf("Ready %+v, %v (child pid %d)", r, err, cmd.Process.Pid)
	}
	if _, _, err := syncpipe.Receive[Start](ctx, parent); !errors.Is(err, syncpipe.ErrPeerClosed) {
		t.Fatalf("after exit: %v, want ErrPeerClosed", err)
	}
}

func TestChildDiesMidMessage(t *testing.T) {
	parent, _ := startChild(t, "die-mid-message")
	ctx := ctxTimeout(t, 10*time.Second)
	_, _, err := parent.Recv(ctx)
	if !errors.Is(err, syncpipe.ErrPeerClosed) || !strings.Contains(err.Error(), "middle") {
		t.Fatalf("err %v, want ErrPeerClosed in the middle of a message", err)
	}
}

func TestChildStepError(t *testing.T) {
	parent, _ := startChild(t, "step-error")
	ctx := ctxTimeout(t, 10*time.Second)
	_, _, err := syncpipe.Receive[Ready](ctx, parent)
	var se *syncpipe.StepError
	if !errors.Is(err, unix.ENOENT) || !errors.Is(err, os.ErrNotExist) || !errors.As(err, &se) || se.Step != "rmdir" {
		t.Fatalf("err %#v: want a StepError for rmdir with ENOENT", err)
	}
}

func TestChildExec(t *testing.T) {
	parent, cmd := startChild(t, "echo-exec")
	ctx := ctxTimeout(t, 10*time.Second)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	err = parent.Send(ctx, &Plan{Name: "through-the-pipe"}, w)
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := syncpipe.Receive[Ready](ctx, parent); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, _ := r.Read(buf)
	if string(buf[:n]) != "through-the-pipe" {
		t.Fatalf("pipe carried %q", buf[:n])
	}
	if err := parent.Send(ctx, Start{}); err != nil {
		t.Fatal(err)
	}
	// The child now sleeps in a new program; its socket was closed by execve.
	start := time.Now()
	if _, _, err := parent.Recv(ctx); !errors.Is(err, syncpipe.ErrPeerClosed) {
		t.Fatalf("after execve: %v, want ErrPeerClosed", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("EOF took %v: the socket survived execve until the program exited", d)
	}
	if cmd.ProcessState != nil {
		t.Fatal("child already reaped")
	}
}
