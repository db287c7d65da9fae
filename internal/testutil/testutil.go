// Package testutil gates privileged tests and names what they create.
//
// Every test that needs something this machine may lack asks for it through one of the Require
// helpers, which skip with the reason instead of passing silently. Everything a test creates in
// the kernel (cgroups, mounts, pinned namespaces) is named with [Name] so leftovers are easy to
// find and never collide with the machine's own.
package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// Prefix starts the name of everything a test creates.
const Prefix = "libjail-test-"

var seq atomic.Uint64

// Name returns a name unique to this process and call, starting with [Prefix].
func Name(tb testing.TB, what string) string {
	tb.Helper()
	n := seq.Add(1)
	clean := strings.NewReplacer("/", "-", " ", "-").Replace(what)
	return fmt.Sprintf("%s%s-%d-%d", Prefix, clean, os.Getpid(), n)
}

// RequireRoot skips the test unless it runs with uid 0.
func RequireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("skipped: needs root (run `make test` as root)")
	}
}

// RequireKernel skips the test unless the running kernel is at least major.minor.
func RequireKernel(tb testing.TB, major, minor int) {
	tb.Helper()
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		tb.Fatalf("uname: %v", err)
	}
	var ma, mi int
	if _, err := fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &ma, &mi); err != nil {
		tb.Fatalf("parse kernel release: %v", err)
	}
	if ma < major || (ma == major && mi < minor) {
		tb.Skipf("skipped: needs kernel >= %d.%d, have %d.%d", major, minor, ma, mi)
	}
}

// UnifiedMount returns where the cgroup2 hierarchy is mounted ("" if it is not).
func UnifiedMount() string {
	for _, p := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		var st unix.Statfs_t
		if unix.Statfs(p, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
			return p
		}
	}
	return ""
}

// RequireCgroupV2 skips the test unless a cgroup2 hierarchy is mounted, and returns its mount point.
func RequireCgroupV2(tb testing.TB) string {
	tb.Helper()
	p := UnifiedMount()
	if p == "" {
		tb.Skip("skipped: no cgroup2 hierarchy mounted")
	}
	return p
}

// RequireCgroupV1 skips the test unless the named v1 controller is mounted, and returns its mount point.
func RequireCgroupV1(tb testing.TB, controller string) string {
	tb.Helper()
	p := filepath.Join("/sys/fs/cgroup", controller)
	var st unix.Statfs_t
	if unix.Statfs(p, &st) != nil || st.Type != unix.CGROUP_SUPER_MAGIC {
		tb.Skipf("skipped: cgroup v1 controller %q is not mounted at %s", controller, p)
	}
	return p
}

// OpenFDs lists the fds this process has open, for leak checks.
func OpenFDs() (map[string]string, error) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(ents))
	for _, e := range ents {
		target, _ := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		out[e.Name()] = target
	}
	return out, nil
}

// CheckFDLeaks runs the tests of a package and fails the run when they leave fds open that were not
// open before. Use it from TestMain: os.Exit(testutil.CheckFDLeaks(m)).
func CheckFDLeaks(m *testing.M) int {
	before, err := OpenFDs()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fd leak check:", err)
		return 1
	}
	code := m.Run()
	after, err := OpenFDs()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fd leak check:", err)
		return 1
	}
	var leaked []string
	for fd, target := range after {
		if _, ok := before[fd]; !ok && !runtimeFD(target) {
			leaked = append(leaked, fd+" -> "+target)
		}
	}
	// Reading /proc/self/fd itself opens one fd that is gone by now; anything else is a leak.
	if len(leaked) > 0 && code == 0 {
		fmt.Fprintf(os.Stderr, "FAIL: leaked fds: %s\n", strings.Join(leaked, ", "))
		return 1
	}
	return code
}

// runtimeFD reports fds the Go runtime opens lazily for its netpoller and keeps for the process's life.
func runtimeFD(target string) bool {
	// An empty target is the fd that read /proc/self/fd, closed by the time it is resolved.
	return target == "" || target == "anon_inode:[eventpoll]" || target == "anon_inode:[eventfd]"
}
