package layerops

import (
	"fmt"
	"math"

	"github.com/cifarnet-go/cifarnet/trainer/internal/opbase"

	"github.com/cifarnet-go/cifarnet/trainer/internal/parallel"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// MaxPool2D takes the maximum of each kernel×kernel window of the
// N×C×H×W batch x at the given stride; padding counts as −∞. The output is
// N×C×OutH×OutW with OutH = (H + 2·pad − kernel)/stride + 1, as in
// gorgonia.MaxPool2D and PyTorch. The forward pass records where each
// maximum came from (the first, on ties), and the backward pass routes the
// gradient there, so a backward run uses the indices of the last forward
// run of the same node.
func MaxPool2D(x *G.Node, kernel, stride, pad int) (*G.Node, error) {
	xs := x.Shape()
	if len(xs) != 4 {
		return nil, fmt.Errorf("maxpool2d: input %v must have 4 dimensions", xs)
	}
	if kernel <= 0 || stride <= 0 || pad < 0 || 2*pad > kernel {
		return nil, fmt.Errorf("maxpool2d: kernel %d and stride %d must be positive, padding %d between 0 and half the kernel", kernel, stride, pad)
	}
	if xs[2]+2*pad < kernel || xs[3]+2*pad < kernel {
		return nil, fmt.Errorf("maxpool2d: %d×%d window does not fit a %d×%d input with padding %d", kernel, kernel, xs[2], xs[3], pad)
	}
	g := newConvGeom(xs[0], xs[1], xs[2], xs[3], xs[1], kernel, kernel, stride, pad)
	op := &maxPoolOp{Base: opbase.Base{Name: fmt.Sprintf("maxpool2d(%v,k%d,s%d,p%d)", xs, kernel, stride, pad)}, geom: g}
	return G.ApplyOp(op, x)
}

// maxPoolOp is the forward max-pool. geom describes it as a convolution
// with one filter per channel, so f = c.
type maxPoolOp struct {
	opbase.Base
	geom convGeom
	// argmax holds, per output value, the index within its input plane
	// of the value it took.
	argmax []int32
}

func (op *maxPoolOp) Arity() int { return 1 }
func (op *maxPoolOp) Describe() opbase.Desc {
	return opbase.Desc{Kind: opbase.MaxPool, Kernel: op.geom.kh, Stride: op.geom.stride, Pad: op.geom.pad}
}
func (op *maxPoolOp) Type() hm.Type { t := opbase.TensorType(4); return hm.NewFnType(t, t) }
func (op *maxPoolOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	g := &op.geom
	return tensor.Shape{g.n, g.c, g.outH, g.outW}, nil
}
func (op *maxPoolOp) Do(in ...G.Value) (G.Value, error) {
	g := &op.geom
	if len(in) != 1 {
		return nil, op.Errorf("got %d inputs, want 1", len(in))
	}
	x, err := op.Shaped("input", in[0], tensor.Shape{g.n, g.c, g.h, g.w})
	if err != nil {
		return nil, err
	}
	out, y := op.Output(tensor.Shape{g.n, g.c, g.outH, g.outW})
	if cap(op.argmax) < len(y) {
		op.argmax = make([]int32, len(y))
	}
	op.argmax = op.argmax[:len(y)]
	planes := g.n * g.c
	parallel.For(planes, parallel.Workers(planes), func(_, lo, hi int) {
		inPlane, outPlane := g.h*g.w, g.plane
		for p := lo; p < hi; p++ {
			src := x[p*inPlane : (p+1)*inPlane]
			dst := y[p*outPlane : (p+1)*outPlane]
			idx := op.argmax[p*outPlane : (p+1)*outPlane]
			if g.kh == 2 && g.stride == 2 && g.pad == 0 {
				pool2x2(dst, idx, src, g.w, g.outH, g.outW)
			} else {
				poolPlane(dst, idx, src, g)
			}
		}
	})
	return out, nil
}

// pool2x2 is poolPlane for the common 2×2 window at stride 2 without
// padding.
func pool2x2(dst []float32, idx []int32, src []float32, w, outH, outW int) {
	for oy := 0; oy < outH; oy++ {
		r0 := src[2*oy*w : 2*oy*w+w]
		r1 := src[(2*oy+1)*w : (2*oy+1)*w+w]
		d := dst[oy*outW : oy*outW+outW]
		ix := idx[oy*outW : oy*outW+outW]
		base := int32(2 * oy * w)
		for ox := range d {
			i := 2 * ox
			best, at := r0[i], base+int32(i)
			if v := r0[i+1]; v > best {
				best, at = v, base+int32(i+1)
			}
			if v := r1[i]; v > best {
				best, at = v, base+int32(w+i)
			}
			if v := r1[i+1]; v > best {
				best, at = v, base+int32(w+i+1)
			}
			d[ox], ix[ox] = best, at
		}
	}
}

// poolPlane max-pools one H×W plane with any window, stride and padding.
func poolPlane(dst []float32, idx []int32, src []float32, g *convGeom) {
	for oy := 0; oy < g.outH; oy++ {
		y0 := oy*g.stride - g.pad
		for ox := 0; ox < g.outW; ox++ {
			x0 := ox*g.stride - g.pad
			best, at := float32(math.Inf(-1)), int32(-1)
			for iy := max(y0, 0); iy < min(y0+g.kh, g.h); iy++ {
				for ix := max(x0, 0); ix < min(x0+g.kw, g.w); ix++ {
					if v := src[iy*g.w+ix]; v > best || at < 0 {
						best, at = v, int32(iy*g.w+ix)
					}
				}
			}
			dst[oy*g.outW+ox], idx[oy*g.outW+ox] = best, at
		}
	}
}

func (op *maxPoolOp) DiffWRT(int) []bool { return []bool{true} }

func (op *maxPoolOp) SymDiff(in G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	dx, err := G.ApplyOp(&maxPoolGradOp{Base: opbase.Base{Name: "d:" + op.Name}, fwd: op}, in[0], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx}, nil
}

// maxPoolGradOp routes dY to the recorded maxima. Its inputs are (x, dY):
// x only orders it after the forward pass and gives dX its shape.
type maxPoolGradOp struct {
	opbase.Base
	fwd *maxPoolOp
}

func (op *maxPoolGradOp) Arity() int { return 2 }
func (op *maxPoolGradOp) Describe() opbase.Desc {
	return opbase.Desc{Kind: opbase.MaxPoolGrad, Kernel: op.fwd.geom.kh, Stride: op.fwd.geom.stride, Pad: op.fwd.geom.pad, Forward: op.fwd}
}
func (op *maxPoolGradOp) Type() hm.Type {
	t := opbase.TensorType(4)
	return hm.NewFnType(t, t, t)
}
func (op *maxPoolGradOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	g := &op.fwd.geom
	return tensor.Shape{g.n, g.c, g.h, g.w}, nil
}
func (op *maxPoolGradOp) Do(in ...G.Value) (G.Value, error) {
	g := &op.fwd.geom
	if len(in) != 2 {
		return nil, op.Errorf("got %d inputs, want 2", len(in))
	}
	dy, err := op.Shaped("output gradient", in[1], tensor.Shape{g.n, g.c, g.outH, g.outW})
	if err != nil {
		return nil, err
	}
	if len(op.fwd.argmax) != len(dy) {
		return nil, op.Errorf("backward run before the forward pass")
	}
	out, dx := op.Output(tensor.Shape{g.n, g.c, g.h, g.w})
	planes := g.n * g.c
	parallel.For(planes, parallel.Workers(planes), func(_, lo, hi int) {
		inPlane, outPlane := g.h*g.w, g.plane
		tiled := g.kh == 2 && g.stride == 2 && g.pad == 0 && g.h%2 == 0 && g.w%2 == 0
		for p := lo; p < hi; p++ {
			d := dx[p*inPlane : (p+1)*inPlane]
			idx := op.fwd.argmax[p*outPlane : (p+1)*outPlane]
			dyp := dy[p*outPlane : (p+1)*outPlane]
			if tiled {
				pool2x2Grad(d, idx, dyp, g.w)
				continue
			}
			clear(d)
			for j, v := range dyp {
				d[idx[j]] += v
			}
		}
	})
	return out, nil
}

// pool2x2Grad is the backward pass of pool2x2 when the 2×2 windows tile
// the w-wide plane d exactly: it clears each pair of input rows just
// before scattering into them, while they are in L1, instead of clearing
// the whole plane (the largest tensor of the network, so memory-bound)
// and then scattering into it.
func pool2x2Grad(d []float32, idx []int32, dy []float32, w int) {
	outW := w / 2
	for oy := range len(dy) / outW {
		r0, r1 := d[2*oy*w:2*oy*w+w], d[(2*oy+1)*w:(2*oy+1)*w+w]
		clear(r0)
		clear(r1)
		for j := oy * outW; j < (oy+1)*outW; j++ {
			d[idx[j]] = dy[j]
		}
	}
}
