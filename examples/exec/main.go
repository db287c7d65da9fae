// exec starts a container from a bundle, runs an extra process in it (joining its namespaces and
// cgroup, as `runc exec` does) with stdio attached, then stops the container.
//
//	exec --bundle DIR [--] command [args...]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/libjail/libjail"
)

func main() {
	libjail.Init()
	bundle := flag.String("bundle", ".", "OCI bundle directory; its process is replaced by a long sleep")
	id := flag.String("id", "libjail-exec-example", "container id")
	flag.Parse()
	code, err := run(*bundle, *id, flag.Args())
	if err != nil {
		fmt.Fprintln(os.Stderr, "exec:", err)
		os.Exit(125)
	}
	os.Exit(code)
}

func run(bundle, id string, args []string) (int, error) {
	if len(args) == 0 {
		args = []string{"/bin/sh"}
	}
	dir, err := filepath.Abs(bundle)
	if err != nil {
		return 0, err
	}
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return 0, err
	}
	var spec specs.Spec
	if err := json.Unmarshal(b, &spec); err != nil {
		return 0, err
	}
	spec.Process.Args = []string{"/bin/sleep", "3600"}
	c, err := libjail.New(id, &spec, libjail.Options{Bundle: dir})
	if err != nil {
		return 0, err
	}
	defer c.Destroy(true)
	if err := c.Start(context.Background()); err != nil {
		return 0, err
	}
	p, err := c.Exec(context.Background(), &specs.Process{
		Args: args, Env: spec.Process.Env, Cwd: "/", User: spec.Process.User,
		Capabilities: spec.Process.Capabilities, NoNewPrivileges: spec.Process.NoNewPrivileges,
	}, libjail.ExecOptions{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
	if err != nil {
		return 0, err
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
