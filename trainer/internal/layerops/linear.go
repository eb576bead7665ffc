package layerops

import (
	"fmt"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/cifarnet-go/cifarnet/models/gemm"
	"github.com/cifarnet-go/cifarnet/trainer/internal/opbase"
	"github.com/cifarnet-go/cifarnet/trainer/internal/parallel"
)

// Linear multiplies the N×K batch x by the transpose of the weights w
// (F×K, the PyTorch layout), giving N×F; add a bias separately. It is
// gorgonia.Mul(x, Transpose(w)) on the vector GEMM: gorgonia's goes
// through gonum's sgemm and a transposed copy of w, and was a tenth of a
// keras-cnn training step for its one 2048×128 layer.
//
// Gradients flow to w and, unless x is a leaf, to x.
func Linear(x, w *G.Node) (*G.Node, error) {
	xs, ws := x.Shape(), w.Shape()
	if len(xs) != 2 || len(ws) != 2 {
		return nil, fmt.Errorf("linear: input %v and weights %v must both have 2 dimensions", xs, ws)
	}
	if xs[1] != ws[1] {
		return nil, fmt.Errorf("linear: input has %d features, weights %v expect %d", xs[1], ws, ws[1])
	}
	geom := linearGeom{n: xs[0], k: xs[1], f: ws[0]}
	op := &linearOp{Base: opbase.Base{Name: fmt.Sprintf("linear(%v,%v)", xs, ws)}, geom: geom, gradX: x.Op() != nil}
	return G.ApplyOp(op, x, w)
}

// linearGeom is y (N×F) = x (N×K) · wᵀ.
type linearGeom struct{ n, k, f int }

// gemmWorker holds one goroutine's packed operand and GEMM scratch.
type gemmWorker struct{ pack, scratch []float32 }

func (wk *gemmWorker) reserve(packed, scratch int) {
	wk.pack, wk.scratch = grow(wk.pack, packed), grow(wk.scratch, scratch)
}

func workersFor(ws *[]gemmWorker, n int) int {
	nw := parallel.Workers(n)
	for len(*ws) < nw {
		*ws = append(*ws, gemmWorker{})
	}
	return nw
}

type linearOp struct {
	opbase.Base
	geom    linearGeom
	gradX   bool
	workers []gemmWorker
}

func (op *linearOp) Arity() int            { return 2 }
func (op *linearOp) Describe() opbase.Desc { return opbase.Desc{Kind: opbase.Linear} }
func (op *linearOp) Type() hm.Type {
	t := opbase.TensorType(2)
	return hm.NewFnType(t, t, t)
}
func (op *linearOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{op.geom.n, op.geom.f}, nil
}

// Do splits the batch's rows over the cores; each packs its rows of x and
// multiplies them by wᵀ, read in place as a transposed operand.
func (op *linearOp) Do(in ...G.Value) (G.Value, error) {
	g := op.geom
	if len(in) != 2 {
		return nil, op.Errorf("got %d inputs, want 2", len(in))
	}
	x, err := op.Shaped("input", in[0], tensor.Shape{g.n, g.k})
	if err != nil {
		return nil, err
	}
	w, err := op.Shaped("weights", in[1], tensor.Shape{g.f, g.k})
	if err != nil {
		return nil, err
	}
	out, y := op.Output(tensor.Shape{g.n, g.f})
	nw := workersFor(&op.workers, g.n)
	parallel.For(g.n, nw, func(wi, lo, hi int) {
		if lo == hi {
			return
		}
		wk := &op.workers[wi]
		wk.reserve(gemm.PackedSize(hi-lo, g.k), gemm.ScratchSize(g.k, g.f))
		a := gemm.PackInto(wk.pack, x[lo*g.k:hi*g.k], hi-lo, g.k, false)
		c := y[lo*g.f : hi*g.f]
		clear(c)
		a.MulAddTransB(c, g.f, w, g.k, g.f, wk.scratch)
	})
	return out, nil
}

func (op *linearOp) DiffWRT(int) []bool { return []bool{op.gradX, true} }

