// exec starts a container from a bundle, runs an extra process in it (joining its namespaces and
// cgroup, as `runc exec` does) with stdio attached, then stops the container. With --tty the process
// gets a terminal in the container's devpts, relayed to this program's stdio.
//
//	exec --bundle DIR [--tty] [--] command [args...]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/libjail/libjail"
)

func main() {
	libjail.Init()
	bundle := flag.String("bundle", ".", "OCI bundle directory; its process is replaced by a long sleep")
	id := flag.String("id", "libjail-exec-example", "container id")
	tty := flag.Bool("tty", false, "give the process a terminal")
	flag.Parse()
	code, err := run(*bundle, *id, *tty, flag.Args())
	if err != nil {
		fmt.Fprintln(os.Stderr, "exec:", err)
		os.Exit(125)
	}
	os.Exit(code)
}

func run(bundle, id string, tty bool, args []string) (int, error) {
	if len(args) == 0 {
		args = []string{"/bin/sh"}
	}
	dir, err := filepath.Abs(bundle)
	if err != nil {
		return 0, err
	}
	spec, err := libjail.ReadBundleSpec(dir)
	if err != nil {
		return 0, err
	}
	spec.Process.Args = []string{"/bin/sleep", "3600"}
	c, err := libjail.New(id, spec, libjail.Options{Bundle: dir})
	if err != nil {
		return 0, err
	}
	defer c.Destroy(true)
	if err := c.Start(context.Background()); err != nil {
		return 0, err
	}
	eo := libjail.ExecOptions{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	if tty {
		eo = libjail.ExecOptions{} // the terminal is its stdio
	}
	p, err := c.Exec(context.Background(), &specs.Process{
		Args: args, Env: spec.Process.Env, Cwd: "/", User: spec.Process.User, Terminal: tty,
		Capabilities: spec.Process.Capabilities, NoNewPrivileges: spec.Process.NoNewPrivileges,
	}, eo)
	if err != nil {
		return 0, err
	}
	if master := p.Console(); master != nil {
		// Relay: our stdin to the terminal, the terminal to our stdout, until the process ends.
		defer master.Close()
		go io.Copy(master, os.Stdin)
		done := make(chan struct{})
		go func() { io.Copy(os.Stdout, master); close(done) }()
		defer func() {
			select {
			case <-done:
			case <-time.After(time.Second):
			}
		}()
	}
	st, err := p.Wait()
	if err != nil {
		return 0, err
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	return st.ExitCode(), nil
}
