package seccomp

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/libjail/libjail/internal/testutil"
	"golang.org/x/sys/unix"
)

// Root tests load filters in re-executed copies of the test binary: a filter can never be removed,
// so the test process itself must not load one. The child gets the Program as JSON on stdin, the
// steps to take in childOpsEnv, prints a childResult as JSON and exits.
const (
	childEnv    = "LIBJAIL_SECCOMP_TEST_CHILD"
	childOpsEnv = "LIBJAIL_SECCOMP_TEST_OPS"
	// childPrivEnv chooses what lets the child load: "nnp" (default) sets no_new_privs, "admin"
	// keeps CAP_SYS_ADMIN only, "none" drops every capability without no_new_privs.
	childPrivEnv = "LIBJAIL_SECCOMP_TEST_PRIV"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain())
	}
	os.Exit(checkFDLeaks(m))
}

// checkFDLeaks is testutil.CheckFDLeaks without its false report: the fd that reads /proc/self/fd
// shows up there with no target once closed, and may carry a number unused before the tests.
func checkFDLeaks(m *testing.M) int {
	before, err := testutil.OpenFDs()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fd leak check:", err)
		return 1
	}
	code := m.Run()
	after, err := testutil.OpenFDs()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fd leak check:", err)
		return 1
	}
	var leaked []string
	for fd, target := range after {
		if _, ok := before[fd]; ok || target == "" || strings.HasPrefix(target, "anon_inode:[event") {
			continue
		}
		leaked = append(leaked, fd+" -> "+target)
	}
	if len(leaked) > 0 && code == 0 {
		fmt.Fprintf(os.Stderr, "FAIL: leaked fds: %s\n", strings.Join(leaked, ", "))
		return 1
	}
	return code
}

// childResult is what a child saw after loading its filter.
type childResult struct {
	Seccomp      string         `json:"seccomp"`      // Seccomp: line of /proc/self/status
	Filters      string         `json:"filters"`      // Seccomp_filters: line
	Unfiltered   int            `json:"unfiltered"`   // threads whose Seccomp mode is not 2
	Threads      int            `json:"threads"`      // threads checked
	Errnos       map[string]int `json:"errnos"`       // op → errno (0: success)
	ListenerSent bool           `json:"listenerSent"` // notify: listener fd passed on fd 3
	LoadErrno    int            `json:"loadErrno"`    // errno of a failed Load
}

func childMain() int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "child: "+format+"\n", args...)
		return 3
	}
	var p Program
	if err := json.NewDecoder(os.Stdin).Decode(&p); err != nil {
		return fail("decode program: %v", err)
	}
	// A second OS thread that exists before the filter is loaded: TSYNC must filter it too.
	other := make(chan func(), 1)
	otherDone := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		for f := range other {
			f()
			otherDone <- struct{}{}
		}
	}()
	// Capabilities are per thread: drop them and load on the same one.
	runtime.LockOSThread()
	switch os.Getenv(childPrivEnv) {
	case "", "nnp":
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fail("no_new_privs: %v", err)
		}
	case "admin":
	case "none":
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			return fail("capset: %v", err)
		}
	}
	res := childResult{Errnos: map[string]int{}}
	listener, err := p.Load()
	if err != nil {
		var errno unix.Errno
		if !errors.As(err, &errno) {
			return fail("load: %v", err)
		}
		res.LoadErrno = int(errno)
		_ = json.NewEncoder(os.Stdout).Encode(res)
		return 0
	}
	if listener != nil {
		sock := os.NewFile(3, "to-parent")
		if err := unix.Sendmsg(int(sock.Fd()), []byte("L"), unix.UnixRights(int(listener.Fd())), nil, 0); err != nil {
			return fail("send listener: %v", err)
		}
		listener.Close()
		sock.Close()
		res.ListenerSent = true
	}
	res.Seccomp, res.Filters = statusLines("/proc/self/status")
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, task := range tasks {
		mode, _ := statusLines("/proc/self/task/" + task.Name() + "/status")
		res.Threads++
		if mode != "2" {
			res.Unfiltered++
		}
	}
	for _, op := range strings.Fields(os.Getenv(childOpsEnv)) {
		var e error
		name, arg, _ := strings.Cut(op, "=")
		switch name {
		case "mkdir": // mkdir=<path>
			e = os.Mkdir(arg, 0o700)
		case "mkdir-other-thread":
			other <- func() { e = os.Mkdir(arg, 0o700) }
			<-otherDone
		case "raw": // raw=<nr>: the syscall with invalid arguments
			n, _ := strconv.Atoi(arg)
			_, _, errno := unix.Syscall6(uintptr(n), ^uintptr(0), ^uintptr(0), ^uintptr(0), ^uintptr(0), ^uintptr(0), ^uintptr(0))
			if errno != 0 {
				e = errno
			}
		default:
			return fail("unknown op %q", op)
		}
		var errno unix.Errno
		if e != nil && !errors.As(e, &errno) {
			return fail("%s: %v", op, e)
		}
		res.Errnos[op] = int(errno)
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		return fail("encode: %v", err)
	}
	return 0
}

func statusLines(path string) (mode, filters string) {
	f, err := os.Open(path)
	if err != nil {
		return "", ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, _ := strings.Cut(s.Text(), ":")
		switch k {
		case "Seccomp":
			mode = strings.TrimSpace(v)
		case "Seccomp_filters":
			filters = strings.TrimSpace(v)
		}
	}
	return mode, filters
}
