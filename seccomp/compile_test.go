package seccomp

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"runtime"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

func uptr(v uint) *uint { return &v }

func nativeArch(t testing.TB) arch {
	t.Helper()
	n, err := libseccomp.GetNativeArch()
	if err != nil {
		t.Fatal(err)
	}
	a, ok := archByScmp(n)
	if !ok {
		t.Fatalf("native arch %v not in table", n)
	}
	return a
}

func nr(t testing.TB, a arch, name string) int32 {
	t.Helper()
	s, err := libseccomp.GetSyscallFromNameByArch(name, a.scmp)
	if err != nil {
		t.Fatalf("resolve %s on %s: %v", name, a.name, err)
	}
	return int32(s)
}

// decideOn runs p for syscall name on architecture a with args.
func decideOn(t testing.TB, p *Program, a arch, name string, args ...uint64) uint32 {
	t.Helper()
	d := seccompData{nr: nr(t, a, name), arch: a.audit}
	copy(d.args[:], args)
	return decideData(t, p, d)
}

func decideData(t testing.TB, p *Program, d seccompData) uint32 {
	t.Helper()
	r, err := run(decode(p.Filter), d)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, disasm(decode(p.Filter)))
	}
	return r
}

func decide(t testing.TB, p *Program, name string, args ...uint64) uint32 {
	t.Helper()
	return decideOn(t, p, nativeArch(t), name, args...)
}

// unnamedBelow returns a native syscall number below the highest of names and not one of them,
// which a profile naming them leaves to its default action; -1 if there is none.
func unnamedBelow(t testing.TB, names ...string) int32 {
	t.Helper()
	a := nativeArch(t)
	named := map[int32]bool{}
	max := int32(-1)
	for _, n := range names {
		v := nr(t, a, n)
		named[v] = true
		max = maxInt32(max, v)
	}
	for v := max - 1; v >= 0; v-- {
		if !named[v] {
			return v
		}
	}
	return -1
}

func maxInt32(a, b int32) int32 {
	if a > b {
		return a
	}
	return b
}

func mustCompile(t testing.TB, spec *specs.LinuxSeccomp) *Program {
	t.Helper()
	p, err := compile(spec, nil)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return p
}

func TestActions(t *testing.T) {
	for _, tc := range []struct {
		act      specs.LinuxSeccompAction
		errnoRet *uint
		def      specs.LinuxSeccompAction
		want     uint32
	}{
		{act: specs.ActKill, want: unix.SECCOMP_RET_KILL_THREAD},
		{act: specs.ActKillThread, want: unix.SECCOMP_RET_KILL_THREAD},
		{act: specs.ActKillProcess, want: unix.SECCOMP_RET_KILL_PROCESS},
		{act: specs.ActTrap, want: unix.SECCOMP_RET_TRAP},
		{act: specs.ActErrno, want: retErrno(unix.EPERM)},
		{act: specs.ActErrno, errnoRet: uptr(uint(unix.EXDEV)), want: retErrno(unix.EXDEV)},
		{act: specs.ActErrno, errnoRet: uptr(0), want: retErrno(0)},
		{act: specs.ActTrace, want: unix.SECCOMP_RET_TRACE | uint32(unix.EPERM)},
		{act: specs.ActTrace, errnoRet: uptr(7), want: unix.SECCOMP_RET_TRACE | 7},
		{act: specs.ActAllow, def: specs.ActErrno, want: unix.SECCOMP_RET_ALLOW},
		{act: specs.ActLog, want: unix.SECCOMP_RET_LOG},
		{act: specs.ActNotify, want: unix.SECCOMP_RET_USER_NOTIF},
	} {
		name := string(tc.act)
		if tc.errnoRet != nil {
			name += "/" + string(rune('0'+*tc.errnoRet%10))
		}
		t.Run(name, func(t *testing.T) {
			def := tc.def
			if def == "" {
				def = specs.ActAllow
			}
			spec := &specs.LinuxSeccomp{
				DefaultAction: def,
				Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdirat"}, Action: tc.act, ErrnoRet: tc.errnoRet}},
			}
			if tc.act == specs.ActNotify {
				spec.ListenerPath = "/run/agent.sock"
			}
			p := mustCompile(t, spec)
			if got := decide(t, p, "mkdirat"); got != tc.want {
				t.Errorf("mkdirat: got %#x, want %#x", got, tc.want)
			}
			wantDef := uint32(unix.SECCOMP_RET_ALLOW)
			if def == specs.ActErrno {
				wantDef = retErrno(unix.EPERM)
			}
			if n := unnamedBelow(t, "mkdirat"); n >= 0 {
				if got := decideData(t, p, seccompData{nr: n, arch: nativeArch(t).audit}); got != wantDef {
					t.Errorf("nr %d (default): got %#x, want %#x", n, got, wantDef)
				}
			}
			if p.Notify != (tc.act == specs.ActNotify) {
				t.Errorf("Notify = %v", p.Notify)
			}
		})
	}
}

