package libjail

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/libjail/libjail/internal/bench"
	"github.com/libjail/libjail/internal/testutil"
)

// benchBundleEnv names a bundle made by `libjail-bench bundle` (what `make bench` uses, so that
// libjail, runc and crun run the same container); without it the benchmark builds its own.
const benchBundleEnv = "LIBJAIL_BENCH_BUNDLE"

// benchOutEnv names a directory the benchmarks write their per-run figures to, as JSON.
const benchOutEnv = "LIBJAIL_BENCH_OUT"

func benchSpec(b *testing.B) (*specs.Spec, string) {
	b.Helper()
	dir := os.Getenv(benchBundleEnv)
	if dir == "" {
		dir = filepath.Join(b.TempDir(), "bundle")
		if err := bench.WriteBundle(dir, "/bin/true"); err != nil {
			b.Fatal(err)
		}
	}
	spec, err := bench.LoadSpec(dir)
	if err != nil {
		b.Fatal(err)
	}
	return spec, dir
}

// lifecyclePhases are the timed parts of one container's life, in order.
var lifecyclePhases = []string{"new", "create", "start", "wait", "destroy"}

// runLifecycle runs one container to completion and returns the duration of each phase.
func runLifecycle(ctx context.Context, id string, spec *specs.Spec, bundle string) ([]time.Duration, error) {
	var d [5]time.Duration
	t0 := time.Now()
	c, err := New(id, spec, Options{Bundle: bundle})
	if err != nil {
		return nil, err
	}
	t1 := time.Now()
	d[0] = t1.Sub(t0)
	if err := c.Create(ctx); err != nil {
		return nil, err
	}
	t2 := time.Now()
	d[1] = t2.Sub(t1)
	if err := c.Start(ctx); err != nil {
		_ = c.Destroy(true)
		return nil, err
	}
	t3 := time.Now()
	d[2] = t3.Sub(t2)
	st, err := c.Wait()
	t4 := time.Now()
	d[3] = t4.Sub(t3)
	if err != nil || !st.Success() {
		_ = c.Destroy(true)
		return nil, fmt.Errorf("wait: %v, status %v", err, st)
	}
	if err := c.Destroy(false); err != nil {
		return nil, err
	}
	d[4] = time.Since(t4)
	return d[:], nil
}

// BenchmarkLifecycle is the in-process latency of one container, New → Create → Start → the
// process exits → Destroy, for the benchmark bundle (/bin/true, five new namespaces, the default
// seccomp profile, a cgroup). It reports p50 and p99 of whole runs and the median of each phase;
// run it with -benchtime=200x (or more) for a meaningful p99. The first run of the process (the
// sealed executable, the compiled profile) is reported apart as cold-ms.
func BenchmarkLifecycle(b *testing.B) {
	testutil.RequireRoot(b)
	spec, bundle := benchSpec(b)
	ctx := context.Background()
	id := fmt.Sprintf("%slc-%d", bench.Prefix, os.Getpid())

	// A process's first container pays the once-per-process work; an agent pays it once.
	t0 := time.Now()
	coldPhases, err := runLifecycle(ctx, id+"-cold", spec, bundle)
	if err != nil {
		b.Fatal(err)
	}
	cold := time.Since(t0)

	var total []time.Duration
	phases := make([][]time.Duration, len(lifecyclePhases))
	for i := 0; b.Loop(); i++ {
		t := time.Now()
		d, err := runLifecycle(ctx, fmt.Sprintf("%s-%d", id, i), spec, bundle)
		if err != nil {
			b.Fatal(err)
		}
		total = append(total, time.Since(t))
		for j := range d {
			phases[j] = append(phases[j], d[j])
		}
	}
	st := bench.Summarise(total)
	b.ReportMetric(st.P50MS, "p50-ms")
	b.ReportMetric(st.P99MS, "p99-ms")
	b.ReportMetric(float64(cold.Microseconds())/1000, "cold-ms")
	out := map[string]any{"runs": len(total), "total": st, "cold_ms": float64(cold.Microseconds()) / 1000}
	ph := map[string]bench.Stats{}
	for j, name := range lifecyclePhases {
		ps := bench.Summarise(phases[j])
		ph[name] = ps
		b.ReportMetric(ps.P50MS, name+"-p50-ms")
	}
	out["phases"] = ph
	cp := map[string]float64{}
	for j, name := range lifecyclePhases {
		cp[name] = float64(coldPhases[j].Microseconds()) / 1000
	}
	out["cold_phases_ms"] = cp
	writeBenchJSON(b, "lifecycle.json", out)
}

