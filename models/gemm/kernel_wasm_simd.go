//go:build wasm && goexperiment.simd

package gemm

import "simd/archsimd"

// In a GOEXPERIMENT=simd WebAssembly build a 4×12 SIMD128 micro-kernel
// replaces the scalar one: twelve 4-lane accumulators, three B vectors and
// the broadcast A value (Go's WebAssembly back end has sixteen vector
// registers, so with the product it spills a few accumulators to its
// stack). A 4×8 kernel, which spills nothing, ran slower alone
// (BenchmarkKernel) and in Mul. Multiply and add stay separate (SIMD128
// has no fused form) and run in the scalar kernel's order, so each sum is
// the scalar kernel's. The loops walk the panels by reslicing, which
// leaves one bounds check per step instead of one per load, and take two
// steps at a time: Go's WebAssembly code branches back through the
// function's dispatch table once per iteration.
func init() {
	register(microKernel{"wasm simd128 4×12", 12, kernel4x12SIMD})
}

type f4 = archsimd.Float32x4

func kernel4x12SIMD(ap, bp, c []float32, ldc int) {
	var c00, c01, c02, c10, c11, c12, c20, c21, c22, c30, c31, c32 f4
	for len(ap) >= 8 && len(bp) >= 24 {
		{
			b := bp[:12:12]
			b0 := archsimd.LoadFloat32x4Array((*[4]float32)(b[0:4]))
			b1 := archsimd.LoadFloat32x4Array((*[4]float32)(b[4:8]))
			b2 := archsimd.LoadFloat32x4Array((*[4]float32)(b[8:12]))
			a := ap[:4:4]
			a0 := archsimd.BroadcastFloat32x4(a[0])
			c00 = c00.Add(a0.Mul(b0))
			c01 = c01.Add(a0.Mul(b1))
			c02 = c02.Add(a0.Mul(b2))
			a1 := archsimd.BroadcastFloat32x4(a[1])
			c10 = c10.Add(a1.Mul(b0))
			c11 = c11.Add(a1.Mul(b1))
			c12 = c12.Add(a1.Mul(b2))
			a2 := archsimd.BroadcastFloat32x4(a[2])
			c20 = c20.Add(a2.Mul(b0))
			c21 = c21.Add(a2.Mul(b1))
			c22 = c22.Add(a2.Mul(b2))
			a3 := archsimd.BroadcastFloat32x4(a[3])
			c30 = c30.Add(a3.Mul(b0))
			c31 = c31.Add(a3.Mul(b1))
			c32 = c32.Add(a3.Mul(b2))
		}
		{
			b := bp[12:24:24]
			b0 := archsimd.LoadFloat32x4Array((*[4]float32)(b[0:4]))
			b1 := archsimd.LoadFloat32x4Array((*[4]float32)(b[4:8]))
			b2 := archsimd.LoadFloat32x4Array((*[4]float32)(b[8:12]))
			a := ap[4:8:8]
			a0 := archsimd.BroadcastFloat32x4(a[0])
			c00 = c00.Add(a0.Mul(b0))
			c01 = c01.Add(a0.Mul(b1))
			c02 = c02.Add(a0.Mul(b2))
			a1 := archsimd.BroadcastFloat32x4(a[1])
			c10 = c10.Add(a1.Mul(b0))
			c11 = c11.Add(a1.Mul(b1))
			c12 = c12.Add(a1.Mul(b2))
			a2 := archsimd.BroadcastFloat32x4(a[2])
			c20 = c20.Add(a2.Mul(b0))
			c21 = c21.Add(a2.Mul(b1))
			c22 = c22.Add(a2.Mul(b2))
			a3 := archsimd.BroadcastFloat32x4(a[3])
			c30 = c30.Add(a3.Mul(b0))
			c31 = c31.Add(a3.Mul(b1))
			c32 = c32.Add(a3.Mul(b2))
		}
		ap, bp = ap[8:], bp[24:]
	}
	for len(ap) >= 4 && len(bp) >= 12 {
		b := bp[:12:12]
		b0 := archsimd.LoadFloat32x4Array((*[4]float32)(b[0:4]))
		b1 := archsimd.LoadFloat32x4Array((*[4]float32)(b[4:8]))
		b2 := archsimd.LoadFloat32x4Array((*[4]float32)(b[8:12]))
		a := ap[:4:4]
		a0 := archsimd.BroadcastFloat32x4(a[0])
		c00 = c00.Add(a0.Mul(b0))
		c01 = c01.Add(a0.Mul(b1))
		c02 = c02.Add(a0.Mul(b2))
		a1 := archsimd.BroadcastFloat32x4(a[1])
		c10 = c10.Add(a1.Mul(b0))
		c11 = c11.Add(a1.Mul(b1))
		c12 = c12.Add(a1.Mul(b2))
		a2 := archsimd.BroadcastFloat32x4(a[2])
		c20 = c20.Add(a2.Mul(b0))
		c21 = c21.Add(a2.Mul(b1))
		c22 = c22.Add(a2.Mul(b2))
		a3 := archsimd.BroadcastFloat32x4(a[3])
		c30 = c30.Add(a3.Mul(b0))
		c31 = c31.Add(a3.Mul(b1))
		c32 = c32.Add(a3.Mul(b2))
		ap, bp = ap[4:], bp[12:]
	}
	addRow3(c[0:12:12], c00, c01, c02)
	addRow3(c[ldc:ldc+12:ldc+12], c10, c11, c12)
	addRow3(c[2*ldc:2*ldc+12:2*ldc+12], c20, c21, c22)
	addRow3(c[3*ldc:3*ldc+12:3*ldc+12], c30, c31, c32)
}

