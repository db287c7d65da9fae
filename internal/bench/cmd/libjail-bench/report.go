package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"
)

// goBench is one line of `go test -bench` output.
type goBench struct {
	Iterations int                `json:"iterations"`
	Metrics    map[string]float64 `json:"metrics"` // unit → value, e.g. "ns/op", "p50-ms"
}

// results is results.json.
type results struct {
	Date         string             `json:"date"`
	Machine      map[string]string  `json:"machine"`
	Lifecycle    map[string]any     `json:"lifecycle,omitempty"`
	CLI          *cliResult         `json:"cli,omitempty"`
	CLIRatios    map[string]ratios  `json:"cli_ratios,omitempty"`
	Exec         *cliResult         `json:"exec,omitempty"`
	ExecRatios   map[string]ratios  `json:"exec_ratios,omitempty"`
	Memory       *memResult         `json:"memory,omitempty"`
	GoBenchmarks map[string]goBench `json:"go_benchmarks"`
	Missing      []string           `json:"missing,omitempty"`
}

// ratios are a median divided by runc's, by crun's, and by crun's without its wrapper.
type ratios struct {
	MedianMS  float64 `json:"median_ms"`
	ToRunc    float64 `json:"to_runc,omitempty"`
	ToCrun    float64 `json:"to_crun,omitempty"`
	ToCrunNet float64 `json:"to_crun_net,omitempty"`
}

// report merges the subcommands' JSON files and the Go benchmarks' output (dir/gobench-*.txt)
// into dir/results.json and prints the table.
func report(dir string) error {
	r := results{Date: time.Now().UTC().Format(time.RFC3339), Machine: machine(dir), GoBenchmarks: map[string]goBench{}}
	var lc map[string]any
	if err := readJSON(dir, "lifecycle.json", &lc); err == nil {
		r.Lifecycle = lc
	} else {
		r.Missing = append(r.Missing, "lifecycle.json")
	}
	var cli, ex cliResult
	if err := readJSON(dir, "cli.json", &cli); err == nil {
		r.CLI = &cli
	} else {
		r.Missing = append(r.Missing, "cli.json")
	}
	if err := readJSON(dir, "exec.json", &ex); err == nil {
		r.Exec = &ex
	} else {
		r.Missing = append(r.Missing, "exec.json")
	}
	var mem memResult
	if err := readJSON(dir, "memory.json", &mem); err == nil {
		r.Memory = &mem
	} else {
		r.Missing = append(r.Missing, "memory.json")
	}
	files, _ := filepath.Glob(filepath.Join(dir, "gobench-*.txt"))
	for _, f := range files {
		if err := parseGoBench(f, r.GoBenchmarks); err != nil {
			return err
		}
	}
	if r.CLI != nil {
		r.CLIRatios = cliRatios(r.CLI, "libjail-in-process", lifecycleP50(r.Lifecycle))
	}
	if r.Exec != nil {
		var p50 float64
		if b, ok := r.GoBenchmarks["libjail.BenchmarkExec"]; ok {
			p50 = b.Metrics["p50-ms"]
		}
		r.ExecRatios = cliRatios(r.Exec, "libjail-Exec-in-process", p50)
	}
	if err := writeJSON(dir, "results.json", r); err != nil {
		return err
	}
	printTable(os.Stdout, &r)
	return nil
}

// cliRatios relates each command line's median, and the in-process figure p50 as name, to runc's
// and crun's.
func cliRatios(c *cliResult, name string, p50 float64) map[string]ratios {
	med := map[string]float64{}
	for name, s := range c.Stats {
		if name != wrapperName {
			med[name] = s.P50MS
		}
	}
	if crun, ok := med["crun"]; ok {
		if w, ok := c.Stats[wrapperName]; ok {
			med["crun-net"] = crun - w.P50MS
		}
	}
	if p50 > 0 {
		med[name] = p50
	}
	out := map[string]ratios{}
	for name, m := range med {
		rt := ratios{MedianMS: m}
		if v := med["runc"]; v > 0 {
			rt.ToRunc = round3(m / v)
		}
		if v := med["crun"]; v > 0 {
			rt.ToCrun = round3(m / v)
		}
		if v := med["crun-net"]; v > 0 {
			rt.ToCrunNet = round3(m / v)
		}
		out[name] = rt
	}
	return out
}

func lifecycleP50(lc map[string]any) float64 {
	t, _ := lc["total"].(map[string]any)
	p, _ := t["p50_ms"].(float64)
	return p
}

func round3(f float64) float64 { return float64(int(f*1000+0.5)) / 1000 }

