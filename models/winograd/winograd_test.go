package winograd

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// directConv is the stride-1 3×3 convolution of the C×H×W image x with
// filters w [F, C, 3, 3], zero padding pad, in float64.
func directConv(x, w []float32, c, h, wd, f, pad int) []float64 {
	oh, ow := h+2*pad-2, wd+2*pad-2
	y := make([]float64, f*oh*ow)
	for o := 0; o < f; o++ {
		for oy := 0; oy < oh; oy++ {
			for ox := 0; ox < ow; ox++ {
				var s float64
				for ch := 0; ch < c; ch++ {
					for ky := 0; ky < 3; ky++ {
						for kx := 0; kx < 3; kx++ {
							iy, ix := oy+ky-pad, ox+kx-pad
							if iy >= 0 && iy < h && ix >= 0 && ix < wd {
								s += float64(x[(ch*h+iy)*wd+ix]) * float64(w[((o*c+ch)*3+ky)*3+kx])
							}
						}
					}
				}
				y[(o*oh+oy)*ow+ox] = s
			}
		}
	}
	return y
}

// The three transforms with a plain product in between give the direct
// convolution, for odd and even sizes, padding 0 to 2, tile columns wider
// than one image (ld > tiles, as when images sit side by side), rows of
// tiles that fill groups of four (the SIMD transforms) with and without a
// rest, and an image too large for Input's padded plane.
func TestTransformsGiveTheConvolution(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct{ c, f, h, w, pad, extra int }{
		{1, 1, 4, 4, 0, 0}, {3, 2, 7, 7, 1, 0}, {2, 3, 8, 5, 1, 3}, {4, 2, 6, 9, 2, 1}, {2, 2, 3, 3, 1, 0}, {1, 2, 70, 66, 1, 2},
		{3, 2, 16, 16, 1, 5}, {2, 3, 17, 17, 1, 0}, {2, 2, 31, 31, 1, 0},
	} {
		t.Run(fmt.Sprintf("%+v", tc), func(t *testing.T) {
			oh, ow := tc.h+2*tc.pad-2, tc.w+2*tc.pad-2
			th, tw := Tiles(oh, ow)
			tiles := th * tw
			ld := tiles + tc.extra
			x := make([]float32, tc.c*tc.h*tc.w)
			w := make([]float32, tc.f*tc.c*9)
			for i := range x {
				x[i] = float32(r.NormFloat64())
			}
			for i := range w {
				w[i] = float32(r.NormFloat64())
			}
			var u [16][]float32
			for xi := range u {
				u[xi] = make([]float32, tc.f*tc.c)
			}
			Filters(&u, w, tc.f, tc.c)
			vs, ms := Stride(tc.c, ld), Stride(tc.f, ld)
			v := make([]float32, 16*vs)
			for i := range v {
				v[i] = float32(math.NaN()) // only the columns Input writes are read
			}
			Input(v, ld, vs, x, tc.c, tc.h, tc.w, tc.pad, oh, ow)
			m := make([]float32, 16*ms)
			for xi := 0; xi < 16; xi++ {
				for o := 0; o < tc.f; o++ {
					for tt := 0; tt < tiles; tt++ {
						var s float32
						for ch := 0; ch < tc.c; ch++ {
							s += u[xi][o*tc.c+ch] * v[xi*vs+ch*ld+tt]
						}
						m[xi*ms+o*ld+tt] = s
					}
				}
			}
			bias := make([]float32, tc.f)
			for i := range bias {
				bias[i] = float32(i) + 0.5
			}
			y := make([]float32, tc.f*oh*ow)
			Output(y, m, ld, ms, tc.f, oh, ow, bias)
			want := directConv(x, w, tc.c, tc.h, tc.w, tc.f, tc.pad)
			for i, wv := range want {
				wv += float64(bias[i/(oh*ow)])
				if math.Abs(float64(y[i])-wv) > 1e-4*(1+math.Abs(wv)) {
					t.Fatalf("y[%d] = %v, want %v", i, y[i], wv)
				}
			}
		})
	}
}
