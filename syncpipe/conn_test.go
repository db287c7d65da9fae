package syncpipe_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/libjail/libjail/syncpipe"
)

func TestRoundTrip(t *testing.T) {
	parent, child := pair(t)
	ctx := ctxTimeout(t, 10*time.Second)
	for _, size := range []int{0, 1, 64<<10 - 40, 64 << 10, 64<<10 + 1, 200 << 10, 2 << 20} {
		want := &Plan{Name: "p", Data: bytes.Repeat([]byte{0xa5}, size), N: size}
		errc := make(chan error, 1)
		// A big message fills the socket buffer: the sender must run beside the receiver.
		go func() { errc <- parent.Send(ctx, want) }()
		got, files, err := syncpipe.Receive[*Plan](ctx, child)
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if err := <-errc; err != nil {
			t.Fatalf("size %d: send: %v", size, err)
		}
		if len(files) != 0 || got.Name != want.Name || got.N != want.N || !bytes.Equal(got.Data, want.Data) {
			t.Fatalf("size %d: got %q/%d/%d bytes, %d files", size, got.Name, got.N, len(got.Data), len(files))
		}
	}

	// Value types come back as values, in both directions.
	if err := child.Send(ctx, Ready{Pid: 42}); err != nil {
		t.Fatal(err)
	}
	r, _, err := syncpipe.Receive[Ready](ctx, parent)
	if err != nil || r.Pid != 42 {
		t.Fatalf("Ready: %+v, %v", r, err)
	}
	if err := parent.Send(ctx, Start{}); err != nil {
		t.Fatal(err)
	}
	m, _, err := child.Recv(ctx)
	if _, ok := m.(Start); !ok || err != nil {
		t.Fatalf("Recv: %T, %v", m, err)
	}
}

func TestFiles(t *testing.T) {
	parent, child := pair(t)
	ctx := ctxTimeout(t, 10*time.Second)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if err := parent.Send(ctx, &Plan{Name: "with-pipe"}, w, r); err != nil {
		t.Fatal(err)
	}
	_, files, err := syncpipe.Receive[*Plan](ctx, child)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	if len(files) != 2 {
		t.Fatalf("got %d files, want 2", len(files))
	}
	for _, f := range files {
		flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFD, 0)
		if err != nil || flags&unix.FD_CLOEXEC == 0 {
			t.Errorf("received fd %d: flags %#x, %v: want FD_CLOEXEC", f.Fd(), flags, err)
		}
	}
	// Write through the received write end, read through the original read end and vice versa.
	if _, err := files[0].Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(r, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("read %q, %v", buf, err)
	}
	if _, err := w.Write([]byte("world")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(files[1], buf); err != nil || string(buf) != "world" {
		t.Fatalf("read %q, %v", buf, err)
	}

	tooMany := make([]*os.File, syncpipe.MaxFiles+1)
	for i := range tooMany {
		tooMany[i] = r
	}
	if err := parent.Send(ctx, Start{}, tooMany...); !errors.Is(err, syncpipe.ErrMessageTooLarge) {
		t.Fatalf("Send %d files: %v, want ErrMessageTooLarge", len(tooMany), err)
	}
}

func TestStepError(t *testing.T) {
	parent, child := pair(t)
	ctx := ctxTimeout(t, 10*time.Second)
	cause := &os.PathError{Op: "mount", Path: "/proc", Err: unix.EPERM}
	if err := child.SendError(ctx, "mount-proc", cause); err != nil {
		t.Fatal(err)
	}
	_, _, err := syncpipe.Receive[Ready](ctx, parent)
	if !errors.Is(err, unix.EPERM) || !errors.Is(err, os.ErrPermission) {
		t.Fatalf("err %v: want EPERM and os.ErrPermission", err)
	}
	var se *syncpipe.StepError
	if !errors.As(err, &se) || se.Step != "mount-proc" || se.Errno != unix.EPERM {
		t.Fatalf("err %#v: want a StepError for mount-proc", err)
	}
	if want := "mount-proc: mount /proc: operation not permitted"; err.Error() != want {
		t.Fatalf("Error() = %q, want %q", err.Error(), want)
	}

	// Without an errno, Unwrap gives nothing.
	if err := child.SendError(ctx, "hook", errors.New("hook failed")); err != nil {
		t.Fatal(err)
	}
	_, _, err = syncpipe.Receive[Ready](ctx, parent)
	if !errors.As(err, &se) || se.Errno != 0 || errors.Unwrap(err) != nil {
		t.Fatalf("err %#v", err)
	}
}

