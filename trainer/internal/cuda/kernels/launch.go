package kernels

import (
	"fmt"
	"math"

	"github.com/cifarnet-go/cifarnet/trainer/internal/cuda/device"
)

type ptr = device.Ptr

const (
	blockSize = 256
	// maxBlocks caps the grid; the kernels' grid-stride loops cover the
	// rest. 2M threads are several times what an H200 holds at once.
	maxBlocks = 8192
)

// launch runs k with at least min(threads, blockSize·maxBlocks) threads.
func launch(d device.Device, k kernel, threads int, args ...any) error {
	if threads <= 0 {
		return nil
	}
	blocks := min((threads+blockSize-1)/blockSize, maxBlocks)
	if err := d.Launch(string(k), device.Dim3{X: blocks, Y: 1, Z: 1}, device.Dim3{X: blockSize, Y: 1, Z: 1}, args...); err != nil {
		return fmt.Errorf("kernel %s: %w", k, err)
	}
	return nil
}

// checkSizes reports an error unless every value is a non-negative int32:
// the kernels index with int (callers pass the largest products too).
func checkSizes(op string, vals ...int) error {
	for _, v := range vals {
		if v < 0 || v > math.MaxInt32 {
			return fmt.Errorf("%s: size %d out of range [0, 2³¹)", op, v)
		}
	}
	return nil
}

// f64 passes a float64 to a kernel as its bits (Launch takes no float64).
func f64(v float64) uint64 { return math.Float64bits(v) }

func boolArg(b bool) int32 {
	if b {
		return 1
	}
	return 0
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// Reductions: pass 1 writes rows×parts partial sums (double); dsum_partial
// divides parts by up to finalParts per pass; a final kernel sums the last
// ≤ finalParts per row.
const (
	finalParts = 32
	maxParts   = 1024
	perThread  = 64 // values a pass-1 thread sums, at least
)

// partsFor is the number of partial sums per row for rows of m values.
func partsFor(m int) int { return max(1, min(maxParts, ceilDiv(m, perThread))) }

// reduceWorkspace is the float32 elements the partial sums of rows×parts
// need: the pass-1 buffer and the second buffer dsum_partial alternates
// with.
func reduceWorkspace(rows, parts int) int {
	return 2*rows*parts + 2*rows*ceilDiv(parts, finalParts)
}

// reduce shrinks rows×parts partial sums at ws (laid out as
// reduceWorkspace says) to at most finalParts per row, returning where
// they are and how many.
func reduce(d device.Device, ws ptr, rows, parts int) (ptr, int, error) {
	a, b := ws, ws.Float(2*rows*parts)
	for parts > finalParts {
		next := ceilDiv(parts, finalParts)
		if err := launch(d, kDSumPartial, rows*next, b, a, int32(rows), int32(parts), int32(next)); err != nil {
			return 0, 0, err
		}
		a, b, parts = b, a, next
	}
	return a, parts, nil
}
