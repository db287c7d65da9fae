package namespaces

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/libjail/libjail/internal/nsenter"
	"github.com/libjail/libjail/internal/testutil"
)

// Children are this test binary re-executed with childEnv set: they report what they see as one line
// of JSON on stdout and, in "hold" mode, stay alive until stdin closes.
const (
	childEnv     = "LIBJAIL_NS_TEST_CHILD"
	childStatEnv = "LIBJAIL_NS_TEST_STAT"      // a file to stat
	childSysEnv  = "LIBJAIL_NS_TEST_MOUNTSYS"  // a directory to mount sysfs on
	childCgEnv   = "LIBJAIL_NS_TEST_CGROUPNS"  // call UnshareCgroup
	childProcEnv = "LIBJAIL_NS_TEST_MOUNTPROC" // a directory to mount procfs on
)

type report struct {
	Err       string            `json:"err,omitempty"` // nsenter.Result()
	NS        map[string]string `json:"ns"`
	PID       int               `json:"pid"`
	UID       int               `json:"uid"`
	GID       int               `json:"gid"`
	UIDMap    string            `json:"uidMap"`
	GIDMap    string            `json:"gidMap"`
	Uptime    float64           `json:"uptime"`
	StatUID   int               `json:"statUid"`
	StatGID   int               `json:"statGid"`
	StatErr   string            `json:"statErr,omitempty"`
	MountSys  string            `json:"mountSys,omitempty"`  // "ok" or the error
	MountProc string            `json:"mountProc,omitempty"` // "ok" or the error
	CapEff    string            `json:"capEff"`
	LeakedFD  []string          `json:"leakedFd,omitempty"`
	Pdeath    int32             `json:"pdeathsig"`
	CgroupNS  string            `json:"cgroupNs,omitempty"` // after UnshareCgroup on the locked thread
	FD3       string            `json:"fd3"`                // what the parent put first in ExtraFiles
	NetOwner  string            `json:"netOwner"`           // the user namespace owning the network namespace
}

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		childMain(mode)
		return
	}
	warmPoller()
	os.Exit(testutil.CheckFDLeaks(m))
}

// warmPoller makes the runtime open its netpoller fds now: CheckFDLeaks compares fd numbers, and the
// fd it reads /proc/self/fd with would otherwise land on a new number after the tests.
func warmPoller() {
	if r, w, err := os.Pipe(); err == nil {
		r.Close()
		w.Close()
	}
}

func childMain(mode string) {
	runtime.LockOSThread()
	r := observe()
	if os.Getenv(childCgEnv) != "" {
		if err := UnshareCgroup(); err != nil {
			r.CgroupNS = err.Error()
		} else {
			r.CgroupNS, _ = os.Readlink("/proc/thread-self/ns/cgroup")
		}
	}
	if err := nsenter.Result(); err != nil {
		r.Err = err.Error()
	}
	if dir := os.Getenv(childSysEnv); dir != "" {
		r.MountSys = "ok"
		if err := unix.Mount("sysfs", dir, "sysfs", 0, ""); err != nil {
			r.MountSys = err.Error()
		} else {
			unix.Unmount(dir, unix.MNT_DETACH)
		}
	}
	if dir := os.Getenv(childProcEnv); dir != "" {
		r.MountProc = "ok"
		if err := unix.Mount("proc", dir, "proc", 0, ""); err != nil {
			r.MountProc = err.Error()
		} else {
			unix.Unmount(dir, unix.MNT_DETACH)
		}
	}
	json.NewEncoder(os.Stdout).Encode(r)
	if mode == "hold" {
		io.Copy(io.Discard, os.Stdin)
	}
	os.Exit(0)
}

func observe() report {
	r := report{NS: nsLinks("self"), PID: os.Getpid(), UID: os.Getuid(), GID: os.Getgid()}
	b, _ := os.ReadFile("/proc/self/uid_map")
	r.UIDMap = normMap(string(b))
	b, _ = os.ReadFile("/proc/self/gid_map")
	r.GIDMap = normMap(string(b))
	b, _ = os.ReadFile("/proc/uptime")
	r.Uptime, _ = strconv.ParseFloat(strings.Fields(string(b) + " 0")[0], 64)
	if p := os.Getenv(childStatEnv); p != "" {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			r.StatErr = err.Error()
		}
		r.StatUID, r.StatGID = int(st.Uid), int(st.Gid)
	}
	r.FD3, _ = os.Readlink("/proc/self/fd/3")
	if f, err := OwningUserNS("/proc/self/ns/net"); err == nil {
		r.NetOwner, _ = os.Readlink(fmt.Sprintf("/proc/self/fd/%d", f.Fd()))
		f.Close()
	} else {
		r.NetOwner = err.Error()
	}
	unix.Syscall(unix.SYS_PRCTL, unix.PR_GET_PDEATHSIG, uintptr(unsafe.Pointer(&r.Pdeath)), 0)
	b, _ = os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			r.CapEff = strings.TrimSpace(v)
		}
	}
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		if fd, _ := strconv.Atoi(e.Name()); fd > 2 {
			target, _ := os.Readlink("/proc/self/fd/" + e.Name())
			if strings.HasSuffix(target, "]") && !strings.HasPrefix(target, "pipe:") && fd != 3 &&
				target != "anon_inode:[eventpoll]" && target != "anon_inode:[eventfd]" {
				r.LeakedFD = append(r.LeakedFD, e.Name()+"->"+target)
			}
		}
	}
	return r
}

