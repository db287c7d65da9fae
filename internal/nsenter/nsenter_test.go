package nsenter

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/libjail/libjail/internal/testutil"
)

const childEnv = "LIBJAIL_NSENTER_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		// Reached only when the constructor returned: report what it left.
		var sig int32
		unix.Syscall(unix.SYS_PRCTL, unix.PR_GET_PDEATHSIG, uintptr(unsafe.Pointer(&sig)), 0)
		// The Go runtime may have opened fd 3 again since (cgroup cpu files): report where it points.
		fd3, _ := os.Readlink("/proc/self/fd/3")
		fmt.Printf("result=%v\nenv=%q\nfd3=%s\npdeathsig=%d\n", Result(), os.Getenv(EnvName), fd3, sig)
		if err, ok := Result().(*Error); ok {
			fmt.Printf("step=%d ns=%s errno=%d\n", err.Step, err.Namespaces, err.Errno)
		}
		os.Exit(0)
	}
	if r, w, err := os.Pipe(); err == nil { // start the netpoller before the fd snapshot
		r.Close()
		w.Close()
	}
	os.Exit(testutil.CheckFDLeaks(m))
}

// child runs this test binary with the constructor's variable set to spec and fd 3 open on extra.
func child(t *testing.T, spec string, extra *os.File) (string, error) {
	t.Helper()
	cmd := exec.Command("/proc/self/exe", "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", EnvName+"="+spec)
	if extra != nil {
		cmd.ExtraFiles = []*os.File{extra}
	}
	out, err := cmd.Output()
	return string(out), err
}

func TestResultWithoutEnv(t *testing.T) {
	if err := Result(); err != nil {
		t.Fatalf("Result() in a process started without %s: %v", EnvName, err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, spec := range []string{"bogus", "user", "user=x", "nope=3", "pidfd=3", "pidfd=3:", "user=3;", "timens=1:2:3", "unshare=-1"} {
		out, err := child(t, spec, nil)
		if err != nil {
			t.Fatalf("%q: %v", spec, err)
		}
		if !strings.Contains(out, fmt.Sprintf("step=%d ", StepParse)) || !strings.Contains(out, fmt.Sprintf("errno=%d", unix.EINVAL)) {
			t.Errorf("%q: child reported:\n%s", spec, out)
		}
	}
}

// TestSetnsFailure: a fd that is not a namespace is refused by the kernel; the error names the
// namespace and keeps the errno; the fd is closed and the variable gone either way.
func TestSetnsFailure(t *testing.T) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out, err := child(t, "mnt=3", f)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		fmt.Sprintf("step=%d ns=mnt errno=%d", StepSetns, unix.EINVAL),
		"result=nsenter: setns mnt: invalid argument",
		`env=""`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("child output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "fd3=/proc/") {
		t.Errorf("fd 3 still open on the file passed:\n%s", out)
	}
}

func TestResultError(t *testing.T) {
	var err error = &Error{Step: StepSetns, Namespaces: "user", Errno: unix.EPERM}
	if !errors.Is(err, unix.EPERM) || !errors.Is(err, os.ErrPermission) {
		t.Errorf("%v does not unwrap to EPERM", err)
	}
}

func TestPdeathsigAndEnvRemoved(t *testing.T) {
	out, err := child(t, "pdeathsig=10", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"result=<nil>", `env=""`, "pdeathsig=10"} {
		if !strings.Contains(out, want) {
			t.Errorf("child output lacks %q:\n%s", want, out)
		}
	}
}

// TestHold: a holding helper never reaches the program's main, reports readiness on stdout and exits
// 0 at EOF on stdin; on a failure it exits 100+step without reaching main either.
func TestHold(t *testing.T) {
	cmd := exec.Command("/proc/self/exe", "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", EnvName+"=hold")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := io.ReadFull(stdout, b); err != nil {
		t.Fatal(err)
	}
	stdin.Close()
	rest, _ := io.ReadAll(stdout)
	if err := cmd.Wait(); err != nil || string(b) != "r" || len(rest) != 0 {
		t.Errorf("hold: ready %q, then %q, exit %v", b, rest, err)
	}

	out, err := child(t, "hold,bogus", nil)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 100+int(StepParse) || out != "" {
		t.Errorf("failing hold: %v, output %q", err, out)
	}
}

func TestSpecString(t *testing.T) {
	s := Spec{
		Joins: []Join{{Flag: unix.CLONE_NEWUSER, FD: 5}, {Flag: unix.CLONE_NEWNS, FD: 6}},
		PidFD: 7, PidFDFlags: unix.CLONE_NEWNET | unix.CLONE_NEWUTS,
		Unshare: unix.CLONE_NEWIPC, NewTime: &TimeOffsets{MonotonicSecs: -3, BoottimeSecs: 9, BoottimeNanos: 1},
		Pdeathsig: int(syscall.SIGKILL), Hold: true,
	}
	const want = "timens=-3:0:9:1,pidfd=7:0x44000000,user=5,mnt=6,unshare=0x8000000,pdeathsig=9,hold"
	if got := s.String(); got != want {
		t.Errorf("String:\n got %s\nwant %s", got, want)
	}
	if (Spec{}).Empty() != true || s.Empty() {
		t.Error("Empty")
	}
	if FlagNames(unix.CLONE_NEWNET|unix.CLONE_NEWPID|0x1) != "net|pid|0x1" {
		t.Errorf("FlagNames: %s", FlagNames(unix.CLONE_NEWNET|unix.CLONE_NEWPID|0x1))
	}
}
