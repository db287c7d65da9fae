// libjail-bench is the program behind `make bench` (see internal/bench/run.sh):
//
//	libjail-bench bundle  -dir D                 the benchmark bundles: D/bundle (/bin/true), D/bundle-sleep
//	libjail-bench cli     -dir D -rounds N ...    `run` of the bundle by each runtime's command line, interleaved
//	libjail-bench exec    -dir D -rounds N ...    `exec` of /bin/true into a running container, interleaved
//	libjail-bench memory  -dir D -n 200           this process's memory growth per live container
//	libjail-bench report  -dir D                  the table on stdout and D/results.json
//	libjail-bench timeline -in FILE               the child's steps from perf tracepoints (profile.sh)
//	libjail-bench cleanup                         remove libjail-bench-* cgroups (killing their processes)
//
// Every subcommand writes its figures to D/<name>.json; report merges them with the Go benchmarks'
// output. Everything created is named libjail-bench-* and removed on the way out, also on failure.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/libjail/libjail"
)

func main() {
	libjail.Init() // the memory subcommand starts containers from this executable
	if len(os.Args) < 2 {
		usage()
	}
	cmd, args := os.Args[1], os.Args[2:]
	handleSignals()
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	dir := fs.String("dir", "_build/bench", "work and results directory")
	rounds := fs.Int("rounds", 50, "interleaved rounds (cli, exec)")
	n := fs.Int("n", 200, "live containers (memory)")
	runBin := fs.String("run", "", "examples/run binary (cli)")
	oci := fs.String("ociruntime", "", "examples/ociruntime binary, when it exists (cli, exec)")
	in := fs.String("in", "", "`perf script` output (timeline)")
	_ = fs.Parse(args)
	var err error
	switch cmd {
	case "bundle":
		err = makeBundles(*dir)
	case "cli":
		err = benchCLI(*dir, *rounds, *runBin, *oci)
	case "exec":
		err = benchExec(*dir, *rounds, *oci)
	case "memory":
		err = benchMemory(*dir, *n)
	case "report":
		err = report(*dir)
	case "timeline":
		err = timeline(*in)
	case "cleanup":
		err = cleanupCgroups()
	default:
		usage()
	}
	runAtExit()
	if err != nil {
		fmt.Fprintf(os.Stderr, "libjail-bench %s: %v\n", cmd, err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: libjail-bench bundle|cli|exec|memory|report|timeline|cleanup [-dir D] [flags]")
	os.Exit(2)
}