// BenchmarkLifecycleNoSeccomp is BenchmarkLifecycle without the seccomp profile: the difference
// is what loading the filter costs per container (compiling it is cached).
func BenchmarkLifecycleNoSeccomp(b *testing.B) {
	testutil.RequireRoot(b)
	spec, bundle := benchSpec(b)
	s := *spec
	l := *spec.Linux
	l.Seccomp = nil
	s.Linux = &l
	ctx := context.Background()
	id := fmt.Sprintf("%slcns-%d", bench.Prefix, os.Getpid())
	var total []time.Duration
	for i := 0; b.Loop(); i++ {
		t := time.Now()
		if _, err := runLifecycle(ctx, fmt.Sprintf("%s-%d", id, i), &s, bundle); err != nil {
			b.Fatal(err)
		}
		total = append(total, time.Since(t))
	}
	st := bench.Summarise(total)
	b.ReportMetric(st.P50MS, "p50-ms")
	b.ReportMetric(st.P99MS, "p99-ms")
}

// BenchmarkExec is the latency of Container.Exec of /bin/true into a running container (the
// benchmark bundle sleeping), to the process's exit as `runc exec` measures it; exec-ms is Exec's
// return alone (the process has exec'd).
func BenchmarkExec(b *testing.B) {
	testutil.RequireRoot(b)
	spec, bundle := benchSpec(b)
	s := *spec
	l := *spec.Linux
	id := fmt.Sprintf("%sexec-%d", bench.Prefix, os.Getpid())
	l.CgroupsPath = "/" + id
	s.Linux = &l
	proc := *spec.Process
	proc.Args = []string{"/bin/sleep", "100000"}
	s.Process = &proc
	ctx := context.Background()
	c, err := New(id, &s, Options{Bundle: bundle})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := c.Destroy(true); err != nil {
			b.Error(err)
		}
	}()
	if err := c.Start(ctx); err != nil {
		b.Fatal(err)
	}
	ep := *spec.Process
	ep.Args = []string{"/bin/true"}
	var total, started []time.Duration
	for b.Loop() {
		t := time.Now()
		p, err := c.Exec(ctx, &ep, ExecOptions{})
		if err != nil {
			b.Fatal(err)
		}
		started = append(started, time.Since(t))
		st, err := p.Wait()
		if err != nil || !st.Success() {
			b.Fatalf("exec'd /bin/true: %v, status %v", err, st)
		}
		total = append(total, time.Since(t))
	}
	tot, ex := bench.Summarise(total), bench.Summarise(started)
	b.ReportMetric(tot.P50MS, "p50-ms")
	b.ReportMetric(tot.P99MS, "p99-ms")
	b.ReportMetric(ex.P50MS, "exec-p50-ms")
	writeBenchJSON(b, "exec-inprocess.json", map[string]any{"runs": len(total), "to_exit": tot, "to_exec": ex})
}

// BenchmarkNewPlan is New alone: planning every section, with the seccomp profile cached.
func BenchmarkNewPlan(b *testing.B) {
	spec, bundle := benchSpec(b)
	for b.Loop() {
		if _, err := New(bench.Prefix+"plan", spec, Options{Bundle: bundle}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSealExecutable is what sealing the executable would cost per container if it were not
// done once per process: the memfd copy of the test binary and its seals.
func BenchmarkSealExecutable(b *testing.B) {
	for b.Loop() {
		f, err := sealSelf()
		if err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}

func writeBenchJSON(b *testing.B, name string, v any) {
	b.Helper()
	dir := os.Getenv(benchOutEnv)
	if dir == "" {
		return
	}
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), append(data, '\n'), 0o644); err != nil {
		b.Fatal(err)
	}
}
