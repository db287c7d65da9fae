package libjail

import (
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// The child is started from a sealed in-memory copy of the agent's own executable, made once per
// agent process: a container that reaches its init's /proc/<pid>/exe (the CVE-2019-5736 class) can
// only find this copy, and the seals make it unwritable, so the agent binary on disk is never
// reachable for writing through the container.
var sealed struct {
	once sync.Once
	file *os.File
	err  error
}

// sealedExecutable returns the sealed copy, opened O_CLOEXEC; its path is /proc/self/fd/N, which a
// forked child can execve while the fd is still open in it.
func sealedExecutable() (*os.File, error) {
	sealed.once.Do(func() { sealed.file, sealed.err = sealSelf() })
	return sealed.file, sealed.err
}

func sealSelf() (*os.File, error) {
	self, err := os.Open("/proc/self/exe")
	if err != nil {
		return nil, err
	}
	defer self.Close()
	fd, err := unix.MemfdCreate("libjail-init", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING|unix.MFD_EXEC)
	if err == unix.EINVAL { // kernels before 6.3 know no MFD_EXEC
		fd, err = unix.MemfdCreate("libjail-init", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	}
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	mem := os.NewFile(uintptr(fd), "libjail-init")
	if _, err := io.Copy(mem, self); err != nil {
		mem.Close()
		return nil, fmt.Errorf("copy executable: %w", err)
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(mem.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		mem.Close()
		return nil, fmt.Errorf("seal executable: %w", err)
	}
	if err := unix.Fchmod(int(mem.Fd()), 0o555); err != nil {
		mem.Close()
		return nil, fmt.Errorf("chmod executable: %w", err)
	}
	return mem, nil
}

// Prepare does the once-per-process work of starting containers ahead of the first one: the
// sealed copy of the executable. Calling it is optional; Create does it when needed.
func Prepare() error {
	_, err := sealedExecutable()
	return err
}
