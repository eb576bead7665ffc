package models

import (
	"github.com/cifarnet-go/cifarnet/models/gemm"
	"github.com/cifarnet-go/cifarnet/models/winograd"
)

// Winograd F(2×2, 3×3) for stride-1 3×3 convolutions (package
// models/winograd has the transforms): it halves the work of the layers
// that dominate inference (single images in WebAssembly have no SIMD and
// no threads, so arithmetic is what we can save). The filter transform is
// done once at load time; per image the 16 element positions become 16
// matrix products.

// winogradEnabled is whether Winograd pays with this CPU's matrix kernel;
// tests and benchmarks set it to run either path.
var winogradEnabled = winograd.Pays()

// wino holds the transformed weights of one convolution.
type wino struct {
	u [16]*gemm.Packed // U[ξ]: out × in
}

// useWinograd reports whether a 3×3 stride-1 convolution producing an
// h×w map is cheaper with Winograd.
func useWinograd(kernel, stride, h, w int) bool {
	return winogradEnabled && kernel == 3 && stride == 1 && winograd.Worthwhile(h, w)
}

// newWinograd transforms weights [out, in, 3, 3].
func newWinograd(w []float32, out, in int) *wino {
	var u [16][]float32
	for x := range u {
		u[x] = make([]float32, out*in)
	}
	winograd.Filters(&u, w, out, in)
	wg := &wino{}
	for x := range u {
		wg.u[x] = gemm.Pack(u[x], out, in)
	}
	return wg
}

// winogradScratch is the scratch one image needs: V, M and GEMM panels.
func winogradScratch(in, out Shape) int {
	th, tw := winograd.Tiles(out.H, out.W)
	tiles := th * tw
	return 16*winograd.Stride(in.C, tiles) + 16*winograd.Stride(out.C, tiles) + gemm.ScratchSize(in.C, tiles)
}

// conv computes one image's convolution with padding pad.
func (wg *wino) conv(x, y []float32, in, out Shape, pad int, bias, scratch []float32) {
	th, tw := winograd.Tiles(out.H, out.W)
	tiles := th * tw
	vs, ms := winograd.Stride(in.C, tiles), winograd.Stride(out.C, tiles)
	v := scratch[:16*vs]
	m := scratch[len(v) : len(v)+16*ms]
	gs := scratch[len(v)+len(m):]
	winograd.Input(v, tiles, vs, x, in.C, in.H, in.W, pad, out.H, out.W)
	for xi := 0; xi < 16; xi++ {
		wg.u[xi].Mul(m[xi*ms:], tiles, v[xi*vs:], tiles, tiles, nil, gs)
	}
	winograd.Output(y, m, tiles, ms, out.C, out.H, out.W, bias)
}