func TestDefaultAction(t *testing.T) {
	for _, tc := range []struct {
		def      specs.LinuxSeccompAction
		errnoRet *uint
		want     uint32
		stub     bool
	}{
		{def: specs.ActKill, want: unix.SECCOMP_RET_KILL_THREAD, stub: true},
		{def: specs.ActKillProcess, want: unix.SECCOMP_RET_KILL_PROCESS, stub: true},
		{def: specs.ActTrap, want: unix.SECCOMP_RET_TRAP, stub: true},
		{def: specs.ActErrno, want: retErrno(unix.EPERM), stub: true},
		{def: specs.ActErrno, errnoRet: uptr(uint(unix.EACCES)), want: retErrno(unix.EACCES), stub: true},
		{def: specs.ActErrno, errnoRet: uptr(uint(unix.ENOSYS)), want: retErrno(unix.ENOSYS)},
		{def: specs.ActTrace, want: unix.SECCOMP_RET_TRACE | uint32(unix.EPERM), stub: true},
		{def: specs.ActAllow, want: unix.SECCOMP_RET_ALLOW},
		{def: specs.ActLog, want: unix.SECCOMP_RET_LOG},
	} {
		t.Run(string(tc.def), func(t *testing.T) {
			rule := specs.ActAllow
			if tc.def == specs.ActAllow {
				rule = specs.ActErrno
			}
			// getppid follows getpid on the common architectures, so getpid meets the default
			// action rather than the ENOSYS stub.
			p := mustCompile(t, &specs.LinuxSeccomp{
				DefaultAction:   tc.def,
				DefaultErrnoRet: tc.errnoRet,
				Syscalls:        []specs.LinuxSyscall{{Names: []string{"read", "write", "openat", "getppid"}, Action: rule}},
			})
			if got := decide(t, p, "getpid"); got != tc.want {
				t.Errorf("getpid: got %#x, want %#x", got, tc.want)
			}
			if (p.StubLen > 0) != tc.stub {
				t.Errorf("StubLen = %d, want stub %v", p.StubLen, tc.stub)
			}
		})
	}
}

func TestENOSYSStub(t *testing.T) {
	a := nativeArch(t)
	p := mustCompile(t, &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read", "write", "openat"}, Action: specs.ActAllow},
			// Equal to the default: dropped, but it still counts for the highest known number.
			{Names: []string{"statx"}, Action: specs.ActErrno},
		},
	})
	max := nr(t, a, "statx")
	for _, tc := range []struct {
		nr   int32
		want uint32
	}{
		{nr(t, a, "read"), unix.SECCOMP_RET_ALLOW},
		{nr(t, a, "getpid"), retErrno(unix.EPERM)},
		{max, retErrno(unix.EPERM)},
		{max + 1, retErrno(unix.ENOSYS)},
		{1000, retErrno(unix.ENOSYS)},
	} {
		if got := decideData(t, p, seccompData{nr: tc.nr, arch: a.audit}); got != tc.want {
			t.Errorf("nr %d: got %#x, want %#x", tc.nr, got, tc.want)
		}
	}
	if p.Rules != 3 {
		t.Errorf("Rules = %d, want 3 (statx dropped)", p.Rules)
	}
}

