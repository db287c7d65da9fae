package seccomp

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func TestDefault(t *testing.T) {
	p := mustCompile(t, Default())
	allow := uint32(unix.SECCOMP_RET_ALLOW)
	eperm := retErrno(unix.EPERM)
	for _, tc := range []struct {
		name string
		args []uint64
		want uint32
	}{
		{"read", nil, allow},
		{"getpid", nil, allow},
		{"futex", nil, allow},
		{"clone", []uint64{unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND | unix.CLONE_THREAD}, allow},
		{"clone", []uint64{uint64(unix.SIGCHLD)}, allow},
		{"clone", []uint64{unix.CLONE_NEWUSER | uint64(unix.SIGCHLD)}, eperm},
		{"clone", []uint64{unix.CLONE_NEWNET}, eperm},
		{"clone3", nil, retErrno(unix.ENOSYS)},
		{"socket", []uint64{unix.AF_INET}, allow},
		{"socket", []uint64{unix.AF_UNIX}, allow},
		{"socket", []uint64{unix.AF_VSOCK}, eperm},
		{"personality", []uint64{0}, allow},
		{"personality", []uint64{0xffffffff}, allow},
		{"personality", []uint64{0x0400000}, eperm},
		{"mount", nil, eperm},
		{"unshare", nil, eperm},
		{"setns", nil, eperm},
		{"bpf", nil, eperm},
		{"init_module", nil, eperm},
		{"keyctl", nil, eperm},
		{"open_by_handle_at", nil, eperm},
		{"io_uring_setup", nil, eperm},
	} {
		if runtime.GOARCH == "s390x" && tc.name == "clone" {
			tc.args = append([]uint64{0}, tc.args...)
		}
		if got := decide(t, p, tc.name, tc.args...); got != tc.want {
			t.Errorf("%s%#x: got %#x, want %#x", tc.name, tc.args, got, tc.want)
		}
	}
	// A syscall newer than every name the profile knows: ENOSYS, not EPERM.
	a := nativeArch(t)
	if got := decideData(t, p, seccompData{nr: 2000, arch: a.audit}); got != retErrno(unix.ENOSYS) {
		t.Errorf("nr 2000: got %#x, want ENOSYS", got)
	}
	if p.StubLen == 0 {
		t.Error("no ENOSYS stub")
	}
	msg, _ := json.Marshal(p)
	t.Logf("%v; %d bytes as JSON", p, len(msg))
}

func TestDefaultIsFresh(t *testing.T) {
	a, b := Default(), Default()
	a.Syscalls[0].Names[0] = "changed"
	*a.DefaultErrnoRet = 99
	if b.Syscalls[0].Names[0] == "changed" || *b.DefaultErrnoRet == 99 || defaultAllowed[0] == "changed" {
		t.Fatal("Default shares state between calls")
	}
}

// TestStubGolden pins the stub this package generates (libseccomp's part is checked by running it).
func TestStubGolden(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("skipped: golden stubs are recorded for amd64")
	}
	for _, tc := range []struct {
		name   string
		arches []specs.Arch
	}{
		{"native", nil},
		{"x86_64-x86-x32", []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mustCompile(t, &specs.LinuxSeccomp{
				DefaultAction: specs.ActErrno,
				Architectures: tc.arches,
				Syscalls:      []specs.LinuxSyscall{{Names: []string{"read", "write", "openat", "statx"}, Action: specs.ActAllow}},
			})
			got := disasm(decode(p.Filter[:8*p.StubLen]))
			golden(t, filepath.Join("testdata", "stub-"+tc.name+".golden"), got)
		})
	}
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs (run with -update after checking):\n--- got\n%s--- want\n%s", path, got, want)
	}
}
