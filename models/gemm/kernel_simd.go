//go:build goexperiment.simd && amd64

package gemm

import "simd/archsimd"

// With GOEXPERIMENT=simd on an AVX-512 CPU, a 4×32 kernel of eight 16-lane
// fused multiply-add accumulators replaces the AVX2 one: eight independent
// accumulators hide the FMA latency, and more would spill (Go allocates 16
// vector registers).
func init() {
	if archsimd.X86.AVX512() {
		register(microKernel{"avx512 4×32", 32, kernel4x32})
	}
}

func kernel4x32(ap, bp, c []float32, ldc int) {
	var c00, c01, c10, c11, c20, c21, c30, c31 archsimd.Float32x16
	n := len(ap) / mr
	bp = bp[:n*32]
	for k := 0; k < n; k++ {
		b0 := archsimd.LoadFloat32x16Slice(bp[k*32:])
		b1 := archsimd.LoadFloat32x16Slice(bp[k*32+16:])
		a := ap[k*4 : k*4+4 : k*4+4]
		x := archsimd.BroadcastFloat32x16(a[0])
		c00 = b0.MulAdd(x, c00)
		c01 = b1.MulAdd(x, c01)
		x = archsimd.BroadcastFloat32x16(a[1])
		c10 = b0.MulAdd(x, c10)
		c11 = b1.MulAdd(x, c11)
		x = archsimd.BroadcastFloat32x16(a[2])
		c20 = b0.MulAdd(x, c20)
		c21 = b1.MulAdd(x, c21)
		x = archsimd.BroadcastFloat32x16(a[3])
		c30 = b0.MulAdd(x, c30)
		c31 = b1.MulAdd(x, c31)
	}
	addRow(c[:32], c00, c01)
	addRow(c[ldc:ldc+32], c10, c11)
	addRow(c[2*ldc:2*ldc+32], c20, c21)
	addRow(c[3*ldc:3*ldc+32], c30, c31)
}

func addRow(row []float32, lo, hi archsimd.Float32x16) {
	lo.Add(archsimd.LoadFloat32x16Slice(row)).StoreSlice(row)
	hi.Add(archsimd.LoadFloat32x16Slice(row[16:])).StoreSlice(row[16:])
}
