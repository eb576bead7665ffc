package nn

import (
	"fmt"
	"hash"
	"hash/fnv"
	"io"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// This file holds what every custom gorgonia op here shares. An op is a
// forward Op with a SymDiff that applies one or more backward ops; each op
// computes into the buffer the tape machine preallocated from the previous
// run (UsePreallocDo), so steady-state training steps do not allocate.

// opBase supplies the Op methods that are the same for all our ops. name
// must be unique per op instance (kind and layer name): gorgonia merges
// nodes whose op hash and inputs are equal, which would be wrong for ops
// with state such as batchnorm or dropout.
type opBase struct{ name string }

func (o opBase) ReturnsPtr() bool      { return false }
func (o opBase) CallsExtern() bool     { return false }
func (o opBase) OverwritesInput() int  { return -1 }
func (o opBase) WriteHash(h hash.Hash) { io.WriteString(h, o.name) }
func (o opBase) String() string        { return o.name }
func (o opBase) Hashcode() uint32      { h := fnv.New32a(); o.WriteHash(h); return h.Sum32() }
func (o opBase) errorf(format string, a ...any) error {
	return fmt.Errorf("%s: %s", o.name, fmt.Sprintf(format, a...))
}

// tensorType is a float tensor of the given rank with element type a.
func tensorType(dims int) G.TensorType { return G.TensorType{Dims: dims, Of: hm.TypeVariable('a')} }

// fnType is the type of an op from its argument and result types.
func fnType(ts ...hm.Type) hm.Type { return hm.NewFnType(ts...) }

// firstShape is InferShape for ops whose output has the shape of input 0.
func firstShape(inputs ...G.DimSizer) (tensor.Shape, error) {
	s, ok := inputs[0].(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("expected a shape, got %T", inputs[0])
	}
	return s.Clone(), nil
}

// channelShape is the shape of a per-channel result (one value per
// channel C of an N×C×… input).
func channelShape(inputs ...G.DimSizer) (tensor.Shape, error) {
	s, err := firstShape(inputs...)
	if err != nil {
		return nil, err
	}
	return tensor.Shape{s[1]}, nil
}

// f32 returns the float32 elements of v in row-major order, materialising
// views (a transposed tensor's backing array is not in logical order).
func f32(v G.Value) ([]float32, error) {
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

// inputs32 converts every input to its float32 elements.
func inputs32(o opBase, want int, vs []G.Value) ([][]float32, error) {
	if len(vs) != want {
		return nil, o.errorf("got %d inputs, want %d", len(vs), want)
	}
	out := make([][]float32, len(vs))
	for i, v := range vs {
		d, err := f32(v)
		if err != nil {
			return nil, o.errorf("input %d: %v", i, err)
		}
		out[i] = d
	}
	return out, nil
}

// output returns prealloc when it is a float32 tensor of the given shape,
// else a new one. Every kernel writes all of its output.
func output(prealloc G.Value, shape tensor.Shape) (*tensor.Dense, []float32) {
	if p, ok := prealloc.(*tensor.Dense); ok && p.Dtype() == tensor.Float32 && p.Shape().Eq(shape) && !p.IsView() {
		return p, p.Data().([]float32)
	}
	d := make([]float32, shape.TotalSize())
	return tensor.New(tensor.WithShape(shape.Clone()...), tensor.WithBacking(d)), d
}

// channelGeometry splits an NC or NCHW shape into batch, channels and
// spatial size.
func channelGeometry(s tensor.Shape) (n, c, hw int) {
	n, c, hw = s[0], s[1], 1
	for _, d := range s[2:] {
		hw *= d
	}
	return n, c, hw
}
