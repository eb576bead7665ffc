package models

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// maxPool (four outputs at a time in the SIMD128 build) gives what the max
// builtin gives window by window, for odd and even sizes, the 3×3 head
// pool, and NaN in the input.
func TestMaxPoolMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct{ c, h, w, k int }{{2, 31, 31, 2}, {3, 15, 15, 2}, {1, 16, 18, 2}, {2, 2, 2, 2}, {2, 9, 9, 3}} {
		t.Run(fmt.Sprintf("%+v", tc), func(t *testing.T) {
			in := Shape{C: tc.c, H: tc.h, W: tc.w}
			out := Shape{C: tc.c, H: tc.h / tc.k, W: tc.w / tc.k}
			x := make([]float32, in.Size())
			for i := range x {
				x[i] = float32(r.NormFloat64())
			}
			x[len(x)/3] = float32(math.NaN())
			y := make([]float32, out.Size())
			maxPool(x, y, in, out, tc.k, tc.k)
			for c := range out.C {
				for oy := range out.H {
					for ox := range out.W {
						want := float32(math.Inf(-1))
						for ky := range tc.k {
							for kx := range tc.k {
								want = max(want, x[(c*in.H+oy*tc.k+ky)*in.W+ox*tc.k+kx])
							}
						}
						got := y[(c*out.H+oy)*out.W+ox]
						if got != want && !(got != got && want != want) {
							t.Fatalf("channel %d (%d, %d): %v, want %v", c, oy, ox, got, want)
						}
					}
				}
			}
		})
	}
}
