package layerops

import (
	"github.com/cifarnet-go/cifarnet/models/gemm"
	"github.com/cifarnet-go/cifarnet/models/winograd"
)

// Stride-1 3×3 convolutions of enough channels, the forward pass and the
// input gradient (a convolution of dY, see convInputGradOp) alike, run as
// Winograd F(2×2, 3×3) with the transforms of models/winograd: 16 products
// C deep per 2×2 tile instead of 36, and no patch matrix.

// winogradOn is whether Winograd pays with this CPU's matrix kernel; tests
// set it to run either path.
var winogradOn = winograd.Pays()

// minWinogradDepth is the fewest input channels worth it: the 16 GEMMs are
// only C deep, a shallow one is mostly loading and storing C, and the
// transforms cost per channel what the products save. Measured on
// keras-cnn and cifarnet-fast: at 32 the step was about 9 % slower than
// im2col, at 128 2–4 % faster.
const minWinogradDepth = 128

// winograd reports whether the convolution takes the Winograd path.
func (g *convGeom) winograd() bool {
	return winogradOn && g.kh == 3 && g.kw == 3 && g.stride == 1 && g.c >= minWinogradDepth &&
		winograd.Worthwhile(g.outH, g.outW)
}

// winoFilters is the filter transform U[ξ] (F×C) of an op's filters,
// packed for the GEMM; redone every run, as the weights change every step.
type winoFilters struct {
	u, buf [16][]float32
	packed [16]gemm.Packed
}

func (wf *winoFilters) prepare(w []float32, f, c int) {
	for xi := range wf.u {
		wf.u[xi] = grow(wf.u[xi], f*c)
	}
	winograd.Filters(&wf.u, w, f, c)
	for xi := range wf.u {
		wf.buf[xi] = grow(wf.buf[xi], gemm.PackedSize(f, c))
		wf.packed[xi] = gemm.PackInto(wf.buf[xi], wf.u[xi], f, c, false)
	}
}

// winoConvolve is convolve on the Winograd path: the tiles of a group of
// images side by side make the columns of each of the 16 products.
func (wk *convWorker) winoConvolve(wf *winoFilters, g *convGeom, dst, src, bias []float32, lo, hi int) {
	th, tw := winograd.Tiles(g.outH, g.outW)
	tiles := th * tw
	nb := g.group(tiles)
	wk.v = grow(wk.v, 16*winograd.Stride(g.c, nb*tiles))
	wk.m = grow(wk.m, 16*winograd.Stride(g.f, nb*tiles))
	wk.scratch = grow(wk.scratch, gemm.ScratchSize(g.c, nb*tiles))
	for i := lo; i < hi; i += nb {
		k := min(nb, hi-i)
		ld := k * tiles
		vs, ms := winograd.Stride(g.c, ld), winograd.Stride(g.f, ld)
		for j := range k {
			winograd.Input(wk.v[j*tiles:], ld, vs, src[(i+j)*g.inSize():(i+j+1)*g.inSize()], g.c, g.h, g.w, g.pad, g.outH, g.outW)
		}
		for xi := range 16 {
			wf.packed[xi].Mul(wk.m[xi*ms:], ld, wk.v[xi*vs:], ld, ld, nil, wk.scratch)
		}
		for j := range k {
			winograd.Output(dst[(i+j)*g.outSize():(i+j+1)*g.outSize()], wk.m[j*tiles:], ld, ms, g.f, g.outH, g.outW, bias)
		}
	}
}
