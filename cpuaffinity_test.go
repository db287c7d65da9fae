package libjail

import (
	"runtime"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/libjail/libjail/internal/fixtures"
)

func TestParseCPUList(t *testing.T) {
	for in, want := range map[string][]int{
		"": nil, "0": {0}, "0-3": {0, 1, 2, 3}, "1,3-4, 7": {1, 3, 4, 7}, "2,2,1-2": {2, 1},
	} {
		got, err := parseCPUList("f", in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"x", "3-1", "-1", "1-", "1,,2", "100000"} {
		_, err := parseCPUList("f", bad)
		assert.ErrorIs(t, err, ErrInvalidSpec, bad)
	}
}

func TestExecCPUAffinityPlanError(t *testing.T) {
	spec := fixtures.Spec(t.TempDir(), "/bin/true")
	spec.Process.ExecCPUAffinity = &specs.CPUAffinity{Initial: "0", Final: "1-x"}
	_, err := New("affinity-plan", spec, Options{})
	require.ErrorIs(t, err, ErrInvalidSpec)
	assert.Contains(t, err.Error(), "process.execCPUAffinity.final")
}

// TestExecCPUAffinityApply sets the affinity of a thread of its own (ended with the goroutine,
// which never unlocks it).
func TestExecCPUAffinityApply(t *testing.T) {
	var all unix.CPUSet
	require.NoError(t, unix.SchedGetaffinity(0, &all))
	if all.Count() < 2 {
		t.Skip("skipped: needs two cpus")
	}
	last := -1
	for c := 0; c < len(all)*64; c++ {
		if all.IsSet(c) {
			last = c
		}
	}
	a, err := planExecCPUAffinity(&specs.Process{ExecCPUAffinity: &specs.CPUAffinity{Final: "0"}})
	require.NoError(t, err)
	a.Initial = []int{last}
	done := make(chan [2]unix.CPUSet)
	go func() {
		runtime.LockOSThread()
		var got [2]unix.CPUSet
		if assert.NoError(t, a.ApplyInitial()) {
			_ = unix.SchedGetaffinity(0, &got[0])
		}
		if assert.NoError(t, a.ApplyFinal()) {
			_ = unix.SchedGetaffinity(0, &got[1])
		}
		done <- got
	}()
	got := <-done
	assert.Equal(t, 1, got[0].Count())
	assert.True(t, got[0].IsSet(last), "initial")
	assert.Equal(t, 1, got[1].Count())
	assert.True(t, got[1].IsSet(0), "final")
}

func FuzzParseCPUList(f *testing.F) {
	for _, s := range []string{"0-3,7", "", "1,,2", "3-1", "1023"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cpus, err := parseCPUList("f", s)
		for _, c := range cpus {
			if err != nil || c < 0 || c >= 1024 {
				t.Fatalf("%q: cpu %d (err %v)", s, c, err)
			}
		}
	})
}
