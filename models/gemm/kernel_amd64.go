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
		register(asmKernel("avx2 4×24", 24, kernel4x24FMA))
	}
}

// kernel4x24FMA is in kernel_amd64.s.
//
//go:noescape
func kernel4x24FMA(ap, bp *float32, n int, c *float32, ldc int)

// asmKernel wraps an assembly micro-kernel nr columns wide, which reads
// and writes through raw pointers: the wrapper checks once the bounds it
// relies on.
func asmKernel(name string, nr int, k func(ap, bp *float32, n int, c *float32, ldc int)) microKernel {
	return microKernel{name, nr, func(ap, bp, c []float32, ldc int) {
		n := len(ap) / mr
		if n == 0 {
			return
		}
		_ = bp[n*nr-1]
		_ = c[3*ldc+nr-1]
		k(&ap[0], &bp[0], n, &c[0], ldc)
	}}
}
