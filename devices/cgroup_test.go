package devices

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/libjail/libjail/internal/testutil"
)

// The host's root disk (/dev/vda): the device no container may ever open. This machine denies
// opening it even to the host's root (by a means outside the device cgroups), so the tests also
// use a control block device, the first loop device, which the host lets root open: its EPERM
// can only come from the rules under test.
const (
	diskMajor, diskMinor = 254, 0
	blkMajor, blkMinor   = 7, 0
)

// v1Root returns the v1 devices hierarchy, skipping without root or without it.
func v1Root(t testing.TB) string {
	t.Helper()
	testutil.RequireRoot(t)
	return testutil.RequireCgroupV1(t, "devices")
}

// v2Root returns the cgroup2 hierarchy, skipping without root or without it.
func v2Root(t testing.TB) string {
	t.Helper()
	testutil.RequireRoot(t)
	return testutil.RequireCgroupV2(t)
}

// mkCgroup creates a cgroup under parent, removed in t.Cleanup (after killing the test's own
// processes left in it, which only this test can have put there).
func mkCgroup(t testing.TB, parent, what string) string {
	t.Helper()
	dir := filepath.Join(parent, testutil.Name(t, what))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeCgroup(t, dir) })
	return dir
}

func removeCgroup(t testing.TB, dir string) {
	var err error
	for range 100 {
		if err = os.Remove(dir); err == nil || errors.Is(err, os.ErrNotExist) {
			return
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs")); len(b) > 0 {
			for _, f := range strings.Fields(string(b)) {
				if pid, _ := strconv.Atoi(f); pid > 0 {
					_ = unix.Kill(pid, unix.SIGKILL)
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("remove cgroup %s: %v", dir, err)
}

// nodes makes block nodes for the host's root disk and for the control device in a temporary
// directory, mode 0600, and returns the directory (the probe opens "vda" and "loop0" in it).
func diskNode(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, mm := range map[string][2]uint32{"vda": {diskMajor, diskMinor}, "loop0": {blkMajor, blkMinor}} {
		if _, err := os.Stat(fmt.Sprintf("/sys/dev/block/%d:%d", mm[0], mm[1])); err != nil {
			t.Skipf("skipped: no block device %d:%d on this machine", mm[0], mm[1])
		}
		if err := unix.Mknod(filepath.Join(dir, name), unix.S_IFBLK|0o600, int(unix.Mkdev(mm[0], mm[1]))); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// startIn starts cmd as a child held at a gate until it is in the cgroup dir (v1 or v2), then lets
// it run and returns its stdout after it exits.
func startIn(t *testing.T, dir string, cmd *exec.Cmd) []byte {
	t.Helper()
	gate, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("move child into %s: %v", dir, err)
	}
	if _, err := gate.Write([]byte("go\n")); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatal(err)
	}
	gate.Close()
	var b strings.Builder
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		b.WriteString(sc.Text() + "\n")
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v (stdout %q)", err, b.String())
	}
	return []byte(b.String())
}

// waitGate blocks a child until the parent has placed it in its cgroup.
func waitGate() error {
	_, err := bufio.NewReader(os.Stdin).ReadString('\n')
	return err
}

// tryOpen reports "ok" or the errno name of opening p.
func tryOpen(p string, flags int) string {
	fd, err := unix.Open(p, flags|unix.O_CLOEXEC, 0)
	if err != nil {
		var errno syscall.Errno
		if errors.As(err, &errno) {
			return unix.ErrnoName(errno)
		}
		return err.Error()
	}
	unix.Close(fd)
	return "ok"
}

func init() {
	children["probe"] = func() (any, error) {
		if err := waitGate(); err != nil {
			return nil, err
		}
		return map[string]string{
			"null": tryOpen("/dev/null", unix.O_RDWR),
			"zero": tryOpen("/dev/zero", unix.O_RDONLY),
			"full": tryOpen("/dev/full", unix.O_WRONLY),
			"kmsg": tryOpen("/dev/kmsg", unix.O_RDONLY),
			"disk": tryOpen(filepath.Join(os.Getenv("DISK"), "vda"), unix.O_RDONLY),
			"blk":  tryOpen(filepath.Join(os.Getenv("DISK"), "loop0"), unix.O_RDONLY),
		}, nil
	}
}

// probe runs the probe child in the cgroup dir and returns what it could open.
func probe(t *testing.T, dir, disk string) map[string]string {
	t.Helper()
	got := map[string]string{}
	if err := jsonUnmarshal(startIn(t, dir, childCmd("probe", "DISK="+disk)), &got); err != nil {
		t.Fatal(err)
	}
	return got
}

func expectOpens(t *testing.T, where string, got map[string]string, want map[string]string) {
	t.Helper()
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: open %s: %s, want %s", where, k, got[k], w)
		}
	}
}
