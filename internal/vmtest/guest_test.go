package vmtest

import (
	"bufio"
	"errors"
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

// envChild selects what a re-executed test binary does instead of running tests.
const envChild = "LIBJAIL_VMTEST_CHILD"

// wanted are the controllers the lane promises to enable in the guest's root cgroup.
var wanted = []string{"cpu", "cpuset", "memory", "pids", "io", "hugetlb"}

func TestMain(m *testing.M) {
	switch os.Getenv(envChild) {
	case "":
		// Not testutil.CheckFDLeaks: it counts its own closed /proc/self/fd handle as a leak when the
		// runtime opened fds in between (reported to the lead).
		os.Exit(m.Run())
	case "alloc":
		// Touch one page per 4 KiB so the memory is really charged; keep every chunk reachable.
		var keep [][]byte
		for range 1024 {
			b := make([]byte, 1<<20)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1
			}
			keep = append(keep, b)
		}
		os.Stdout.WriteString("allocated " + strconv.Itoa(len(keep)) + " MiB: limit not enforced\n")
		os.Exit(0)
	default:
		os.Exit(2)
	}
}

// requireGuest skips unless the test runs inside the lane's guest, where it may take the root cgroup.
func requireGuest(t *testing.T) string {
	t.Helper()
	if os.Getenv(EnvGuest) != "1" {
		t.Skip("skipped: runs only inside the VM lane's guest (make test-vm)")
	}
	testutil.RequireRoot(t)
	return testutil.RequireCgroupV2(t)
}

func TestPureCgroupV2(t *testing.T) {
	root := requireGuest(t)
	if root != "/sys/fs/cgroup" {
		t.Fatalf("cgroup2 mounted at %s, want /sys/fs/cgroup", root)
	}

	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		_, post, ok := strings.Cut(sc.Text(), " - ")
		if fields := strings.Fields(post); ok && len(fields) > 0 && fields[0] == "cgroup" {
			t.Errorf("cgroup v1 hierarchy mounted: %s", sc.Text())
		}
	}

	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(string(self)), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "0::") {
		t.Errorf("/proc/self/cgroup = %q, want a single v2 line", self)
	}

	for _, file := range []string{"cgroup.controllers", "cgroup.subtree_control"} {
		have := readFields(t, filepath.Join(root, file))
		for _, c := range wanted {
			if !have[c] {
				t.Errorf("%s lacks %s (have %v)", file, c, keys(have))
			}
		}
	}
}

// TestGuestDevices checks what the lane adds for other packages' tests: a disk at 254:0 standing for
// the VM's root disk and holding /tmp as ext4 (as on the host), loop devices, and the overlay
// filesystem (modules loaded by /init).
func TestGuestDevices(t *testing.T) {
	requireGuest(t)
	for path, want := range map[string][2]uint32{"/dev/vda": {254, 0}, "/dev/loop0": {7, 0}} {
		var st unix.Stat_t
		if err := unix.Stat(path, &st); err != nil {
			t.Errorf("stat %s: %v", path, err)
			continue
		}
		if got := [2]uint32{unix.Major(st.Rdev), unix.Minor(st.Rdev)}; st.Mode&unix.S_IFMT != unix.S_IFBLK || got != want {
			t.Errorf("%s: mode %o, device %d:%d, want block device %d:%d", path, st.Mode, got[0], got[1], want[0], want[1])
		}
	}
	var st unix.Statfs_t
	if err := unix.Statfs(os.TempDir(), &st); err != nil || st.Type != unix.EXT4_SUPER_MAGIC {
		t.Errorf("%s: statfs type %#x (err %v), want ext4", os.TempDir(), st.Type, err)
	}
	if fs := readFields(t, "/proc/filesystems"); !fs["overlay"] {
		t.Error("overlay filesystem not available")
	}
}

