//go:build cgo

// Definitions that let kernels.cu compile as host C++: the CUDA qualifiers
// become plain C++, the thread and block indices become thread_local
// variables that the launcher sets before calling a kernel for each
// thread, and the few device intrinsics get host versions.
#ifndef CIFARNET_EMU_H
#define CIFARNET_EMU_H

#include <math.h>
#include <string.h>

struct dim3 {
	unsigned int x, y, z;
};

extern thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
// __restrict__ is a g++ keyword already.

inline double __longlong_as_double(long long b) {
	double d;
	memcpy(&d, &b, sizeof d);
	return d;
}

#endif
