// Package winograd holds the transforms of Winograd F(2×2, 3×3) for
// stride-1 3×3 convolutions, shared by the forward pass (models) and the
// trainer's convolution op: each 2×2 output tile costs 16 multiplications
// per channel pair instead of 36.
//
// With d a 4×4 input tile and g a 3×3 kernel, the output tile is
// Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A. The 16 element positions ξ of a tile turn the
// convolution into 16 matrix products M[ξ] = U[ξ] (out×in) · V[ξ]
// (in×tiles), U = G g Gᵀ being the filter transform and V = Bᵀ d B the
// input transform; Output applies Aᵀ · A to M.
//
// Matrices are stored ξ-major: element (ξ, row, t) of V or M is at
// ξ·xs + row·ld + t, ld being the number of tile columns (the tiles of one
// image, or of several side by side) and xs ≥ rows·ld the distance between
// the 16 matrices.
package winograd

import "github.com/cifarnet-go/cifarnet/models/gemm"

// Pays reports whether Winograd saves time with the matrix kernel this
// build and CPU use. It trades 2.25× fewer multiplications for transforms
// that cost memory traffic per channel, which wins only while the
// multiplications are slow: with the scalar, WebAssembly SIMD128 (with
// the SIMD128 transforms, 1.8× faster per image under Node) and AVX2
// kernels it did, but with the AVX-512 one (about 160 GFLOP/s a core) the direct
// path measured 20 % faster for single-image inference and 12–18 % faster
// per training step (BenchmarkWinogradVsDirect; TrainThroughput A/B).
func Pays() bool { return gemm.KernelWidth() < 48 }

// Stride is a distance between the 16 matrices of rows×ld values each:
// one that is a multiple of a large power of two would map the 16 values
// the transforms read or write together to the same cache sets.
func Stride(rows, ld int) int { return rows*ld + 16 }

// Tiles returns the number of tile rows and columns covering an h×w output
// (odd sizes overhang by one).
func Tiles(h, w int) (th, tw int) { return (h + 1) / 2, (w + 1) / 2 }

// Worthwhile reports whether an h×w output is cheaper with Winograd: tiles
// overhang odd sizes, and for tiny maps the transforms cost more than they
// save.
func Worthwhile(h, w int) bool {
	th, tw := Tiles(h, w)
	return 16*th*tw*10 < 9*h*w*7 // at least 30 % fewer multiplications
}

// Filters writes U[ξ] (out×in, row-major) of the filters w [out, in, 3, 3]
// into u[ξ], each of out·in values.
func Filters(u *[16][]float32, w []float32, out, in int) {
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
}

// Input writes V = Bᵀ d B for every tile of the C×H×W image x, zero-padded
// by pad, for an oh×ow output: channel c's tiles go to columns 0..tiles of
// row c of each V[ξ] (v starts at this image's first column), rows being
// ld apart and the 16 matrices xs apart.
func Input(v []float32, ld, xs int, x []float32, c, h, w, pad, oh, ow int) {
	th, tw := Tiles(oh, ow)
	// Tiles read rows and columns up to 2·th+1 and 2·tw+1 of the padded
	// image; each channel is copied into a zero-padded plane of that size
	// so that no tile checks for the border. The plane is split into its
	// even and odd columns: tile tx reads columns tx and tx+1 of each, so
	// that neighbouring tiles read neighbouring values (four tiles at a
	// time with SIMD).
	ph, pw := 2*th+2, tw+1
	var buf [4096]float32
	if 2*ph*pw > len(buf) {
		inputChecked(v, ld, xs, x, c, h, w, pad, oh, ow)
		return
	}
	even, odd := buf[:ph*pw], buf[ph*pw:2*ph*pw]
	plane := h * w
	for ch := 0; ch < c; ch++ {
		clear(even)
		clear(odd)
		src := x[ch*plane : (ch+1)*plane]
		cols := min(w, 2*pw-pad) // the image columns that tiles read
		for iy := 0; iy < h && iy+pad < ph; iy++ {
			e, o := even[(iy+pad)*pw:(iy+pad+1)*pw], odd[(iy+pad)*pw:(iy+pad+1)*pw]
			for ix, val := range src[iy*w : iy*w+cols] {
				if j := ix + pad; j&1 == 0 {
					e[j>>1] = val
				} else {
					o[j>>1] = val
				}
			}
		}
		for ty := 0; ty < th; ty++ {
			at := ch*ld + ty*tw
			rows := 2 * ty * pw
			tx := inputTiles4(v[at:], xs, even[rows:], odd[rows:], pw, tw)
			for ; tx < tw; tx++ {
				var d [4][4]float32
				for r := range 4 {
					o := rows + r*pw + tx
					d[r] = [4]float32{even[o], odd[o], even[o+1], odd[o+1]}
				}
				inputTile(v, at+tx, xs, &d)
			}
		}
	}
}

