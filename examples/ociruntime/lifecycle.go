package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/libjail/libjail"
)

// errNoConsole refuses a terminal with nowhere to send its master: only a foreground run or exec
// relays one through its own stdio.
var errNoConsole = errors.New("a terminal needs --console-socket unless the process runs in the foreground")

// seccompCacheDir is the directory under the root where compiled seccomp profiles are kept.
const seccompCacheDir = "seccomp-cache"

// createOpts are the flags create and run share.
type createOpts struct {
	bundle, pidFile, consoleSocket string
	noPivot                        bool
	foreground                     bool // run without --detach: a terminal may be relayed here
}

func (o *createOpts) define(fs interface {
	StringVar(*string, string, string, string)
	BoolVar(*bool, string, bool, string)
}) {
	fs.StringVar(&o.bundle, "bundle", ".", "bundle directory")
	fs.StringVar(&o.bundle, "b", ".", "bundle directory")
	fs.StringVar(&o.pidFile, "pid-file", "", "file to write the container's pid to")
	fs.StringVar(&o.consoleSocket, "console-socket", "", "AF_UNIX socket to receive the console's master")
	fs.BoolVar(&o.noPivot, "no-pivot", false, "enter the root with MS_MOVE+chroot instead of pivot_root")
}

func cmdCreate(g *globals, args []string) error {
	fs := flags("create")
	var o createOpts
	o.define(fs)
	fs.Bool("no-new-keyring", false, "ignored")
	fs.Int("preserve-fds", 0, "not supported: refused when not 0")
	if err := parse(fs, args, 1, 1); err != nil {
		return err
	}
	if fs.Lookup("preserve-fds").Value.String() != "0" {
		return errors.New("--preserve-fds is not supported")
	}
	c, err := createContainer(g, fs.Arg(0), &o)
	if err != nil {
		return err
	}
	// The child waits at its start barrier; it outlives this process.
	c.Release()
	return nil
}

// createContainer plans and creates a container from a bundle, with its state under the root,
// and writes the pid file.
func createContainer(g *globals, id string, o *createOpts) (*libjail.Container, error) {
	bundle, err := filepath.Abs(o.bundle)
	if err != nil {
		return nil, err
	}
	spec, err := libjail.ReadBundleSpec(bundle)
	if err != nil {
		return nil, err
	}
	if spec.Process != nil && spec.Process.Terminal && o.consoleSocket == "" && !o.foreground {
		return nil, errNoConsole
	}
	if id == podsDir || id == seccompCacheDir {
		return nil, fmt.Errorf("container id %q is reserved: the runtime keeps its own records there", id)
	}
	if err := os.MkdirAll(g.root, 0o711); err != nil {
		return nil, err
	}
	opts := libjail.Options{
		Bundle: bundle, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		StateDir: g.root, NoPivot: o.noPivot, Logger: g.log, ConsoleSocket: o.consoleSocket,
		// One container per process: a compiled seccomp profile is worth keeping on disk.
		SeccompCacheDir: filepath.Join(g.root, seccompCacheDir),
	}
	c, err := newContainer(g, id, spec, opts)
	if err != nil {
		return nil, err
	}
	if err := writePidFile(o.pidFile, c.Pid()); err != nil {
		_ = destroy(g, c, true)
		return nil, err
	}
	return c, nil
}

