package main

import (
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// relay joins a terminal's master to this process's stdio, for run and exec in the foreground
// without --console-socket: stdin goes in (in raw mode when it is a terminal, whose window size
// the pty takes), the output comes out. The returned func waits for the output to drain (the
// master reads EIO once the last slave closes, bounded by a short timeout) and restores stdin.
func relay(master *os.File) func() {
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
		if ws, err := unix.IoctlGetWinsize(in, unix.TIOCGWINSZ); err == nil {
			_ = unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, ws)
		}
	}
	go func() { _, _ = io.Copy(master, os.Stdin) }()
	drained := make(chan struct{})
	go func() {
		_, _ = io.Copy(os.Stdout, master) // ends with EIO when the container side closes
		close(drained)
	}()
	return func() {
		select {
		case <-drained:
		case <-time.After(2 * time.Second):
		}
		master.Close()
		if restore != nil {
			restore()
		}
	}
}
