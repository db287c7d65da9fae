package cgroups

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/libjail/libjail/internal/testutil"
)

// childEnv selects what the re-executed test binary does instead of running tests.
const childEnv = "LIBJAIL_CGROUPS_CHILD"

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "":
		// Start the Go netpoller first: its epoll and eventfd would otherwise shift the fd the
		// leak check's own directory read uses, which it then reports as a leak.
		if r, w, err := os.Pipe(); err == nil {
			r.Close()
			w.Close()
		}
		os.Exit(testutil.CheckFDLeaks(m))
	case "alloc":
		// Wait to be placed, then allocate and touch memory until killed.
		bufio.NewReader(os.Stdin).ReadString('\n')
		var keep [][]byte
		for i := 0; i < 4096; i++ {
			b := make([]byte, 1<<20)
			for j := 0; j < len(b); j += 4096 {
				b[j] = 1
			}
			keep = append(keep, b)
		}
		fmt.Println("survived", len(keep))
		os.Exit(0)
	case "hugetlb":
		// Wait to be placed, touch one 2 MB huge page (charged to the cgroup at the fault; past
		// hugetlb.2MB.max the fault is a SIGBUS), report, then hold it until stdin closes.
		in := bufio.NewReader(os.Stdin)
		in.ReadString('\n')
		b, err := unix.Mmap(-1, 0, 2<<20, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_HUGETLB)
		if err != nil {
			fmt.Println("mmap:", err)
			os.Exit(1)
		}
		b[0] = 1
		fmt.Println("touched")
		in.ReadString('\n')
		os.Exit(0)
	case "cgroupns":
		// Wait to be placed, then enter a new cgroup namespace and print what it shows.
		bufio.NewReader(os.Stdin).ReadString('\n')
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			fmt.Println("unshare:", err)
			os.Exit(1)
		}
		b, err := os.ReadFile("/proc/thread-self/cgroup")
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		os.Stdout.Write(b)
		os.Exit(0)
	}
	fmt.Fprintln(os.Stderr, "unknown child mode")
	os.Exit(2)
}

// busybox is a single-threaded shell for children: a Go child's runtime threads would count
// against pids limits.
const busybox = "/bin/busybox"

// child is a process started in the parent's cgroups, held on stdin until the test placed it.
type child struct {
	cmd   *exec.Cmd
	stdin *os.File
	out   strings.Builder
}

func startChild(t *testing.T, cmd *exec.Cmd) *child {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, stdin: w}
	cmd.Stdin = r
	cmd.Stdout = &c.out
	cmd.Stderr = &c.out
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		t.Fatal(err)
	}
	r.Close()
	t.Cleanup(func() {
		w.Close()
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return c
}

// release lets the child go on past its `read`.
func (c *child) release(t *testing.T) {
	t.Helper()
	if _, err := c.stdin.WriteString("go\n"); err != nil {
		t.Fatal(err)
	}
}

func shell(script string) *exec.Cmd {
	return exec.Command(busybox, "sh", "-c", "read x; "+script)
}

func goChild(mode string) *exec.Cmd {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"="+mode)
	return cmd
}

// newManager plans and creates a cgroup at the top of every hierarchy in hs (nil: all detected),
// and destroys it on cleanup, checking nothing is left in any hierarchy.
func newManager(t *testing.T, hs []Hierarchy, res *specs.LinuxResources) (*CgroupPlan, Manager) {
	t.Helper()
	testutil.RequireRoot(t)
	if hs == nil {
		var err error
		if hs, err = DetectHierarchies(); err != nil {
			t.Fatal(err)
		}
	}
	plan, err := Plan("/"+testutil.Name(t, "cg"), res, LayoutOf(hs), Options{Hierarchies: hs})
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(plan)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Create(); err != nil {
		m.Destroy()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.Kill()
		if err := m.Destroy(); err != nil {
			t.Errorf("destroy: %v", err)
		}
		assertGone(t, plan)
	})
	return plan, m
}

func assertGone(t *testing.T, plan *CgroupPlan) {
	t.Helper()
	for k, d := range plan.Dirs {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("cgroup left in %s: %s", k, d)
		}
	}
}

// waitExit waits for the child with a bound, so a test never hangs on a limit that did not bite.
func waitExit(t *testing.T, c *child, within time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(within):
		c.cmd.Process.Kill()
		<-done
		t.Fatalf("child still running after %s; output: %s", within, c.out.String())
		return nil
	}
}

func readBack(t *testing.T, dir, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func ptr[T any](v T) *T { return &v }
