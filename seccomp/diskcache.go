package seccomp

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// A command line (one process per container) cannot reuse the in-memory cache, and compiling a
// profile costs more than the rest of its run. Options.CacheDir keeps compiled programs on disk
// instead, keyed by the profile's content, this libseccomp's version and the architecture.
//
// The cache is trusted like the runtime's own state: Compile uses it only when the directory and
// the file belong to root (or the caller) and nobody else may write them, and a file that does
// not parse as a program is ignored and replaced.

// diskKey extends the profile's key with everything else the compiled bytes depend on.
func diskKey(k [sha256.Size]byte) string {
	maj, min, micro := libseccomp.GetLibraryVersion()
	h := sha256.New()
	h.Write(k[:])
	fmt.Fprintf(h, "|libseccomp %d.%d.%d|%s|v1", maj, min, micro, runtime.GOARCH)
	return hex.EncodeToString(h.Sum(nil))
}

// trusted reports whether path is owned by this process's euid and not writable by group or others.
func trusted(path string) bool {
	var st unix.Stat_t
	if unix.Lstat(path, &st) != nil {
		return false
	}
	return st.Uid == uint32(os.Geteuid()) && st.Mode&0o022 == 0
}

func diskGet(dir string, k [sha256.Size]byte) *Program {
	path := filepath.Join(dir, diskKey(k)+".json")
	if !trusted(dir) || !trusted(path) {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var p Program
	if json.Unmarshal(b, &p) != nil || len(p.Filter) == 0 || len(p.Filter)%8 != 0 {
		return nil
	}
	return &p
}

// diskPut writes atomically; failing to cache never fails a compile.
func diskPut(dir string, k [sha256.Size]byte, p *Program) {
	if err := os.MkdirAll(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return
	}
	if !trusted(dir) {
		return
	}
	b, err := json.Marshal(p)
	if err != nil {
		return
	}
	tmp, err := os.CreateTemp(dir, ".prog-*")
	if err != nil {
		return
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil || tmp.Close() != nil {
		tmp.Close()
		return
	}
	_ = os.Rename(tmp.Name(), filepath.Join(dir, diskKey(k)+".json"))
}
