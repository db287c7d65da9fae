package libjail

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/libjail/libjail/mounts"
	"github.com/libjail/libjail/syncpipe"
)

// terminalPlan asks the child for a pty from the container's devpts (process.terminal).
type terminalPlan struct {
	Rows uint16 `json:"rows,omitempty"` // process.consoleSize; 0 leaves the kernel's default
	Cols uint16 `json:"cols,omitempty"`
	// UID and GID own the slave, so the process can reopen its own terminal by name.
	UID uint32 `json:"uid"`
	GID uint32 `json:"gid"`
}

// ptyMsg carries the pty master (SCM_RIGHTS) from the child to the parent; Name is the slave's
// path inside the container (/dev/pts/N).
type ptyMsg struct{ Name string }

func (*ptyMsg) Kind() string { return "pty" }

// keepsFiles tells the parent's message loops which messages hand over fds it must not close.
func keepsFiles(msg syncpipe.Message) bool {
	switch msg.(type) {
	case *listenerMsg, *ptyMsg:
		return true
	}
	return false
}

// planTerminal validates process.terminal and process.consoleSize against the mounts.
func planTerminal(p *specs.Process, mp *mounts.RootfsPlan, consoleSocket string) (*terminalPlan, error) {
	if !p.Terminal {
		if consoleSocket != "" {
			return nil, fmt.Errorf("%w: ConsoleSocket is set but process.terminal is false", ErrInvalidSpec)
		}
		return nil, nil
	}
	if mp != nil && mp.PrivateDev() && !hasMount(mp, "/dev/pts", "devpts") {
		return nil, specErr("process.terminal", "needs a devpts mount at /dev/pts")
	}
	t := &terminalPlan{UID: p.User.UID, GID: p.User.GID}
	if b := p.ConsoleSize; b != nil {
		if b.Height > 0xffff || b.Width > 0xffff {
			return nil, specErr("process.consoleSize", "%dx%d is too large", b.Width, b.Height)
		}
		t.Rows, t.Cols = uint16(b.Height), uint16(b.Width)
	}
	return t, nil
}

func hasMount(mp *mounts.RootfsPlan, dest, typ string) bool {
	for _, m := range mp.Mounts {
		if m.Destination == dest && m.Type == typ {
			return true
		}
	}
	return false
}

// setupTerminal runs in the child inside the new root: it allocates a pty from the container's
// devpts, hands the master to the parent, and makes the slave stdio and the controlling terminal
// (the child is a session leader: the parent started it with Setsid).
func (ch *child) setupTerminal() error {
	return attachTerminal(ch.ctx, ch.conn, ch.plan.Terminal)
}

// attachTerminal is setupTerminal for any process that libjail starts in a container (init or an
// exec'd one): conn is its syncpipe to the parent, which handles the ptyMsg with takeConsole.
func attachTerminal(ctx context.Context, conn *syncpipe.Conn, t *terminalPlan) error {
	if t == nil {
		return nil
	}
	master, slave, err := openPty()
	if err != nil {
		return fmt.Errorf("process.terminal: %w", err)
	}
	defer master.Close()
	defer unix.Close(slave)
	if t.Rows != 0 || t.Cols != 0 {
		if err := unix.IoctlSetWinsize(slave, unix.TIOCSWINSZ, &unix.Winsize{Row: t.Rows, Col: t.Cols}); err != nil {
			return fmt.Errorf("process.consoleSize: TIOCSWINSZ: %w", err)
		}
	}
	if err := unix.Fchown(slave, int(t.UID), int(t.GID)); err != nil {
		return fmt.Errorf("process.terminal: chown slave to %d:%d: %w", t.UID, t.GID, err)
	}
	n, err := unix.IoctlGetUint32(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		return fmt.Errorf("process.terminal: TIOCGPTN: %w", err)
	}
	if err := conn.Send(ctx, &ptyMsg{Name: "/dev/pts/" + strconv.FormatUint(uint64(n), 10)}, master); err != nil {
		return err
	}
	for fd := 0; fd <= 2; fd++ {
		if err := unix.Dup3(slave, fd, 0); err != nil {
			return fmt.Errorf("process.terminal: dup3 to fd %d: %w", fd, err)
		}
	}
	if err := unix.IoctlSetInt(0, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("process.terminal: TIOCSCTTY: %w", err)
	}
	return nil
}

// openPty opens a master from the container's devpts and its slave through the master
// (TIOCGPTPEER), never by a path a hostile rootfs could swap.
func openPty() (*os.File, int, error) {
	how := &unix.OpenHow{
		Flags:   unix.O_RDWR | unix.O_NOCTTY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_SYMLINKS,
	}
	fd, err := unix.Openat2(unix.AT_FDCWD, "/dev/pts/ptmx", how)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ELOOP) {
		// /dev bound from elsewhere may only have the ptmx node (or a link to pts/ptmx).
		how.Resolve &^= unix.RESOLVE_NO_SYMLINKS
		fd, err = unix.Openat2(unix.AT_FDCWD, "/dev/ptmx", how)
	}
	if err != nil {
		return nil, -1, fmt.Errorf("open ptmx: %w", err)
	}
	master := os.NewFile(uintptr(fd), "/dev/ptmx")
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(5, 2) {
		master.Close()
		return nil, -1, fmt.Errorf("%w: ptmx is not the pty multiplexer (5:2)", mounts.ErrUnsafe)
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		master.Close()
		return nil, -1, fmt.Errorf("unlock pty: %w", err)
	}
	slave, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if e != 0 {
		master.Close()
		return nil, -1, fmt.Errorf("open slave: TIOCGPTPEER: %w", e)
	}
	// The slave must come from the container's own devpts, the one at /dev/pts.
	if err := sameDevpts(int(slave), "/dev/pts"); err != nil {
		unix.Close(int(slave))
		master.Close()
		return nil, -1, err
	}
	return master, int(slave), nil
}