func TestArchitectures(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("skipped: the architecture cases are written for amd64")
	}
	x86, _ := archByName(specs.ArchX86)
	x32, _ := archByName(specs.ArchX32)
	amd64, _ := archByName(specs.ArchX86_64)
	arm64, _ := archByName(specs.ArchAARCH64)
	rules := []specs.LinuxSyscall{{Names: []string{"read", "openat"}, Action: specs.ActAllow}}

	all := mustCompile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}, Syscalls: rules})
	if got, want := strings.Join(all.Architectures, " "), "SCMP_ARCH_X86_64 SCMP_ARCH_X86 SCMP_ARCH_X32"; got != want {
		t.Errorf("Architectures = %q, want %q", got, want)
	}
	for _, a := range []arch{amd64, x86, x32} {
		if got := decideOn(t, all, a, "read"); got != unix.SECCOMP_RET_ALLOW {
			t.Errorf("%s read: got %#x", a.name, got)
		}
		if got := decideOn(t, all, a, "getpid"); got != retErrno(unix.EPERM) {
			t.Errorf("%s getpid: got %#x", a.name, got)
		}
		// Above the profile's highest number on that architecture: ENOSYS.
		d := seccompData{nr: nr(t, a, "openat") + 1, arch: a.audit}
		if a.name == specs.ArchX86 {
			d.nr = 1000
		}
		if got := decideData(t, all, d); got != retErrno(unix.ENOSYS) {
			t.Errorf("%s nr %#x: got %#x, want ENOSYS", a.name, d.nr, got)
		}
	}
	if got := decideOn(t, all, arm64, "read"); got != unix.SECCOMP_RET_KILL_PROCESS {
		t.Errorf("aarch64 read: got %#x, want KILL_PROCESS (bad arch)", got)
	}

	native := mustCompile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: rules})
	if got := decideOn(t, native, x86, "read"); got != unix.SECCOMP_RET_KILL_PROCESS {
		t.Errorf("native only, i386 read: got %#x, want KILL_PROCESS", got)
	}
	if got := decideOn(t, native, x32, "read"); got == unix.SECCOMP_RET_ALLOW {
		t.Errorf("native only, x32 read: allowed")
	}
	if got := decideOn(t, native, amd64, "read"); got != unix.SECCOMP_RET_ALLOW {
		t.Errorf("native only, read: got %#x", got)
	}
}

func TestOperators(t *testing.T) {
	const big = 0x1_0000_0005 // exercises the upper 32 bits
	for _, tc := range []struct {
		op          specs.LinuxSeccompOperator
		value, two  uint64
		match, miss []uint64
	}{
		{op: specs.OpEqualTo, value: 5, match: []uint64{5}, miss: []uint64{4, 6, big}},
		{op: specs.OpEqualTo, value: big, match: []uint64{big}, miss: []uint64{5}},
		{op: specs.OpNotEqual, value: 5, match: []uint64{4, 6, big}, miss: []uint64{5}},
		{op: specs.OpLessThan, value: 5, match: []uint64{0, 4}, miss: []uint64{5, 6, big}},
		{op: specs.OpLessEqual, value: 5, match: []uint64{0, 5}, miss: []uint64{6, big}},
		{op: specs.OpGreaterThan, value: 5, match: []uint64{6, big}, miss: []uint64{0, 5}},
		{op: specs.OpGreaterEqual, value: 5, match: []uint64{5, big}, miss: []uint64{0, 4}},
		// value is the mask, valueTwo the value the masked argument must equal.
		{op: specs.OpMaskedEqual, value: 0xff00, two: 0x1200, match: []uint64{0x1200, 0x12ff, 0xff12ff}, miss: []uint64{0x1300, 0xff, 0}},
		{op: specs.OpMaskedEqual, value: 0x7E020000, two: 0, match: []uint64{0x11, unix.CLONE_VM | unix.CLONE_THREAD}, miss: []uint64{unix.CLONE_NEWUSER, unix.CLONE_NEWNS | 0x11}},
	} {
		t.Run(string(tc.op), func(t *testing.T) {
			p := mustCompile(t, &specs.LinuxSeccomp{
				DefaultAction: specs.ActErrno,
				Syscalls: []specs.LinuxSyscall{
					{Names: []string{"read", "write"}, Action: specs.ActAllow},
					{Names: []string{"getpid"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 2, Value: tc.value, ValueTwo: tc.two, Op: tc.op}}},
				},
			})
			for _, v := range tc.match {
				if got := decide(t, p, "getpid", 0, 0, v); got != unix.SECCOMP_RET_ALLOW {
					t.Errorf("arg %#x: got %#x, want allow", v, got)
				}
			}
			for _, v := range tc.miss {
				if got := decide(t, p, "getpid", 0, 0, v); got != retErrno(unix.EPERM) {
					t.Errorf("arg %#x: got %#x, want EPERM", v, got)
				}
			}
		})
	}
}

