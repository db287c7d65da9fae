package bench

import (
	"slices"
	"time"
)

// Stats summarises a sample of durations, in milliseconds.
type Stats struct {
	N      int     `json:"n"`
	MinMS  float64 `json:"min_ms"`
	P50MS  float64 `json:"p50_ms"`
	P90MS  float64 `json:"p90_ms"`
	P99MS  float64 `json:"p99_ms"`
	MaxMS  float64 `json:"max_ms"`
	MeanMS float64 `json:"mean_ms"`
}

// Summarise computes the statistics of ds (nearest-rank percentiles). ds is not changed.
func Summarise(ds []time.Duration) Stats {
	if len(ds) == 0 {
		return Stats{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	return Stats{
		N: len(s), MinMS: ms(s[0]), P50MS: ms(Percentile(s, 50)), P90MS: ms(Percentile(s, 90)),
		P99MS: ms(Percentile(s, 99)), MaxMS: ms(s[len(s)-1]), MeanMS: ms(sum / time.Duration(len(s))),
	}
}

// Percentile returns the nearest-rank p-th percentile of sorted.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.999999) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