// parseGoBench reads `go test -bench` output, keying each benchmark by its package's last path
// element: "seccomp.BenchmarkCompileDefault", "devices.BenchmarkProgram/rules=10".
func parseGoBench(path string, into map[string]goBench) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	pkg := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = filepath.Base(strings.TrimSpace(p))
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "Benchmark") {
			continue
		}
		name := fields[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i] // the GOMAXPROCS suffix
			}
		}
		n, err := strconv.Atoi(fields[1])
		if err != nil {
			continue
		}
		b := goBench{Iterations: n, Metrics: map[string]float64{}}
		for i := 2; i+1 < len(fields); i += 2 {
			if v, err := strconv.ParseFloat(fields[i], 64); err == nil {
				b.Metrics[fields[i+1]] = v
			}
		}
		into[pkg+"."+name] = b
	}
	return sc.Err()
}

func machine(dir string) map[string]string {
	m := map[string]string{"cpus": strconv.Itoa(runtime.NumCPU()), "go": runtime.Version()}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m["kernel"] = unix.ByteSliceToString(u.Release[:])
	}
	for _, rt := range []string{"runc", "crun"} {
		if out, err := exec.Command(rt, "--version").Output(); err == nil {
			m[rt] = strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)[0]
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m["loadavg_at_report"] = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	if b, err := os.ReadFile(filepath.Join(dir, "loadavg-start")); err == nil {
		m["loadavg_at_start"] = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				m["cpu"] = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return m
}

func printTable(w io.Writer, r *results) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	defer tw.Flush()
	m := r.Machine
	fmt.Fprintf(tw, "libjail benchmarks, %s: %s cpus (%s), kernel %s, %s, %s, %s\n", r.Date, m["cpus"], m["cpu"], m["kernel"], m["runc"], m["crun"], m["go"])
	fmt.Fprintf(tw, "load average at start %s, at the end %s (other work on the machine skews figures)\n\n", m["loadavg_at_start"], m["loadavg_at_report"])

	if lc := r.Lifecycle; lc != nil {
		t, _ := lc["total"].(map[string]any)
		fmt.Fprintf(tw, "In-process lifecycle (New→Create→Start→exit→Destroy, /bin/true), Go benchmark, %v runs:\n", lc["runs"])
		fmt.Fprintf(tw, "  p50\tp90\tp99\tmax\tfirst run of the process\n")
		fmt.Fprintf(tw, "  %.2f ms\t%.2f ms\t%.2f ms\t%.2f ms\t%.2f ms\n", t["p50_ms"], t["p90_ms"], t["p99_ms"], t["max_ms"], lc["cold_ms"])
		if ph, ok := lc["phases"].(map[string]any); ok {
			fmt.Fprintf(tw, "  phase p50:")
			for _, name := range []string{"new", "create", "start", "wait", "destroy"} {
				if s, ok := ph[name].(map[string]any); ok {
					fmt.Fprintf(tw, " %s %.2f ms", name, s["p50_ms"])
				}
			}
			fmt.Fprintln(tw)
		}
		if b, ok := r.GoBenchmarks["libjail.BenchmarkLifecycleNoSeccomp"]; ok {
			fmt.Fprintf(tw, "  without the seccomp profile: p50 %.2f ms, p99 %.2f ms\n", b.Metrics["p50-ms"], b.Metrics["p99-ms"])
		}
		fmt.Fprintln(tw)
	}
	if c := r.CLI; c != nil {
		fmt.Fprintf(tw, "`run` of the same bundle by command line, interleaved, %d rounds (wall time per run):\n", c.Rounds)
		fmt.Fprintf(tw, "  runtime\tp50\tp90\tmin\t/runc\t/crun\t/crun-net\n")
		names := make([]string, 0, len(r.CLIRatios))
		for n := range r.CLIRatios {
			names = append(names, n)
		}
		sort.Slice(names, func(i, j int) bool { return r.CLIRatios[names[i]].MedianMS < r.CLIRatios[names[j]].MedianMS })
		for _, n := range names {
			rt := r.CLIRatios[n]
			p90, mn := "-", "-"
			if s, ok := c.Stats[n]; ok {
				p90, mn = fmt.Sprintf("%.2f ms", s.P90MS), fmt.Sprintf("%.2f ms", s.MinMS)
			}
			fmt.Fprintf(tw, "  %s\t%.2f ms\t%s\t%s\t%s\t%s\t%s\n", n, rt.MedianMS, p90, mn, ratio(rt.ToRunc), ratio(rt.ToCrun), ratio(rt.ToCrunNet))
		}
		if s, ok := c.Stats[wrapperName]; ok {
			fmt.Fprintf(tw, "  (%s: the unshare+umount wrapper alone, %.2f ms; crun-net = crun - %s)\n", wrapperName, s.P50MS, wrapperName)
		}
		printSkipped(tw, c.Skipped)
		fmt.Fprintln(tw)
	}
	if e := r.Exec; e != nil {
		fmt.Fprintf(tw, "exec of /bin/true into a running container, to its exit, interleaved, %d rounds:\n", e.Rounds)
		fmt.Fprintf(tw, "  runtime\tp50\tp90\t/runc\t/crun\t/crun-net\n")
		names := make([]string, 0, len(r.ExecRatios))
		for n := range r.ExecRatios {
			names = append(names, n)
		}
		sort.Slice(names, func(i, j int) bool { return r.ExecRatios[names[i]].MedianMS < r.ExecRatios[names[j]].MedianMS })
		for _, n := range names {
			rt := r.ExecRatios[n]
			p90 := "-"
			if s, ok := e.Stats[n]; ok {
				p90 = fmt.Sprintf("%.2f ms", s.P90MS)
			} else if b, ok := r.GoBenchmarks["libjail.BenchmarkExec"]; ok && n == "libjail-Exec-in-process" {
				p90 = fmt.Sprintf("%.2f ms p99", b.Metrics["p99-ms"])
			}
			fmt.Fprintf(tw, "  %s\t%.2f ms\t%s\t%s\t%s\t%s\n", n, rt.MedianMS, p90, ratio(rt.ToRunc), ratio(rt.ToCrun), ratio(rt.ToCrunNet))
		}
		if _, ok := r.GoBenchmarks["libjail.BenchmarkExec"]; !ok {
			fmt.Fprintf(tw, "  libjail Container.Exec: not measured (no Container.Exec in this build)\n")
		}
		printSkipped(tw, e.Skipped)
		fmt.Fprintln(tw)
	}
	if mm := r.Memory; mm != nil {
		fmt.Fprintf(tw, "Agent memory with %d sleeping containers (one Go process, after GC):\n", mm.Containers)
		fmt.Fprintf(tw, "  RSS\t%d KiB → %d KiB\t%.1f KiB per container\n", mm.Before.RSSKiB, mm.After.RSSKiB, mm.RSSPerCtrKiB)
		fmt.Fprintf(tw, "  Go heap\t%d KiB → %d KiB\t%.1f KiB per container\n", mm.Before.HeapAlloc/1024, mm.After.HeapAlloc/1024, mm.HeapPerCtrBytes/1024)
		fmt.Fprintf(tw, "  threads\t%d → %d\t%.2f per container\n", mm.Before.Threads, mm.After.Threads, mm.ThreadsPerCtr)
		fmt.Fprintf(tw, "  processes below the agent\t%d → %d\thelper processes (not a container's own): %d\n", mm.Before.Descendants, mm.After.Descendants, mm.Helpers)
		fmt.Fprintf(tw, "  start all\t%.0f ms\tdestroy all %.0f ms\n\n", mm.StartAllMS, mm.DestroyAllMS)
	}
	gb := r.GoBenchmarks
	var keys []string
	for k := range gb {
		if strings.HasPrefix(k, "seccomp.") || strings.HasPrefix(k, "devices.") || k == "libjail.BenchmarkNewPlan" || k == "libjail.BenchmarkSealExecutable" {
			keys = append(keys, k)
		}
	}
	if len(keys) > 0 {
		sort.Strings(keys)
		fmt.Fprintf(tw, "Go micro-benchmarks (time per op):\n")
		for _, k := range keys {
			b := gb[k]
			extra := ""
			for unit, v := range b.Metrics {
				if unit != "ns/op" && unit != "B/op" && unit != "allocs/op" {
					extra += fmt.Sprintf(" %g %s", v, unit)
				}
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", k, human(b.Metrics["ns/op"]), strings.TrimSpace(extra))
		}
	}
	if len(r.Missing) > 0 {
		fmt.Fprintf(tw, "\nmissing: %s\n", strings.Join(r.Missing, ", "))
	}
}

func printSkipped(w io.Writer, skipped map[string]string) {
	keys := make([]string, 0, len(skipped))
	for k := range skipped {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  skipped %s: %s\n", k, skipped[k])
	}
}

func ratio(f float64) string {
	if f == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f×", f)
}

func human(ns float64) string {
	switch {
	case ns >= 1e6:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	default:
		return fmt.Sprintf("%.0f ns", ns)
	}
}
