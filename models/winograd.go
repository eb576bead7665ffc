package models

import "github.com/cifarnet-go/cifarnet/models/gemm"

// Winograd F(2×2, 3×3) for stride-1 3×3 convolutions: each 2×2 output tile
// costs 16 multiplications per channel pair instead of 36, which halves the
// work of the layers that dominate inference (single images in WebAssembly
// have no SIMD and no threads, so arithmetic is what we can save).
//
// With d a 4×4 input tile and g a 3×3 kernel, the output tile is
// Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A. The kernel transform U = G g Gᵀ is done once at
// load time; per image the 16 element positions ξ become 16 matrix products
// M[ξ] = U[ξ] (out×in) · V[ξ] (in×tiles).

// winogradEnabled lets benchmarks compare against the direct path.
var winogradEnabled = true

// winograd holds the transformed weights of one convolution.
type winograd struct {
	u [16]*gemm.Packed // U[ξ]: out × in
}

// useWinograd reports whether a 3×3 stride-1 convolution producing an
// h×w map is cheaper with Winograd: tiles overhang odd sizes, and for tiny
// maps the transforms cost more than they save.
func useWinograd(kernel, stride, h, w int) bool {
	if !winogradEnabled || kernel != 3 || stride != 1 {
		return false
	}
	tiles := ((h + 1) / 2) * ((w + 1) / 2)
	return 16*tiles*10 < 9*h*w*7 // at least 30 % fewer multiplications
}

// newWinograd transforms weights [out, in, 3, 3].
func newWinograd(w []float32, out, in int) *winograd {
	var u [16][]float32
	for x := range u {
		u[x] = make([]float32, out*in)
	}
	for o := 0; o < out; o++ {
		for i := 0; i < in; i++ {
			g := w[(o*in+i)*9 : (o*in+i)*9+9]
			// t = G g (4×3), then U = t Gᵀ (4×4).
			var t [4][3]float32
			for c := 0; c < 3; c++ {
				g0, g1, g2 := g[c], g[3+c], g[6+c]
				t[0][c] = g0
				t[1][c] = (g0 + g1 + g2) / 2
				t[2][c] = (g0 - g1 + g2) / 2
				t[3][c] = g2
			}
			for r := 0; r < 4; r++ {
				g0, g1, g2 := t[r][0], t[r][1], t[r][2]
				u[r*4+0][o*in+i] = g0
				u[r*4+1][o*in+i] = (g0 + g1 + g2) / 2
				u[r*4+2][o*in+i] = (g0 - g1 + g2) / 2
				u[r*4+3][o*in+i] = g2
			}
		}
	}
	wg := &winograd{}
	for x := range u {
		wg.u[x] = gemm.Pack(u[x], out, in)
	}
	return wg
}

// winogradScratch is the scratch one image needs: V, M and GEMM panels.
func winogradScratch(in, out Shape) int {
	tiles := ((out.H + 1) / 2) * ((out.W + 1) / 2)
	return 16*in.C*tiles + 16*out.C*tiles + gemm.ScratchSize(in.C, tiles)
}

// conv computes one image's convolution with padding pad.
func (wg *winograd) conv(x, y []float32, in, out Shape, pad int, bias, scratch []float32) {
	th, tw := (out.H+1)/2, (out.W+1)/2
	tiles := th * tw
	v := scratch[:16*in.C*tiles]
	m := scratch[len(v) : len(v)+16*out.C*tiles]
	gs := scratch[len(v)+len(m):]

	// Input transform: V[ξ][c][t] = (Bᵀ d B)[ξ].
	plane := in.H * in.W
	for c := 0; c < in.C; c++ {
		src := x[c*plane : (c+1)*plane]
		for ty := 0; ty < th; ty++ {
			for tx := 0; tx < tw; tx++ {
				var d [4][4]float32
				y0, x0 := 2*ty-pad, 2*tx-pad
				for r := 0; r < 4; r++ {
					iy := y0 + r
					if iy < 0 || iy >= in.H {
						continue
					}
					row := src[iy*in.W : (iy+1)*in.W]
					for s := 0; s < 4; s++ {
						if ix := x0 + s; ix >= 0 && ix < in.W {
							d[r][s] = row[ix]
						}
					}
				}
				// Bᵀ d: rows (d0−d2, d1+d2, d2−d1, d1−d3).
				var t [4][4]float32
				for s := 0; s < 4; s++ {
					t[0][s] = d[0][s] - d[2][s]
					t[1][s] = d[1][s] + d[2][s]
					t[2][s] = d[2][s] - d[1][s]
					t[3][s] = d[1][s] - d[3][s]
				}
				at := c*tiles + ty*tw + tx
				stride := in.C * tiles
				for r := 0; r < 4; r++ {
					a, b, cc, dd := t[r][0], t[r][1], t[r][2], t[r][3]
					v[(r*4+0)*stride+at] = a - cc
					v[(r*4+1)*stride+at] = b + cc
					v[(r*4+2)*stride+at] = cc - b
					v[(r*4+3)*stride+at] = b - dd
				}
			}
		}
	}

	// 16 products M[ξ] = U[ξ] · V[ξ].
	for xi := 0; xi < 16; xi++ {
		wg.u[xi].Mul(m[xi*out.C*tiles:], tiles, v[xi*in.C*tiles:], tiles, tiles, nil, gs)
	}

	// Output transform: Y = Aᵀ M A plus bias, dropping the overhang of odd
	// sizes.
	stride := out.C * tiles
	oplane := out.H * out.W
	for o := 0; o < out.C; o++ {
		dst := y[o*oplane : (o+1)*oplane]
		b := bias[o]
		for ty := 0; ty < th; ty++ {
			for tx := 0; tx < tw; tx++ {
				at := o*tiles + ty*tw + tx
				var q [4][4]float32
				for r := 0; r < 4; r++ {
					for s := 0; s < 4; s++ {
						q[r][s] = m[(r*4+s)*stride+at]
					}
				}
				// Aᵀ q: rows (q0+q1+q2, q1−q2−q3), then · A.
				var p [2][4]float32
				for s := 0; s < 4; s++ {
					p[0][s] = q[0][s] + q[1][s] + q[2][s]
					p[1][s] = q[1][s] - q[2][s] - q[3][s]
				}
				oy, ox := 2*ty, 2*tx
				for r := 0; r < 2 && oy+r < out.H; r++ {
					row := dst[(oy+r)*out.W:]
					row[ox] = p[r][0] + p[r][1] + p[r][2] + b
					if ox+1 < out.W {
						row[ox+1] = p[r][1] - p[r][2] - p[r][3] + b
					}
				}
			}
		}
	}
}
