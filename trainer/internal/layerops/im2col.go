package layerops

// convGeom is the geometry of a convolution of an N×C×H×W batch with F
// filters of C×KH×KW.
type convGeom struct {
	n, c, h, w     int
	f, kh, kw      int
	stride, pad    int
	outH, outW     int
	colRows, plane int // C·KH·KW and OutH·OutW: the im2col matrix is colRows×plane
}

func newConvGeom(n, c, h, w, f, kh, kw, stride, pad int) convGeom {
	g := convGeom{n: n, c: c, h: h, w: w, f: f, kh: kh, kw: kw, stride: stride, pad: pad}
	g.outH = (h+2*pad-kh)/stride + 1
	g.outW = (w+2*pad-kw)/stride + 1
	g.colRows = c * kh * kw
	g.plane = g.outH * g.outW
	return g
}

// direct reports whether the im2col matrix of an image is the image itself
// (a 1×1 convolution with stride 1 and no padding).
func (g *convGeom) direct() bool {
	return g.kh == 1 && g.kw == 1 && g.stride == 1 && g.pad == 0
}

// inSize and outSize are the number of values per image.
func (g *convGeom) inSize() int  { return g.c * g.h * g.w }
func (g *convGeom) outSize() int { return g.f * g.plane }

// validCols returns the range [lo, hi) of output columns whose input
// column ox·stride + kx − pad lies inside the image.
func (g *convGeom) validCols(kx int) (lo, hi int) {
	s := g.stride
	if d := g.pad - kx; d > 0 {
		lo = (d + s - 1) / s
	}
	if last := g.w - 1 + g.pad - kx; last >= 0 {
		hi = min(g.outW, last/s+1)
	}
	lo = min(lo, g.outW)
	return lo, max(lo, hi)
}

// im2col writes the colRows×plane patch matrix of one C×H×W image into
// cols, whose rows are ld apart (ld > plane when several images sit side
// by side): row (c·KH + ky)·KW + kx holds, for every output position, the
// input value that filter tap meets (zero in the padding), matching the
// layout of a weight tensor F×C×KH×KW viewed as F×colRows.
func im2col(cols []float32, ld int, x []float32, g *convGeom) {
	for r := 0; r < g.colRows; r++ {
		g.patchRow(cols[r*ld:r*ld+g.plane], x, r)
	}
}

// patchRow writes row r of one C×H×W image's patch matrix into row
// (plane values).
func (g *convGeom) patchRow(row, x []float32, r int) {
	s, ow := g.stride, g.outW
	c, tap := r/(g.kh*g.kw), r%(g.kh*g.kw)
	ky, kx := tap/g.kw, tap%g.kw
	img := x[c*g.h*g.w : (c+1)*g.h*g.w]
	lo, hi := g.validCols(kx)
	off := kx - g.pad
	if s == 1 && ow == g.w {
		shiftedPlane(row, img, g, ky, kx, lo, hi)
		return
	}
	for oy := 0; oy < g.outH; oy++ {
		out := row[oy*ow : oy*ow+ow]
		iy := oy*s + ky - g.pad
		if iy < 0 || iy >= g.h || lo == hi {
			clear(out)
			continue
		}
		src := img[iy*g.w : iy*g.w+g.w]
		clear(out[:lo])
		clear(out[hi:])
		if s == 1 {
			copy(out[lo:hi], src[lo+off:hi+off])
			continue
		}
		for ox := lo; ox < hi; ox++ {
			out[ox] = src[ox*s+off]
		}
	}
}

// patchPanels is the patch matrix of k images side by side as a GEMM
// operand that is never stored whole: each row is built for all k images
// into a buffer that stays in L1 and copied straight into the GEMM's
// panels, instead of writing the whole matrix out and packing it from
// memory again.
type patchPanels struct {
	g   *convGeom
	x   []float32 // the k images, one after another
	row []float32 // k·plane
}

func (p *patchPanels) PackPanels(dst []float32, k0, kb, n, nr int) {
	g, plane := p.g, p.g.plane
	row := p.row[:n]
	for kk := 0; kk < kb; kk++ {
		for j := range len(p.x) / g.inSize() {
			g.patchRow(row[j*plane:(j+1)*plane], p.x[j*g.inSize():(j+1)*g.inSize()], k0+kk)
		}
		for j0 := 0; j0 < n; j0 += nr {
			d := dst[j0*kb+kk*nr : j0*kb+kk*nr+nr]
			clear(d[copy(d, row[j0:min(j0+nr, n)]):])
		}
	}
}

