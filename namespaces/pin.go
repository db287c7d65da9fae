package namespaces

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/libjail/libjail/internal/nsenter"
)

// PinOptions tunes [Pin].
type PinOptions struct {
	// UIDMappings and GIDMappings are written for a new user namespace (required when types has User).
	UIDMappings []specs.LinuxIDMapping
	GIDMappings []specs.LinuxIDMapping
	// UserNS, when set, is an existing user namespace (a path) that owns the new namespaces. It
	// excludes User from types.
	UserNS string
	// Timeout bounds the wait for the helper process (default 10s).
	Timeout time.Duration
	// Executable is what the helper runs (it must link internal/nsenter, like the agent). Default
	// /proc/self/exe. A pinned pid namespace's helper is pid 1 of every container that joins it, so
	// its /proc/1/exe is theirs to open: give it a sealed copy that no one can write.
	Executable string
}

// Pinned is a set of namespaces kept alive by bind mounts of their nsfs files under Dir, one file per
// type named as under /proc/<pid>/ns (Dir/net, Dir/user, ...). It is plain data: a restarted agent can
// unmarshal it and still Release.
type Pinned struct {
	Dir   string          `json:"dir"`
	Paths map[Type]string `json:"paths"`
	// OwnDir is set when Pin created Dir, so Release removes it.
	OwnDir bool `json:"ownDir,omitempty"`
	// InitPID is the process that keeps a pinned pid namespace alive as its init (0 without PID).
	InitPID int `json:"initPid,omitempty"`

	done func() error // ends and reaps InitPID; nil in a Pinned read back from JSON
}

// Path returns the file pinning the namespace of type t ("" if it was not pinned).
func (p *Pinned) Path(t Type) string { return p.Paths[t] }

// Pin creates one new namespace of each type in types and keeps it alive without a process: a helper
// (the running executable re-executed, which stops in internal/nsenter's constructor and never reaches
// main) is started with them, their /proc/<pid>/ns files are bind-mounted under dir, and the helper
// exits. With User in types every other namespace is created inside that new user namespace (owned by
// it), which is the pod pattern: a container that joins the user and network namespaces is privileged
// over the network namespace and can mount sysfs.
//
// A pid namespace ends with its init, so pinning PID keeps the helper alive as that init (InitPID, a
// process per pod, not per container): it sleeps, reaps the orphans of the containers that join the
// namespace, and exits when Release closes its stdin or the caller dies. With User, the pid namespace
// is owned by the pod's user namespace and the containers that join both can mount their procfs.
//
// dir is created (mode 0700) if missing. On error nothing is left mounted and what Pin created is
// removed.
func Pin(dir string, types []Type, opts PinOptions) (pinned *Pinned, err error) {
	seen := map[Type]bool{}
	for _, t := range types {
		switch {
		case !t.Valid():
			return nil, fmt.Errorf("namespaces: pin %q: %w", t, ErrUnknownType)
		case t == PID && opts.UserNS != "":
			return nil, fmt.Errorf("namespaces: pin pid with UserNS: %w: its init would have to be forked inside the user namespace", ErrNotPinnable)
		case seen[t]:
			return nil, fmt.Errorf("namespaces: pin %s: %w", t, ErrDuplicate)
		}
		seen[t] = true
	}
	if len(types) == 0 {
		return nil, errors.New("namespaces: pin: no types")
	}
	if seen[User] {
		if opts.UserNS != "" {
			return nil, fmt.Errorf("namespaces: pin: UserNS set and a new user namespace asked for: %w", ErrUnsupported)
		}
		for _, m := range []struct {
			field string
			maps  []specs.LinuxIDMapping
		}{{"UIDMappings", opts.UIDMappings}, {"GIDMappings", opts.GIDMappings}} {
			if len(m.maps) == 0 {
				return nil, fmt.Errorf("namespaces: pin: %w: %s", ErrNoMappings, m.field)
			}
			if err := checkMappings(m.field, m.maps); err != nil {
				return nil, fmt.Errorf("namespaces: pin: %w", err)
			}
		}
	} else if len(opts.UIDMappings)+len(opts.GIDMappings) > 0 {
		return nil, fmt.Errorf("namespaces: pin: %w", ErrNoUserNS)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}

	pinned = &Pinned{Dir: dir, Paths: map[Type]string{}}
	if err := os.Mkdir(dir, 0o700); err == nil {
		pinned.OwnDir = true
	} else if !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("namespaces: pin: %w", err)
	}
	defer func() {
		if err != nil {
			if rerr := pinned.Release(); rerr != nil {
				err = errors.Join(err, rerr)
			}
			pinned = nil
		}
	}()

	pid, done, err := startHolder(types, opts)
	if err != nil {
		return pinned, err
	}
	if seen[PID] {
		// The helper is the pid namespace's init and has to stay: Release ends it.
		pinned.InitPID, pinned.done = pid, done
	} else {
		defer func() {
			if derr := done(); derr != nil && err == nil {
				err = derr
			}
		}()
	}
	for _, t := range types {
		src := fmt.Sprintf("/proc/%d/ns/%s", pid, t.ProcName())
		if t == Time {
			// unshare(CLONE_NEWTIME) only moves the helper's children: pin that one.
			src += "_for_children"
		}
		dst := filepath.Join(dir, t.ProcName())
		f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_RDONLY|unix.O_CLOEXEC, 0o400)
		if err != nil {
			return pinned, fmt.Errorf("namespaces: pin %s: %w", t, err)
		}
		f.Close()
		pinned.Paths[t] = dst
		if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
			return pinned, fmt.Errorf("namespaces: pin %s: %w", t, &os.PathError{Op: "bind mount " + src, Path: dst, Err: err})
		}
	}
	return pinned, nil
}

