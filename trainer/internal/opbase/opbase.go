// Package opbase holds what the trainer's custom gorgonia ops share: the
// methods every Op needs, the output buffer kept from one step to the
// next, and reading float32 tensors.
package opbase

import (
	"fmt"
	"hash"
	"hash/fnv"
	"io"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Base supplies the Op methods that are the same for every op, and the
// op's output buffer. Name must identify the computation: gorgonia merges
// nodes whose op hash and inputs are equal, so ops with state (batchnorm,
// dropout) put their layer's name in it.
type Base struct {
	Name string
	// Out is the op's output, reused by Output from one run to the next.
	Out Result
}

func (o *Base) ReturnsPtr() bool      { return false }
func (o *Base) CallsExtern() bool     { return false }
func (o *Base) OverwritesInput() int  { return -1 }
func (o *Base) WriteHash(h hash.Hash) { io.WriteString(h, o.Name) }
func (o *Base) String() string        { return o.Name }
func (o *Base) Hashcode() uint32 {
	h := fnv.New32a()
	o.WriteHash(h)
	return h.Sum32()
}

// Errorf returns an error prefixed with the op's name.
func (o *Base) Errorf(format string, a ...any) error {
	return fmt.Errorf("%s: %s", o.Name, fmt.Sprintf(format, a...))
}

// Output returns the op's output tensor of the given shape and its data.
func (o *Base) Output(shape tensor.Shape) (*tensor.Dense, []float32) { return o.Out.Get(shape) }

// Result is an op's output tensor, kept from one run to the next. The tape
// machine's Reset forgets every register, so an op never sees the
// preallocated value of UsePreallocDo in training and would otherwise
// allocate its output on every step (gigabytes a minute, and a heap twice
// the size of the live activations). A result is therefore valid until the
// next run of its node, like every value in a gorgonia graph.
type Result struct{ t *tensor.Dense }

// Get returns the output tensor of the given shape, allocating it on the
// first run or when the shape changes. Every kernel overwrites all of its
// output.
func (r *Result) Get(shape tensor.Shape) (*tensor.Dense, []float32) {
	if r.t == nil || !r.t.Shape().Eq(shape) {
		r.t = tensor.New(tensor.WithShape(shape.Clone()...), tensor.Of(tensor.Float32))
	}
	return r.t, r.t.Data().([]float32)
}

// TensorType is a float tensor type of the given rank.
func TensorType(dims int) G.TensorType { return G.TensorType{Dims: dims, Of: hm.TypeVariable('a')} }

// FnType is the type of an op from its argument and result types.
func FnType(ts ...hm.Type) hm.Type { return hm.NewFnType(ts...) }

// Floats returns the float32 elements of v in row-major order,
// materialising views (a transposed tensor's backing array is not in
// logical order).
func Floats(v G.Value) ([]float32, error) {
	switch t := v.(type) {
	case *tensor.Dense:
		if t.IsMaterializable() {
			t = t.Materialize().(*tensor.Dense)
		}
		d, ok := t.Data().([]float32)
		if !ok {
			return nil, fmt.Errorf("expected float32 data, got %v", t.Dtype())
		}
		return d, nil
	case *G.F32:
		return []float32{float32(*t)}, nil
	}
	return nil, fmt.Errorf("expected a float32 tensor, got %T", v)
}

// Inputs converts every input of op o to its float32 elements.
func (o *Base) Inputs(want int, vs []G.Value) ([][]float32, error) {
	if len(vs) != want {
		return nil, o.Errorf("got %d inputs, want %d", len(vs), want)
	}
	out := make([][]float32, len(vs))
	for i, v := range vs {
		d, err := Floats(v)
		if err != nil {
			return nil, o.Errorf("input %d: %v", i, err)
		}
		out[i] = d
	}
	return out, nil
}

// Shaped returns the float32 elements of the input v, called what in
// errors, after checking that it has the shape want.
func (o *Base) Shaped(what string, v G.Value, want tensor.Shape) ([]float32, error) {
	t, ok := v.(*tensor.Dense)
	if !ok {
		return nil, o.Errorf("%s: expected a dense tensor, got %T", what, v)
	}
	if !t.Shape().Eq(want) {
		return nil, o.Errorf("%s: shape %v, want %v", what, t.Shape(), want)
	}
	d, err := Floats(t)
	if err != nil {
		return nil, o.Errorf("%s: %v", what, err)
	}
	return d, nil
}
