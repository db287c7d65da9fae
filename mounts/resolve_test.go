package mounts

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestResolver checks, without root, that lookups and creations stay inside the root whatever the
// links in it say, and that the root package's helpers use the same resolution.
func TestResolver(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	must(os.WriteFile(filepath.Join(root, "etc", "hostname"), []byte("inside"), 0o644))
	must(os.WriteFile(filepath.Join(outside, "hostname"), []byte("outside"), 0o644))
	must(os.Symlink(filepath.Join(outside, "hostname"), filepath.Join(root, "abs")))
	must(os.Symlink("../../../../../../../"+outside+"/hostname", filepath.Join(root, "rel")))
	must(os.Symlink("/etc/hostname", filepath.Join(root, "good")))
	must(os.Symlink("/proc/self/root/"+outside, filepath.Join(root, "magic")))
	must(os.Symlink(outside+"/new", filepath.Join(root, "dangling")))
	must(os.Symlink("loop", filepath.Join(root, "loop")))

	r, err := openRoot(root)
	must(err)
	defer r.close()
	p := &RootfsPlan{state: applyState{r: r}}

	read := func(path string) (string, error) {
		f, err := p.OpenInRoot(path, unix.O_RDONLY, 0)
		if err != nil {
			return "", err
		}
		defer f.Close()
		b := make([]byte, 64)
		n, _ := f.Read(b)
		return string(b[:n]), nil
	}
	for path, want := range map[string]string{"/etc/hostname": "inside", "/good": "inside", "/../../etc/hostname": "inside"} {
		if got, err := read(path); err != nil || got != want {
			t.Errorf("%s: %q %v, want %q", path, got, err, want)
		}
	}
	for _, path := range []string{"/abs", "/rel"} {
		if got, err := read(path); !errors.Is(err, unix.ENOENT) {
			t.Errorf("%s: %q %v, want ENOENT (the link's target does not exist inside the root)", path, got, err)
		}
	}
	if _, err := read("/magic/hostname"); err == nil {
		t.Error("/magic/hostname: resolved through /proc/self/root")
	}
	if _, err := read("/loop"); !errors.Is(err, unix.ELOOP) {
		t.Errorf("/loop: %v, want ELOOP", err)
	}

	// Creation through a dangling link lands inside the root, at the link's target.
	f, err := p.MkdirAllInRoot("/dangling/a/b")
	must(err)
	f.Close()
	if _, err := os.Stat(filepath.Join(root, outside, "new", "a", "b")); err != nil {
		t.Errorf("not created inside the root: %v", err)
	}
	if _, err := os.Stat(filepath.Join(outside, "new")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("created outside the root: %v", err)
	}
	fd, err := r.mkfile("/abs")
	must(err)
	unix.Close(fd)
	if b, _ := os.ReadFile(filepath.Join(outside, "hostname")); string(b) != "outside" {
		t.Errorf("the outside file changed: %q", b)
	}
	if _, err := os.Stat(filepath.Join(root, outside, "hostname")); err != nil {
		t.Errorf("mkfile through a link: %v", err)
	}
	if _, err := r.mkdirAll("/loop/x"); !errors.Is(err, unix.ELOOP) {
		t.Errorf("mkdirAll through a loop: %v, want ELOOP", err)
	}
	// Kinds must match: a directory cannot be mounted on a file, nor a file on a directory.
	if _, err := r.target("/etc/hostname", true); !errors.Is(err, unix.ENOTDIR) {
		t.Errorf("directory onto a file: %v", err)
	}
	if _, err := r.target("/etc", false); !errors.Is(err, unix.EISDIR) {
		t.Errorf("file onto a directory: %v", err)
	}
}
