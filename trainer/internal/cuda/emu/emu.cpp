//go:build cgo

// The host emulator's kernels: kernels.cu compiled as C++ after emu.h, a
// table of them, and a launcher that runs every thread of the grid in turn
// (the kernels' threads are independent, so any order gives the GPU's
// results).
#include "emu.h"

#include "../kernels/kernels.cu"

#include <cstddef>
#include <utility>

#include "emu_api.h"
#include "kernels_sum.h"

thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;

namespace {

// code<T> is the signature letter of a kernel parameter type.
template <typename T> struct code;
template <typename T> struct code<T*> { static constexpr char c = 'p'; };
template <> struct code<int> { static constexpr char c = 'i'; };
template <> struct code<unsigned int> { static constexpr char c = 'u'; };
template <> struct code<long long> { static constexpr char c = 'l'; };
template <> struct code<unsigned long long> { static constexpr char c = 'U'; };
template <> struct code<float> { static constexpr char c = 'f'; };
template <> struct code<double> { static constexpr char c = 'd'; };

template <typename... A> struct sig_of {
	static constexpr char s[sizeof...(A) + 1] = {code<A>::c..., 0};
};

template <typename... A> constexpr const char* signature(void (*)(A...)) { return sig_of<A...>::s; }

// call unpacks kernelParams-style args into k's parameters.
template <typename... A, std::size_t... I>
inline void call(void (*k)(A...), void** args, std::index_sequence<I...>) {
	k(*static_cast<A*>(args[I])...);
}

template <typename... A> void run_grid(void (*k)(A...), void** args, dim3 g, dim3 b) {
	gridDim = g;
	blockDim = b;
	for (unsigned bz = 0; bz < g.z; bz++)
		for (unsigned by = 0; by < g.y; by++)
			for (unsigned bx = 0; bx < g.x; bx++) {
				blockIdx = dim3{bx, by, bz};
				for (unsigned tz = 0; tz < b.z; tz++)
					for (unsigned ty = 0; ty < b.y; ty++)
						for (unsigned tx = 0; tx < b.x; tx++) {
							threadIdx = dim3{tx, ty, tz};
							call(k, args, std::index_sequence_for<A...>{});
						}
			}
}

template <auto K> void launch(void** args, dim3 g, dim3 b) { run_grid(K, args, g, b); }

struct Entry {
	const char* name;
	void (*launch)(void**, dim3, dim3);
	const char* sig;
};

#define KERNEL(k) {#k, launch<k>, signature(k)}

const Entry table[] = {
	KERNEL(fill_f32),
	KERNEL(add_f32),
	KERNEL(mul_f32),
	KERNEL(lerp_f32),
	KERNEL(bias_add),
	KERNEL(relu_fwd),
	KERNEL(relu_bwd),
	KERNEL(leaky_relu_fwd),
	KERNEL(leaky_relu_bwd),
	KERNEL(gelu_fwd),
	KERNEL(gelu_bwd),
	KERNEL(dropout_fwd),
	KERNEL(chsum_partial),
	KERNEL(dsum_partial),
	KERNEL(dsum_final),
	KERNEL(bn_stats_partial),
	KERNEL(bn_stats_final),
	KERNEL(bn_apply),
	KERNEL(bn_eval),
	KERNEL(bn_dgamma_partial),
	KERNEL(bn_dgamma_final),
	KERNEL(bn_dx),
	KERNEL(im2col),
	KERNEL(col2im),
	KERNEL(swap01),
	KERNEL(maxpool_fwd),
	KERNEL(maxpool_bwd),
	KERNEL(gap_fwd),
	KERNEL(gap_bwd),
	KERNEL(xent_partial),
	KERNEL(xent_grad),
	KERNEL(sumsq_partial),
	KERNEL(clip_coef),
	KERNEL(clip_scale),
	KERNEL(adam_step),
	KERNEL(sgd_step),
};

constexpr int table_len = sizeof table / sizeof table[0];

} // namespace

const char* emu_kernels_sha256(void) { return EMU_KERNELS_SHA256; }

int emu_kernel_count(void) { return table_len; }
const char* emu_kernel_name(int i) { return table[i].name; }
const char* emu_kernel_sig(int i) { return table[i].sig; }

void emu_launch(int i, void** args, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz) {
	table[i].launch(args, dim3{gx, gy, gz}, dim3{bx, by, bz});
}

void emu_gemm(int ta, int tb, int m, int n, int k, float alpha, uintptr_t ap, int lda, uintptr_t bp, int ldb,
              float beta, uintptr_t cp, int ldc) {
	const float* a = reinterpret_cast<const float*>(ap);
	const float* b = reinterpret_cast<const float*>(bp);
	float* c = reinterpret_cast<float*>(cp);
	for (int j = 0; j < n; j++)
		for (int i = 0; i < m; i++) {
			// Sequential float accumulation: no more accurate than cuBLAS.
			float s = 0.0f;
			for (int l = 0; l < k; l++) {
				float x = ta ? a[l + (size_t)i * lda] : a[i + (size_t)l * lda];
				float y = tb ? b[j + (size_t)l * ldb] : b[l + (size_t)j * ldb];
				s += x * y;
			}
			float* out = &c[i + (size_t)j * ldc];
			*out = beta == 0.0f ? alpha * s : alpha * s + beta * *out;
		}
}
