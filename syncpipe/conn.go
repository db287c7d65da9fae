package syncpipe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Conn is one end of a protocol's socket. One goroutine may Send while another Receives; two
// concurrent Sends (or Recvs) are serialised so their datagrams never interleave.
//
// A Conn whose stream fell out of step (a timeout or cancel in the middle of a multi-datagram
// message, a framing error) returns that error from every later call in the same direction:
// the only thing left to do with it is Close.
type Conn struct {
	proto *Protocol
	uc    *net.UnixConn

	sendMu     sync.Mutex
	sendBroken error

	recvMu     sync.Mutex
	recvBroken error
	asm        assembler
	buf, oob   []byte
}

// Pair makes a SOCK_SEQPACKET socketpair, both ends close-on-exec: the parent's Conn and the
// child's end, to hand to the child in exec.Cmd.ExtraFiles (which clears close-on-exec in the
// child only). The parent must close child once the child has started, or it will never see
// ErrPeerClosed when the child dies.
func (p *Protocol) Pair() (parent *Conn, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("syncpipe: %w", os.NewSyscallError("socketpair", err))
	}
	child = os.NewFile(uintptr(fds[1]), "syncpipe-child")
	parent, err = p.FromFile(os.NewFile(uintptr(fds[0]), "syncpipe-parent"))
	if err != nil {
		child.Close()
		return nil, nil, err
	}
	return parent, child, nil
}

// FromFile wraps an inherited SOCK_SEQPACKET socket, typically os.NewFile(3, "sync") in the
// child. It takes ownership of f: the Conn keeps a close-on-exec duplicate and f is closed, so a
// successful execve leaves nothing of the socket behind and the parent reads end-of-stream.
func (p *Protocol) FromFile(f *os.File) (*Conn, error) {
	defer f.Close()
	if err := checkSeqpacket(f); err != nil {
		return nil, err
	}
	// net.FileConn duplicates f with F_DUPFD_CLOEXEC and registers the duplicate, made
	// non-blocking, with the netpoller: that is what lets deadlines and cancellation work.
	nc, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("syncpipe: %w", err)
	}
	uc, ok := nc.(*net.UnixConn)
	if !ok {
		nc.Close()
		return nil, fmt.Errorf("syncpipe: %s is a %T, not a unix socket", f.Name(), nc)
	}
	return &Conn{
		proto: p,
		uc:    uc,
		buf:   make([]byte, headerLen+maxFragment),
		oob:   make([]byte, unix.CmsgSpace(MaxFiles*4)),
	}, nil
}

func checkSeqpacket(f *os.File) error {
	sc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("syncpipe: %s: %w", f.Name(), err)
	}
	var typ int
	var serr error
	if err := sc.Control(func(fd uintptr) {
		typ, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TYPE)
	}); err != nil {
		return fmt.Errorf("syncpipe: %s: %w", f.Name(), err)
	}
	if serr != nil {
		return fmt.Errorf("syncpipe: %s: %w", f.Name(), os.NewSyscallError("getsockopt SO_TYPE", serr))
	}
	if typ != unix.SOCK_SEQPACKET {
		return fmt.Errorf("syncpipe: %s: socket type %d, want SOCK_SEQPACKET", f.Name(), typ)
	}
	return nil
}

// Close closes the socket; a Send or Recv blocked on it returns.
func (c *Conn) Close() error { return c.uc.Close() }

