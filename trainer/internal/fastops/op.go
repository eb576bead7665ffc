// Package fastops holds gorgonia ops for the hot layers of training, drop-in
// replacements for gorgonia's own: a convolution computed image by image
// with im2col and the packed GEMM of models/gemm, and a max-pool that keeps
// its argmax for the backward pass. Each op splits the batch over
// runtime.GOMAXPROCS goroutines and keeps per-worker buffers from one run
// to the next, and writes into the tensor the tape machine preallocated,
// so that steady-state training steps do not allocate their working
// memory.
//
// The ops support symbolic differentiation (gorgonia.Grad with a tape
// machine); they do not implement DoDiff for the Lisp machine.
package fastops

import (
	"fmt"
	"hash"
	"hash/fnv"
	"io"

	"github.com/chewxy/hm"
	"github.com/cifarnet-go/cifarnet/models/gemm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// opBase supplies the Op methods that are the same for every op here. name
// encodes the op's kind and parameters: gorgonia merges nodes whose op hash
// and inputs are equal, which is right for these ops because equal names
// mean equal computations.
type opBase struct{ name string }

func (o opBase) ReturnsPtr() bool      { return false }
func (o opBase) CallsExtern() bool     { return false }
func (o opBase) OverwritesInput() int  { return -1 }
func (o opBase) WriteHash(h hash.Hash) { io.WriteString(h, o.name) }
func (o opBase) String() string        { return o.name }
func (o opBase) Hashcode() uint32 {
	h := fnv.New32a()
	o.WriteHash(h)
	return h.Sum32()
}

func (o opBase) errorf(format string, a ...any) error {
	return fmt.Errorf("%s: %s", o.name, fmt.Sprintf(format, a...))
}

// tensorType is a float tensor type of the given rank.
func tensorType(dims int) G.TensorType { return G.TensorType{Dims: dims, Of: hm.TypeVariable('a')} }

// float32s returns the float32 elements of v in row-major order,
// materialising views, and checks that v has the expected shape.
func float32s(o opBase, what string, v G.Value, want tensor.Shape) ([]float32, error) {
	t, ok := v.(*tensor.Dense)
	if !ok {
		return nil, o.errorf("%s: expected a dense tensor, got %T", what, v)
	}
	if !t.Shape().Eq(want) {
		return nil, o.errorf("%s: shape %v, want %v", what, t.Shape(), want)
	}
	if t.IsMaterializable() {
		t = t.Materialize().(*tensor.Dense)
	}
	d, ok := t.Data().([]float32)
	if !ok {
		return nil, o.errorf("%s: expected float32 data, got %v", what, t.Dtype())
	}
	return d, nil
}

// result is an op's output tensor, kept from one run to the next. The tape
// machine's Reset forgets every register, so an op never sees the
// preallocated value of UsePreallocDo in training and would otherwise
// allocate its output on every step. A result is therefore valid until the
// next run of its node, like every value in a gorgonia graph.
type result struct{ t *tensor.Dense }

// get returns the output tensor of the given shape, allocating it on the
// first run. Every kernel overwrites all of its output.
func (r *result) get(shape tensor.Shape) (*tensor.Dense, []float32) {
	if r.t == nil || !r.t.Shape().Eq(shape) {
		r.t = tensor.New(tensor.WithShape(shape.Clone()...), tensor.Of(tensor.Float32))
	}
	return r.t, r.t.Data().([]float32)
}

// grow returns s resized to n, reusing its array when it is large enough.
func grow(s []float32, n int) []float32 {
	if cap(s) >= n {
		return s[:n]
	}
	return make([]float32, n)
}

// Accelerated reports whether the ops run on a SIMD GEMM kernel (a
// GOEXPERIMENT=simd build on an AVX-512 CPU). Without one they are slower
// than gorgonia's own ops, so a graph builder should use them only when
// this is true.
func Accelerated() bool { return gemm.Vectorized() }