func TestArgsCombination(t *testing.T) {
	p := mustCompile(t, &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{
			// Different arguments: all must hold.
			{Names: []string{"getpid"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{
				{Index: 0, Value: 1, Op: specs.OpEqualTo}, {Index: 1, Value: 2, Op: specs.OpEqualTo}}},
			// The same argument twice: either may hold.
			{Names: []string{"getppid"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{
				{Index: 0, Value: 1, Op: specs.OpEqualTo}, {Index: 0, Value: 2, Op: specs.OpEqualTo}}},
		},
	})
	for _, tc := range []struct {
		name string
		args []uint64
		deny bool
	}{
		{"getpid", []uint64{1, 2}, true},
		{"getpid", []uint64{1, 3}, false},
		{"getpid", []uint64{0, 2}, false},
		{"getppid", []uint64{1}, true},
		{"getppid", []uint64{2}, true},
		{"getppid", []uint64{3}, false},
	} {
		want := uint32(unix.SECCOMP_RET_ALLOW)
		if tc.deny {
			want = retErrno(unix.EPERM)
		}
		if got := decide(t, p, tc.name, tc.args...); got != want {
			t.Errorf("%s%v: got %#x, want %#x", tc.name, tc.args, got, want)
		}
	}
}

func TestFlags(t *testing.T) {
	base := func(flags ...specs.LinuxSeccompFlag) *specs.LinuxSeccomp {
		return &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: flags,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdirat"}, Action: specs.ActErrno}}}
	}
	for _, tc := range []struct {
		flags []specs.LinuxSeccompFlag
		want  uint
	}{
		{nil, unix.SECCOMP_FILTER_FLAG_TSYNC},
		{[]specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_TSYNC"}, unix.SECCOMP_FILTER_FLAG_TSYNC},
		{[]specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog}, unix.SECCOMP_FILTER_FLAG_TSYNC | unix.SECCOMP_FILTER_FLAG_LOG},
		{[]specs.LinuxSeccompFlag{specs.LinuxSeccompFlagSpecAllow}, unix.SECCOMP_FILTER_FLAG_TSYNC | unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW},
		{[]specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow}, unix.SECCOMP_FILTER_FLAG_TSYNC | unix.SECCOMP_FILTER_FLAG_LOG | unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW},
		// Meaningless without a listener: dropped with a warning.
		{[]specs.LinuxSeccompFlag{specs.LinuxSeccompFlagWaitKillableRecv}, unix.SECCOMP_FILTER_FLAG_TSYNC},
	} {
		p := mustCompile(t, base(tc.flags...))
		if p.Flags != tc.want {
			t.Errorf("%v: flags %s, want %s", tc.flags, FlagString(p.Flags), FlagString(tc.want))
		}
	}
	n := base(specs.LinuxSeccompFlagWaitKillableRecv)
	n.Syscalls[0].Action = specs.ActNotify
	n.ListenerPath = "/run/agent.sock"
	p := mustCompile(t, n)
	want := uint(unix.SECCOMP_FILTER_FLAG_TSYNC | unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH | unix.SECCOMP_FILTER_FLAG_NEW_LISTENER | unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV)
	if p.Flags != want {
		t.Errorf("notify: flags %s, want %s", FlagString(p.Flags), FlagString(want))
	}
}

