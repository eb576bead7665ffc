package nn

import (
	"math"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/trainer/internal/opbase"
	"github.com/cifarnet-go/cifarnet/trainer/internal/parallel"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// activation is an elementwise function with its derivative.
type activation struct {
	name  string  // opbase.Desc's Act
	alpha float32 // leaky ReLU's slope
	f     func(x float32) float32
	df    func(x float32) float32 // derivative at x
	// slice and gradSlice, when set, are faster (vectorised) forms of
	// y = f(x) and dx = dy·f'(x) over slices.
	slice     func(y, x []float32)
	gradSlice func(dx, dy, x []float32)
}

func reluAct() activation {
	return activation{
		name: "relu",
		f: func(x float32) float32 {
			if x > 0 {
				return x
			}
			return 0
		},
		df: func(x float32) float32 {
			if x > 0 {
				return 1
			}
			return 0
		},
		slice:     reluSlice,
		gradSlice: reluGradSlice,
	}
}

// reluSlice and reluGradSlice work on the bits without branches: the sign
// of random activations is a coin flip, and a call per element through f
// was a sixth of a keras-cnn training step.
func reluSlice(y, x []float32) {
	y = y[:len(x)]
	for i, v := range x {
		b := math.Float32bits(v)
		y[i] = math.Float32frombits(b &^ uint32(int32(b)>>31)) // 0 if the sign bit is set
	}
}

func reluGradSlice(dx, dy, x []float32) {
	dx, dy = dx[:len(x)], dy[:len(x)]
	for i, v := range x {
		// All ones unless v > 0: int32(bits) - 1 is negative exactly for
		// +0 and negative v (in 64 bits, so that -0 does not wrap).
		notPos := uint32((int64(int32(math.Float32bits(v))) - 1) >> 63)
		dx[i] = math.Float32frombits(math.Float32bits(dy[i]) &^ notPos)
	}
}

func leakyReLUAct(alpha float32) activation {
	return activation{
		name: "leaky_relu", alpha: alpha,
		f: func(x float32) float32 {
			if x > 0 {
				return x
			}
			return alpha * x
		},
		df: func(x float32) float32 {
			if x > 0 {
				return 1
			}
			return alpha
		},
	}
}

// geluAct is the exact GELU, 0.5·x·(1+erf(x/√2)), as PyTorch's default
// and the models forward pass compute it.
func geluAct() activation {
	return activation{name: "gelu", f: models.GELUAt, df: models.GELUDerivative, slice: models.GELUSlice, gradSlice: models.GELUGradSlice}
}

// actOp applies an activation elementwise.
type actOp struct {
	opbase.Base
	act  activation
	dims int
}

func newActOp(name string, act activation, dims int) *actOp {
	return &actOp{opbase.Base{Name: "act:" + name}, act, dims}
}

func (op *actOp) Arity() int { return 1 }
func (op *actOp) Describe() opbase.Desc {
	return opbase.Desc{Kind: opbase.Activation, Act: op.act.name, Alpha: op.act.alpha}
}
func (op *actOp) Type() hm.Type {
	t := opbase.TensorType(op.dims)
	return opbase.FnType(t, t)
}
func (op *actOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) { return firstShape(in...) }

func (op *actOp) Do(in ...G.Value) (G.Value, error) {
	xs, err := op.Inputs(1, in)
	if err != nil {
		return nil, err
	}
	out, y := op.Output(in[0].Shape())
	f, x := op.act.f, xs[0]
	parallel.Range(len(x), func(lo, hi int) {
		if op.act.slice != nil {
			op.act.slice(y[lo:hi], x[lo:hi])
			return
		}
		for i, v := range x[lo:hi] {
			y[lo+i] = f(v)
		}
	})
	return out, nil
}

func (op *actOp) DiffWRT(int) []bool { return []bool{true} }

func (op *actOp) SymDiff(in G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	d := &actDiffOp{opbase.Base{Name: "act'" + op.Name[len("act"):]}, op}
	dx, err := G.ApplyOp(d, in[0], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx}, nil
}

// actDiffOp computes dy·f'(x) from (x, dy).
type actDiffOp struct {
	opbase.Base
	fwd *actOp
}

func (op *actDiffOp) Arity() int { return 2 }
func (op *actDiffOp) Describe() opbase.Desc {
	d := op.fwd.Describe()
	d.Kind, d.Forward = opbase.ActivationGrad, op.fwd
	return d
}
func (op *actDiffOp) Type() hm.Type {
	t := opbase.TensorType(op.fwd.dims)
	return opbase.FnType(t, t, t)
}
func (op *actDiffOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) { return firstShape(in...) }

func (op *actDiffOp) Do(in ...G.Value) (G.Value, error) {
	xs, err := op.Inputs(2, in)
	if err != nil {
		return nil, err
	}
	x, dy := xs[0], xs[1]
	if len(x) != len(dy) {
		return nil, op.Errorf("x has %d elements, dy %d", len(x), len(dy))
	}
	out, dx := op.Output(in[0].Shape())
	df := op.fwd.act.df
	parallel.Range(len(x), func(lo, hi int) {
		if g := op.fwd.act.gradSlice; g != nil {
			g(dx[lo:hi], dy[lo:hi], x[lo:hi])
			return
		}
		for i, v := range x[lo:hi] {
			dx[lo+i] = dy[lo+i] * df(v)
		}
	})
	return out, nil
}