func TestMemoryMaxKills(t *testing.T) {
	root := requireGuest(t)
	cg := newCgroup(t, root, "memory", map[string]string{"memory.max": "67108864", "memory.swap.max": "0"})

	cmd := childInCgroup(t, cg, "alloc")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("allocating child: err = %v, want killed; output:\n%s", err, out)
	}
	ws := ee.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("allocating child ended with %v, want SIGKILL; output:\n%s", ws, out)
	}
	if n := readKey(t, filepath.Join(cg, "memory.events"), "oom_kill"); n < 1 {
		t.Errorf("memory.events oom_kill = %d, want >= 1", n)
	}
}

func TestPidsMaxStopsForks(t *testing.T) {
	root := requireGuest(t)
	cg := newCgroup(t, root, "pids", map[string]string{"pids.max": "4"})

	// The shell counts as one task; forking 16 sleepers must hit the limit.
	cmd := exec.Command("/bin/busybox", "sh", "-c", `i=0; while [ $i -lt 16 ]; do /bin/busybox sleep 30 >/dev/null 2>&1 & i=$((i+1)); done`)
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: openDir(t, cg)}
	out, _ := cmd.CombinedOutput()
	if n := readKey(t, filepath.Join(cg, "pids.events"), "max"); n < 1 {
		t.Errorf("pids.events max = %d, want >= 1; shell output:\n%s", n, out)
	}
	if cur := readInt(t, filepath.Join(cg, "pids.current")); cur > 4 {
		t.Errorf("pids.current = %d, above pids.max 4", cur)
	}
}

func TestCPUMaxThrottles(t *testing.T) {
	root := requireGuest(t)
	cg := newCgroup(t, root, "cpu", map[string]string{"cpu.max": "10000 100000"})

	// A shell loop of builtins: a busy task that never forks, stopped after a fixed wall time.
	cmd := exec.Command("/bin/busybox", "sh", "-c", "while :; do :; done")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: openDir(t, cg)}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	wall := time.Since(start)
	if n := readKey(t, filepath.Join(cg, "cpu.stat"), "nr_throttled"); n < 1 {
		t.Errorf("cpu.stat nr_throttled = %d, want >= 1", n)
	}
	// 10% of one CPU: anything near a full CPU means the quota was not enforced.
	if used := time.Duration(readKey(t, filepath.Join(cg, "cpu.stat"), "usage_usec")) * time.Microsecond; used > wall/2 {
		t.Errorf("busy loop used %v of CPU in %v of wall time under a 10%% quota", used, wall)
	}
}

// newCgroup creates a child of root with the given files written, and removes it (killing what is
// left inside) when the test ends. Files that do not exist on this kernel are skipped.
func newCgroup(t *testing.T, root, what string, files map[string]string) string {
	t.Helper()
	cg := filepath.Join(root, testutil.Name(t, "vmtest-"+what))
	if err := os.Mkdir(cg, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeCgroup(t, cg) })
	for name, val := range files {
		p := filepath.Join(cg, name)
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) && name == "memory.swap.max" {
			continue // no swap accounting: nothing to disable
		}
		if err := os.WriteFile(p, []byte(val), 0); err != nil {
			t.Fatalf("write %s: %v", p, err)
		}
	}
	return cg
}

func removeCgroup(t *testing.T, cg string) {
	_ = os.WriteFile(filepath.Join(cg, "cgroup.kill"), []byte("1"), 0)
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := unix.Rmdir(cg)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return
		}
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			t.Errorf("remove cgroup %s: %v", cg, err)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// childInCgroup re-executes the test binary in mode, born inside cg through CLONE_INTO_CGROUP.
func childInCgroup(t *testing.T, cg, mode string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), envChild+"="+mode)
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: openDir(t, cg)}
	return cmd
}

func openDir(t *testing.T, dir string) int {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func readFields(t *testing.T, path string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]bool{}
	for _, f := range strings.Fields(string(b)) {
		m[f] = true
	}
	return m
}

// readKey returns the value of key in a flat-keyed cgroup file such as memory.events.
func readKey(t *testing.T, path, key string) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && k == key {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				t.Fatalf("%s: %s: %v", path, line, err)
			}
			return n
		}
	}
	t.Fatalf("%s has no %q", path, key)
	return 0
}

func readInt(t *testing.T, path string) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return n
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
