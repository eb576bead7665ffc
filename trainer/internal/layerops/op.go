// Package layerops holds gorgonia ops for the hot layers of training, drop-in
// replacements for gorgonia's own: a convolution computed image by image
// with im2col and the packed GEMM of models/gemm, and a max-pool that keeps
// its argmax for the backward pass. Each op splits the batch over
// runtime.GOMAXPROCS goroutines and keeps its per-worker buffers and its
// output (opbase.Base) from one run to the next, so that steady-state training
// steps do not allocate.
//
// The ops support symbolic differentiation (gorgonia.Grad with a tape
// machine); they do not implement DoDiff for the Lisp machine.
package layerops

import (
	"github.com/cifarnet-go/cifarnet/models/gemm"
)

// grow returns s resized to n, reusing its array when it is large enough.
func grow(s []float32, n int) []float32 {
	if cap(s) >= n {
		return s[:n]
	}
	return make([]float32, n)
}

// Accelerated reports whether the ops run on a vector GEMM kernel (AVX2
// with FMA on amd64, or AVX-512 in a GOEXPERIMENT=simd build). Without one
// they are slower than gorgonia's own ops, so a graph builder should use
// them only when this is true.
func Accelerated() bool { return gemm.Vectorized() }
