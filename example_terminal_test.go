package libjail_test

import (
	"context"
	"fmt"
	"io"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/libjail/libjail"
	"github.com/libjail/libjail/internal/fixtures"
)

// An interactive shell: process.terminal gives the container a pty from its own devpts, and
// Console hands the master to the caller. Needs root, so there is no Output.
func ExampleContainer_Console() {
	spec := fixtures.Spec("/path/to/rootfs", "/bin/sh")
	spec.Process.Terminal = true
	spec.Process.ConsoleSize = &specs.Box{Height: 24, Width: 80}
	c, err := libjail.New("shell", spec, libjail.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Destroy(true)
	if err := c.Create(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	master := c.Console() // the caller's now: it closes it
	defer master.Close()
	go io.Copy(os.Stdout, master)
	if err := c.Start(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Fprintln(master, "echo hello from the container; exit")
	c.Wait()
}

// The OCI convention (runc's --console-socket): the master goes to a unix socket another program
// listens on, as one message whose SCM_RIGHTS carries the fd.
func ExampleOptions_consoleSocket() {
	spec := fixtures.Spec("/path/to/rootfs", "/bin/sh")
	spec.Process.Terminal = true
	c, err := libjail.New("shell", spec, libjail.Options{ConsoleSocket: "/run/my-engine/console.sock"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Destroy(true)
	if err := c.Create(context.Background()); err != nil {
		fmt.Println(err) // StepTerminal when nobody listens on the socket
	}
}

// Sysctls of the container's own namespaces; a VM-wide one (vm.swappiness) or one of a namespace
// the container shares with the agent is refused by New.
func ExampleNew_sysctl() {
	spec := fixtures.Spec("/path/to/rootfs", "/bin/true")
	spec.Linux.Sysctl = map[string]string{
		"net.ipv4.ip_forward": "1",         // a new network namespace
		"kernel.shmmax":       "268435456", // a new ipc namespace
	}
	if _, err := libjail.New("sysctl", spec, libjail.Options{}); err != nil {
		fmt.Println(err)
	}
}