// writePidFile writes pid atomically (temporary file, then rename), so a reader never sees a
// partial number.
func writePidFile(path string, pid int) error {
	if path == "" {
		return nil
	}
	path, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(strconv.Itoa(pid)); err != nil {
		tmp.Close()
		return fmt.Errorf("pid file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	return os.Rename(tmp.Name(), path)
}

// load finds a container under the root; the caller must Release it.
func load(g *globals, id string) (*libjail.Container, error) {
	c, err := libjail.Load(g.root, id, libjail.Options{Logger: g.log})
	if errors.Is(err, libjail.ErrNotExist) {
		return nil, fmt.Errorf("container %q does not exist", id)
	}
	return c, err
}

// withContainer loads a container, runs f on it and releases it.
func withContainer(g *globals, id string, f func(c *libjail.Container) error) error {
	c, err := load(g, id)
	if err != nil {
		return err
	}
	defer c.Release()
	return f(c)
}

func cmdStart(g *globals, args []string) error {
	fs := flags("start")
	if err := parse(fs, args, 1, 1); err != nil {
		return err
	}
	return withContainer(g, fs.Arg(0), func(c *libjail.Container) error {
		switch st := c.Status(); st {
		case libjail.StatusCreated:
			return c.Start(context.Background())
		case libjail.StatusStopped:
			return errors.New("cannot start a container that has stopped")
		default:
			return fmt.Errorf("cannot start an already %s container", st)
		}
	})
}

// stateJSON is what `state` prints: the OCI state plus runc's rootfs and owner fields.
type stateJSON struct {
	specs.State
	Rootfs string `json:"rootfs"`
	Owner  string `json:"owner"`
}

func cmdState(g *globals, args []string) error {
	fs := flags("state")
	if err := parse(fs, args, 1, 1); err != nil {
		return err
	}
	return withContainer(g, fs.Arg(0), func(c *libjail.Container) error { return printJSON(stateOf(c)) })
}

func stateOf(c *libjail.Container) stateJSON {
	st := stateJSON{State: c.State()}
	if st.Status == specs.StateStopped {
		st.Pid = 0
	}
	if spec, err := libjail.ReadBundleSpec(st.Bundle); err == nil && spec.Root != nil {
		st.Rootfs = spec.Root.Path
		if !filepath.IsAbs(st.Rootfs) {
			st.Rootfs = filepath.Join(st.Bundle, st.Rootfs)
		}
	}
	return st
}

func printJSON(v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(append(b, '\n'))
	return err
}

func cmdKill(g *globals, args []string) error {
	fs := flags("kill")
	all := fs.Bool("all", false, "signal every process of the container")
	alias(fs, "a", "all")
	if err := parse(fs, args, 1, 2); err != nil {
		return err
	}
	sig := unix.SIGTERM
	if fs.NArg() == 2 {
		var err error
		if sig, err = parseSignal(fs.Arg(1)); err != nil {
			return err
		}
	}
	return withContainer(g, fs.Arg(0), func(c *libjail.Container) error {
		if *all {
			return c.SignalAll(sig)
		}
		return c.Signal(sig)
	})
}

// parseSignal takes a signal by number or by name, with or without the SIG prefix.
func parseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("invalid signal %q", s)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

func cmdDelete(g *globals, args []string) error {
	fs := flags("delete")
	force := fs.Bool("force", false, "kill the container if it still runs")
	alias(fs, "f", "force")
	if err := parse(fs, args, 1, 1); err != nil {
		return err
	}
	id := fs.Arg(0)
	c, err := libjail.Load(g.root, id, libjail.Options{Logger: g.log})
	if errors.Is(err, libjail.ErrNotExist) {
		if *force {
			// A create that died before saving any state may have left its directory, and a
			// pod its membership.
			return errors.Join(removeLeftover(g, id), leavePod(g, id))
		}
		return fmt.Errorf("container %q does not exist", id)
	}
	if err != nil {
		return err
	}
	switch st := c.Status(); st {
	case libjail.StatusCreated:
		// Never started: deleting it kills its waiting child, as runc does.
		return destroy(g, c, true)
	case libjail.StatusRunning, libjail.StatusPaused:
		if !*force {
			c.Release()
			return fmt.Errorf("cannot delete container %q that is not stopped: %s", id, st)
		}
	}
	return destroy(g, c, true)
}

// removeLeftover removes root/<id> when it holds no state: what a failed create can leave.
func removeLeftover(g *globals, id string) error {
	if id == podsDir || id == seccompCacheDir || filepath.Base(id) != id || id == "." || id == ".." {
		return nil
	}
	dir := filepath.Join(g.root, id)
	if _, err := os.Stat(filepath.Join(dir, "state.json")); err == nil {
		return fmt.Errorf("container %q: state exists but cannot be loaded", id)
	}
	return os.RemoveAll(dir)
}

// destroy removes a container and, when it was the last of its pod, the pod.
func destroy(g *globals, c *libjail.Container, force bool) error {
	if err := c.Destroy(force); err != nil {
		return err
	}
	return leavePod(g, c.ID())
}

func cmdRun(g *globals, args []string) error {
	fs := flags("run")
	var o createOpts
	o.define(fs)
	detach := fs.Bool("detach", false, "return once the container has started")
	alias(fs, "d", "detach")
	keep := fs.Bool("keep", false, "do not delete the container once it exits")
	fs.Bool("no-subreaper", false, "ignored")
	fs.Bool("no-new-keyring", false, "ignored")
	if err := parse(fs, args, 1, 1); err != nil {
		return err
	}
	o.foreground = !*detach
	c, err := createContainer(g, fs.Arg(0), &o)
	if err != nil {
		return err
	}
	drain, resize := func() {}, func() {}
	if master := c.Console(); master != nil {
		drain, resize = relay(master)
	}
	if err := c.Start(context.Background()); err != nil {
		drain()
		_ = destroy(g, c, true)
		return err
	}
	if *detach {
		c.Release()
		return nil
	}
	// Forward the signals a supervisor or a terminal sends to the container's init.
	defer forwardSignals(c.Signal, resize)()
	ps, werr := c.Wait()
	drain()
	if *keep {
		c.Release()
	} else if err := destroy(g, c, true); err != nil {
		g.log.Warn("delete after run", "container", c.ID(), "err", err)
	}
	if werr != nil {
		return werr
	}
	return &exitError{code: exitCode(ps)}
}

// exitCode is a process's exit status as a shell reports it: 128+n when killed by signal n.
func exitCode(ps *os.ProcessState) int {
	if ps == nil {
		return 0
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}
