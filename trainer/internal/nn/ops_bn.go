package nn

import (
	"math"

	"github.com/cifarnet-go/cifarnet/trainer/internal/opbase"

	"github.com/cifarnet-go/cifarnet/trainer/internal/parallel"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// bnOp is batch normalisation over the channel axis of an NC or NCHW input,
// with inputs (x, γ, β). In training it normalises with the batch's
// statistics and moves the running statistics towards them like PyTorch
// (running = (1−momentum)·running + momentum·batch, the variance unbiased);
// in evaluation it normalises with the running statistics. gorgonia's own
// BatchNorm keeps its statistics inside the op and its scale shaped like
// the whole input, so it cannot hold a state_dict-shaped layer.
type bnOp struct {
	opbase.Base
	dims     int
	layer    string // names the running statistics
	training bool
	// frozen, in training, normalises with the running statistics and
	// leaves them as they are: fine-tuning on a few images of a few
	// classes, whose batch statistics are far from the data the network
	// learnt them on.
	frozen   bool
	eps      float64
	momentum float64
	// runMean and runVar are the network's running-statistics parameters,
	// updated in place in training.
	runMean, runVar []float32
	// mean and invStd are the statistics the last forward pass normalised
	// with; the backward ops read them.
	mean, invStd []float32
}

func newBNOp(name string, dims int, training bool, eps, momentum float64, runMean, runVar []float32) *bnOp {
	c := len(runMean)
	return &bnOp{
		Base: opbase.Base{Name: "batchnorm:" + name}, dims: dims, layer: name, training: training,
		eps: eps, momentum: momentum, runMean: runMean, runVar: runVar,
		mean: make([]float32, c), invStd: make([]float32, c),
	}
}

func (op *bnOp) Arity() int { return 3 }
func (op *bnOp) Describe() opbase.Desc {
	return opbase.Desc{Kind: opbase.BatchNorm, Layer: op.layer, Training: op.training, Frozen: op.frozen, Eps: op.eps, Momentum: op.momentum}
}
func (op *bnOp) Type() hm.Type {
	t := opbase.TensorType(op.dims)
	v := opbase.TensorType(1)
	return opbase.FnType(t, v, v, t)
}
func (op *bnOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) { return firstShape(in...) }

func (op *bnOp) Do(in ...G.Value) (G.Value, error) {
	vs, err := op.Inputs(3, in)
	if err != nil {
		return nil, err
	}
	x, gamma, beta := vs[0], vs[1], vs[2]
	n, c, hw := channelGeometry(in[0].Shape())
	if c != len(op.mean) || len(gamma) != c || len(beta) != c {
		return nil, op.Errorf("input has %d channels, parameters %d", c, len(op.mean))
	}
	out, y := op.Output(in[0].Shape())
	forChannels(c, func(ch int) {
		if op.training && !op.frozen {
			op.batchStats(x, ch, n, c, hw)
		} else {
			op.mean[ch] = op.runMean[ch]
			op.invStd[ch] = float32(1 / math.Sqrt(float64(op.runVar[ch])+op.eps))
		}
		scale := gamma[ch] * op.invStd[ch]
		shift := beta[ch] - op.mean[ch]*scale
		for b := range n {
			off := (b*c + ch) * hw
			dst := y[off : off+hw]
			for i, v := range x[off : off+hw] {
				dst[i] = v*scale + shift
			}
		}
	})
	return out, nil
}

// forChannels runs body for every channel in [0, c), the channels split
// over the cores.
func forChannels(c int, body func(ch int)) {
	parallel.For(c, parallel.Workers(c), func(_, lo, hi int) {
		for ch := lo; ch < hi; ch++ {
			body(ch)
		}
	})
}

// batchStats sets channel ch's mean and invStd from x and updates its
// running statistics. One pass sums the values less the channel's first
// one, which keeps the sum of squares clear of the cancellation that
// E[x²] − E[x]² suffers when the mean is large against the spread.
func (op *bnOp) batchStats(x []float32, ch, n, c, hw int) {
	m := float64(n * hw)
	shift := x[ch*hw]
	var sum, sq float64
	for b := range n {
		off := (b*c + ch) * hw
		s, q := shiftedSums(x[off:off+hw], shift)
		sum, sq = sum+s, sq+q
	}
	mean := float64(shift) + sum/m
	variance := max(0, (sq-sum*sum/m)/m)
	op.mean[ch] = float32(mean)
	op.invStd[ch] = float32(1 / math.Sqrt(variance+op.eps))
	unbiased := variance
	if m > 1 {
		unbiased = variance * m / (m - 1)
	}
	mom := op.momentum
	op.runMean[ch] = float32((1-mom)*float64(op.runMean[ch]) + mom*mean)
	op.runVar[ch] = float32((1-mom)*float64(op.runVar[ch]) + mom*unbiased)
}

// shiftedSums returns Σ(v−k) and Σ(v−k)² over xs. Four float32 partial
// sums per quantity (one image plane of a channel, at most a few thousand
// values) keep the adds independent; callers add the planes in float64.
func shiftedSums(xs []float32, k float32) (sum, sq float64) {
	var s0, s1, s2, s3, q0, q1, q2, q3 float32
	i := 0
	for ; i+4 <= len(xs); i += 4 {
		v := xs[i : i+4 : i+4]
		d0, d1, d2, d3 := v[0]-k, v[1]-k, v[2]-k, v[3]-k
		s0, s1, s2, s3 = s0+d0, s1+d1, s2+d2, s3+d3
		q0, q1, q2, q3 = q0+d0*d0, q1+d1*d1, q2+d2*d2, q3+d3*d3
	}
	for ; i < len(xs); i++ {
		d := xs[i] - k
		s0, q0 = s0+d, q0+d*d
	}
	return float64(s0+s1) + float64(s2+s3), float64(q0+q1) + float64(q2+q3)
}

// centredDot returns Σ dy·(x−k), with shiftedSums' partial sums.
func centredDot(dy, x []float32, k float32) float64 {
	var s0, s1, s2, s3 float32
	x = x[:len(dy)]
	i := 0
	for ; i+4 <= len(dy); i += 4 {
		g, v := dy[i:i+4:i+4], x[i:i+4:i+4]
		s0 += g[0] * (v[0] - k)
		s1 += g[1] * (v[1] - k)
		s2 += g[2] * (v[2] - k)
		s3 += g[3] * (v[3] - k)
	}
	for ; i < len(dy); i++ {
		s0 += dy[i] * (x[i] - k)
	}
	return float64(s0+s1) + float64(s2+s3)
}

func (op *bnOp) DiffWRT(int) []bool { return []bool{true, true, true} }

func (op *bnOp) SymDiff(in G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	if !op.training {
		return nil, op.Errorf("cannot differentiate batchnorm in evaluation mode")
	}
	x, gamma := in[0], in[1]
	dGamma, err := G.ApplyOp(&bnGammaGradOp{opbase.Base{Name: "batchnorm.dgamma:" + op.Name}, op}, x, grad)
	if err != nil {
		return nil, err
	}
	dBeta, err := G.ApplyOp(newChannelSumOp("batchnorm.dbeta:"+op.Name, op.dims), grad)
	if err != nil {
		return nil, err
	}
	dx, err := G.ApplyOp(&bnInputGradOp{opbase.Base{Name: "batchnorm.dx:" + op.Name}, op}, x, gamma, grad, dGamma, dBeta)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx, dGamma, dBeta}, nil
}