func sameDevpts(fd int, dir string) error {
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil {
		return fmt.Errorf("fstatfs slave: %w", err)
	}
	if sfs.Type != unix.DEVPTS_SUPER_MAGIC {
		return fmt.Errorf("%w: pty slave is not on a devpts", mounts.ErrUnsafe)
	}
	var a, b unix.Statx_t
	if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_MNT_ID, &a); err != nil {
		return fmt.Errorf("statx slave: %w", err)
	}
	if err := unix.Statx(unix.AT_FDCWD, dir, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_MNT_ID, &b); err != nil {
		return fmt.Errorf("statx %s: %w", dir, err)
	}
	if a.Dev_major != b.Dev_major || a.Dev_minor != b.Dev_minor {
		return fmt.Errorf("%w: pty slave is not from the devpts at %s", mounts.ErrUnsafe, dir)
	}
	return nil
}

// takeConsole receives the pty master in the parent: sent on to the console socket when the
// caller gave one, kept for Console otherwise.
func (c *Container) takeConsole(ctx context.Context, m *ptyMsg, files []*os.File) error {
	master, err := receiveConsole(ctx, m, files, c.child.Terminal, c.opts.ConsoleSocket)
	if err != nil || master == nil {
		return err
	}
	c.mu.Lock()
	c.closeConsoleLocked()
	c.console = master
	c.mu.Unlock()
	return nil
}

// takeConsole is Container.takeConsole for an exec'd process.
func (p *Process) takeConsole(ctx context.Context, m *ptyMsg, files []*os.File, t *terminalPlan, socket string) error {
	master, err := receiveConsole(ctx, m, files, t, socket)
	if err != nil || master == nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.console != nil {
		p.console.Close()
	}
	p.console = master
	return nil
}

// Console is Container.Console for an exec'd process with a terminal: the master, handed over
// once; the caller closes it.
func (p *Process) Console() *os.File {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.console
	p.console = nil
	return f
}

func (p *Process) closeConsole() {
	if f := p.Console(); f != nil {
		f.Close()
	}
}

// receiveConsole takes the master out of a ptyMsg: sent to socket when there is one (nil
// returned), else returned as a pollable file.
func receiveConsole(ctx context.Context, m *ptyMsg, files []*os.File, t *terminalPlan, socket string) (*os.File, error) {
	if len(files) != 1 || t == nil {
		closeFiles(files)
		return nil, fmt.Errorf("%w: pty master without a terminal", syncpipe.ErrUnexpected)
	}
	master := files[0]
	if socket != "" {
		defer master.Close()
		return nil, sendConsole(ctx, socket, m.Name, master)
	}
	// A non-blocking fd makes an *os.File the runtime polls: reads honour deadlines and Close
	// wakes a blocked reader.
	fd, err := unix.FcntlInt(master.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	master.Close()
	if err != nil {
		return nil, fmt.Errorf("dup pty master: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("pty master: %w", err)
	}
	return os.NewFile(uintptr(fd), m.Name), nil
}

// sendConsole passes the master to the unix socket at path, as runc's --console-socket does: one
// message whose data is the terminal's name and whose SCM_RIGHTS holds the master.
func sendConsole(ctx context.Context, path, name string, master *os.File) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return fmt.Errorf("console socket: %w", err)
	}
	defer conn.Close()
	uc := conn.(*net.UnixConn)
	if dl, ok := ctx.Deadline(); ok {
		_ = uc.SetDeadline(dl)
	}
	if _, _, err := uc.WriteMsgUnix([]byte(name), unix.UnixRights(int(master.Fd())), nil); err != nil {
		return fmt.Errorf("console socket %s: send master: %w", path, err)
	}
	return nil
}

// Console returns the master of the container's terminal (process.terminal without
// Options.ConsoleSocket) once Create has returned, and hands it over: the caller reads the
// container's output from it, writes its input to it, and closes it. Later calls return nil, as
// do containers without a terminal. A master never taken is closed by Destroy.
func (c *Container) Console() *os.File {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.console
	c.console = nil
	return f
}

// closeConsoleLocked closes a master nobody took.
func (c *Container) closeConsoleLocked() {
	if c.console != nil {
		c.console.Close()
		c.console = nil
	}
}

func (t *terminalPlan) String() string {
	return fmt.Sprintf("pty %dx%d, slave owned by %d:%d", t.Cols, t.Rows, t.UID, t.GID)
}
