package bench

import (
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 200; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{50, 100 * time.Millisecond}, {99, 198 * time.Millisecond}, {100, 200 * time.Millisecond}, {0, time.Millisecond}} {
		if got := Percentile(ds, tc.p); got != tc.want {
			t.Errorf("p%v = %v, want %v", tc.p, got, tc.want)
		}
	}
	if Percentile(nil, 50) != 0 {
		t.Error("empty sample")
	}
}

func TestSummarise(t *testing.T) {
	ds := []time.Duration{3 * time.Millisecond, time.Millisecond, 2 * time.Millisecond}
	s := Summarise(ds)
	if s.N != 3 || s.MinMS != 1 || s.P50MS != 2 || s.MaxMS != 3 || s.MeanMS != 2 {
		t.Errorf("Summarise = %+v", s)
	}
	if ds[0] != 3*time.Millisecond {
		t.Error("Summarise reordered its argument")
	}
}