// inputTile writes Bᵀ d B of one tile to column at of the 16 matrices.
func inputTile(v []float32, at, xs int, d *[4][4]float32) {
	// Bᵀ d: rows (d0−d2, d1+d2, d2−d1, d1−d3).
	var t [4][4]float32
	for s := 0; s < 4; s++ {
		t[0][s] = d[0][s] - d[2][s]
		t[1][s] = d[1][s] + d[2][s]
		t[2][s] = d[2][s] - d[1][s]
		t[3][s] = d[1][s] - d[3][s]
	}
	for r := 0; r < 4; r++ {
		a, b, cc, dd := t[r][0], t[r][1], t[r][2], t[r][3]
		v[(r*4+0)*xs+at] = a - cc
		v[(r*4+1)*xs+at] = b + cc
		v[(r*4+2)*xs+at] = cc - b
		v[(r*4+3)*xs+at] = b - dd
	}
}

// inputChecked is Input for images too large for its padded plane: each
// tile checks each value against the border.
func inputChecked(v []float32, ld, xs int, x []float32, c, h, w, pad, oh, ow int) {
	th, tw := Tiles(oh, ow)
	plane := h * w
	for ch := 0; ch < c; ch++ {
		src := x[ch*plane : (ch+1)*plane]
		for ty := 0; ty < th; ty++ {
			for tx := 0; tx < tw; tx++ {
				var d [4][4]float32
				y0, x0 := 2*ty-pad, 2*tx-pad
				for r := 0; r < 4; r++ {
					iy := y0 + r
					if iy < 0 || iy >= h {
						continue
					}
					row := src[iy*w : (iy+1)*w]
					for s := 0; s < 4; s++ {
						if ix := x0 + s; ix >= 0 && ix < w {
							d[r][s] = row[ix]
						}
					}
				}
				inputTile(v, ch*ld+ty*tw+tx, xs, &d)
			}
		}
	}
}

// Output sets the F×oh×ow image y to Aᵀ M A for every tile, plus bias (one
// value per output channel; nil for none), dropping the overhang of odd
// sizes. M's rows are ld apart, its 16 matrices xs apart, and m starts at
// this image's first column.
func Output(y, m []float32, ld, xs int, f, oh, ow int, bias []float32) {
	th, tw := Tiles(oh, ow)
	oplane := oh * ow
	for o := 0; o < f; o++ {
		dst := y[o*oplane : (o+1)*oplane]
		var b float32
		if bias != nil {
			b = bias[o]
		}
		for ty := 0; ty < th; ty++ {
			at := o*ld + ty*tw
			tx := outputTiles4(dst, m[at:], xs, 2*ty, oh, ow, tw, b)
			for ; tx < tw; tx++ {
				outputTile(dst, m, at+tx, xs, 2*ty, 2*tx, oh, ow, b)
			}
		}
	}
}

// outputTile writes Aᵀ q A + b of the tile whose 16 values are at column
// at of the matrices to rows oy, oy+1 and columns ox, ox+1 of dst, as far
// as they lie inside it.
func outputTile(dst, m []float32, at, xs, oy, ox, oh, ow int, b float32) {
	var q [4][4]float32
	for r := 0; r < 4; r++ {
		for s := 0; s < 4; s++ {
			q[r][s] = m[(r*4+s)*xs+at]
		}
	}
	// Aᵀ q: rows (q0+q1+q2, q1−q2−q3), then · A.
	var p [2][4]float32
	for s := 0; s < 4; s++ {
		p[0][s] = q[0][s] + q[1][s] + q[2][s]
		p[1][s] = q[1][s] - q[2][s] - q[3][s]
	}
	if oy+2 <= oh && ox+2 <= ow {
		r0 := dst[oy*ow+ox : oy*ow+ox+2 : oy*ow+ox+2]
		r1 := dst[(oy+1)*ow+ox : (oy+1)*ow+ox+2 : (oy+1)*ow+ox+2]
		r0[0] = p[0][0] + p[0][1] + p[0][2] + b
		r0[1] = p[0][1] - p[0][2] - p[0][3] + b
		r1[0] = p[1][0] + p[1][1] + p[1][2] + b
		r1[1] = p[1][1] - p[1][2] - p[1][3] + b
		return
	}
	for r := 0; r < 2 && oy+r < oh; r++ {
		row := dst[(oy+r)*ow:]
		row[ox] = p[r][0] + p[r][1] + p[r][2] + b
		if ox+1 < ow {
			row[ox+1] = p[r][1] - p[r][2] - p[r][3] + b
		}
	}
}