// Send sends m with files attached (SCM_RIGHTS; at most MaxFiles). The files stay open and
// owned by the caller. Send honours ctx's deadline and cancellation.
func (c *Conn) Send(ctx context.Context, m Message, files ...*os.File) error {
	if len(files) > MaxFiles {
		return fmt.Errorf("%w: %d files, at most %d", ErrMessageTooLarge, len(files), MaxFiles)
	}
	payload, err := c.proto.encode(m)
	if err != nil {
		return err
	}
	if len(payload) > MaxMessageSize {
		return fmt.Errorf("%w: %s is %d bytes, at most %d", ErrMessageTooLarge, m.Kind(), len(payload), MaxMessageSize)
	}
	fds, err := dupFiles(files)
	if err != nil {
		return err
	}
	defer closeFDs(fds)

	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	if c.sendBroken != nil {
		return c.sendBroken
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("syncpipe: send %s: %w", m.Kind(), err)
	}
	stop := watch(ctx, c.uc.SetWriteDeadline)
	defer stop()
	for i, d := range fragments(payload, len(fds)) {
		var oob []byte
		if i == 0 && len(fds) > 0 {
			oob = unix.UnixRights(fds...)
		}
		if _, _, err := c.uc.WriteMsgUnix(d, oob, nil); err != nil {
			err = ioErr(ctx, "send "+m.Kind(), err)
			if i > 0 {
				c.sendBroken = fmt.Errorf("syncpipe: connection out of step after an interrupted send: %w", err)
			}
			return err
		}
	}
	return nil
}

// SendError sends the StepError for err failing in step (see NewStepError).
func (c *Conn) SendError(ctx context.Context, step string, err error) error {
	return c.Send(ctx, NewStepError(step, err))
}

// Recv receives the next message, of any kind in the protocol, with the files that came with it
// (close-on-exec, owned by the caller). It honours ctx's deadline and cancellation. A *StepError
// is returned as a message; Receive turns it into an error. On any error no file is left open.
func (c *Conn) Recv(ctx context.Context) (Message, []*os.File, error) {
	c.recvMu.Lock()
	defer c.recvMu.Unlock()
	if c.recvBroken != nil {
		return nil, nil, c.recvBroken
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("syncpipe: receive: %w", err)
	}
	stop := watch(ctx, c.uc.SetReadDeadline)
	defer stop()

	var files []*os.File
	fail := func(err error, broken bool) (Message, []*os.File, error) {
		closeFiles(files)
		if broken {
			c.recvBroken = fmt.Errorf("syncpipe: connection out of step after an earlier error: %w", err)
		}
		return nil, nil, err
	}
	resetSeen := false
	for {
		// net's ReadMsgUnix passes MSG_CMSG_CLOEXEC on Linux: received fds are close-on-exec.
		n, oobn, flags, _, err := c.uc.ReadMsgUnix(c.buf, c.oob)
		if errors.Is(err, unix.ECONNRESET) && !resetSeen {
			// A peer that closed with our messages unread leaves ECONNRESET pending, and the
			// kernel reports it before what the peer sent first (its last words, often). The
			// error is consumed by reporting it once: read on, to the queued messages and then
			// the end of the stream.
			resetSeen = true
			continue
		}
		got, cerr := parseRights(c.oob[:oobn])
		files = append(files, got...)
		mid := c.asm.inProgress()
		switch {
		case err != nil:
			err = ioErr(ctx, "receive", err)
			if mid && errors.Is(err, ErrPeerClosed) {
				err = fmt.Errorf("%w in the middle of a message", ErrPeerClosed)
			}
			return fail(err, mid)
		case n == 0 && oobn == 0:
			// Our datagrams are never empty: a zero-length read is the end of the stream.
			if mid {
				return fail(fmt.Errorf("%w in the middle of a message", ErrPeerClosed), true)
			}
			return fail(ErrPeerClosed, true)
		case cerr != nil:
			return fail(cerr, true)
		case flags&unix.MSG_TRUNC != 0:
			return fail(fmt.Errorf("%w: datagram truncated at %d bytes", ErrMessageTooLarge, n), true)
		case flags&unix.MSG_CTRUNC != 0:
			return fail(fmt.Errorf("%w: more than %d fds sent", ErrMalformed, MaxFiles), true)
		}
		payload, done, err := c.asm.add(c.buf[:n], len(got))
		if err != nil {
			return fail(err, true)
		}
		if !done {
			continue
		}
		m, err := c.proto.decode(payload)
		if err != nil {
			// The message was framed correctly: the stream is still in step.
			return fail(err, false)
		}
		return m, files, nil
	}
}