// bnGammaGradOp computes dγ = Σ dy·x̂ per channel from (x, dy).
type bnGammaGradOp struct {
	opbase.Base
	fwd *bnOp
}

func (op *bnGammaGradOp) Arity() int { return 2 }
func (op *bnGammaGradOp) Describe() opbase.Desc {
	return opbase.Desc{Kind: opbase.BatchNormGammaGrad, Forward: op.fwd}
}
func (op *bnGammaGradOp) Type() hm.Type {
	t := opbase.TensorType(op.fwd.dims)
	return opbase.FnType(t, t, opbase.TensorType(1))
}
func (op *bnGammaGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return channelShape(in...)
}

func (op *bnGammaGradOp) Do(in ...G.Value) (G.Value, error) {
	vs, err := op.Inputs(2, in)
	if err != nil {
		return nil, err
	}
	x, dy := vs[0], vs[1]
	n, c, hw := channelGeometry(in[0].Shape())
	out, dg := op.Output(tensor.Shape{c})
	forChannels(c, func(ch int) {
		mean := op.fwd.mean[ch]
		var s float64
		for b := range n {
			off := (b*c + ch) * hw
			s += centredDot(dy[off:off+hw], x[off:off+hw], mean)
		}
		dg[ch] = float32(s) * op.fwd.invStd[ch]
	})
	return out, nil
}

// bnInputGradOp computes dx = γ·σ⁻¹/M·(M·dy − dβ − x̂·dγ) from
// (x, γ, dy, dγ, dβ), M being the number of values per channel; with
// frozen statistics, dx = γ·σ⁻¹·dy.
type bnInputGradOp struct {
	opbase.Base
	fwd *bnOp
}

func (op *bnInputGradOp) Arity() int { return 5 }
func (op *bnInputGradOp) Describe() opbase.Desc {
	return opbase.Desc{Kind: opbase.BatchNormInputGrad, Forward: op.fwd}
}
func (op *bnInputGradOp) Type() hm.Type {
	t := opbase.TensorType(op.fwd.dims)
	v := opbase.TensorType(1)
	return opbase.FnType(t, v, t, v, v, t)
}
func (op *bnInputGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) { return firstShape(in...) }

func (op *bnInputGradOp) Do(in ...G.Value) (G.Value, error) {
	vs, err := op.Inputs(5, in)
	if err != nil {
		return nil, err
	}
	x, gamma, dy, dGamma, dBeta := vs[0], vs[1], vs[2], vs[3], vs[4]
	n, c, hw := channelGeometry(in[0].Shape())
	m := float32(n * hw)
	out, dx := op.Output(in[0].Shape())
	forChannels(c, func(ch int) {
		mean, inv := op.fwd.mean[ch], op.fwd.invStd[ch]
		k := gamma[ch] * inv / m
		// k·(m·dy − dβ − x̂·dγ) as a·dy + b·x + c.
		a, bx := k*m, -k*inv*dGamma[ch]
		c0 := -k*dBeta[ch] - bx*mean
		if op.fwd.frozen {
			// Constant statistics: y is affine in x.
			bx, c0 = 0, 0
		}
		for b := range n {
			off := (b*c + ch) * hw
			g, dst := dy[off:off+hw], dx[off:off+hw]
			for i, v := range x[off : off+hw] {
				dst[i] = a*g[i] + bx*v + c0
			}
		}
	})
	return out, nil
}
