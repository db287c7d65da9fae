package seccomp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/libjail/libjail/internal/testutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// child runs the test binary as a child that loads p and performs ops. extra becomes fd 3.
func child(t *testing.T, p *Program, ops []string, extra *os.File, env ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	in, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(append(os.Environ(), childEnv+"=1", childOpsEnv+"="+strings.Join(ops, " ")), env...)
	cmd.Stdin = bytes.NewReader(in)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if extra != nil {
		cmd.ExtraFiles = []*os.File{extra}
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &out, &errb
}

func childOK(t *testing.T, cmd *exec.Cmd, out, errb *bytes.Buffer) childResult {
	t.Helper()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v\nstderr: %s", err, errb)
	}
	var res childResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("child output %q: %v\nstderr: %s", out, err, errb)
	}
	return res
}

// highestKnown is the highest native syscall number among the profile's names known to libseccomp.
func highestKnown(t *testing.T, spec *specs.LinuxSeccomp) int {
	t.Helper()
	a := nativeArch(t)
	max := -1
	for _, sc := range spec.Syscalls {
		for _, n := range sc.Names {
			if s, err := libseccomp.GetSyscallFromNameByArch(n, a.scmp); err == nil && int(int32(s)) > max {
				max = int(int32(s))
			}
		}
	}
	return max
}

// TestLoadDefault loads the default profile plus one errno rule and checks, from the child, the
// seccomp mode of every thread, the chosen errno, the profile's EPERM and ENOSYS for a syscall the
// kernel has but the profile does not know.
func TestLoadDefault(t *testing.T) {
	testutil.RequireRoot(t)
	spec := Default()
	spec.Syscalls[0].Names = slices.DeleteFunc(spec.Syscalls[0].Names, func(n string) bool { return n == "mkdir" || n == "mkdirat" })
	spec.Syscalls = append(spec.Syscalls, specs.LinuxSyscall{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(unix.EXDEV))})
	p, err := Compile(spec, Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ops := []string{
		"mkdir=" + filepath.Join(dir, testutil.Name(t, "denied")),
		"mkdir-other-thread=" + filepath.Join(dir, testutil.Name(t, "denied-thread")),
		"raw=" + strconv.Itoa(unix.SYS_ACCT), // older than the profile, not allowed: the default EPERM
	}
	// A syscall newer than every name the profile knows, which this kernel implements: without
	// the filter it fails with something other than ENOSYS, with the filter ENOSYS.
	newer := highestKnown(t, spec) + 1
	_, _, plain := unix.Syscall6(uintptr(newer), ^uintptr(0), ^uintptr(0), ^uintptr(0), ^uintptr(0), ^uintptr(0), ^uintptr(0))
	checkNewer := runtime.GOARCH == "amd64" && newer > 400 && newer < 600 && plain != unix.ENOSYS
	if checkNewer {
		ops = append(ops, "raw="+strconv.Itoa(newer))
	} else {
		t.Logf("not checking ENOSYS: syscall %d gives %v without a filter", newer, plain)
	}

	cmd, out, errb := child(t, p, ops, nil)
	res := childOK(t, cmd, out, errb)
	if res.Seccomp != "2" || res.Filters != "1" {
		t.Errorf("Seccomp: %q, Seccomp_filters: %q; want 2 and 1", res.Seccomp, res.Filters)
	}
	if res.Unfiltered != 0 || res.Threads < 2 {
		t.Errorf("%d of %d threads without the filter", res.Unfiltered, res.Threads)
	}
	want := map[string]unix.Errno{ops[0]: unix.EXDEV, ops[1]: unix.EXDEV, ops[2]: unix.EPERM}
	if checkNewer {
		want[ops[3]] = unix.ENOSYS
	}
	for op, e := range want {
		if got := unix.Errno(res.Errnos[op]); got != e {
			t.Errorf("%s: got %v (%d), want %v", op, got, got, e)
		}
	}
}

func TestLoadKill(t *testing.T) {
	testutil.RequireRoot(t)
	p, err := Compile(&specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdirat", "mkdir"}, Action: specs.ActKillProcess}},
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	cmd, out, errb := child(t, p, []string{"mkdir=" + filepath.Join(t.TempDir(), "killed")}, nil)
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("child: %v, want killed; stdout %q stderr %q", err, out, errb)
	}
	ws := ee.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != unix.SIGSYS {
		t.Fatalf("child ended with %v, want killed by SIGSYS; stderr %q", ws, errb)
	}
}

// TestLoadPrivileges checks what Load needs: no_new_privs or CAP_SYS_ADMIN, else EACCES.
func TestLoadPrivileges(t *testing.T) {
	testutil.RequireRoot(t)
	p, err := Compile(&specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdirat", "mkdir"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(unix.EXDEV))}},
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		priv      string
		loadErrno unix.Errno
	}{
		{"nnp", 0},
		{"admin", 0},
		{"none", unix.EACCES},
	} {
		t.Run(tc.priv, func(t *testing.T) {
			op := "mkdir=" + filepath.Join(t.TempDir(), "d")
			cmd, out, errb := child(t, p, []string{op}, nil, childPrivEnv+"="+tc.priv)
			res := childOK(t, cmd, out, errb)
			if got := unix.Errno(res.LoadErrno); got != tc.loadErrno {
				t.Fatalf("Load: errno %v, want %v", got, tc.loadErrno)
			}
			if tc.loadErrno == 0 && unix.Errno(res.Errnos[op]) != unix.EXDEV {
				t.Errorf("mkdir: %v, want EXDEV", unix.Errno(res.Errnos[op]))
			}
		})
	}
}

// TestLoadFlags checks that the kernel takes every flag the spec allows.
func TestLoadFlags(t *testing.T) {
	testutil.RequireRoot(t)
	p, err := Compile(&specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Flags:         []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_TSYNC", specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow},
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdirat", "mkdir"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(unix.EXDEV))}},
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	op := "mkdir=" + filepath.Join(t.TempDir(), "d")
	cmd, out, errb := child(t, p, []string{op}, nil)
	res := childOK(t, cmd, out, errb)
	if res.LoadErrno != 0 || res.Seccomp != "2" || unix.Errno(res.Errnos[op]) != unix.EXDEV {
		t.Errorf("flags %s: %+v", FlagString(p.Flags), res)
	}
}

func TestLoadErrors(t *testing.T) {
	// Load refuses malformed programs before calling seccomp(2), so this needs no child.
	for _, p := range []*Program{
		nil,
		{},
		{Filter: make([]byte, 12), Flags: unix.SECCOMP_FILTER_FLAG_TSYNC},
		{Filter: make([]byte, 8), Flags: 1 << 20},
		{Filter: make([]byte, 8), Notify: true},
	} {
		if _, err := p.Load(); !errors.Is(err, ErrInvalid) {
			t.Errorf("Load(%v) = %v, want ErrInvalid", p, err)
		}
	}
}
