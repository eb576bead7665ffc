package layerops

import (
	"fmt"

	"github.com/cifarnet-go/cifarnet/trainer/internal/opbase"

	"github.com/cifarnet-go/cifarnet/trainer/internal/parallel"

	"github.com/chewxy/hm"
	"github.com/cifarnet-go/cifarnet/models/gemm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Conv2D convolves the N×C×H×W batch x with the filters w (F×C×KH×KW, the
// PyTorch layout) at the given stride and zero padding, giving
// N×F×OutH×OutW, and adds the per-filter bias b (length F) unless b is nil.
//
// Gradients flow to w, b and x, except that a leaf x (the graph's input
// images) gets none: nothing needs it, and skipping it saves the first
// layer's input-gradient pass. Asking gorgonia.Grad for it is an error.
func Conv2D(x, w, b *G.Node, stride, pad int) (*G.Node, error) {
	xs, ws := x.Shape(), w.Shape()
	if len(xs) != 4 || len(ws) != 4 {
		return nil, fmt.Errorf("conv2d: input %v and filters %v must both have 4 dimensions", xs, ws)
	}
	if xs[1] != ws[1] {
		return nil, fmt.Errorf("conv2d: input has %d channels, filters %v expect %d", xs[1], ws, ws[1])
	}
	if stride <= 0 || pad < 0 {
		return nil, fmt.Errorf("conv2d: stride %d must be positive and padding %d non-negative", stride, pad)
	}
	if xs[2]+2*pad < ws[2] || xs[3]+2*pad < ws[3] {
		return nil, fmt.Errorf("conv2d: %d×%d filters do not fit a %d×%d input with padding %d", ws[2], ws[3], xs[2], xs[3], pad)
	}
	if b != nil && (b.Dims() != 1 || b.Shape()[0] != ws[0]) {
		return nil, fmt.Errorf("conv2d: bias shape %v, want (%d)", b.Shape(), ws[0])
	}
	g := newConvGeom(xs[0], xs[1], xs[2], xs[3], ws[0], ws[2], ws[3], stride, pad)
	name := fmt.Sprintf("conv2d(%v,%v,s%d,p%d,bias=%t)", xs, ws, stride, pad, b != nil)
	op := &convOp{Base: opbase.Base{Name: name}, geom: g, bias: b != nil, gradX: x.Op() != nil}
	if b == nil {
		return G.ApplyOp(op, x, w)
	}
	return G.ApplyOp(op, x, w, b)
}

// convOp is the forward convolution: inputs (x, w) or (x, w, b).
type convOp struct {
	opbase.Base
	geom  convGeom
	bias  bool
	gradX bool // whether x gets a gradient

	wPack   []float32 // w packed for the GEMM, once per run
	wino    winoFilters
	workers []convWorker
}

// convWorker is one goroutine's working memory, reused across runs.
type convWorker struct {
	cols    []float32 // im2col matrices of a group of images, side by side
	tmp     []float32 // a group's output (or, for col2im, its dY), side by side
	scratch []float32 // GEMM scratch
	panels  patchPanels
	v, m    []float32 // Winograd input transforms and products of a group
}

// reserve sizes the buffers for groups of g.group images whose GEMM
// multiplies a B as deep as depth, and returns the group size. The cols
// buffer is for a patch matrix that is stored whole: a direct convolution's
// gathered images or col2im's input.
func (wk *convWorker) reserve(g *convGeom, depth int, cols bool) int {
	nb := g.group(g.plane)
	wk.scratch = grow(wk.scratch, gemm.ScratchSize(depth, nb*g.plane))
	if cols {
		wk.cols = grow(wk.cols, g.colRows*nb*g.plane)
	}
	if nb > 1 {
		wk.tmp = grow(wk.tmp, g.f*nb*g.plane)
	}
	return nb
}

// convolve sets images lo..hi of dst (N×F×plane) to the convolution of
// those of src under geometry g with the filters packed in wp, plus bias
// unless it is nil, a group of images per GEMM.
func (wk *convWorker) convolve(wp gemm.Packed, g *convGeom, dst, src, bias []float32, lo, hi int) {
	nb := wk.reserve(g, g.colRows, g.direct())
	for i := lo; i < hi; i += nb {
		k := min(nb, hi-i)
		ld := k * g.plane
		out := dst[i*g.outSize() : (i+k)*g.outSize()]
		c, ldc := out, g.plane
		if k > 1 {
			c, ldc = wk.tmp, ld
		}
		if g.direct() {
			wp.Mul(c, ldc, g.patches(wk.cols, src, i, k), ld, ld, bias, wk.scratch)
		} else {
			wk.panels.g, wk.panels.x = g, src[i*g.inSize():(i+k)*g.inSize()]
			wk.panels.row = grow(wk.panels.row, ld)
			wp.MulPanels(c, ldc, &wk.panels, ld, bias, wk.scratch)
		}
		if k > 1 {
			scatter(out, wk.tmp, k, g.f, g.plane)
		}
	}
}

// patches returns the im2col matrices of images i..i+k of the batch x side
// by side (colRows × k·plane), built in buf; for a single image of a 1×1
// convolution, that is the image itself.
func (g *convGeom) patches(buf, x []float32, i, k int) []float32 {
	if g.direct() {
		if k == 1 {
			return x[i*g.inSize() : (i+1)*g.inSize()]
		}
		gather(buf, x[i*g.inSize():], k, g.c, g.plane)
		return buf[:g.colRows*k*g.plane]
	}
	ld := k * g.plane
	for j := range k {
		im2col(buf[j*g.plane:], ld, x[(i+j)*g.inSize():(i+j+1)*g.inSize()], g)
	}
	return buf[:g.colRows*ld]
}

func (op *convOp) Arity() int {
	if op.bias {
		return 3
	}
	return 2
}

func (op *convOp) Describe() opbase.Desc {
	return opbase.Desc{Kind: opbase.Conv, Kernel: op.geom.kh, Stride: op.geom.stride, Pad: op.geom.pad}
}

func (op *convOp) Type() hm.Type {
	t := opbase.TensorType(4)
	if op.bias {
		return hm.NewFnType(t, t, opbase.TensorType(1), t)
	}
	return hm.NewFnType(t, t, t)
}

func (op *convOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	g := &op.geom
	return tensor.Shape{g.n, g.f, g.outH, g.outW}, nil
}

func (op *convOp) Do(in ...G.Value) (G.Value, error) {
	g := &op.geom
	if len(in) != op.Arity() {
		return nil, op.Errorf("got %d inputs, want %d", len(in), op.Arity())
	}
	x, err := op.Shaped("input", in[0], tensor.Shape{g.n, g.c, g.h, g.w})
	if err != nil {
		return nil, err
	}
	w, err := op.Shaped("filters", in[1], tensor.Shape{g.f, g.c, g.kh, g.kw})
	if err != nil {
		return nil, err
	}
	var bias []float32
	if op.bias {
		if bias, err = op.Shaped("bias", in[2], tensor.Shape{g.f}); err != nil {
			return nil, err
		}
	}
	out, y := op.Output(tensor.Shape{g.n, g.f, g.outH, g.outW})

	var wp gemm.Packed
	wino := g.winograd()
	if wino {
		op.wino.prepare(w, g.f, g.c)
	} else {
		op.wPack = grow(op.wPack, gemm.PackedSize(g.f, g.colRows))
		wp = gemm.PackInto(op.wPack, w, g.f, g.colRows, false)
	}
	nw := parallel.Workers(g.n)
	for len(op.workers) < nw {
		op.workers = append(op.workers, convWorker{})
	}
	parallel.For(g.n, nw, func(wi, lo, hi int) {
		if wino {
			op.workers[wi].winoConvolve(&op.wino, g, y, x, bias, lo, hi)
			return
		}
		op.workers[wi].convolve(wp, g, y, x, bias, lo, hi)
	})
	return out, nil
}

func (op *convOp) DiffWRT(int) []bool {
	if op.bias {
		return []bool{op.gradX, true, true}
	}
	return []bool{op.gradX, true}
}

func (op *convOp) SymDiff(in G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	x, w := in[0], in[1]
	grads := make(G.Nodes, len(in))
	var err error
	if grads[1], err = G.ApplyOp(&convFilterGradOp{Base: opbase.Base{Name: "dw:" + op.Name}, geom: op.geom}, x, grad); err != nil {
		return nil, err
	}
	if op.gradX {
		if grads[0], err = G.ApplyOp(newConvInputGradOp(op.Name, op.geom), w, grad); err != nil {
			return nil, err
		}
	}
	if op.bias {
		if grads[2], err = G.ApplyOp(&biasGradOp{Base: opbase.Base{Name: "db:" + op.Name}, geom: op.geom}, grad); err != nil {
			return nil, err
		}
	}
	return grads, nil
}

// convFilterGradOp computes dW = Σ over images of dY·colsᵀ from (x, dY),
// recomputing each image's im2col matrix rather than keeping the whole
// batch's from the forward pass (hundreds of megabytes).
type convFilterGradOp struct {
	opbase.Base
	geom    convGeom
	workers []filterGradWorker
}

type filterGradWorker struct {
	cols    []float32 // im2col matrices of a group of images, side by side
	dyGroup []float32 // a group's dY, side by side
	dyPack  []float32 // a group's dY packed as the GEMM's A
	scratch []float32 // GEMM scratch
	partial []float32 // this worker's share of dW (worker 0 uses the output)
}

func (op *convFilterGradOp) Arity() int { return 2 }
func (op *convFilterGradOp) Describe() opbase.Desc {
	return opbase.Desc{Kind: opbase.ConvFilterGrad, Kernel: op.geom.kh, Stride: op.geom.stride, Pad: op.geom.pad}
}
func (op *convFilterGradOp) Type() hm.Type {
	t := opbase.TensorType(4)
	return hm.NewFnType(t, t, t)
}
func (op *convFilterGradOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	g := &op.geom
	return tensor.Shape{g.f, g.c, g.kh, g.kw}, nil
}
func (op *convFilterGradOp) Do(in ...G.Value) (G.Value, error) {
	g := &op.geom
	if len(in) != 2 {
		return nil, op.Errorf("got %d inputs, want 2", len(in))
	}
	x, err := op.Shaped("input", in[0], tensor.Shape{g.n, g.c, g.h, g.w})
	if err != nil {
		return nil, err
	}
	dy, err := op.Shaped("output gradient", in[1], tensor.Shape{g.n, g.f, g.outH, g.outW})
	if err != nil {
		return nil, err
	}
	out, dw := op.Output(tensor.Shape{g.f, g.c, g.kh, g.kw})
	nw := parallel.Workers(g.n)
	for len(op.workers) < nw {
		op.workers = append(op.workers, filterGradWorker{})
	}
	nb := g.group(g.plane)
	parallel.For(g.n, nw, func(wi, lo, hi int) {
		wk := &op.workers[wi]
		wk.scratch = grow(wk.scratch, gemm.ScratchSize(nb*g.plane, g.colRows))
		wk.dyPack = grow(wk.dyPack, gemm.PackedSize(g.f, nb*g.plane))
		wk.cols = grow(wk.cols, g.colRows*nb*g.plane)
		if nb > 1 {
			wk.dyGroup = grow(wk.dyGroup, g.f*nb*g.plane)
		}
		acc := dw
		if wi > 0 {
			wk.partial = grow(wk.partial, len(dw))
			acc = wk.partial
		}
		clear(acc)
		for i := lo; i < hi; i += nb {
			k := min(nb, hi-i)
			ld := k * g.plane
			cols := g.patches(wk.cols, x, i, k)
			dyi := dy[i*g.outSize() : (i+k)*g.outSize()]
			if k > 1 {
				gather(wk.dyGroup, dyi, k, g.f, g.plane)
				dyi = wk.dyGroup[:g.f*ld]
			}
			dyp := gemm.PackInto(wk.dyPack, dyi, g.f, ld, false)
			dyp.MulAddTransB(acc, g.colRows, cols, ld, g.colRows, wk.scratch)
		}
	})
	for wi := 1; wi < nw; wi++ {
		for j, v := range op.workers[wi].partial {
			dw[j] += v
		}
	}
	return out, nil
}

// convInputGradOp computes dX from (w, dY). A stride-1 convolution's input
// gradient is itself a convolution: of dY, padded by K−1−pad, with the
// filters rotated by 180° and their in and out channels swapped. That
// path runs im2col on dY (row copies) and a GEMM as deep as F·K², where
// the general one, dcols = Wᵀ·dY then col2im, multiplies only F deep and
// scatter-adds every value K² times.
type convInputGradOp struct {
	opbase.Base
	geom convGeom
	// flipped, if set, is the geometry of the convolution of dY that gives
	// dX.
	flipped *convGeom
	wFlip   []float32 // the rotated, transposed filters (flipped path)
	wPack   []float32 // packed Wᵀ or rotated filters, once per run
	wino    winoFilters
	workers []convWorker
}

// generalGrad computes dX for images lo..hi as col2im(Wᵀ·dY), with Wᵀ
// packed in wp (for a 1×1 convolution, Wᵀ·dY is dX itself), a group of
// images per GEMM.
func (op *convInputGradOp) generalGrad(wk *convWorker, wp gemm.Packed, dx, dy []float32, lo, hi int) {
	g := &op.geom
	nb := wk.reserve(g, g.f, true)
	for i := lo; i < hi; i += nb {
		k := min(nb, hi-i)
		ld := k * g.plane
		dyi := dy[i*g.outSize() : (i+k)*g.outSize()]
		if k > 1 {
			gather(wk.tmp, dyi, k, g.f, g.plane)
			dyi = wk.tmp[:g.f*ld]
		}
		dxi := dx[i*g.inSize() : (i+k)*g.inSize()]
		if g.direct() && k == 1 {
			wp.Mul(dxi, g.plane, dyi, ld, ld, nil, wk.scratch)
			continue
		}
		wp.Mul(wk.cols, ld, dyi, ld, ld, nil, wk.scratch)
		if g.direct() {
			scatter(dxi, wk.cols, k, g.c, g.plane)
			continue
		}
		for j := range k {
			col2im(dxi[j*g.inSize():(j+1)*g.inSize()], wk.cols[j*g.plane:], ld, g)
		}
	}
}

func newConvInputGradOp(name string, g convGeom) *convInputGradOp {
	op := &convInputGradOp{Base: opbase.Base{Name: "dx:" + name}, geom: g}
	if g.stride == 1 && g.kh == g.kw && g.pad < g.kh && !g.direct() {
		fg := newConvGeom(g.n, g.f, g.outH, g.outW, g.c, g.kh, g.kw, 1, g.kh-1-g.pad)
		op.flipped = &fg
	}
	return op
}

func (op *convInputGradOp) Arity() int { return 2 }
func (op *convInputGradOp) Describe() opbase.Desc {
	return opbase.Desc{Kind: opbase.ConvInputGrad, Kernel: op.geom.kh, Stride: op.geom.stride, Pad: op.geom.pad}
}
func (op *convInputGradOp) Type() hm.Type {
	t := opbase.TensorType(4)
	return hm.NewFnType(t, t, t)
}
func (op *convInputGradOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	g := &op.geom
	return tensor.Shape{g.n, g.c, g.h, g.w}, nil
}
func (op *convInputGradOp) Do(in ...G.Value) (G.Value, error) {
	g := &op.geom
	if len(in) != 2 {
		return nil, op.Errorf("got %d inputs, want 2", len(in))
	}
	w, err := op.Shaped("filters", in[0], tensor.Shape{g.f, g.c, g.kh, g.kw})
	if err != nil {
		return nil, err
	}
	dy, err := op.Shaped("output gradient", in[1], tensor.Shape{g.n, g.f, g.outH, g.outW})
	if err != nil {
		return nil, err
	}
	out, dx := op.Output(tensor.Shape{g.n, g.c, g.h, g.w})
	var wp gemm.Packed
	if fg := op.flipped; fg != nil {
		op.wFlip = grow(op.wFlip, len(w))
		rotateFilters(op.wFlip, w, g)
		if fg.winograd() {
			op.wino.prepare(op.wFlip, fg.f, fg.c)
		} else {
			op.wPack = grow(op.wPack, gemm.PackedSize(fg.f, fg.colRows))
			wp = gemm.PackInto(op.wPack, op.wFlip, fg.f, fg.colRows, false)
		}
	} else {
		// w is F×colRows row-major, which is (Wᵀ)ᵀ: pack it transposed.
		op.wPack = grow(op.wPack, gemm.PackedSize(g.colRows, g.f))
		wp = gemm.PackInto(op.wPack, w, g.colRows, g.f, true)
	}
	nw := parallel.Workers(g.n)
	for len(op.workers) < nw {
		op.workers = append(op.workers, convWorker{})
	}
	parallel.For(g.n, nw, func(wi, lo, hi int) {
		switch fg := op.flipped; {
		case fg != nil && fg.winograd():
			op.workers[wi].winoConvolve(&op.wino, fg, dx, dy, nil, lo, hi)
		case fg != nil:
			// fg's output size is g's input size: dX.
			op.workers[wi].convolve(wp, fg, dx, dy, nil, lo, hi)
		default:
			op.generalGrad(&op.workers[wi], wp, dx, dy, lo, hi)
		}
	})
	return out, nil
}

// rotateFilters sets dst (C×F×K×K) to the filters w (F×C×K×K) rotated by
// 180° with in and out channels swapped.
func rotateFilters(dst, w []float32, g *convGeom) {
	k := g.kh
	for f := 0; f < g.f; f++ {
		for c := 0; c < g.c; c++ {
			src := w[(f*g.c+c)*k*k : (f*g.c+c+1)*k*k]
			d := dst[(c*g.f+f)*k*k : (c*g.f+f+1)*k*k]
			for i, v := range src {
				d[len(d)-1-i] = v
			}
		}
	}
}

// biasGradOp sums dY over images and positions: the bias gradient.
type biasGradOp struct {
	opbase.Base
	geom convGeom
}

func (op *biasGradOp) Arity() int { return 1 }
func (op *biasGradOp) Describe() opbase.Desc {
	return opbase.Desc{Kind: opbase.ConvBiasGrad}
}
func (op *biasGradOp) Type() hm.Type { return hm.NewFnType(opbase.TensorType(4), opbase.TensorType(1)) }
func (op *biasGradOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{op.geom.f}, nil
}
func (op *biasGradOp) Do(in ...G.Value) (G.Value, error) {
	g := &op.geom
	if len(in) != 1 {
		return nil, op.Errorf("got %d inputs, want 1", len(in))
	}
	dy, err := op.Shaped("output gradient", in[0], tensor.Shape{g.n, g.f, g.outH, g.outW})
	if err != nil {
		return nil, err
	}
	out, db := op.Output(tensor.Shape{g.f})
	for f := range db {
		var sum float64
		for i := 0; i < g.n; i++ {
			off := (i*g.f + f) * g.plane
			// Sum each plane in float32 (vectorisable), the planes in float64.
			var s float32
			for _, v := range dy[off : off+g.plane] {
				s += v
			}
			sum += float64(s)
		}
		db[f] = float32(sum)
	}
	return out, nil
}
