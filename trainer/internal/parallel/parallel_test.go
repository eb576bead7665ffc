package parallel

import (
	"sync/atomic"
	"testing"
)

func TestForCoversEveryIndexOnce(t *testing.T) {
	for _, n := range []int{0, 1, 2, 7, 100, 1 << 16} {
		for _, nw := range []int{1, 2, 3, 8} {
			seen := make([]int32, n)
			var workers atomic.Int32
			For(n, nw, func(w, lo, hi int) {
				workers.Add(1)
				if w < 0 || w >= nw {
					t.Errorf("worker %d outside [0, %d)", w, nw)
				}
				for i := lo; i < hi; i++ {
					atomic.AddInt32(&seen[i], 1)
				}
			})
			if int(workers.Load()) != nw {
				t.Errorf("n=%d nw=%d: %d workers ran", n, nw, workers.Load())
			}
			for i, c := range seen {
				if c != 1 {
					t.Fatalf("n=%d nw=%d: index %d visited %d times", n, nw, i, c)
				}
			}
		}
	}
}

func TestRange(t *testing.T) {
	for _, n := range []int{0, 5, minChunk*3 + 1} {
		var sum atomic.Int64
		Range(n, func(lo, hi int) { sum.Add(int64(hi - lo)) })
		if int(sum.Load()) != n {
			t.Errorf("n=%d: ranges cover %d elements", n, sum.Load())
		}
	}
}

func TestWorkers(t *testing.T) {
	if w := Workers(0); w != 1 {
		t.Errorf("Workers(0) = %d, want 1", w)
	}
	if w := Workers(1); w != 1 {
		t.Errorf("Workers(1) = %d, want 1", w)
	}
}
