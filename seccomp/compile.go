package seccomp

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// Options tune [Compile].
type Options struct {
	// Logger receives warnings (unknown syscall names, ignored fields). nil discards them.
	Logger *slog.Logger
	// CacheDir, when set, also keeps compiled programs on disk there (see diskcache.go): for
	// command lines, which start a process per container. It must be private to the caller.
	CacheDir string
}

// Compile translates an OCI seccomp profile with libseccomp and compiles it to a raw BPF program,
// in the parent. A nil profile gives a nil Program and no error: the spec asks for no filter.
//
// Identical profiles (compared by content) are compiled once per process: later calls return a
// copy of the cached Program without calling libseccomp, and do not log the warnings again (they
// stay in Program.Warnings). Errors are not cached.
func Compile(spec *specs.LinuxSeccomp, opts Options) (*Program, error) {
	if spec == nil {
		return nil, nil
	}
	key, err := cacheKey(spec)
	if err != nil {
		return nil, err
	}
	if p := programs.get(key); p != nil {
		return p.clone(), nil
	}
	if opts.CacheDir != "" {
		if p := diskGet(opts.CacheDir, key); p != nil {
			programs.put(key, p)
			return p.clone(), nil
		}
	}
	p, err := compile(spec, opts.Logger)
	if err != nil {
		return nil, err
	}
	programs.put(key, p)
	if opts.CacheDir != "" {
		diskPut(opts.CacheDir, key, p)
	}
	return p.clone(), nil
}

// compiles counts uncached compilations, for tests.
var compiles atomic.Int64

// compiler holds the state of one translation.
type compiler struct {
	log      *slog.Logger
	prog     *Program
	filter   *libseccomp.ScmpFilter
	archs    []arch
	names    map[string]bool                  // every known syscall name the profile mentions, for the ENOSYS stub
	plain    map[string]libseccomp.ScmpAction // unconditional rules so far, to report conflicts
	defAct   libseccomp.ScmpAction
	hasNotif bool
}

func (c *compiler) warn(msg string, args ...any) {
	var b strings.Builder
	b.WriteString(msg)
	for i := 0; i+1 < len(args); i += 2 {
		fmt.Fprintf(&b, " %v=%v", args[i], args[i+1])
	}
	c.prog.Warnings = append(c.prog.Warnings, b.String())
	if c.log != nil {
		c.log.Warn("seccomp: "+msg, args...)
	}
}

// compile does the uncached work of Compile.
func compile(spec *specs.LinuxSeccomp, log *slog.Logger) (*Program, error) {
	compiles.Add(1)
	c := &compiler{log: log, prog: &Program{}, names: map[string]bool{}, plain: map[string]libseccomp.ScmpAction{}}

	def, err := translateAction(spec.DefaultAction, spec.DefaultErrnoRet, "linux.seccomp.defaultAction", "linux.seccomp.defaultErrnoRet")
	if err != nil {
		return nil, err
	}
	if def == libseccomp.ActNotify {
		return nil, &FieldError{Field: "linux.seccomp.defaultAction", Err: fmt.Errorf("%w: as the default action it would trap the syscalls that deliver the listener", ErrNotifyForbidden)}
	}
	c.defAct = def
	c.prog.DefaultAction = actionString(def)

	flags, err := translateFlags(spec.Flags)
	if err != nil {
		return nil, err
	}

	c.filter, err = libseccomp.NewFilter(def)
	if err != nil {
		return nil, &FieldError{Field: "linux.seccomp.defaultAction", Err: err}
	}
	defer c.filter.Release()
	// A syscall from an architecture the profile does not list kills the whole process: killing
	// one thread (libseccomp's default) leaves a multi-threaded program half alive.
	if err := c.filter.SetBadArchAction(libseccomp.ActKillProcess); err != nil {
		return nil, fmt.Errorf("seccomp: set bad-architecture action: %w", err)
	}
	if err := c.addArches(spec.Architectures); err != nil {
		return nil, err
	}
	for i, sc := range spec.Syscalls {
		if err := c.addSyscall(i, sc); err != nil {
			return nil, err
		}
	}

	if c.hasNotif {
		if spec.ListenerPath == "" {
			return nil, invalidf("linux.seccomp.listenerPath", "required when SCMP_ACT_NOTIFY is used")
		}
		// NEW_LISTENER with TSYNC needs TSYNC_ESRCH (Linux 5.7): the return value is the listener
		// fd, so a failed thread sync must come back as an errno instead of a thread id.
		flags |= unix.SECCOMP_FILTER_FLAG_NEW_LISTENER | unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH
		c.prog.Notify = true
		c.prog.ListenerPath = spec.ListenerPath
		c.prog.ListenerMetadata = spec.ListenerMetadata
	} else {
		if flags&unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV != 0 {
			// The kernel refuses this flag without a listener; it only changes how notified
			// syscalls wait, so without SCMP_ACT_NOTIFY it has nothing to do.
			c.warn("flag ignored: the profile uses no SCMP_ACT_NOTIFY", "flag", string(specs.LinuxSeccompFlagWaitKillableRecv))
			flags &^= unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
		}
		if spec.ListenerPath != "" {
			c.warn("listenerPath ignored: the profile uses no SCMP_ACT_NOTIFY", "listenerPath", spec.ListenerPath)
		}
	}
	c.prog.Flags = flags

	bpf, err := exportBPF(c.filter)
	if err != nil {
		return nil, err
	}
	if needsStub(def) {
		stub, err := buildStub(c.maxes())
		if err != nil {
			return nil, err
		}
		c.prog.StubLen = len(stub)
		bpf = append(encode(stub), bpf...)
	}
	if len(bpf)/8 > maxInsns {
		return nil, invalidf("linux.seccomp.syscalls", "compiled program has %d instructions, more than the kernel's limit of %d", len(bpf)/8, maxInsns)
	}
	c.prog.Filter = bpf
	for _, a := range c.archs {
		c.prog.Architectures = append(c.prog.Architectures, string(a.name))
	}
	return c.prog, nil
}

