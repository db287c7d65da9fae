// run starts one container from an OCI bundle directory (config.json + rootfs) with stdio attached,
// and exits with the container's exit status.
//
//	run --bundle DIR [--id ID] [--cgroup-parent NAME] [--no-pivot]
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/libjail/libjail"
)

func main() {
	libjail.Init() // first thing: in the container's child this never returns

	bundle := flag.String("bundle", ".", "OCI bundle directory")
	id := flag.String("id", "", "container id (default: the bundle directory's name)")
	parent := flag.String("cgroup-parent", "/libjail", "parent of a relative cgroupsPath")
	noPivot := flag.Bool("no-pivot", false, "enter the root with MS_MOVE+chroot instead of pivot_root")
	verbose := flag.Bool("v", false, "log warnings to stderr")
	flag.Parse()
	os.Exit(run(*bundle, *id, *parent, *noPivot, *verbose))
}

func run(bundle, id, parent string, noPivot, verbose bool) int {
	dir, err := filepath.Abs(bundle)
	if err != nil {
		return fail(err)
	}
	if id == "" {
		id = filepath.Base(dir)
	}
	spec, err := libjail.ReadBundleSpec(dir)
	if err != nil {
		return fail(err)
	}
	opts := libjail.Options{
		Bundle: dir, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		CgroupParent: parent, NoPivot: noPivot,
	}
	if verbose {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	c, err := libjail.New(id, spec, opts)
	if err != nil {
		return fail(err)
	}
	if err := c.Start(context.Background()); err != nil {
		return fail(err)
	}
	defer c.Destroy(true)

	// Forward the signals a terminal user sends to the container's init.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	go func() {
		for s := range sigs {
			_ = c.Signal(s.(syscall.Signal))
		}
	}()

	st, err := c.Wait()
	if err != nil {
		return fail(err)
	}
	if err := c.Destroy(true); err != nil {
		fmt.Fprintln(os.Stderr, "run:", err)
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return st.ExitCode()
}

func fail(err error) int {
	fmt.Fprintln(os.Stderr, "run:", err)
	return 125
}