// addRow3 adds three accumulators to twelve consecutive floats of C.
func addRow3(r []float32, x, y, z f4) {
	addRow(r[0:8], x, y)
	p := (*[4]float32)(r[8:12])
	archsimd.LoadFloat32x4Array(p).Add(z).StoreArray(p)
}

// addRow adds two accumulators to eight consecutive floats of C.
func addRow(r []float32, lo, hi f4) {
	p0 := (*[4]float32)(r[0:4])
	p1 := (*[4]float32)(r[4:8])
	archsimd.LoadFloat32x4Array(p0).Add(lo).StoreArray(p0)
	archsimd.LoadFloat32x4Array(p1).Add(hi).StoreArray(p1)
}

// copyRow copies one row of a B panel: the 12 floats of the SIMD kernel's
// panels as three vectors, where copy would call memmove for 48 bytes.
func copyRow(dst, src []float32) {
	if len(dst) != 12 {
		copy(dst, src)
		return
	}
	d, s := (*[12]float32)(dst), (*[12]float32)(src[:12])
	archsimd.LoadFloat32x4Array((*[4]float32)(s[0:4])).StoreArray((*[4]float32)(d[0:4]))
	archsimd.LoadFloat32x4Array((*[4]float32)(s[4:8])).StoreArray((*[4]float32)(d[4:8]))
	archsimd.LoadFloat32x4Array((*[4]float32)(s[8:12])).StoreArray((*[4]float32)(d[8:12]))
}

func init() {
	narrow = &microKernel{"wasm simd128 4×4", 4, kernel4x4SIMD}
	available = append(available, *narrow)
	tall = kernel12x4SIMD
}

// kernel4x4SIMD is the 4-column kernel for the last panel of a product.
func kernel4x4SIMD(ap, bp, c []float32, ldc int) {
	var c0, c1, c2, c3 f4
	for len(ap) >= 4 && len(bp) >= 4 {
		b := archsimd.LoadFloat32x4Array((*[4]float32)(bp[:4]))
		a := ap[:4:4]
		c0 = c0.Add(archsimd.BroadcastFloat32x4(a[0]).Mul(b))
		c1 = c1.Add(archsimd.BroadcastFloat32x4(a[1]).Mul(b))
		c2 = c2.Add(archsimd.BroadcastFloat32x4(a[2]).Mul(b))
		c3 = c3.Add(archsimd.BroadcastFloat32x4(a[3]).Mul(b))
		ap, bp = ap[4:], bp[4:]
	}
	for i, v := range [4]f4{c0, c1, c2, c3} {
		p := (*[4]float32)(c[i*ldc : i*ldc+4])
		archsimd.LoadFloat32x4Array(p).Add(v).StoreArray(p)
	}
}