func TestUnexpected(t *testing.T) {
	parent, child := pair(t)
	ctx := ctxTimeout(t, 10*time.Second)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	before := countFDs(t)
	if err := child.Send(ctx, Start{}, w); err != nil {
		t.Fatal(err)
	}
	_, files, err := syncpipe.Receive[Ready](ctx, parent)
	if !errors.Is(err, syncpipe.ErrUnexpected) || files != nil {
		t.Fatalf("err %v, files %v: want ErrUnexpected", err, files)
	}
	if !strings.Contains(err.Error(), "test.ready") || !strings.Contains(err.Error(), "test.start") {
		t.Fatalf("err %q does not name both kinds", err)
	}
	if after := countFDs(t); after != before {
		t.Fatalf("%d fds open after, %d before: the unexpected message's file leaked", after, before)
	}
}

func TestDeadline(t *testing.T) {
	parent, _ := pair(t)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, _, err := parent.Recv(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("returned after %v, deadline was 100ms", d)
	}

	// Cancel without a deadline.
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start = time.Now()
	_, _, err = parent.Recv(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want Canceled", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("returned after %v, cancelled after 50ms", d)
	}

	// The Conn still works after a timeout between messages.
	parent2, child2 := pair(t)
	ctx = ctxTimeout(t, 10*time.Second)
	short, cancelShort := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancelShort()
	if _, _, err := parent2.Recv(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
	if err := child2.Send(ctx, Ready{Pid: 1}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := syncpipe.Receive[Ready](ctx, parent2); err != nil {
		t.Fatalf("after a timeout: %v", err)
	}
}

func TestSendDeadline(t *testing.T) {
	parent, _ := pair(t)
	// Nobody reads: a big message fills the buffer and Send must give up at the deadline,
	// leaving the stream out of step.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := parent.Send(ctx, &Plan{Data: make([]byte, 2<<20)})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want DeadlineExceeded", err)
	}
	if err := parent.Send(context.Background(), Start{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("after an interrupted send: %v, want the earlier error", err)
	}
}

func TestPeerClosed(t *testing.T) {
	parent, child := pair(t)
	ctx := ctxTimeout(t, 10*time.Second)
	child.Close()
	if _, _, err := parent.Recv(ctx); !errors.Is(err, syncpipe.ErrPeerClosed) {
		t.Fatalf("Recv: %v, want ErrPeerClosed", err)
	}
	if _, _, err := syncpipe.Receive[Ready](ctx, parent); !errors.Is(err, syncpipe.ErrPeerClosed) {
		t.Fatalf("Receive again: %v, want ErrPeerClosed", err)
	}
	if err := parent.Send(ctx, Start{}); !errors.Is(err, syncpipe.ErrPeerClosed) {
		t.Fatalf("Send: %v, want ErrPeerClosed", err)
	}
}

// TestLastWordsBeforeReset: a peer that sends, then closes with our message unread, leaves its
// message readable before the end of the stream (the kernel reports ECONNRESET first).
func TestLastWordsBeforeReset(t *testing.T) {
	parent, child := pair(t)
	ctx := ctxTimeout(t, 10*time.Second)
	if err := child.Send(ctx, Ready{}); err != nil {
		t.Fatal(err)
	}
	if err := parent.Send(ctx, Start{}); err != nil { // never read
		t.Fatal(err)
	}
	child.Close()
	if _, _, err := syncpipe.Receive[Ready](ctx, parent); err != nil {
		t.Fatalf("the peer's last message: %v", err)
	}
	if _, _, err := parent.Recv(ctx); !errors.Is(err, syncpipe.ErrPeerClosed) {
		t.Fatalf("then: %v, want ErrPeerClosed", err)
	}
}

func TestOversize(t *testing.T) {
	parent, child := pair(t)
	ctx := ctxTimeout(t, 10*time.Second)
	// The largest message that fits: 1 length byte, the kind, {"name":"…"}.
	fits := &Plan{Name: strings.Repeat("x", syncpipe.MaxMessageSize-1-len("test.plan")-len(`{"name":""}`))}
	errc := make(chan error, 1)
	go func() { errc <- parent.Send(ctx, fits) }()
	got, _, err := syncpipe.Receive[*Plan](ctx, child)
	if err != nil || got.Name != fits.Name {
		t.Fatalf("largest message: %d bytes, %v", len(got.Name), err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	err = parent.Send(ctx, &Plan{Name: fits.Name + "x"})
	if !errors.Is(err, syncpipe.ErrMessageTooLarge) {
		t.Fatalf("Send: %v, want ErrMessageTooLarge", err)
	}
}

// frame builds one datagram by hand (see frame.go for the layout).
func frame(flags, nfds byte, total int, body []byte) []byte {
	d := make([]byte, 8, 8+len(body))
	d[0], d[1], d[2] = 1, flags, nfds
	binary.BigEndian.PutUint32(d[4:], uint32(total))
	return append(d, body...)
}

func payload(kind, body string) []byte {
	return append(append([]byte{byte(len(kind))}, kind...), body...)
}

func TestMalformed(t *testing.T) {
	const first, last = 1, 2
	whole := func(p []byte) []byte { return frame(first|last, 0, len(p), p) }
	wholeFDs := func(p []byte, n byte) []byte { return frame(first|last, n, len(p), p) }
	for _, tc := range []struct {
		name  string
		grams [][]byte
		nfds  int // fds attached to the first datagram
		want  error
		// sticky: the stream is out of step, and the next Recv returns the same error
		sticky bool
	}{
		{"short datagram", [][]byte{{1, 3}}, 0, syncpipe.ErrMalformed, true},
		{"bad version", [][]byte{{9, 3, 0, 0, 0, 0, 0, 0}}, 0, syncpipe.ErrMalformed, true},
		{"unknown flags", [][]byte{frame(0x83, 0, 0, nil)}, 0, syncpipe.ErrMalformed, true},
		{"continuation first", [][]byte{frame(last, 0, 3, []byte("abc"))}, 0, syncpipe.ErrMalformed, true},
		{"announced too large", [][]byte{frame(first, 0, syncpipe.MaxMessageSize+1, nil)}, 0, syncpipe.ErrMessageTooLarge, true},
		{"length mismatch", [][]byte{frame(first|last, 0, 10, []byte("abc"))}, 0, syncpipe.ErrMalformed, true},
		{"short middle fragment", [][]byte{frame(first, 0, 10, []byte("abc")), frame(last, 0, 10, []byte("defghij"))}, 0, syncpipe.ErrMalformed, true},
		{"fds not announced", [][]byte{whole(payload("test.start", "{}"))}, 2, syncpipe.ErrMalformed, true},
		{"too many fds", [][]byte{frame(first|last, 20, 0, nil)}, 20, syncpipe.ErrMalformed, true},
		{"truncated datagram", [][]byte{frame(first|last, 0, 70<<10, make([]byte, 70<<10))}, 0, syncpipe.ErrMessageTooLarge, true},
		{"empty payload", [][]byte{whole(nil)}, 0, syncpipe.ErrMalformed, false},
		{"unknown kind", [][]byte{wholeFDs(payload("test.nope", "{}"), 1)}, 1, syncpipe.ErrMalformed, false},
		{"bad json", [][]byte{wholeFDs(payload("test.plan", `{"name":`), 3)}, 3, syncpipe.ErrMalformed, false},
		{"unknown field", [][]byte{whole(payload("test.plan", `{"nom":"x"}`))}, 0, syncpipe.ErrMalformed, false},
		{"trailing data", [][]byte{whole(payload("test.plan", `{}}`))}, 0, syncpipe.ErrMalformed, false},
		{"wrong json type", [][]byte{whole(payload("test.ready", `{"pid":"one"}`))}, 0, syncpipe.ErrMalformed, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent, fd := rawPair(t)
			ctx := ctxTimeout(t, 10*time.Second)
			before := countFDs(t)
			for i, d := range tc.grams {
				var oob []byte
				if i == 0 && tc.nfds > 0 {
					fds := make([]int, tc.nfds)
					for j := range fds {
						fds[j] = fd // any fd will do; the receiver gets new ones
					}
					oob = unix.UnixRights(fds...)
				}
				if err := unix.Sendmsg(fd, d, oob, nil, 0); err != nil {
					t.Fatal(err)
				}
			}
			_, _, err := parent.Recv(ctx)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if after := countFDs(t); after != before {
				t.Fatalf("%d fds open after, %d before: received fds leaked", after, before)
			}
			if tc.sticky {
				if _, _, err2 := parent.Recv(ctx); !errors.Is(err2, tc.want) {
					t.Fatalf("next Recv: %v, want the stream to stay broken", err2)
				}
				return
			}
			// The stream is still in step: a good message follows.
			if err := unix.Sendmsg(fd, whole(payload("test.ready", `{"pid":7}`)), nil, nil, 0); err != nil {
				t.Fatal(err)
			}
			if r, _, err := syncpipe.Receive[Ready](ctx, parent); err != nil || r.Pid != 7 {
				t.Fatalf("next message: %+v, %v", r, err)
			}
		})
	}
}

func TestPeerDiesMidMessage(t *testing.T) {
	parent, fd := rawPair(t)
	ctx := ctxTimeout(t, 10*time.Second)
	body := make([]byte, 64<<10)
	if err := unix.Sendmsg(fd, frame(1, 0, 200<<10, body), nil, nil, 0); err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	_, _, err := parent.Recv(ctx)
	if !errors.Is(err, syncpipe.ErrPeerClosed) || !strings.Contains(err.Error(), "middle") {
		t.Fatalf("err %v, want ErrPeerClosed in the middle of a message", err)
	}
}

func TestNewProtocolPanics(t *testing.T) {
	for name, msgs := range map[string][]syncpipe.Message{
		"nil":       {nil},
		"duplicate": {&Plan{}, dupPlan{}},
		"reserved":  {fakeStepError{}},
		"empty":     {emptyKind{}},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			syncpipe.NewProtocol(msgs...)
		})
	}
}

type dupPlan struct{}

func (dupPlan) Kind() string { return "test.plan" }

type fakeStepError struct{}

func (fakeStepError) Kind() string { return (*syncpipe.StepError)(nil).Kind() }

type emptyKind struct{}

func (emptyKind) Kind() string { return "" }

func TestSendUnregistered(t *testing.T) {
	parent, _ := pair(t)
	if err := parent.Send(context.Background(), dupPlan{}); err == nil {
		t.Fatal("sent a type that is not part of the protocol")
	}
}

func TestRecvDeadlineMidMessage(t *testing.T) {
	parent, fd := rawPair(t)
	if err := unix.Sendmsg(fd, frame(1, 0, 200<<10, make([]byte, 64<<10)), nil, nil, 0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := parent.Recv(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want DeadlineExceeded", err)
	}
	// Half a message was consumed: the stream cannot be trusted any more.
	if _, _, err := parent.Recv(context.Background()); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "out of step") {
		t.Fatalf("next Recv: %v, want the earlier error", err)
	}
}

func TestConcurrentSends(t *testing.T) {
	parent, child := pair(t)
	ctx := ctxTimeout(t, 20*time.Second)
	const n = 8
	errc := make(chan error, n)
	for i := range n {
		// Multi-datagram messages from several goroutines must not interleave.
		go func() {
			errc <- parent.Send(ctx, &Plan{Name: fmt.Sprint(i), Data: bytes.Repeat([]byte{byte(i)}, 300<<10)})
		}()
	}
	seen := map[string]bool{}
	for range n {
		p, _, err := syncpipe.Receive[*Plan](ctx, child)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Data) != 300<<10 || bytes.Count(p.Data, p.Data[:1]) != len(p.Data) || seen[p.Name] {
			t.Fatalf("message %q mixed up or repeated", p.Name)
		}
		seen[p.Name] = true
	}
	for range n {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
}

func TestFromFileRejectsOtherFiles(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := proto.FromFile(r); err == nil {
		t.Fatal("FromFile accepted a pipe")
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fds[1])
	if _, err := proto.FromFile(os.NewFile(uintptr(fds[0]), "stream")); err == nil || !strings.Contains(err.Error(), "SOCK_SEQPACKET") {
		t.Fatalf("FromFile on a stream socket: %v", err)
	}
}

func TestCloseUnblocksRecv(t *testing.T) {
	parent, _ := pair(t)
	errc := make(chan error, 1)
	go func() {
		_, _, err := parent.Recv(context.Background())
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	parent.Close()
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("Recv on a closed Conn returned no error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock Recv")
	}
}
