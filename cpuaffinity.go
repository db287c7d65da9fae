package libjail

import (
	"fmt"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// cpuAffinity is a planned process.execCPUAffinity. The spec gives it to exec'd processes only,
// never to the container's init: Initial is the affinity of the process while it joins the
// container (before its cgroup), Final the one it execs with. nil: not set.
type cpuAffinity struct {
	Initial []int `json:"initial,omitempty"`
	Final   []int `json:"final,omitempty"`
}

// planExecCPUAffinity validates process.execCPUAffinity (cpu lists such as "0-3,7").
func planExecCPUAffinity(p *specs.Process) (*cpuAffinity, error) {
	a := p.ExecCPUAffinity
	if a == nil || (a.Initial == "" && a.Final == "") {
		return nil, nil
	}
	var out cpuAffinity
	var err error
	if out.Initial, err = parseCPUList("process.execCPUAffinity.initial", a.Initial); err != nil {
		return nil, err
	}
	if out.Final, err = parseCPUList("process.execCPUAffinity.final", a.Final); err != nil {
		return nil, err
	}
	return &out, nil
}

// parseCPUList parses the kernel's cpu list format ("0-3,7,9-10"); "" gives nil.
func parseCPUList(field, s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var set unix.CPUSet
	max := len(set) * 64 // unix.CPUSet is an array of 64-bit words
	seen := map[int]bool{}
	var cpus []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.Atoi(lo)
		b := a
		if err == nil && isRange {
			b, err = strconv.Atoi(hi)
		}
		if err != nil || a < 0 || b < a || b >= max {
			return nil, specErr(field, "%q: %q is not a cpu or range of cpus below %d", s, part, max)
		}
		for c := a; c <= b; c++ {
			if !seen[c] {
				seen[c] = true
				cpus = append(cpus, c)
			}
		}
	}
	return cpus, nil
}

// applyCPUs sets the calling thread's affinity (the thread that calls execve keeps it).
func applyCPUs(field string, cpus []int) error {
	if len(cpus) == 0 {
		return nil
	}
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("%s: sched_setaffinity %v: %w", field, cpus, err)
	}
	return nil
}

// ApplyInitial and ApplyFinal are the two moments of an exec'd process: before it joins the
// container's cgroup, and just before execve.
func (a *cpuAffinity) ApplyInitial() error {
	if a == nil {
		return nil
	}
	return applyCPUs("process.execCPUAffinity.initial", a.Initial)
}

func (a *cpuAffinity) ApplyFinal() error {
	if a == nil {
		return nil
	}
	return applyCPUs("process.execCPUAffinity.final", a.Final)
}
