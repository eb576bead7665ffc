//go:build cgo

// The emulator's C interface to Go.
#ifndef CIFARNET_EMU_API_H
#define CIFARNET_EMU_API_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// The sha256 of the kernels.cu compiled in, from kernels_sum.h.
const char* emu_kernels_sha256(void);

// The kernel table: names and parameter signatures, one letter per
// parameter (p pointer, i int, u unsigned, l long long, U unsigned long
// long, f float, d double).
int emu_kernel_count(void);
const char* emu_kernel_name(int i);
const char* emu_kernel_sig(int i);

// emu_launch runs kernel i on the grid, args being cuLaunchKernel's
// kernelParams: a pointer to each parameter's value.
void emu_launch(int i, void** args, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz);

// emu_gemm is cublasSgemm's column-major C = alpha·op(A)·op(B) + beta·C
// (C is not read when beta is 0).
void emu_gemm(int ta, int tb, int m, int n, int k, float alpha, uintptr_t a, int lda, uintptr_t b, int ldb,
              float beta, uintptr_t c, int ldc);

#ifdef __cplusplus
}
#endif

#endif
