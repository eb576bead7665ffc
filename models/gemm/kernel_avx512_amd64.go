//go:build amd64 && !purego

package gemm

import "golang.org/x/sys/cpu"

// On AVX-512 CPUs a 4×48 assembly kernel replaces the AVX2 one in every
// amd64 build: twelve 16-lane accumulators, as many as the AVX2 kernel's
// twelve 8-lane ones, so twice the work per instruction. It reaches about
// 160 GFLOP/s on one Zen 5 core (BenchmarkKernel), near the two 512-bit
// FMA units' peak. It is assembly because Go's register allocator holds a
// simd/archsimd kernel to eight accumulators (a 4×32 one measured 53).
func init() {
	if cpu.X86.HasAVX512F {
		register(asmKernel("avx512 4×48", 48, kernel4x48AVX512))
	}
}

// kernel4x48AVX512 is in kernel_avx512_amd64.s.
//
//go:noescape
func kernel4x48AVX512(ap, bp *float32, n int, c *float32, ldc int)