func TestUnknownSyscallNames(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	p, err := compile(&specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read", "write", "no_such_syscall", "getpid"}, Action: specs.ActAllow},
			{Names: []string{"also_unknown"}, Action: specs.ActKill},
		},
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	if got := decide(t, p, "getpid"); got != unix.SECCOMP_RET_ALLOW {
		t.Errorf("getpid after an unknown name: got %#x", got)
	}
	if len(p.Warnings) != 2 || !strings.Contains(p.Warnings[0], "no_such_syscall") {
		t.Errorf("Warnings = %q", p.Warnings)
	}
	if !strings.Contains(logs.String(), "no_such_syscall") || !strings.Contains(logs.String(), "also_unknown") {
		t.Errorf("log = %q", logs.String())
	}
}

func TestRuleEqualToDefaultDropped(t *testing.T) {
	p := mustCompile(t, &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: uptr(uint(unix.EPERM)),
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read", "write"}, Action: specs.ActAllow},
			{Names: []string{"getpid"}, Action: specs.ActErrno}, // EPERM too: dropped
			{Names: []string{"getppid"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(unix.EXDEV))},
		},
	})
	if p.Rules != 3 {
		t.Errorf("Rules = %d, want 3", p.Rules)
	}
	if got := decide(t, p, "getpid"); got != retErrno(unix.EPERM) {
		t.Errorf("getpid: %#x", got)
	}
	if got := decide(t, p, "getppid"); got != retErrno(unix.EXDEV) {
		t.Errorf("getppid: %#x", got)
	}
}

func TestErrors(t *testing.T) {
	ok := func() *specs.LinuxSeccomp {
		return &specs.LinuxSeccomp{DefaultAction: specs.ActErrno,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow}}}
	}
	for _, tc := range []struct {
		name  string
		edit  func(*specs.LinuxSeccomp)
		field string
		is    error
	}{
		{"unknown default", func(s *specs.LinuxSeccomp) { s.DefaultAction = "SCMP_ACT_NOPE" }, "linux.seccomp.defaultAction", ErrInvalid},
		{"default errnoRet with allow", func(s *specs.LinuxSeccomp) { s.DefaultAction = specs.ActAllow; s.DefaultErrnoRet = uptr(1) }, "linux.seccomp.defaultErrnoRet", ErrInvalid},
		{"errnoRet too big", func(s *specs.LinuxSeccomp) { s.DefaultErrnoRet = uptr(70000) }, "linux.seccomp.defaultErrnoRet", ErrInvalid},
		{"unknown action", func(s *specs.LinuxSeccomp) { s.Syscalls[0].Action = "SCMP_ACT_MAYBE" }, "linux.seccomp.syscalls[0].action", ErrInvalid},
		{"errnoRet with kill", func(s *specs.LinuxSeccomp) { s.Syscalls[0].Action = specs.ActKill; s.Syscalls[0].ErrnoRet = uptr(1) }, "linux.seccomp.syscalls[0].errnoRet", ErrInvalid},
		{"no names", func(s *specs.LinuxSeccomp) { s.Syscalls[0].Names = nil }, "linux.seccomp.syscalls[0].names", ErrInvalid},
		{"unknown op", func(s *specs.LinuxSeccomp) {
			s.Syscalls[0].Args = []specs.LinuxSeccompArg{{Index: 0, Op: "SCMP_CMP_SOMETIMES"}}
		}, "linux.seccomp.syscalls[0].args[0].op", ErrInvalid},
		{"arg index", func(s *specs.LinuxSeccomp) {
			s.Syscalls[0].Args = []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}
		}, "linux.seccomp.syscalls[0].args[0].index", ErrInvalid},
		{"unknown arch", func(s *specs.LinuxSeccomp) { s.Architectures = []specs.Arch{specs.ArchX86, "SCMP_ARCH_PDP11"} }, "linux.seccomp.architectures[1]", ErrInvalid},
		{"unknown flag", func(s *specs.LinuxSeccomp) { s.Flags = []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_NEW_LISTENER"} }, "linux.seccomp.flags[0]", ErrInvalid},
		{"notify default", func(s *specs.LinuxSeccomp) { s.DefaultAction = specs.ActNotify; s.ListenerPath = "/x" }, "linux.seccomp.defaultAction", ErrNotifyForbidden},
		{"notify write", func(s *specs.LinuxSeccomp) {
			s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: []string{"mkdir", "write"}, Action: specs.ActNotify})
			s.ListenerPath = "/x"
		}, "linux.seccomp.syscalls[1].names[1]", ErrNotifyForbidden},
		{"notify execve", func(s *specs.LinuxSeccomp) {
			s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: []string{"execve"}, Action: specs.ActNotify})
			s.ListenerPath = "/x"
		}, "linux.seccomp.syscalls[1].names[0]", ErrNotifyForbidden},
		{"notify without listenerPath", func(s *specs.LinuxSeccomp) {
			s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: []string{"mkdir"}, Action: specs.ActNotify})
		}, "linux.seccomp.listenerPath", ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := ok()
			tc.edit(s)
			_, err := Compile(s, Options{})
			if err == nil {
				t.Fatal("no error")
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Errorf("error %q: want field %q", err, tc.field)
			}
			if !errors.Is(err, tc.is) {
				t.Errorf("error %q is not %v", err, tc.is)
			}
		})
	}
}