func (op *linearOp) SymDiff(in G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	x, w := in[0], in[1]
	grads := make(G.Nodes, 2)
	var err error
	if grads[1], err = G.ApplyOp(&linearWeightGradOp{Base: opbase.Base{Name: "dw:" + op.Name}, geom: op.geom}, x, grad); err != nil {
		return nil, err
	}
	if op.gradX {
		if grads[0], err = G.ApplyOp(&linearInputGradOp{Base: opbase.Base{Name: "dx:" + op.Name}, geom: op.geom}, w, grad); err != nil {
			return nil, err
		}
	}
	return grads, nil
}

// linearInputGradOp computes dX (N×K) = dY · w from (w, dY).
type linearInputGradOp struct {
	opbase.Base
	geom    linearGeom
	workers []gemmWorker
}

func (op *linearInputGradOp) Arity() int            { return 2 }
func (op *linearInputGradOp) Describe() opbase.Desc { return opbase.Desc{Kind: opbase.LinearInputGrad} }
func (op *linearInputGradOp) Type() hm.Type {
	t := opbase.TensorType(2)
	return hm.NewFnType(t, t, t)
}
func (op *linearInputGradOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{op.geom.n, op.geom.k}, nil
}
func (op *linearInputGradOp) Do(in ...G.Value) (G.Value, error) {
	g := op.geom
	if len(in) != 2 {
		return nil, op.Errorf("got %d inputs, want 2", len(in))
	}
	w, err := op.Shaped("weights", in[0], tensor.Shape{g.f, g.k})
	if err != nil {
		return nil, err
	}
	dy, err := op.Shaped("output gradient", in[1], tensor.Shape{g.n, g.f})
	if err != nil {
		return nil, err
	}
	out, dx := op.Output(tensor.Shape{g.n, g.k})
	nw := workersFor(&op.workers, g.n)
	parallel.For(g.n, nw, func(wi, lo, hi int) {
		if lo == hi {
			return
		}
		wk := &op.workers[wi]
		wk.reserve(gemm.PackedSize(hi-lo, g.f), gemm.ScratchSize(g.f, g.k))
		a := gemm.PackInto(wk.pack, dy[lo*g.f:hi*g.f], hi-lo, g.f, false)
		a.Mul(dx[lo*g.k:hi*g.k], g.k, w, g.k, g.k, nil, wk.scratch)
	})
	return out, nil
}

// linearWeightGradOp computes dW (F×K) = dYᵀ · x from (x, dY). The cores
// split dW's columns, each multiplying all of dYᵀ by its columns of x, so
// that no partial sums need adding up.
type linearWeightGradOp struct {
	opbase.Base
	geom    linearGeom
	workers []gemmWorker
}

func (op *linearWeightGradOp) Arity() int { return 2 }
func (op *linearWeightGradOp) Describe() opbase.Desc {
	return opbase.Desc{Kind: opbase.LinearWeightGrad}
}
func (op *linearWeightGradOp) Type() hm.Type {
	t := opbase.TensorType(2)
	return hm.NewFnType(t, t, t)
}
func (op *linearWeightGradOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{op.geom.f, op.geom.k}, nil
}
func (op *linearWeightGradOp) Do(in ...G.Value) (G.Value, error) {
	g := op.geom
	if len(in) != 2 {
		return nil, op.Errorf("got %d inputs, want 2", len(in))
	}
	x, err := op.Shaped("input", in[0], tensor.Shape{g.n, g.k})
	if err != nil {
		return nil, err
	}
	dy, err := op.Shaped("output gradient", in[1], tensor.Shape{g.n, g.f})
	if err != nil {
		return nil, err
	}
	out, dw := op.Output(tensor.Shape{g.f, g.k})
	nw := workersFor(&op.workers, g.k)
	parallel.For(g.k, nw, func(wi, lo, hi int) {
		if lo == hi {
			return
		}
		wk := &op.workers[wi]
		wk.reserve(gemm.PackedSize(g.f, g.n), gemm.ScratchSize(g.n, hi-lo))
		// dy (N×F row-major) is dYᵀ stored transposed.
		a := gemm.PackInto(wk.pack, dy, g.f, g.n, true)
		a.Mul(dw[lo:], g.k, x[lo:], g.k, hi-lo, nil, wk.scratch)
	})
	return out, nil
}
