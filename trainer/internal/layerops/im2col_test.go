package layerops

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// naiveIm2col is im2col element by element.
func naiveIm2col(x []float32, g *convGeom) []float32 {
	cols := make([]float32, g.colRows*g.plane)
	for c := 0; c < g.c; c++ {
		for ky := 0; ky < g.kh; ky++ {
			for kx := 0; kx < g.kw; kx++ {
				r := (c*g.kh+ky)*g.kw + kx
				for oy := 0; oy < g.outH; oy++ {
					for ox := 0; ox < g.outW; ox++ {
						iy, ix := oy*g.stride+ky-g.pad, ox*g.stride+kx-g.pad
						if iy >= 0 && iy < g.h && ix >= 0 && ix < g.w {
							cols[r*g.plane+oy*g.outW+ox] = x[(c*g.h+iy)*g.w+ix]
						}
					}
				}
			}
		}
	}
	return cols
}

// TestIm2colMatchesNaive sweeps small geometries, including windows wider
// than the image and padding as large as the window, on buffers dirtied
// with NaN; col2im must be im2col's adjoint: ⟨im2col(x), y⟩ = ⟨x, col2im(y)⟩.
func TestIm2colMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	for c := 1; c <= 2; c++ {
		for h := 1; h <= 6; h++ {
			for w := 1; w <= 6; w++ {
				for k := 1; k <= 3; k++ {
					for s := 1; s <= 3; s++ {
						for p := 0; p < k; p++ {
							if h+2*p < k || w+2*p < k {
								continue
							}
							g := newConvGeom(1, c, h, w, 1, k, k, s, p)
							x := randn(rng, g.inSize())
							cols := make([]float32, g.colRows*g.plane)
							for i := range cols {
								cols[i] = float32(math.NaN())
							}
							im2col(cols, g.plane, x, &g)
							want := naiveIm2col(x, &g)
							for i := range want {
								if cols[i] != want[i] {
									t.Fatalf("c%d %dx%d k%d s%d p%d: cols[%d] = %v, want %v", c, h, w, k, s, p, i, cols[i], want[i])
								}
							}
							y := randn(rng, len(cols))
							dx := make([]float32, len(x))
							for i := range dx {
								dx[i] = float32(math.NaN())
							}
							col2im(dx, y, g.plane, &g)
							var lhs, rhs float64
							for i := range y {
								lhs += float64(cols[i]) * float64(y[i])
							}
							for i := range x {
								rhs += float64(x[i]) * float64(dx[i])
							}
							if d := lhs - rhs; d > 1e-4 || d < -1e-4 {
								t.Fatalf("c%d %dx%d k%d s%d p%d: ⟨im2col(x), y⟩ = %v, ⟨x, col2im(y)⟩ = %v", c, h, w, k, s, p, lhs, rhs)
							}
						}
					}
				}
			}
		}
	}
}

func TestGatherScatter(t *testing.T) {
	const k, rows, plane = 3, 4, 5
	src := make([]float32, k*rows*plane)
	for i := range src {
		src[i] = float32(i)
	}
	side := make([]float32, len(src))
	gather(side, src, k, rows, plane)
	// Image j's row r starts at r·k·plane + j·plane.
	for j := range k {
		for r := range rows {
			for p := range plane {
				if got, want := side[r*k*plane+j*plane+p], src[(j*rows+r)*plane+p]; got != want {
					t.Fatalf("image %d row %d col %d: %v, want %v", j, r, p, got, want)
				}
			}
		}
	}
	back := make([]float32, len(src))
	scatter(back, side, k, rows, plane)
	if !slices.Equal(back, src) {
		t.Fatalf("scatter(gather(x)) = %v, want %v", back, src)
	}
}