func TestCompileNil(t *testing.T) {
	p, err := Compile(nil, Options{})
	if p != nil || err != nil {
		t.Fatalf("Compile(nil) = %v, %v", p, err)
	}
}

func TestCache(t *testing.T) {
	programs.reset()
	before := compiles.Load()
	p1, err := Compile(Default(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	p1.Filter[0] ^= 0xff // a caller's change must not reach the cache
	p2, err := Compile(Default(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n := compiles.Load() - before; n != 1 {
		t.Errorf("%d compilations for two equal profiles, want 1", n)
	}
	if p2.Filter[0] == p1.Filter[0] {
		t.Error("cached program was changed through a returned copy")
	}
	other := Default()
	other.Syscalls[0].Names = other.Syscalls[0].Names[1:]
	if _, err := Compile(other, Options{}); err != nil {
		t.Fatal(err)
	}
	if n := compiles.Load() - before; n != 2 {
		t.Errorf("%d compilations for two different profiles, want 2", n)
	}
}

func TestProgramJSON(t *testing.T) {
	p := mustCompile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/run/a.sock", ListenerMetadata: "m",
		Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdirat"}, Action: specs.ActNotify}}})
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var q Program
	if err := json.Unmarshal(b, &q); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(q.Filter, p.Filter) || q.Flags != p.Flags || !q.Notify || q.ListenerPath != "/run/a.sock" || q.ListenerMetadata != "m" {
		t.Errorf("round trip lost data: %+v", q)
	}
	s := p.String()
	for _, want := range []string{"instructions", "NEW_LISTENER", "/run/a.sock", "SCMP_ACT_ALLOW"} {
		if !strings.Contains(s, want) {
			t.Errorf("String() = %q, missing %q", s, want)
		}
	}
}

func TestCompileConcurrent(t *testing.T) {
	programs.reset()
	done := make(chan error, 8)
	for i := 0; i < 8; i++ {
		go func() {
			p, err := Compile(Default(), Options{})
			if err == nil && p.StubLen == 0 {
				err = errors.New("no stub")
			}
			done <- err
		}()
	}
	for i := 0; i < 8; i++ {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