// needsStub reports whether syscalls newer than the profile would otherwise get something other
// than ENOSYS or success.
func needsStub(def libseccomp.ScmpAction) bool {
	switch def {
	case libseccomp.ActAllow, libseccomp.ActLog, libseccomp.ActErrno.SetReturnCode(int16(unix.ENOSYS)):
		return false
	}
	return true
}

func (c *compiler) addArches(specArches []specs.Arch) error {
	native, err := libseccomp.GetNativeArch()
	if err != nil {
		return fmt.Errorf("seccomp: native architecture: %w", err)
	}
	na, ok := archByScmp(native)
	if !ok {
		return fmt.Errorf("seccomp: native architecture %v: %w", native, errors.ErrUnsupported)
	}
	// libseccomp always includes the native architecture; so do we, as runc does.
	c.archs = append(c.archs, na)
	for i, n := range specArches {
		field := fmt.Sprintf("linux.seccomp.architectures[%d]", i)
		a, ok := archByName(n)
		if !ok {
			return invalidf(field, "unknown architecture %q", n)
		}
		if c.hasArch(a) {
			continue
		}
		if err := c.filter.AddArch(a.scmp); err != nil {
			return &FieldError{Field: field, Err: err}
		}
		c.archs = append(c.archs, a)
	}
	return nil
}

func (c *compiler) hasArch(a arch) bool {
	for _, b := range c.archs {
		if b.name == a.name {
			return true
		}
	}
	return false
}

func (c *compiler) addSyscall(i int, sc specs.LinuxSyscall) error {
	field := fmt.Sprintf("linux.seccomp.syscalls[%d]", i)
	if len(sc.Names) == 0 {
		return invalidf(field+".names", "no syscall names")
	}
	act, err := translateAction(sc.Action, sc.ErrnoRet, field+".action", field+".errnoRet")
	if err != nil {
		return err
	}
	conds, err := translateArgs(field, sc.Args)
	if err != nil {
		return err
	}
	if act == libseccomp.ActNotify {
		for j, n := range sc.Names {
			if notifyForbidden[n] {
				return &FieldError{Field: fmt.Sprintf("%s.names[%d]", field, j), Err: fmt.Errorf("%w: %s is needed by the container's setup after the filter is loaded", ErrNotifyForbidden, n)}
			}
		}
	}
	for j, name := range sc.Names {
		nr, err := libseccomp.GetSyscallFromName(name)
		if err != nil {
			// Profiles list syscalls newer than this libseccomp; they get ENOSYS from the stub.
			c.warn("unknown syscall skipped", "syscall", name)
			continue
		}
		c.names[name] = true
		if len(sc.Args) == 0 {
			if prev, ok := c.plain[name]; ok && prev != act {
				// libseccomp keeps the first unconditional rule for a syscall.
				c.warn("conflicting rules, the first one applies", "syscall", name, "first", actionString(prev), "ignored", actionString(act))
				continue
			}
			c.plain[name] = act
		}
		if act == c.defAct {
			continue // libseccomp refuses rules equal to the default, and they change nothing
		}
		if act == libseccomp.ActNotify {
			c.hasNotif = true
		}
		for _, cs := range conds {
			if err := c.filter.AddRuleConditional(nr, act, cs); err != nil {
				return &FieldError{Field: fmt.Sprintf("%s.names[%d]", field, j), Err: fmt.Errorf("add rule for %s: %w", name, err)}
			}
			c.prog.Rules++
		}
	}
	return nil
}

// maxes returns, per architecture, the highest syscall number the profile names.
func (c *compiler) maxes() []archMax {
	out := make([]archMax, 0, len(c.archs))
	for _, a := range c.archs {
		m := archMax{arch: a, max: -1}
		for n := range c.names {
			nr, err := libseccomp.GetSyscallFromNameByArch(n, a.scmp)
			// Negative numbers are libseccomp's pseudo-syscalls (not on this architecture, or
			// multiplexed through socketcall/ipc).
			if err == nil && int32(nr) >= 0 && int64(nr) > m.max {
				m.max = int64(nr)
			}
		}
		out = append(out, m)
	}
	return out
}

// exportBPF writes libseccomp's program to a memfd and reads it back (libseccomp 2.5 has no
// in-memory export).
func exportBPF(f *libseccomp.ScmpFilter) ([]byte, error) {
	fd, err := unix.MemfdCreate("libjail-seccomp", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("seccomp: export: %w", os.NewSyscallError("memfd_create", err))
	}
	file := os.NewFile(uintptr(fd), "libjail-seccomp")
	defer file.Close()
	if err := f.ExportBPF(file); err != nil {
		return nil, fmt.Errorf("seccomp: export: %w", err)
	}
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("seccomp: export: %w", err)
	}
	b, err := io.ReadAll(file)
	if err != nil {
		return nil, fmt.Errorf("seccomp: export: %w", err)
	}
	if len(b) == 0 || len(b)%8 != 0 {
		return nil, fmt.Errorf("seccomp: export: libseccomp wrote %d bytes, not a whole program", len(b))
	}
	return b, nil
}
