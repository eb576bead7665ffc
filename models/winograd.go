package models

import (
	"github.com/cifarnet-go/cifarnet/models/gemm"
	"github.com/cifarnet-go/cifarnet/models/winograd"
)

// Winograd F(2×2, 3×3) for stride-1 3×3 convolutions (package
// models/winograd has the transforms): it halves the work of the layers
// that dominate inference (in WebAssembly, single-threaded with 4-lane
// SIMD at most, arithmetic is what we can save). The filter transform is
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

// newWinograd transforms weights [out, in, 3, 3], each output channel's
// filters scaled by scale[o] unless scale is nil (a folded batchnorm; the
// transform is linear, so scaling U scales the filters). tmp holds the
// unpacked U on the way to packing; it is grown as needed and returned
// for the next layer, so that loading a model touches less fresh memory.
func newWinograd(w, scale []float32, out, in int, tmp []float32) (*wino, []float32) {
	n := out * in
	if cap(tmp) < 16*n {
		tmp = make([]float32, 16*n)
	}
	var u [16][]float32
	for x := range u {
		u[x] = tmp[x*n : (x+1)*n]
	}
	winograd.Filters(&u, w, out, in)
	wg := &wino{}
	for x := range u {
		if scale != nil {
			for o, s := range scale[:out] {
				row := u[x][o*in : (o+1)*in]
				for i := range row {
					row[i] *= s
				}
			}
		}
		wg.u[x] = gemm.Pack(u[x], out, in)
	}
	return wg, tmp
}

// winogradScratch is the scratch g images side by side need: V, M and GEMM
// panels.
func winogradScratch(in, out Shape, g int) int {
	th, tw := winograd.Tiles(out.H, out.W)
	cols := g * th * tw
	return 16*winograd.Stride(in.C, cols) + 16*winograd.Stride(out.C, cols) + gemm.ScratchSize(in.C, cols)
}

// conv computes the convolution of g images with padding pad: their tiles
// side by side make each of the 16 matrix products g times wider.
func (wg *wino) conv(x, y []float32, g int, in, out Shape, pad int, bias, scratch []float32) {
	th, tw := winograd.Tiles(out.H, out.W)
	tiles := th * tw
	ld := g * tiles
	vs, ms := winograd.Stride(in.C, ld), winograd.Stride(out.C, ld)
	v := scratch[:16*vs]
	m := scratch[len(v) : len(v)+16*ms]
	gs := scratch[len(v)+len(m):]
	isz, osz := in.Size(), out.Size()
	for b := range g {
		winograd.Input(v[b*tiles:], ld, vs, x[b*isz:(b+1)*isz], in.C, in.H, in.W, pad, out.H, out.W)
	}
	for xi := 0; xi < 16; xi++ {
		wg.u[xi].Mul(m[xi*ms:], ld, v[xi*vs:], ld, ld, nil, gs)
	}
	for b := range g {
		winograd.Output(y[b*osz:(b+1)*osz], m[b*tiles:], ld, ms, out.C, out.H, out.W, bias)
	}
}
