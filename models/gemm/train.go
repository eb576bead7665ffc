package gemm

// This file holds what training needs on top of the inference API: packing
// into a caller's buffer (weights change every step), a transposed source
// for Wᵀ, and products that accumulate into C, with B given either
// row-major or transposed. Nothing here allocates.

// PackedSize is the length of the buffer PackInto needs for an M×K matrix.
func PackedSize(m, k int) int { return (m + mr - 1) / mr * k * mr }

// PackInto packs the M×K matrix A into buf, which must hold PackedSize(m, k)
// floats, and returns it as a Packed that refers to buf. With transA, a
// holds Aᵀ row-major (K×M), so that a weight matrix W packs as Wᵀ without a
// transposed copy.
func PackInto(buf, a []float32, m, k int, transA bool) Packed {
	if len(a) < m*k {
		panic("gemm: PackInto: matrix shorter than m×k")
	}
	panels := (m + mr - 1) / mr
	data := buf[:panels*k*mr]
	for pi := 0; pi < panels; pi++ {
		dst := data[pi*k*mr : (pi+1)*k*mr]
		i0 := pi * mr
		rows := min(mr, m-i0)
		if transA {
			// Row kk of Aᵀ holds A[i0..i0+mr][kk] contiguously.
			for kk := 0; kk < k; kk++ {
				d := dst[kk*mr : kk*mr+mr : kk*mr+mr]
				src := a[kk*m+i0 : kk*m+i0+rows]
				copy(d, src)
				clear(d[rows:])
			}
			continue
		}
		if rows == mr {
			r0, r1, r2, r3 := a[i0*k:i0*k+k], a[(i0+1)*k:(i0+1)*k+k], a[(i0+2)*k:(i0+2)*k+k], a[(i0+3)*k:(i0+3)*k+k]
			for kk := range r0 {
				d := dst[kk*mr : kk*mr+mr : kk*mr+mr]
				d[0], d[1], d[2], d[3] = r0[kk], r1[kk], r2[kk], r3[kk]
			}
			continue
		}
		clear(dst)
		for r := 0; r < rows; r++ {
			for kk, v := range a[(i0+r)*k : (i0+r)*k+k] {
				dst[kk*mr+r] = v
			}
		}
	}
	return Packed{M: m, K: k, data: data}
}

// MulAdd sets C += A·B, where B is K×N row-major with row stride ldb and C
// is M×N row-major with row stride ldc. scratch must hold ScratchSize(K, N)
// floats.
func (a *Packed) MulAdd(c []float32, ldc int, b []float32, ldb, n int, scratch []float32) {
	a.accumulate(c, ldc, n, source{pack: packB, b: b, ldb: ldb}, scratch)
}

// MulAddTransB sets C += A·Bᵀ, where bt is the N×K matrix Bᵀ row-major with
// row stride ldbt: the weight gradient dY·colsᵀ reads the im2col matrix as
// it is. scratch must hold ScratchSize(K, N) floats.
func (a *Packed) MulAddTransB(c []float32, ldc int, bt []float32, ldbt, n int, scratch []float32) {
	a.accumulate(c, ldc, n, source{pack: packBT, b: bt, ldb: ldbt, transposed: true}, scratch)
}

// Panels produces the packed panels of a K×N matrix B that is never
// stored whole, such as an im2col matrix built straight into the panels
// instead of written out and packed from memory.
type Panels interface {
	// PackPanels writes rows k0..k0+kb of B into dst as nr-column panels:
	// panel pj, at dst[pj·nr·kb:], holds those rows of columns pj·nr to
	// pj·nr+nr, kb rows of nr values, zero past column n.
	PackPanels(dst []float32, k0, kb, n, nr int)
}

// MulPanels sets C = A·B + bias like Mul, for a B of N columns given by
// its panels. scratch must hold ScratchSize(K, N) floats.
func (a *Packed) MulPanels(c []float32, ldc int, b Panels, n int, bias []float32, scratch []float32) {
	a.setBias(c, ldc, n, bias)
	a.accumulate(c, ldc, n, source{panels: b}, scratch)
}

// packBT is packB for a transposed source: panel column j of depth kk is
// bt[j][k0+kk]. It reads four source rows at a time, so that each store
// fills four adjacent floats of the panel.
func packBT(dst, bt []float32, ldbt, k0, kb, n, nr int) {
	np := (n + nr - 1) / nr
	for pj := 0; pj < np; pj++ {
		j0 := pj * nr
		p := dst[pj*nr*kb : (pj+1)*nr*kb]
		cols := min(nr, n-j0)
		r := 0
		for ; r+4 <= cols; r += 4 {
			row := func(i int) []float32 { return bt[(j0+r+i)*ldbt+k0 : (j0+r+i)*ldbt+k0+kb] }
			s0, s1, s2, s3 := row(0), row(1), row(2), row(3)
			for kk := range s0 {
				d := p[kk*nr+r : kk*nr+r+4 : kk*nr+r+4]
				d[0], d[1], d[2], d[3] = s0[kk], s1[kk], s2[kk], s3[kk]
			}
		}
		for ; r < cols; r++ {
			for kk, v := range bt[(j0+r)*ldbt+k0 : (j0+r)*ldbt+k0+kb] {
				p[kk*nr+r] = v
			}
		}
		for ; r < nr; r++ {
			for kk := 0; kk < kb; kk++ {
				p[kk*nr+r] = 0
			}
		}
	}
}

// Vectorized reports whether a SIMD micro-kernel replaced the portable
// 4-wide one. Without it these kernels are several times slower than
// gonum's assembly-backed ones, so training code may prefer those.
func Vectorized() bool { return kern.nr > 4 }