// startHolder starts the helper holding new namespaces of types and waits until they exist. done ends
// the helper and reaps it.
func startHolder(types []Type, opts PinOptions) (pid int, done func() error, err error) {
	exe := opts.Executable
	if exe == "" {
		exe = "/proc/self/exe"
	}
	cmd := exec.Command(exe)
	cmd.Args = []string{"libjail-nspin"}
	cmd.Env = []string{}
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	spec := nsenter.Spec{Hold: true}
	// A held pid namespace's init is seen by every container of it: shut it away from the host
	// (unless the mount namespace is pinned too, which the jail would replace).
	spec.Jail = slices.Contains(types, PID) && !slices.Contains(types, Mount)
	var userFile *os.File
	for _, t := range types {
		switch {
		case t == Time || opts.UserNS != "":
			// Time: clone(2) cannot take CLONE_NEWTIME. UserNS: made after joining it.
			spec.Unshare |= t.Flag()
		default:
			cmd.SysProcAttr.Cloneflags |= uintptr(t.Flag())
		}
	}
	if opts.UserNS != "" {
		if userFile, err = openNS(opts.UserNS, User); err != nil {
			return 0, nil, fmt.Errorf("namespaces: pin: UserNS: %w", err)
		}
		defer userFile.Close()
		cmd.ExtraFiles = []*os.File{userFile}
		spec.Joins = []nsenter.Join{{Flag: User.Flag(), FD: 3}}
	}
	if cmd.SysProcAttr.Cloneflags&unix.CLONE_NEWUSER != 0 {
		cmd.SysProcAttr.UidMappings = sysMappings(opts.UIDMappings)
		cmd.SysProcAttr.GidMappings = sysMappings(opts.GIDMappings)
		cmd.SysProcAttr.GidMappingsEnableSetgroups = true
		if maps(opts.UIDMappings, 0) && maps(opts.GIDMappings, 0) {
			// Root inside keeps its capabilities across execve, to unshare a time namespace.
			cmd.SysProcAttr.Credential = &syscall.Credential{}
		}
	}
	cmd.Env = append(cmd.Env, nsenter.EnvName+"="+spec.String())
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 0, nil, err
	}
	ready, readyW, err := os.Pipe()
	if err != nil {
		return 0, nil, err
	}
	defer ready.Close()
	cmd.Stdout = readyW
	err = cmd.Start()
	readyW.Close()
	if err != nil {
		return 0, nil, fmt.Errorf("namespaces: pin: start helper: %w", err)
	}
	done = func() error {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			return fmt.Errorf("namespaces: pin helper: %w", err)
		}
		return nil
	}
	ready.SetReadDeadline(time.Now().Add(opts.Timeout))
	var b [1]byte
	if _, err := io.ReadFull(ready, b[:]); err != nil {
		cmd.Process.Kill()
		werr := done()
		return 0, nil, fmt.Errorf("namespaces: pin: helper not ready: %w", errors.Join(err, werr))
	}
	return cmd.Process.Pid, done, nil
}

// Release unmounts the pinned namespaces (each lives on while a process or another mount uses it) and
// removes their files, and Dir if Pin created it. It can be called again after a partial failure.
// With a pinned pid namespace it also ends its init, which kills every process left in that namespace.
func (p *Pinned) Release() error {
	var errs []error
	if p.InitPID != 0 {
		if err := p.endInit(); err != nil {
			return fmt.Errorf("namespaces: release %s: %w", p.Dir, err)
		}
	}
	for t, path := range p.Paths {
		if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
			errs = append(errs, &os.PathError{Op: "unmount", Path: path, Err: err})
			continue
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		delete(p.Paths, t)
	}
	if p.OwnDir && len(errs) == 0 {
		if err := os.Remove(p.Dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("namespaces: release %s: %w", p.Dir, errors.Join(errs...))
	}
	return nil
}

// endInit ends the init of a pinned pid namespace: through its stdin when this process started it, else
// (a Pinned read back from JSON) with SIGKILL through a pidfd, after checking that the process is still
// the init of the pinned namespace and not a reuse of its pid.
func (p *Pinned) endInit() error {
	if p.done != nil {
		// The init's exit makes the kernel kill every process of the namespace, and the init is only
		// reaped once all of them are, including the caller's own children there (containers that it
		// has not waited for yet). So do not block on it: the caller's waits finish the job.
		done := p.done
		p.done, p.InitPID = nil, 0
		go done()
		return nil
	}
	pidfd, err := unix.PidfdOpen(p.InitPID, 0)
	if err == unix.ESRCH {
		p.InitPID = 0
		return nil
	} else if err != nil {
		return fmt.Errorf("pidfd_open %d: %w", p.InitPID, err)
	}
	defer unix.Close(pidfd)
	if p.Paths[PID] == "" {
		// Nothing to check the process against: leave it rather than kill a stranger.
		return fmt.Errorf("pid namespace init %d: no pinned pid namespace to check it against", p.InitPID)
	}
	want, err := statNS(p.Paths[PID])
	if err != nil {
		return err
	}
	got, err := statNS(fmt.Sprintf("/proc/%d/ns/pid", p.InitPID))
	if err == nil && got == want {
		if err := unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0); err != nil && err != unix.ESRCH {
			return fmt.Errorf("kill pid namespace init %d: %w", p.InitPID, err)
		}
	}
	p.InitPID = 0
	return nil
}

func (p *Pinned) String() string {
	var parts []string
	for _, t := range Types {
		if path, ok := p.Paths[t]; ok {
			parts = append(parts, string(t)+"="+path)
		}
	}
	if p.InitPID != 0 {
		parts = append(parts, fmt.Sprintf("(pid init %d)", p.InitPID))
	}
	return strings.Join(parts, " ")
}
