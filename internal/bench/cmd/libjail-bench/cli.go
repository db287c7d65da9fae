package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/libjail/libjail/internal/bench"
)

// cliResult is cli.json and exec.json: per command line, the statistics of its timed runs.
type cliResult struct {
	Rounds  int                    `json:"rounds"`
	Order   []string               `json:"order"`
	Stats   map[string]bench.Stats `json:"stats"`
	Skipped map[string]string      `json:"skipped,omitempty"`
	Note    string                 `json:"note"`
}

// wrapperName is the baseline of crun's private-mount-namespace wrapper running /bin/true.
const wrapperName = "crun-wrapper"

// job is one timed command line of an interleaved benchmark.
type job struct {
	name string
	args func(i int) []string
}

// interleave runs every job once per round, rotating which goes first, so a slow phase of the
// machine hits all of them alike. A job that fails its first (untimed) run is skipped with a note.
func interleave(rounds int, jobs []job, skipped map[string]string) (map[string][]time.Duration, []string, error) {
	var live []job
	for _, j := range jobs {
		if _, err := timed(j.args(-1), false); err != nil {
			skipped[j.name] = "first run failed: " + err.Error()
			continue
		}
		live = append(live, j)
	}
	res := map[string][]time.Duration{}
	var order []string
	for _, j := range live {
		order = append(order, j.name)
	}
	for i := range rounds {
		for k := range live {
			j := live[(i+k)%len(live)]
			d, err := timed(j.args(i), false)
			if err != nil {
				return nil, nil, fmt.Errorf("%s round %d: %w", j.name, i, err)
			}
			res[j.name] = append(res[j.name], d)
		}
	}
	return res, order, nil
}

// benchCLI times `run` of the benchmark bundle (foreground, /bin/true) by each command line.
func benchCLI(dir string, rounds int, runBin, oci string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	bundle := filepath.Join(dir, "bundle")
	rs, skipped, err := runtimes(dir, runBin, oci, true)
	if err != nil {
		return err
	}
	defer onExit(func() {
		for _, r := range rs {
			r.cleanupState()
		}
		_ = cleanupCgroups()
	})()
	pid := os.Getpid()
	var jobs []job
	for _, r := range rs {
		jobs = append(jobs, job{r.Name, func(i int) []string {
			return r.runArgs(bundle, fmt.Sprintf("%s%s-%d-%d", bench.Prefix, r.Name, pid, i+1))
		}})
	}
	jobs = append(jobs, job{wrapperName, func(int) []string { return append(append([]string(nil), crunWrapper...), "/bin/true") }})
	res, order, err := interleave(rounds, jobs, skipped)
	if err != nil {
		return err
	}
	out := cliResult{
		Rounds: rounds, Order: order, Stats: map[string]bench.Stats{}, Skipped: skipped,
		Note: "wall time of the whole command (fork/exec of the runtime to its exit, container run to completion and deleted); " +
			"crun runs as `unshare -m sh -c 'umount " + unifiedMount + "; exec crun ...'`, whose cost alone is crun-wrapper",
	}
	for name, ds := range res {
		out.Stats[name] = bench.Summarise(ds)
	}
	return writeJSON(dir, "cli.json", out)
}

// benchExec times `exec` of /bin/true into a running container by runc and crun (and
// examples/ociruntime when it exists). Each runtime runs its own sleeping container.
func benchExec(dir string, rounds int, oci string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	bundle := filepath.Join(dir, "bundle-sleep")
	rs, skipped, err := runtimes(dir, "", oci, false)
	if err != nil {
		return err
	}
	defer onExit(func() {
		for _, r := range rs {
			r.cleanupState()
		}
		_ = cleanupCgroups()
	})()
	var jobs []job
	// One runtime's container at a time holds the bundle's cgroup: give each its own.
	for _, r := range rs {
		id := fmt.Sprintf("%sexec-%s-%d", bench.Prefix, r.Name, os.Getpid())
		b := filepath.Join(dir, "bundle-sleep-"+r.Name)
		spec, err := bench.LoadSpec(bundle)
		if err != nil {
			return err
		}
		if err := bench.WriteConfig(b, spec.Root.Path, spec.Process.Args...); err != nil {
			return err
		}
		if err := setCgroup(b, "/"+id); err != nil {
			return err
		}
		if _, err := timed(r.detachArgs(b, id), true); err != nil {
			skipped[r.Name] = "run --detach failed: " + err.Error()
			continue
		}
		defer onExit(func() { _, _ = timed(r.deleteArgs(id), false) })()
		jobs = append(jobs, job{r.Name, func(int) []string { return r.execArgs(id, "/bin/true") }})
	}
	jobs = append(jobs, job{wrapperName, func(int) []string { return append(append([]string(nil), crunWrapper...), "/bin/true") }})
	res, order, err := interleave(rounds, jobs, skipped)
	if err != nil {
		return err
	}
	out := cliResult{
		Rounds: rounds, Order: order, Stats: map[string]bench.Stats{}, Skipped: skipped,
		Note: "wall time of `<runtime> exec ID /bin/true` into a running container; crun runs inside the same wrapper as for run",
	}
	for name, ds := range res {
		out.Stats[name] = bench.Summarise(ds)
	}
	return writeJSON(dir, "exec.json", out)
}

// setCgroup changes the cgroupsPath of bundle b's config.json.
func setCgroup(b, path string) error {
	spec, err := bench.LoadSpec(b)
	if err != nil {
		return err
	}
	spec.Linux.CgroupsPath = path
	return writeJSON(b, "config.json", spec)
}
