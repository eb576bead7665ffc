package nn

import (
	"math"

	"github.com/cifarnet-go/cifarnet/trainer/internal/opbase"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// biasOp adds a per-channel bias b[C] to an NC or NCHW input. gorgonia's
// broadcasting add materialises the repeated bias and is much slower.
type biasOp struct {
	opbase.Base
	dims int
}

func (op *biasOp) Arity() int            { return 2 }
func (op *biasOp) Describe() opbase.Desc { return opbase.Desc{Kind: opbase.Bias} }
func (op *biasOp) Type() hm.Type {
	t := opbase.TensorType(op.dims)
	return opbase.FnType(t, opbase.TensorType(1), t)
}
func (op *biasOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) { return firstShape(in...) }

func (op *biasOp) Do(in ...G.Value) (G.Value, error) {
	vs, err := op.Inputs(2, in)
	if err != nil {
		return nil, err
	}
	x, bias := vs[0], vs[1]
	n, c, hw := channelGeometry(in[0].Shape())
	if len(bias) != c {
		return nil, op.Errorf("%d biases for %d channels", len(bias), c)
	}
	out, y := op.Output(in[0].Shape())
	for b := range n {
		for ch := range c {
			off := (b*c + ch) * hw
			bv := bias[ch]
			for i, v := range x[off : off+hw] {
				y[off+i] = v + bv
			}
		}
	}
	return out, nil
}

func (op *biasOp) DiffWRT(int) []bool { return []bool{true, true} }

func (op *biasOp) SymDiff(_ G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	db, err := G.ApplyOp(newChannelSumOp("bias.grad:"+op.Name, op.dims), grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{grad, db}, nil
}

// channelSumOp sums an NC or NCHW tensor over all axes but the channel
// axis: the gradient of a bias or of batchnorm's β.
type channelSumOp struct {
	opbase.Base
	dims int
}

func newChannelSumOp(name string, dims int) *channelSumOp {
	return &channelSumOp{opbase.Base{Name: "channelsum:" + name}, dims}
}

func (op *channelSumOp) Arity() int            { return 1 }
func (op *channelSumOp) Describe() opbase.Desc { return opbase.Desc{Kind: opbase.ChannelSum} }
func (op *channelSumOp) Type() hm.Type {
	return opbase.FnType(opbase.TensorType(op.dims), opbase.TensorType(1))
}
func (op *channelSumOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return channelShape(in...)
}

func (op *channelSumOp) Do(in ...G.Value) (G.Value, error) {
	vs, err := op.Inputs(1, in)
	if err != nil {
		return nil, err
	}
	x := vs[0]
	n, c, hw := channelGeometry(in[0].Shape())
	out, s := op.Output(tensor.Shape{c})
	forChannels(c, func(ch int) {
		var sum float64
		for b := range n {
			off := (b*c + ch) * hw
			sum += planeSum(x[off : off+hw])
		}
		s[ch] = float32(sum)
	})
	return out, nil
}

// gapOp averages an NCHW tensor over H and W, giving NC.
type gapOp struct{ opbase.Base }

func (op *gapOp) Arity() int            { return 1 }
func (op *gapOp) Describe() opbase.Desc { return opbase.Desc{Kind: opbase.GlobalAvgPool} }
func (op *gapOp) Type() hm.Type         { return opbase.FnType(opbase.TensorType(4), opbase.TensorType(2)) }
func (op *gapOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := firstShape(in...)
	if err != nil {
		return nil, err
	}
	return tensor.Shape{s[0], s[1]}, nil
}

func (op *gapOp) Do(in ...G.Value) (G.Value, error) {
	vs, err := op.Inputs(1, in)
	if err != nil {
		return nil, err
	}
	n, c, hw := channelGeometry(in[0].Shape())
	out, y := op.Output(tensor.Shape{n, c})
	for i := range y {
		var s float32
		for _, v := range vs[0][i*hw : (i+1)*hw] {
			s += v
		}
		y[i] = s / float32(hw)
	}
	return out, nil
}

func (op *gapOp) DiffWRT(int) []bool { return []bool{true} }

func (op *gapOp) SymDiff(in G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	dx, err := G.ApplyOp(&gapDiffOp{opbase.Base{Name: "gap'" + op.Name[len("gap"):]}}, in[0], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx}, nil
}

// gapDiffOp spreads dy[N,C] evenly over the H×W positions of x.
type gapDiffOp struct{ opbase.Base }

func (op *gapDiffOp) Arity() int            { return 2 }
func (op *gapDiffOp) Describe() opbase.Desc { return opbase.Desc{Kind: opbase.GlobalAvgPoolGrad} }
func (op *gapDiffOp) Type() hm.Type {
	return opbase.FnType(opbase.TensorType(4), opbase.TensorType(2), opbase.TensorType(4))
}
func (op *gapDiffOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return firstShape(in...)
}

func (op *gapDiffOp) Do(in ...G.Value) (G.Value, error) {
	if len(in) != 2 {
		return nil, op.Errorf("got %d inputs, want 2", len(in))
	}
	dy, err := opbase.Floats(in[1])
	if err != nil {
		return nil, op.Errorf("%v", err)
	}
	_, _, hw := channelGeometry(in[0].Shape())
	out, dx := op.Output(in[0].Shape())
	for i, g := range dy {
		g /= float32(hw)
		for j := i * hw; j < (i+1)*hw; j++ {
			dx[j] = g
		}
	}
	return out, nil
}

// dropoutOp zeroes each input with probability rate and scales the rest
// by 1/(1−rate). The mask is drawn from (seed, stream), which the graph
// sets every step, so that training is reproducible and resumable.
// (gorgonia's Dropout seeds itself from the clock.)
type dropoutOp struct {
	opbase.Base
	dims         int
	rate         float64
	seed, stream uint64
	mask         []float32 // 0 or 1/(1−rate) per element, from the last forward
}

func (op *dropoutOp) Arity() int { return 1 }
func (op *dropoutOp) Describe() opbase.Desc {
	return opbase.Desc{Kind: opbase.Dropout, Rate: op.rate, Stream: op.stream}
}
func (op *dropoutOp) Type() hm.Type {
	t := opbase.TensorType(op.dims)
	return opbase.FnType(t, t)
}
func (op *dropoutOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) { return firstShape(in...) }

func (op *dropoutOp) Do(in ...G.Value) (G.Value, error) {
	vs, err := op.Inputs(1, in)
	if err != nil {
		return nil, err
	}
	x := vs[0]
	if len(op.mask) != len(x) {
		op.mask = make([]float32, len(x))
	}
	keep := float32(1 / (1 - op.rate))
	threshold := uint32(op.rate * math.MaxUint32)
	out, y := op.Output(in[0].Shape())
	for i, v := range x {
		m := keep
		if opbase.DropBits(op.seed, op.stream, i) < threshold {
			m = 0
		}
		op.mask[i] = m
		y[i] = v * m
	}
	return out, nil
}

func (op *dropoutOp) DiffWRT(int) []bool { return []bool{true} }

func (op *dropoutOp) SymDiff(_ G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	dx, err := G.ApplyOp(&dropoutDiffOp{opbase.Base{Name: "dropout'" + op.Name[len("dropout"):]}, op}, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx}, nil
}

// dropoutDiffOp multiplies dy by the forward pass's mask.
type dropoutDiffOp struct {
	opbase.Base
	fwd *dropoutOp
}

func (op *dropoutDiffOp) Arity() int { return 1 }
func (op *dropoutDiffOp) Describe() opbase.Desc {
	return opbase.Desc{Kind: opbase.DropoutGrad, Rate: op.fwd.rate, Stream: op.fwd.stream, Forward: op.fwd}
}
func (op *dropoutDiffOp) Type() hm.Type {
	t := opbase.TensorType(op.fwd.dims)
	return opbase.FnType(t, t)
}
func (op *dropoutDiffOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) { return firstShape(in...) }

func (op *dropoutDiffOp) Do(in ...G.Value) (G.Value, error) {
	vs, err := op.Inputs(1, in)
	if err != nil {
		return nil, err
	}
	dy := vs[0]
	if len(dy) != len(op.fwd.mask) {
		return nil, op.Errorf("gradient has %d elements, mask %d", len(dy), len(op.fwd.mask))
	}
	out, dx := op.Output(in[0].Shape())
	for i, g := range dy {
		dx[i] = g * op.fwd.mask[i]
	}
	return out, nil
}

// xentOp is the mean softmax cross-entropy of logits [N,K] against target
// distributions [N,K] (one-hot or label-smoothed): a scalar.
type xentOp struct{ opbase.Base }

func (op *xentOp) Arity() int            { return 2 }
func (op *xentOp) Describe() opbase.Desc { return opbase.Desc{Kind: opbase.SoftmaxCrossEntropy} }
func (op *xentOp) Type() hm.Type {
	t := opbase.TensorType(2)
	return opbase.FnType(t, t, hm.TypeVariable('a'))
}
func (op *xentOp) InferShape(...G.DimSizer) (tensor.Shape, error) { return tensor.ScalarShape(), nil }

func (op *xentOp) Do(in ...G.Value) (G.Value, error) {
	vs, err := op.Inputs(2, in)
	if err != nil {
		return nil, err
	}
	s := in[0].Shape()
	n, k := s[0], s[1]
	logits, target := vs[0], vs[1]
	if len(target) != len(logits) {
		return nil, op.Errorf("logits have %d elements, targets %d", len(logits), len(target))
	}
	var total float64
	for i := range n {
		row := logits[i*k : (i+1)*k]
		lse := logSumExp(row)
		for j, t := range target[i*k : (i+1)*k] {
			if t != 0 {
				total -= float64(t) * (float64(row[j]) - lse)
			}
		}
	}
	return G.NewF32(float32(total / float64(n))), nil
}

func (op *xentOp) DiffWRT(int) []bool { return []bool{true, false} }

func (op *xentOp) SymDiff(in G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	dl, err := G.ApplyOp(&xentDiffOp{opbase.Base{Name: "xent'" + op.Name[len("xent"):]}}, in[0], in[1], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dl, nil}, nil
}

// logSumExp is log Σ exp(row), computed stably.
func logSumExp(row []float32) float64 {
	m := float64(row[0])
	for _, v := range row[1:] {
		m = max(m, float64(v))
	}
	var s float64
	for _, v := range row {
		s += math.Exp(float64(v) - m)
	}
	return m + math.Log(s)
}

// xentDiffOp computes (softmax(logits) − target)·dloss/N from
// (logits, target, dloss).
type xentDiffOp struct{ opbase.Base }

func (op *xentDiffOp) Arity() int { return 3 }
func (op *xentDiffOp) Describe() opbase.Desc {
	return opbase.Desc{Kind: opbase.SoftmaxCrossEntropyGrad}
}
func (op *xentDiffOp) Type() hm.Type {
	t := opbase.TensorType(2)
	return opbase.FnType(t, t, hm.TypeVariable('a'), t)
}
func (op *xentDiffOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) { return firstShape(in...) }

func (op *xentDiffOp) Do(in ...G.Value) (G.Value, error) {
	vs, err := op.Inputs(3, in)
	if err != nil {
		return nil, err
	}
	logits, target, dl := vs[0], vs[1], vs[2]
	s := in[0].Shape()
	n, k := s[0], s[1]
	scale := float64(dl[0]) / float64(n)
	out, d := op.Output(s)
	for i := range n {
		row := logits[i*k : (i+1)*k]
		lse := logSumExp(row)
		for j, v := range row {
			d[i*k+j] = float32((math.Exp(float64(v)-lse) - float64(target[i*k+j])) * scale)
		}
	}
	return out, nil
}

// planeSum is Σ xs with four float32 partial sums (see shiftedSums).
func planeSum(xs []float32) float64 {
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(xs); i += 4 {
		v := xs[i : i+4 : i+4]
		s0, s1, s2, s3 = s0+v[0], s1+v[1], s2+v[2], s3+v[3]
	}
	for ; i < len(xs); i++ {
		s0 += xs[i]
	}
	return float64(s0+s1) + float64(s2+s3)
}
