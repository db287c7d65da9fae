package main

import (
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// relay joins a terminal's master to this process's stdio, for run and exec in the foreground
// without --console-socket: stdin goes in (in raw mode when it is a terminal, whose window size
// the pty takes), the output comes out. drain waits for the output to end (the master reads EIO
// once the last slave closes, bounded by a short timeout) and restores stdin; resize copies
// stdin's window size again (on SIGWINCH).
func relay(master *os.File) (drain, resize func()) {
	in := int(os.Stdin.Fd())
	var restore func()
	if old, err := unix.IoctlGetTermios(in, unix.TCGETS); err == nil {
		raw := *old
		raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		raw.Oflag &^= unix.OPOST
		raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		raw.Cflag &^= unix.CSIZE | unix.PARENB
		raw.Cflag |= unix.CS8
		if unix.IoctlSetTermios(in, unix.TCSETS, &raw) == nil {
			restore = func() { _ = unix.IoctlSetTermios(in, unix.TCSETS, old) }
		}
	}
	resize = func() {
		if ws, err := unix.IoctlGetWinsize(in, unix.TIOCGWINSZ); err == nil {
			_ = unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, ws)
		}
	}
	resize()
	go func() { _, _ = io.Copy(master, os.Stdin) }()
	drained := make(chan struct{})
	go func() {
		_, _ = io.Copy(os.Stdout, master) // ends with EIO when the container side closes
		close(drained)
	}()
	drain = func() {
		select {
		case <-drained:
		case <-time.After(2 * time.Second):
		}
		master.Close()
		if restore != nil {
			restore()
		}
	}
	return drain, resize
}

// forwardSignals passes the signals a supervisor or a terminal sends this process on to a
// container process, but SIGWINCH, which resizes the relayed terminal. The returned func stops it.
func forwardSignals(send func(syscall.Signal) error, resize func()) (stop func()) {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2, unix.SIGWINCH)
	go func() {
		for s := range sigs {
			if s == unix.SIGWINCH {
				resize() // the terminal's size, not a signal to pass on
				continue
			}
			_ = send(s.(syscall.Signal))
		}
	}()
	return func() { signal.Stop(sigs) }
}
