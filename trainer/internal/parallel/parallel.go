// Package parallel splits loops over the training kernels' goroutines.
// gorgonia's tape machine runs one op at a time, so each op spreads its
// own work over the cores.
package parallel

import (
	"runtime"
	"sync"
)

// Workers is the number of goroutines to split n items over: GOMAXPROCS,
// at most n, at least 1.
func Workers(n int) int { return max(1, min(runtime.GOMAXPROCS(0), n)) }

// For splits [0, n) into nw contiguous ranges and runs body(worker, lo, hi)
// on each, the first on the calling goroutine. The split depends only on n
// and nw, so per-worker partial sums are added in the same order on every
// run.
func For(n, nw int, body func(w, lo, hi int)) {
	var wg sync.WaitGroup
	for w := 1; w < nw; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body(w, w*n/nw, (w+1)*n/nw)
		}()
	}
	body(0, 0, n/nw)
	wg.Wait()
}

// minChunk is the least work, in elements, worth a goroutine for a cheap
// elementwise loop.
const minChunk = 1 << 14

// Range runs body over [0, n) in contiguous pieces, in parallel when n is
// large enough to pay for the goroutines.
func Range(n int, body func(lo, hi int)) {
	For(n, Workers(n/minChunk), func(_, lo, hi int) { body(lo, hi) })
}
