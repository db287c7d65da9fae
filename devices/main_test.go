package devices

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"

	"github.com/libjail/libjail/internal/testutil"
)

// childEnv selects a helper when the test binary is re-executed as a child process.
const childEnv = "LIBJAIL_DEVICES_CHILD"

// children are the helpers a re-executed test binary can run; each prints JSON to stdout.
var children = map[string]func() (any, error){}

func TestMain(m *testing.M) {
	if name := os.Getenv(childEnv); name != "" {
		f, ok := children[name]
		if !ok {
			fmt.Fprintf(os.Stderr, "unknown child %q\n", name)
			os.Exit(2)
		}
		v, err := f()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := json.NewEncoder(os.Stdout).Encode(v); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	// pathrs-lite keeps one procfs handle for the life of the process; open it before counting fds.
	if d, err := os.MkdirTemp("", "libjail-test-warmup-"); err == nil {
		_ = CreateNodes(d, nil, false)
		_ = pathrs.MkdirAll(d, "x", 0o700)
		os.RemoveAll(d)
	}
	os.Exit(checkFDLeaks(m))
}

// checkFDLeaks is testutil.CheckFDLeaks without its false positive: the fd of the /proc/self/fd
// listing itself is listed but already closed when its link is read, with a number that can differ
// between the two listings.
func checkFDLeaks(m *testing.M) int {
	open := func() map[string]string {
		fds, err := testutil.OpenFDs()
		if err != nil {
			fmt.Fprintln(os.Stderr, "fd leak check:", err)
			os.Exit(1)
		}
		for fd, target := range fds {
			if target == "" {
				delete(fds, fd)
			}
		}
		return fds
	}
	before := open()
	code := m.Run()
	var leaked []string
	for fd, target := range open() {
		if _, ok := before[fd]; !ok && target != "anon_inode:[eventpoll]" && target != "anon_inode:[eventfd]" {
			leaked = append(leaked, fd+" -> "+target)
		}
	}
	if len(leaked) > 0 && code == 0 {
		fmt.Fprintf(os.Stderr, "FAIL: leaked fds: %s\n", strings.Join(leaked, ", "))
		return 1
	}
	return code
}

// childCmd builds a command re-executing this test binary as the named child.
func childCmd(name string, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), childEnv+"="+name), env...)
	cmd.Stderr = os.Stderr
	return cmd
}

// runChild runs cmd and decodes its JSON report into v.
func runChild(t *testing.T, cmd *exec.Cmd, v any) {
	t.Helper()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child %v: %v (stdout %q)", cmd.Env[len(cmd.Env)-1], err, out)
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("child report %q: %v", out, err)
	}
}

func jsonUnmarshal(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("child report %q: %w", b, err)
	}
	return nil
}
