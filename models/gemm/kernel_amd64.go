//go:build amd64 && !purego

package gemm

import "golang.org/x/sys/cpu"

// On amd64 CPUs with AVX2 and FMA (nearly every x86 CPU since 2013), an
// assembly 4×24 micro-kernel replaces the scalar one in every build, with
// or without GOEXPERIMENT=simd: twelve 8-lane accumulators keep the FMA
// units busy, which Go's register allocator did not manage with archsimd
// (it shuffled the accumulators between registers every iteration:
// 10 GFLOP/s against this kernel's figure in BenchmarkMul).
func init() {
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		register(microKernel{"avx2 4×24", 24, kernel4x24})
	}
}

// kernel4x24FMA is in kernel_amd64.s.
//
//go:noescape
func kernel4x24FMA(ap, bp *float32, n int, c *float32, ldc int)

func kernel4x24(ap, bp, c []float32, ldc int) {
	n := len(ap) / mr
	if n == 0 {
		return
	}
	// Bounds the assembly relies on, checked once here.
	_ = bp[n*24-1]
	_ = c[3*ldc+23]
	kernel4x24FMA(&ap[0], &bp[0], n, &c[0], ldc)
}