// normMap squeezes the kernel's column padding: "0 100000 65536;...".
func normMap(s string) string {
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		lines = append(lines, strings.Join(strings.Fields(l), " "))
	}
	return strings.Join(lines, ";")
}

// nsLinks reads /proc/<who>/ns/* for the eight types, keyed by spec name.
func nsLinks(who string) map[string]string {
	out := map[string]string{}
	for _, t := range Types {
		l, err := os.Readlink(fmt.Sprintf("/proc/%s/ns/%s", who, t.ProcName()))
		if err != nil {
			l = "error: " + err.Error()
		}
		out[string(t)] = l
	}
	return out
}

// child is a running re-executed test binary.
type child struct {
	cmd   *exec.Cmd
	stdin *os.File
	rep   report
}

// startChild configures and starts a child with plan and reads its report; mode "hold" keeps it
// alive until the test ends.
func startChild(t *testing.T, plan *NSPlan, mode string, env ...string) (*child, error) {
	t.Helper()
	cmd := exec.Command("/proc/self/exe", "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// Own pipes rather than StdinPipe/StdoutPipe: a Start that fails before the fork never calls
	// cmd.Start, which is what would close the child's ends.
	stdinR, stdin, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	stdout, stdoutW, err := os.Pipe()
	if err != nil {
		stdinR.Close()
		stdin.Close()
		return nil, err
	}
	defer stdout.Close()
	cmd.Stdin, cmd.Stdout = stdinR, stdoutW
	// Like the root package: fd 3 in the child is its end of a socketpair; Configure appends after it.
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	ours, theirs := os.NewFile(uintptr(sp[0]), "sync-parent"), os.NewFile(uintptr(sp[1]), "sync-child")
	defer ours.Close()
	defer theirs.Close()
	cmd.ExtraFiles = []*os.File{theirs}
	release, err := plan.Configure(cmd)
	if err == nil {
		err = plan.Start(cmd)
		release()
	}
	stdinR.Close()
	stdoutW.Close()
	if err != nil {
		stdin.Close()
		return nil, err
	}
	c := &child{cmd: cmd, stdin: stdin}
	t.Cleanup(func() {
		c.stdin.Close()
		if c.cmd.ProcessState != nil {
			return
		}
		done := make(chan struct{})
		go func() { c.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			c.cmd.Process.Kill()
			<-done
		}
	})
	line, err := bufio.NewReader(stdout).ReadBytes('\n')
	if err != nil {
		stdin.Close()
		return nil, fmt.Errorf("child report: %w (child: %v)", err, cmd.Wait())
	}
	if err := json.Unmarshal(line, &c.rep); err != nil {
		return nil, fmt.Errorf("child report %q: %w", line, err)
	}
	return c, nil
}

// runChild starts a child that reports and exits; it fails the test on any error, including one
// the child's nsenter.Result() returned.
func runChild(t *testing.T, plan *NSPlan, env ...string) report {
	t.Helper()
	c, err := startChild(t, plan, "report", env...)
	if err != nil {
		t.Fatalf("start child (%s): %v", plan, err)
	}
	if c.rep.Err != "" {
		t.Fatalf("child (%s): nsenter: %s", plan, c.rep.Err)
	}
	if len(c.rep.LeakedFD) > 0 {
		t.Errorf("child (%s) holds namespace fds: %v", plan, c.rep.LeakedFD)
	}
	if !strings.HasPrefix(c.rep.FD3, "socket:") {
		t.Errorf("child (%s): fd 3 is %q, not the socket passed first", plan, c.rep.FD3)
	}
	// Reap it now: a pinned pid namespace's init cannot finish exiting while a zombie of ours is in it.
	c.stdin.Close()
	if err := c.cmd.Wait(); err != nil {
		t.Errorf("child (%s): %v", plan, err)
	}
	return c.rep
}