// kernel12x4SIMD is tall for SIMD128: twelve accumulators, each four rows
// of one column, from three A vectors and the broadcast B value per step.
// Each sum runs over the depth in the scalar kernel's order, so the result
// is the narrow kernel's. Like kernel4x12SIMD it takes two steps a turn,
// written out, through array views of the panels (one bounds check per
// view): one step a turn ran at 17-20 GFLOP/s against 25.5.
func kernel12x4SIMD(ap []float32, stride int, bp, c []float32, ldc int) {
	n := len(bp)
	a0, a1, a2 := ap[:n:n], ap[stride:stride+n:stride+n], ap[2*stride:2*stride+n:2*stride+n]
	var c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23 f4
	for len(bp) >= 8 && len(a0) >= 8 && len(a1) >= 8 && len(a2) >= 8 {
		b, p0, p1, p2 := (*[8]float32)(bp[:8]), (*[8]float32)(a0[:8]), (*[8]float32)(a1[:8]), (*[8]float32)(a2[:8])
		{
			x0 := archsimd.LoadFloat32x4Array((*[4]float32)(p0[0:4]))
			x1 := archsimd.LoadFloat32x4Array((*[4]float32)(p1[0:4]))
			x2 := archsimd.LoadFloat32x4Array((*[4]float32)(p2[0:4]))
			b0 := archsimd.BroadcastFloat32x4(b[0])
			c00 = c00.Add(x0.Mul(b0))
			c10 = c10.Add(x1.Mul(b0))
			c20 = c20.Add(x2.Mul(b0))
			b1 := archsimd.BroadcastFloat32x4(b[1])
			c01 = c01.Add(x0.Mul(b1))
			c11 = c11.Add(x1.Mul(b1))
			c21 = c21.Add(x2.Mul(b1))
			b2 := archsimd.BroadcastFloat32x4(b[2])
			c02 = c02.Add(x0.Mul(b2))
			c12 = c12.Add(x1.Mul(b2))
			c22 = c22.Add(x2.Mul(b2))
			b3 := archsimd.BroadcastFloat32x4(b[3])
			c03 = c03.Add(x0.Mul(b3))
			c13 = c13.Add(x1.Mul(b3))
			c23 = c23.Add(x2.Mul(b3))
		}
		{
			x0 := archsimd.LoadFloat32x4Array((*[4]float32)(p0[4:8]))
			x1 := archsimd.LoadFloat32x4Array((*[4]float32)(p1[4:8]))
			x2 := archsimd.LoadFloat32x4Array((*[4]float32)(p2[4:8]))
			b0 := archsimd.BroadcastFloat32x4(b[4])
			c00 = c00.Add(x0.Mul(b0))
			c10 = c10.Add(x1.Mul(b0))
			c20 = c20.Add(x2.Mul(b0))
			b1 := archsimd.BroadcastFloat32x4(b[5])
			c01 = c01.Add(x0.Mul(b1))
			c11 = c11.Add(x1.Mul(b1))
			c21 = c21.Add(x2.Mul(b1))
			b2 := archsimd.BroadcastFloat32x4(b[6])
			c02 = c02.Add(x0.Mul(b2))
			c12 = c12.Add(x1.Mul(b2))
			c22 = c22.Add(x2.Mul(b2))
			b3 := archsimd.BroadcastFloat32x4(b[7])
			c03 = c03.Add(x0.Mul(b3))
			c13 = c13.Add(x1.Mul(b3))
			c23 = c23.Add(x2.Mul(b3))
		}
		a0, a1, a2, bp = a0[8:], a1[8:], a2[8:], bp[8:]
	}
	for len(bp) >= 4 && len(a0) >= 4 && len(a1) >= 4 && len(a2) >= 4 {
		b, p0, p1, p2 := (*[4]float32)(bp[:4]), (*[4]float32)(a0[:4]), (*[4]float32)(a1[:4]), (*[4]float32)(a2[:4])
		{
			x0 := archsimd.LoadFloat32x4Array((*[4]float32)(p0[0:4]))
			x1 := archsimd.LoadFloat32x4Array((*[4]float32)(p1[0:4]))
			x2 := archsimd.LoadFloat32x4Array((*[4]float32)(p2[0:4]))
			b0 := archsimd.BroadcastFloat32x4(b[0])
			c00 = c00.Add(x0.Mul(b0))
			c10 = c10.Add(x1.Mul(b0))
			c20 = c20.Add(x2.Mul(b0))
			b1 := archsimd.BroadcastFloat32x4(b[1])
			c01 = c01.Add(x0.Mul(b1))
			c11 = c11.Add(x1.Mul(b1))
			c21 = c21.Add(x2.Mul(b1))
			b2 := archsimd.BroadcastFloat32x4(b[2])
			c02 = c02.Add(x0.Mul(b2))
			c12 = c12.Add(x1.Mul(b2))
			c22 = c22.Add(x2.Mul(b2))
			b3 := archsimd.BroadcastFloat32x4(b[3])
			c03 = c03.Add(x0.Mul(b3))
			c13 = c13.Add(x1.Mul(b3))
			c23 = c23.Add(x2.Mul(b3))
		}
		a0, a1, a2, bp = a0[4:], a1[4:], a2[4:], bp[4:]
	}
	addColumns(c, ldc, c00, c01, c02, c03)
	addColumns(c[4*ldc:], ldc, c10, c11, c12, c13)
	addColumns(c[8*ldc:], ldc, c20, c21, c22, c23)
}

// addColumns adds a 4×4 block held as columns (each vector four rows of one
// column) to the first four columns of four rows of C.
func addColumns(c []float32, ldc int, x0, x1, x2, x3 f4) {
	var t [4][4]float32
	x0.StoreArray(&t[0])
	x1.StoreArray(&t[1])
	x2.StoreArray(&t[2])
	x3.StoreArray(&t[3])
	for r := range 4 {
		row := (*[4]float32)(c[r*ldc : r*ldc+4])
		row[0] += t[0][r]
		row[1] += t[1][r]
		row[2] += t[2][r]
		row[3] += t[3][r]
	}
}