// shiftedPlane is im2col's row for tap (ky, kx) of a stride-1
// convolution whose output is as wide as its input: the image shifted by
// (ky−pad)·W + kx−pad. It copies the valid output rows in one go and then
// zeroes what fell outside the image: whole rows above and below, and the
// columns outside [lo, hi) (which the shift wraps onto the neighbouring
// row).
func shiftedPlane(row, img []float32, g *convGeom, ky, kx, lo, hi int) {
	ow := g.outW
	oyLo := max(0, g.pad-ky)
	oyHi := min(g.outH, g.h+g.pad-ky)
	if oyLo >= oyHi || lo == hi {
		clear(row)
		return
	}
	d := (ky-g.pad)*g.w + kx - g.pad // source index minus output index
	dstLo, dstHi := max(oyLo*ow, -d), min(oyHi*ow, len(img)-d)
	copy(row[dstLo:dstHi], img[dstLo+d:dstHi+d])
	clear(row[:oyLo*ow])
	clear(row[oyHi*ow:])
	for oy := oyLo; oy < oyHi; oy++ {
		// Usually one column each side: a call to clear costs more.
		for i := oy * ow; i < oy*ow+lo; i++ {
			row[i] = 0
		}
		for i := oy*ow + hi; i < oy*ow+ow; i++ {
			row[i] = 0
		}
	}
}

// col2im is the adjoint of im2col: it sets the C×H×W image gradient dx to
// the sum, over the filter taps that read each input value, of the
// matching entries of the patch-matrix gradient dcols (rows ld apart).
func col2im(dx, dcols []float32, ld int, g *convGeom) {
	clear(dx[:g.inSize()])
	s, ow := g.stride, g.outW
	for c := 0; c < g.c; c++ {
		img := dx[c*g.h*g.w : (c+1)*g.h*g.w]
		for ky := 0; ky < g.kh; ky++ {
			for kx := 0; kx < g.kw; kx++ {
				r := (c*g.kh+ky)*g.kw + kx
				row := dcols[r*ld : r*ld+g.plane]
				lo, hi := g.validCols(kx)
				off := kx - g.pad
				for oy := 0; oy < g.outH; oy++ {
					iy := oy*s + ky - g.pad
					if iy < 0 || iy >= g.h || lo == hi {
						continue
					}
					in := row[oy*ow+lo : oy*ow+hi]
					dst := img[iy*g.w : iy*g.w+g.w]
					if s == 1 {
						dst = dst[lo+off : hi+off]
						for i, v := range in {
							dst[i] += v
						}
						continue
					}
					for i, v := range in {
						dst[(lo+i)*s+off] += v
					}
				}
			}
		}
	}
}

// groupCols is the least number of GEMM columns worth filling by putting
// the planes of several images side by side. The vector micro-kernels
// work on 24 (AVX2) or 48 (AVX-512) columns at a time, so a 3×3 plane
// alone wastes 15 or 39 of them and a 7×7 one 23 of 72 or 47 of 96.
// (512 measured the same as 256 with the AVX-512 kernel.)
var groupCols = 256

// group is the number of images one GEMM covers when its columns are the
// output positions of a plane of the given size.
func (g *convGeom) group(plane int) int {
	if plane >= groupCols {
		return 1
	}
	return max(1, min(g.n, (groupCols+plane-1)/plane))
}

// gather copies k images of rows×plane values each, stored one after
// another in src, side by side into dst: image j's row r lands at
// dst[r·ld + j·plane], ld being k·plane.
func gather(dst, src []float32, k, rows, plane int) {
	ld := k * plane
	for j := range k {
		img := src[j*rows*plane : (j+1)*rows*plane]
		for r := range rows {
			copy(dst[r*ld+j*plane:r*ld+(j+1)*plane], img[r*plane:(r+1)*plane])
		}
	}
}

// scatter is gather's inverse: it copies the k side-by-side images of src
// back to one after another in dst.
func scatter(dst, src []float32, k, rows, plane int) {
	ld := k * plane
	for j := range k {
		img := dst[j*rows*plane : (j+1)*rows*plane]
		for r := range rows {
			copy(img[r*plane:(r+1)*plane], src[r*ld+j*plane:r*ld+(j+1)*plane])
		}
	}
}