// Receive waits for the next message and wants it to be a T. A *StepError is returned as the
// error; another kind is ErrUnexpected naming both kinds; a closed peer is ErrPeerClosed. Files
// that came with a message that is not returned are closed.
func Receive[T Message](ctx context.Context, c *Conn) (T, []*os.File, error) {
	var zero T
	m, files, err := c.Recv(ctx)
	if err != nil {
		return zero, nil, err
	}
	if t, ok := m.(T); ok {
		return t, files, nil
	}
	closeFiles(files)
	if se, ok := m.(*StepError); ok {
		return zero, nil, se
	}
	return zero, nil, unexpected(c.proto.kindOf(reflect.TypeFor[T]()), m.Kind())
}

// watch applies ctx's deadline with set and, when ctx can be cancelled, moves the deadline to
// the past on cancel so a blocked call returns. The returned stop must be called when the
// operation ends; it waits for a racing cancel so the next operation starts clean.
func watch(ctx context.Context, set func(time.Time) error) (stop func()) {
	d, _ := ctx.Deadline()
	set(d)
	if ctx.Done() == nil {
		return func() {}
	}
	fired := make(chan struct{})
	stopFn := context.AfterFunc(ctx, func() {
		defer close(fired)
		set(time.Unix(1, 0))
	})
	return func() {
		if !stopFn() {
			<-fired
		}
	}
}

// ioErr turns a socket error into ours: a passed deadline is ctx's error, a reset or broken pipe
// is ErrPeerClosed.
func ioErr(ctx context.Context, op string, err error) error {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		if cerr := ctx.Err(); cerr != nil {
			return fmt.Errorf("syncpipe: %s: %w", op, cerr)
		}
		// The netpoller's timer can beat the context's by a hair.
		return fmt.Errorf("syncpipe: %s: %w", op, context.DeadlineExceeded)
	case errors.Is(err, io.EOF), errors.Is(err, unix.ECONNRESET), errors.Is(err, unix.EPIPE):
		return fmt.Errorf("%w (%s)", ErrPeerClosed, op)
	}
	return fmt.Errorf("syncpipe: %s: %w", op, err)
}

// parseRights returns every fd in the control data as a file, even when it also reports an
// error, so the caller can close them all.
func parseRights(oob []byte) ([]*os.File, error) {
	if len(oob) == 0 {
		return nil, nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("%w: control data: %w", ErrMalformed, err)
	}
	var files []*os.File
	var bad error
	for i := range msgs {
		if msgs[i].Header.Level != unix.SOL_SOCKET || msgs[i].Header.Type != unix.SCM_RIGHTS {
			bad = fmt.Errorf("%w: control message level %d type %d", ErrMalformed, msgs[i].Header.Level, msgs[i].Header.Type)
			continue
		}
		fds, err := unix.ParseUnixRights(&msgs[i])
		if err != nil {
			bad = fmt.Errorf("%w: SCM_RIGHTS: %w", ErrMalformed, err)
		}
		for _, fd := range fds {
			files = append(files, os.NewFile(uintptr(fd), "syncpipe-received"))
		}
	}
	return files, bad
}

// dupFiles returns close-on-exec duplicates of files' fds. Duplicating avoids File.Fd, which
// would switch the caller's file to blocking mode.
func dupFiles(files []*os.File) ([]int, error) {
	fds := make([]int, 0, len(files))
	for _, f := range files {
		if f == nil {
			closeFDs(fds)
			return nil, errors.New("syncpipe: send: nil file")
		}
		sc, err := f.SyscallConn()
		if err != nil {
			closeFDs(fds)
			return nil, fmt.Errorf("syncpipe: send %s: %w", f.Name(), err)
		}
		var nfd int
		var derr error
		if err := sc.Control(func(fd uintptr) {
			nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
		}); err != nil {
			closeFDs(fds)
			return nil, fmt.Errorf("syncpipe: send %s: %w", f.Name(), err)
		}
		if derr != nil {
			closeFDs(fds)
			return nil, fmt.Errorf("syncpipe: send %s: %w", f.Name(), os.NewSyscallError("fcntl F_DUPFD_CLOEXEC", derr))
		}
		fds = append(fds, nfd)
	}
	return fds, nil
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

func closeFiles(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}
