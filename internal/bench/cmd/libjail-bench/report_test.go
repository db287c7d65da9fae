package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/libjail/libjail/internal/bench"
)

func TestParseGoBench(t *testing.T) {
	out := `goos: linux
pkg: github.com/libjail/libjail/seccomp
BenchmarkCompileDefault-2   	     100	  12630000 ns/op
pkg: github.com/libjail/libjail
BenchmarkLifecycle-2   	     300	  10134475 ns/op	        33.44 cold-ms	         9.002 p50-ms
BenchmarkProgram/rules=10-2 	 200000	      5600 ns/op
PASS
`
	path := filepath.Join(t.TempDir(), "gobench-x.txt")
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	got := map[string]goBench{}
	if err := parseGoBench(path, got); err != nil {
		t.Fatal(err)
	}
	if b := got["seccomp.BenchmarkCompileDefault"]; b.Iterations != 100 || b.Metrics["ns/op"] != 12630000 {
		t.Errorf("CompileDefault = %+v", b)
	}
	if b := got["libjail.BenchmarkLifecycle"]; b.Metrics["p50-ms"] != 9.002 || b.Metrics["cold-ms"] != 33.44 {
		t.Errorf("Lifecycle = %+v", b)
	}
	if _, ok := got["libjail.BenchmarkProgram/rules=10"]; !ok {
		t.Errorf("sub-benchmark missing: %v", got)
	}
}

func TestCLIRatios(t *testing.T) {
	c := &cliResult{Stats: map[string]bench.Stats{
		"runc": {P50MS: 40}, "crun": {P50MS: 30}, wrapperName: {P50MS: 10}, "libjail-run": {P50MS: 20},
	}}
	r := cliRatios(c, "in-process", 5)
	if got := r["libjail-run"]; got.ToRunc != 0.5 || got.ToCrun != 0.667 || got.ToCrunNet != 1 {
		t.Errorf("libjail-run = %+v", got)
	}
	if got := r["crun-net"]; got.MedianMS != 20 {
		t.Errorf("crun-net = %+v", got)
	}
	if got := r["in-process"]; got.ToCrun != 0.167 {
		t.Errorf("in-process = %+v", got)
	}
	if _, ok := r[wrapperName]; ok {
		t.Error("the wrapper is not a runtime")
	}
}
