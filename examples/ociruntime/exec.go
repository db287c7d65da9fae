package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/libjail/libjail"
)

// listFlag is a flag that may be given several times.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func cmdExec(g *globals, args []string) error {
	fs := flags("exec")
	processFile := fs.String("process", "", "JSON file holding the process (an OCI spec's process)")
	alias(fs, "p", "process")
	tty := fs.Bool("tty", false, "allocate a pseudo-terminal")
	alias(fs, "t", "tty")
	detach := fs.Bool("detach", false, "return once the process has started")
	alias(fs, "d", "detach")
	pidFile := fs.String("pid-file", "", "file to write the process's pid to")
	consoleSocket := fs.String("console-socket", "", "AF_UNIX socket to receive the console's master")
	cwd := fs.String("cwd", "", "working directory in the container")
	user := fs.String("user", "", "uid[:gid]")
	alias(fs, "u", "user")
	noNewPrivs := fs.Bool("no-new-privs", false, "set no_new_privs")
	var env, gids, caps listFlag
	fs.Var(&env, "env", "environment variable KEY=VALUE (repeatable)")
	fs.Var(&env, "e", "alias of --env")
	fs.Var(&gids, "additional-gids", "additional gid (repeatable)")
	fs.Var(&gids, "g", "alias of --additional-gids")
	fs.Var(&caps, "cap", "capability to add (repeatable)")
	fs.Var(&caps, "c", "alias of --cap")
	fs.Bool("ignore-paused", false, "ignored: a paused container refuses exec")
	if err := parse(fs, args, 1, -1); err != nil {
		return err
	}
	id := fs.Arg(0)
	if *processFile == "" && fs.NArg() < 2 {
		return errors.New("exec: give the command as arguments or with --process")
	}
	c, err := load(g, id)
	if err != nil {
		return err
	}
	defer c.Release()

	var proc *specs.Process
	if *processFile != "" {
		if proc, err = readProcess(*processFile); err != nil {
			return err
		}
	} else {
		// The container's own process is the template, as with runc: user, env, capabilities,
		// rlimits and no_new_privs carry over; the flags change them.
		spec, err := libjail.ReadBundleSpec(c.State().Bundle)
		if err != nil {
			return fmt.Errorf("exec: the container's config: %w", err)
		}
		if spec.Process == nil {
			return errors.New("exec: the container's config has no process")
		}
		p := *spec.Process
		proc = &p
		proc.Args = fs.Args()[1:]
		proc.Env = append(append([]string(nil), proc.Env...), env...)
		if *cwd != "" {
			proc.Cwd = *cwd
		}
		if err := applyUser(proc, *user, gids); err != nil {
			return err
		}
		if *noNewPrivs {
			proc.NoNewPrivileges = true
		}
		addCaps(proc, caps)
	}
	if *tty {
		proc.Terminal = true
	}
	if proc.Terminal && *consoleSocket == "" && *detach {
		return errNoConsole
	}
	p, err := c.Exec(context.Background(), proc, libjail.ExecOptions{
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, ConsoleSocket: *consoleSocket,
	})
	if err != nil {
		return err
	}
	if err := writePidFile(*pidFile, p.Pid()); err != nil {
		_ = p.Signal(unix.SIGKILL)
		return err
	}
	if *detach {
		return nil
	}
	drain, resize := func() {}, func() {}
	if master := p.Console(); master != nil {
		drain, resize = relay(master)
	}
	defer forwardSignals(p.Signal, resize)()
	ps, err := p.Wait()
	drain()
	if err != nil {
		return err
	}
	return &exitError{code: exitCode(ps)}
}

func readProcess(path string) (*specs.Process, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var p specs.Process
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(p.Args) == 0 {
		return nil, fmt.Errorf("%s: process.args: empty", path)
	}
	return &p, nil
}

// applyUser sets --user uid[:gid] and --additional-gids.
func applyUser(p *specs.Process, user string, gids []string) error {
	if user != "" {
		u, g, hasG := strings.Cut(user, ":")
		uid, err := strconv.ParseUint(u, 10, 32)
		if err != nil {
			return fmt.Errorf("--user %q: want uid[:gid] as numbers", user)
		}
		p.User.UID = uint32(uid)
		if hasG {
			gid, err := strconv.ParseUint(g, 10, 32)
			if err != nil {
				return fmt.Errorf("--user %q: want uid[:gid] as numbers", user)
			}
			p.User.GID = uint32(gid)
		}
	}
	for _, s := range gids {
		gid, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return fmt.Errorf("--additional-gids %q: not a number", s)
		}
		p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(gid))
	}
	return nil
}

// addCaps adds --cap names to the bounding, effective and permitted sets (ambient too, when the
// process has an ambient set), copying the template's sets first.
func addCaps(p *specs.Process, caps []string) {
	if len(caps) == 0 {
		return
	}
	var c specs.LinuxCapabilities
	if p.Capabilities != nil {
		c = *p.Capabilities
	}
	add := func(set []string) []string {
		out := append([]string(nil), set...)
		for _, name := range caps {
			name = strings.ToUpper(name)
			if !strings.HasPrefix(name, "CAP_") {
				name = "CAP_" + name
			}
			out = append(out, name)
		}
		return out
	}
	c.Bounding, c.Effective, c.Permitted = add(c.Bounding), add(c.Effective), add(c.Permitted)
	if len(c.Ambient) > 0 {
		c.Ambient = add(c.Ambient)
	}
	p.Capabilities = &c
}
