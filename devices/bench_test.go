package devices

import (
	"fmt"
	"testing"
)

var benchSizes = []int{1, 10, 100}

func BenchmarkProgram(b *testing.B) {
	for _, n := range benchSizes {
		rules := benchRules(n)
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := Program(rules); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAttachV2 loads, attaches and detaches the program of n rules on one cgroup.
func BenchmarkAttachV2(b *testing.B) {
	cg := mkCgroup(b, v2Root(b), "bench-v2")
	for _, n := range benchSizes {
		rules := benchRules(n)
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			for b.Loop() {
				v, err := AttachV2(cg, rules)
				if err != nil {
					b.Fatal(err)
				}
				if err := v.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReplaceV2 is the hot-plug cost on v2: load and atomically swap the program.
func BenchmarkReplaceV2(b *testing.B) {
	cg := mkCgroup(b, v2Root(b), "bench-v2-replace")
	for _, n := range benchSizes {
		rules := [2][]Rule{benchRules(n), benchRules(n + 1)}
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			v, err := AttachV2(cg, rules[0])
			if err != nil {
				b.Fatal(err)
			}
			defer v.Close()
			i := 0
			for b.Loop() {
				i++
				if err := v.Replace(rules[i%2]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkV1Transition reports the writes needed to set n rules on a fresh pod-default cgroup
// and to hot-plug one more device.
func BenchmarkV1Transition(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			var set, plug []V1Write
			for b.Loop() {
				set = V1Transition(PodDefaultRules(), benchRules(n))
				plug = V1Transition(benchRules(n), benchRules(n+1))
			}
			b.ReportMetric(float64(len(set)), "writes/set")
			b.ReportMetric(float64(len(plug)), "writes/hotplug")
		})
	}
}

// BenchmarkApplyV1 applies n rules and then n+1 to a v1 cgroup (a set and a hot-plug per op).
func BenchmarkApplyV1(b *testing.B) {
	cg := mkCgroup(b, v1Root(b), "bench-v1")
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			for b.Loop() {
				if err := ApplyV1(cg, benchRules(n)); err != nil {
					b.Fatal(err)
				}
				if err := ApplyV1(cg, benchRules(n+1)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
