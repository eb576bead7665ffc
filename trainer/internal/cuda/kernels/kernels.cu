// CUDA kernels of the training backend. They are written so that the host
// emulator (package emu) can compile and run them unchanged as C++: every
// thread is independent (grid-stride loops, one thread per output element),
// with no shared memory, __syncthreads, warp intrinsics or atomics, so the
// results do not depend on the order threads run in. Reductions take two or
// more launches through a workspace of double partial sums.
//
// Layouts are row-major NCHW. Sizes are int (they fit in 31 bits: the Go
// launchers check); doubles travel as their IEEE bits in an unsigned long
// long, since device.Device.Launch takes no float64.
//
// After editing, run gen.sh to regenerate kernels.ptx.

// Grid-stride loop over [0, n).
#define FOR_EACH(i, n)                                                     \
	for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < (n);           \
	     i += blockDim.x * gridDim.x)

__device__ __forceinline__ double bits_f64(unsigned long long b) {
	return __longlong_as_double((long long)b);
}

__device__ __forceinline__ int imin(int a, int b) { return a < b ? a : b; }
__device__ __forceinline__ int imax(int a, int b) { return a > b ? a : b; }

// ---- elementwise ----

extern "C" __global__ void fill_f32(float* p, float v, int n) {
	FOR_EACH(i, n) p[i] = v;
}

extern "C" __global__ void add_f32(float* y, const float* a, const float* b, int n) {
	FOR_EACH(i, n) y[i] = a[i] + b[i];
}

extern "C" __global__ void mul_f32(float* y, const float* a, const float* b, int n) {
	FOR_EACH(i, n) y[i] = a[i] * b[i];
}

// slow += w·(p − slow): weight averaging's update.
extern "C" __global__ void lerp_f32(float* slow, const float* p, float w, int n) {
	FOR_EACH(i, n) {
		float s = slow[i];
		slow[i] = s + w * (p[i] - s);
	}
}

// y = x + b[channel] over total = N·C·HW values; y may be x.
extern "C" __global__ void bias_add(float* y, const float* x, const float* b, int c, int hw, int total) {
	FOR_EACH(i, total) y[i] = x[i] + b[(i / hw) % c];
}

// ---- activations ----

extern "C" __global__ void relu_fwd(float* y, const float* x, int n) {
	FOR_EACH(i, n) {
		float v = x[i];
		y[i] = v > 0.0f ? v : 0.0f;
	}
}

extern "C" __global__ void relu_bwd(float* dx, const float* x, const float* dy, int n) {
	FOR_EACH(i, n) dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;
}

extern "C" __global__ void leaky_relu_fwd(float* y, const float* x, float alpha, int n) {
	FOR_EACH(i, n) {
		float v = x[i];
		y[i] = v > 0.0f ? v : alpha * v;
	}
}

extern "C" __global__ void leaky_relu_bwd(float* dx, const float* x, const float* dy, float alpha, int n) {
	FOR_EACH(i, n) dx[i] = dy[i] * (x[i] > 0.0f ? 1.0f : alpha);
}

// Exact GELU, 0.5·x·(1 + erf(x/√2)), and its derivative Φ(x) + x·φ(x).
extern "C" __global__ void gelu_fwd(float* y, const float* x, int n) {
	FOR_EACH(i, n) {
		float v = x[i];
		y[i] = 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
	}
}

extern "C" __global__ void gelu_bwd(float* dx, const float* x, const float* dy, int n) {
	FOR_EACH(i, n) {
		float v = x[i];
		float cdf = 0.5f * (1.0f + erff(v * 0.70710678118654752f));
		float pdf = expf(-0.5f * v * v) * 0.39894228040143268f;
		dx[i] = dy[i] * (cdf + v * pdf);
	}
}

// ---- dropout ----

// The dropout hash (splitmix64 finaliser of a counter), the same as
// kernels.DropBits and the CPU op.
__device__ __forceinline__ unsigned int drop_bits(unsigned long long seed, unsigned long long stream,
                                                  unsigned long long i) {
	unsigned long long z = seed + stream * 0x9e3779b97f4a7c15ULL + (i + 1ULL) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	z ^= z >> 31;
	return (unsigned int)(z >> 32);
}

// mask = 0 where the hash falls below threshold, else keep; y = x·mask.
extern "C" __global__ void dropout_fwd(float* y, float* mask, const float* x, int n, unsigned long long seed,
                                       unsigned long long stream, unsigned int threshold, float keep) {
	FOR_EACH(i, n) {
		float m = drop_bits(seed, stream, (unsigned long long)i) < threshold ? 0.0f : keep;
		mask[i] = m;
		y[i] = x[i] * m;
	}
}

// ---- reductions ----
// A reduction over the values of `rows` rows (channels) writes rows×J
// partial sums (row-major, double), thread (r, j) summing values j, j+J, …
// of row r so that neighbouring threads read neighbouring addresses;
// dsum_partial shrinks J until a final kernel sums the last few.

// Value e of channel ch in an N×C×HW tensor, e < N·HW.
__device__ __forceinline__ int chan_index(int e, int ch, int c, int hw) {
	int b = e / hw;
	return (b * c + ch) * hw + (e - b * hw);
}

extern "C" __global__ void chsum_partial(double* part, const float* x, int n, int c, int hw, int parts) {
	int m = n * hw;
	FOR_EACH(t, c * parts) {
		int ch = t / parts, j = t - ch * parts;
		float s = 0.0f;
		for (int e = j; e < m; e += parts) s += x[chan_index(e, ch, c, hw)];
		part[t] = s;
	}
}

// out[r·jout + j] = Σ in[r·jin + t] over t ≡ j (mod jout).
extern "C" __global__ void dsum_partial(double* out, const double* in, int rows, int jin, int jout) {
	FOR_EACH(t, rows * jout) {
		int r = t / jout, j = t - r * jout;
		double s = 0.0;
		for (int k = j; k < jin; k += jout) s += in[r * jin + k];
		out[t] = s;
	}
}

// out[r] = (Σ in[r·parts …]) / div, rounded to float.
extern "C" __global__ void dsum_final(float* out, const double* in, int rows, int parts, int div) {
	FOR_EACH(r, rows) {
		double s = 0.0;
		for (int k = 0; k < parts; k++) s += in[r * parts + k];
		out[r] = (float)(s / (double)div);
	}
}

// ---- batch normalisation ----

// Partial Σ(x−k) (rows 0..C) and Σ(x−k)² (rows C..2C) per channel, k being
// the channel's first value, as the CPU op shifts them.
extern "C" __global__ void bn_stats_partial(double* part, const float* x, int n, int c, int hw, int parts) {
	int m = n * hw;
	FOR_EACH(t, c * parts) {
		int ch = t / parts, j = t - ch * parts;
		float k = x[ch * hw];
		float s = 0.0f, q = 0.0f;
		for (int e = j; e < m; e += parts) {
			float d = x[chan_index(e, ch, c, hw)] - k;
			s += d;
			q += d * d;
		}
		part[t] = s;
		part[c * parts + t] = q;
	}
}

// One thread per channel: the batch mean and 1/√(var+eps), and the running
// statistics moved towards them (unbiased variance), as nn's bnOp.
extern "C" __global__ void bn_stats_final(float* mean, float* inv_std, float* run_mean, float* run_var,
                                          const double* part, const float* x, int n, int c, int hw, int parts,
                                          unsigned long long eps_bits, unsigned long long mom_bits) {
	double eps = bits_f64(eps_bits), mom = bits_f64(mom_bits);
	double m = (double)n * (double)hw;
	FOR_EACH(ch, c) {
		double sum = 0.0, sq = 0.0;
		for (int k = 0; k < parts; k++) {
			sum += part[ch * parts + k];
			sq += part[(c + ch) * parts + k];
		}
		double mu = (double)x[ch * hw] + sum / m;
		double var = (sq - sum * sum / m) / m;
		if (var < 0.0) var = 0.0;
		mean[ch] = (float)mu;
		inv_std[ch] = (float)(1.0 / sqrt(var + eps));
		double unbiased = m > 1.0 ? var * m / (m - 1.0) : var;
		run_mean[ch] = (float)((1.0 - mom) * (double)run_mean[ch] + mom * mu);
		run_var[ch] = (float)((1.0 - mom) * (double)run_var[ch] + mom * unbiased);
	}
}

// y = x·(γ·invStd) + (β − mean·γ·invStd) per channel.
extern "C" __global__ void bn_apply(float* y, const float* x, const float* gamma, const float* beta,
                                    const float* mean, const float* inv_std, int c, int hw, int total) {
	FOR_EACH(i, total) {
		int ch = (i / hw) % c;
		float scale = gamma[ch] * inv_std[ch];
		float shift = beta[ch] - mean[ch] * scale;
		y[i] = x[i] * scale + shift;
	}
}

// Evaluation: normalise with the running statistics.
extern "C" __global__ void bn_eval(float* y, const float* x, const float* gamma, const float* beta,
                                   const float* run_mean, const float* run_var, int c, int hw, int total,
                                   unsigned long long eps_bits) {
	double eps = bits_f64(eps_bits);
	FOR_EACH(i, total) {
		int ch = (i / hw) % c;
		float inv = (float)(1.0 / sqrt((double)run_var[ch] + eps));
		float scale = gamma[ch] * inv;
		float shift = beta[ch] - run_mean[ch] * scale;
		y[i] = x[i] * scale + shift;
	}
}

// Partial Σ dy·(x − mean) per channel.
extern "C" __global__ void bn_dgamma_partial(double* part, const float* x, const float* dy, const float* mean,
                                             int n, int c, int hw, int parts) {
	int m = n * hw;
	FOR_EACH(t, c * parts) {
		int ch = t / parts, j = t - ch * parts;
		float k = mean[ch];
		float s = 0.0f;
		for (int e = j; e < m; e += parts) {
			int at = chan_index(e, ch, c, hw);
			s += dy[at] * (x[at] - k);
		}
		part[t] = s;
	}
}

// dγ = (Σ dy·(x − mean))·invStd.
extern "C" __global__ void bn_dgamma_final(float* dgamma, const double* part, const float* inv_std, int c,
                                           int parts) {
	FOR_EACH(ch, c) {
		double s = 0.0;
		for (int k = 0; k < parts; k++) s += part[ch * parts + k];
		dgamma[ch] = (float)s * inv_std[ch];
	}
}

// dx = γ·invStd/M·(M·dy − dβ − x̂·dγ), in the CPU op's a·dy + b·x + c form.
extern "C" __global__ void bn_dx(float* dx, const float* x, const float* gamma, const float* dy,
                                 const float* dgamma, const float* dbeta, const float* mean, const float* inv_std,
                                 int c, int hw, int total, int m) {
	float fm = (float)m;
	FOR_EACH(i, total) {
		int ch = (i / hw) % c;
		float mu = mean[ch], inv = inv_std[ch];
		float k = gamma[ch] * inv / fm;
		float a = k * fm, bx = -k * inv * dgamma[ch];
		float c0 = -k * dbeta[ch] - bx * mu;
		dx[i] = a * dy[i] + bx * x[i] + c0;
	}
}

// ---- convolution helpers ----

// cols (C·K·K rows × g·OH·OW columns) = the patch matrix of g images of x:
// row (ci·K + ky)·K + kx, column img·plane + oy·OW + ox holds the input
// value that tap meets, 0 in the padding.
extern "C" __global__ void im2col(float* cols, const float* x, int g, int c, int h, int w, int k, int stride,
                                  int pad, int oh, int ow) {
	int plane = oh * ow, ld = g * plane, total = c * k * k * ld;
	FOR_EACH(t, total) {
		int r = t / ld, col = t - r * ld;
		int img = col / plane, o = col - img * plane;
		int oy = o / ow, ox = o - oy * ow;
		int ci = r / (k * k), tap = r - ci * k * k;
		int ky = tap / k, kx = tap - ky * k;
		int iy = oy * stride + ky - pad, ix = ox * stride + kx - pad;
		float v = 0.0f;
		if (iy >= 0 && iy < h && ix >= 0 && ix < w) v = x[((img * c + ci) * h + iy) * w + ix];
		cols[t] = v;
	}
}

// dx (g images) = col2im(cols) as a gather: each input value sums the
// patch-matrix entries that read it.
extern "C" __global__ void col2im(float* dx, const float* cols, int g, int c, int h, int w, int k, int stride,
                                  int pad, int oh, int ow) {
	int plane = oh * ow, ld = g * plane, total = g * c * h * w;
	FOR_EACH(t, total) {
		int ix = t % w, rest = t / w;
		int iy = rest % h;
		rest /= h;
		int ci = rest % c, img = rest / c;
		float s = 0.0f;
		for (int ky = 0; ky < k; ky++) {
			int ty = iy + pad - ky;
			if (ty < 0 || ty % stride != 0) continue;
			int oy = ty / stride;
			if (oy >= oh) continue;
			for (int kx = 0; kx < k; kx++) {
				int tx = ix + pad - kx;
				if (tx < 0 || tx % stride != 0) continue;
				int ox = tx / stride;
				if (ox >= ow) continue;
				s += cols[((ci * k + ky) * k + kx) * ld + img * plane + oy * ow + ox];
			}
		}
		dx[t] = s;
	}
}

// dst[b][a][p] = src[a][b][p] (+ bias[a] unless bias is null): between a
// group's GEMM layout [F][G][plane] and the batch layout [G][F][plane].
extern "C" __global__ void swap01(float* dst, const float* src, const float* bias, int na, int nb, int np) {
	int total = na * nb * np;
	FOR_EACH(t, total) {
		int p = t % np, rest = t / np;
		int a = rest % na, b = rest / na;
		float v = src[(a * nb + b) * np + p];
		if (bias) v += bias[a];
		dst[t] = v;
	}
}

// ---- pooling ----

// Max over each window, padding as −∞; idx = the argmax's index within its
// input plane, the first maximum on ties (as fastops' poolPlane).
extern "C" __global__ void maxpool_fwd(float* y, int* idx, const float* x, int planes, int h, int w, int k,
                                       int stride, int pad, int oh, int ow) {
	int plane = oh * ow;
	FOR_EACH(t, planes * plane) {
		int p = t / plane, o = t - p * plane;
		int oy = o / ow, ox = o - oy * ow;
		int y0 = oy * stride - pad, x0 = ox * stride - pad;
		const float* src = x + p * h * w;
		float best = -INFINITY;
		int at = -1;
		for (int iy = imax(y0, 0); iy < imin(y0 + k, h); iy++) {
			for (int ix = imax(x0, 0); ix < imin(x0 + k, w); ix++) {
				float v = src[iy * w + ix];
				if (v > best || at < 0) {
					best = v;
					at = iy * w + ix;
				}
			}
		}
		y[t] = best;
		idx[t] = at;
	}
}

// dx = Σ dy over the outputs whose argmax is this input value, summed in
// output order (the CPU op's scatter order).
extern "C" __global__ void maxpool_bwd(float* dx, const float* dy, const int* idx, int planes, int h, int w, int k,
                                       int stride, int pad, int oh, int ow) {
	int plane = oh * ow;
	FOR_EACH(t, planes * h * w) {
		int p = t / (h * w), q = t - p * h * w;
		int iy = q / w, ix = q - iy * w;
		// Outputs whose window covers iy: oy·s − pad ≤ iy < oy·s − pad + k.
		int ty = iy + pad - k + 1, tx = ix + pad - k + 1;
		int oy0 = ty <= 0 ? 0 : (ty + stride - 1) / stride;
		int ox0 = tx <= 0 ? 0 : (tx + stride - 1) / stride;
		int oy1 = imin(oh - 1, (iy + pad) / stride), ox1 = imin(ow - 1, (ix + pad) / stride);
		float s = 0.0f;
		for (int oy = oy0; oy <= oy1; oy++) {
			for (int ox = ox0; ox <= ox1; ox++) {
				int j = p * plane + oy * ow + ox;
				if (idx[j] == q) s += dy[j];
			}
		}
		dx[t] = s;
	}
}

// y[r] = mean of row r's hw values (float sum, as the CPU op).
extern "C" __global__ void gap_fwd(float* y, const float* x, int rows, int hw) {
	FOR_EACH(r, rows) {
		float s = 0.0f;
		for (int i = 0; i < hw; i++) s += x[r * hw + i];
		y[r] = s / (float)hw;
	}
}

extern "C" __global__ void gap_bwd(float* dx, const float* dy, int rows, int hw) {
	FOR_EACH(t, rows * hw) dx[t] = dy[t / hw] / (float)hw;
}

// ---- softmax cross-entropy ----

// log Σ exp(row), in double.
__device__ __forceinline__ double log_sum_exp(const float* row, int k) {
	double m = (double)row[0];
	for (int j = 1; j < k; j++) m = fmax(m, (double)row[j]);
	double s = 0.0;
	for (int j = 0; j < k; j++) s += exp((double)row[j] - m);
	return m + log(s);
}

// part[j] = Σ over rows j, j+parts, … of −Σ target·(logit − lse).
extern "C" __global__ void xent_partial(double* part, const float* logits, const float* target, int n, int k,
                                        int parts) {
	FOR_EACH(j, parts) {
		double total = 0.0;
		for (int i = j; i < n; i += parts) {
			const float* row = logits + i * k;
			const float* tr = target + i * k;
			double lse = log_sum_exp(row, k);
			for (int q = 0; q < k; q++) {
				if (tr[q] != 0.0f) total -= (double)tr[q] * ((double)row[q] - lse);
			}
		}
		part[j] = total;
	}
}

// dlogits = (softmax(logits) − target)·dloss/N, one thread per row.
extern "C" __global__ void xent_grad(float* dlogits, const float* logits, const float* target, const float* dloss,
                                     int n, int k) {
	double scale = (double)dloss[0] / (double)n;
	FOR_EACH(i, n) {
		const float* row = logits + i * k;
		double lse = log_sum_exp(row, k);
		for (int q = 0; q < k; q++) {
			dlogits[i * k + q] = (float)((exp((double)row[q] - lse) - (double)target[i * k + q]) * scale);
		}
	}
}

// ---- gradient clipping ----

// part[j] = Σ g² over values j, j+parts, … (double).
extern "C" __global__ void sumsq_partial(double* part, const float* g, int n, int parts) {
	FOR_EACH(j, parts) {
		double s = 0.0;
		for (int i = j; i < n; i += parts) {
			double v = (double)g[i];
			s += v * v;
		}
		part[j] = s;
	}
}

// One thread: hdr[0] = the global norm, hdr[1] = maxNorm/(norm + 1e-6).
extern "C" __global__ void clip_coef(double* hdr, const double* part, int parts, unsigned long long max_bits) {
	FOR_EACH(t, 1) {
		double ss = 0.0;
		for (int k = 0; k < parts; k++) ss += part[k];
		double norm = sqrt(ss);
		hdr[0] = norm;
		hdr[1] = bits_f64(max_bits) / (norm + 1e-6);
	}
}

// g *= coefficient where it is below 1.
extern "C" __global__ void clip_scale(float* g, const double* hdr, int n) {
	double coef = hdr[1];
	if (!(coef < 1.0)) return;
	float c = (float)coef;
	FOR_EACH(i, n) g[i] *= c;
}

// ---- optimisers ----

// One Adam/AdamW step as optim.Adam.Step, the double scalars from the host.
extern "C" __global__ void adam_step(float* p, const float* g, float* m, float* v, int n, float b1, float b2,
                                     unsigned long long step_bits, unsigned long long sqrt_bc2_bits,
                                     unsigned long long eps_bits, float decay, float wd, int decoupled) {
	double step = bits_f64(step_bits), sqrt_bc2 = bits_f64(sqrt_bc2_bits), eps = bits_f64(eps_bits);
	FOR_EACH(i, n) {
		float pj = p[i], gj = g[i];
		if (decoupled) {
			pj *= decay;
		} else if (wd != 0.0f) {
			gj += wd * pj;
		}
		float mj = b1 * m[i] + (1.0f - b1) * gj;
		float vj = b2 * v[i] + (1.0f - b2) * gj * gj;
		m[i] = mj;
		v[i] = vj;
		double denom = sqrt((double)vj) / sqrt_bc2 + eps;
		p[i] = pj - (float)(step * (double)mj / denom);
	}
}

// One SGD step as optim.SGD.Step: L2 decay, momentum buffer (set to the
// gradient on the first step), optional Nesterov.
extern "C" __global__ void sgd_step(float* p, const float* g, float* buf, int n, float mu, float wd, float rate,
                                    int nesterov, int first) {
	FOR_EACH(i, n) {
		float pj = p[i];
		float d = g[i] + wd * pj;
		if (mu != 0.0f) {
			float b = first ? d : mu * buf[i] + d;
			buf[i] = b;
			if (nesterov) {
				d += mu * b;
			} else {
				d = b;
			}
		}
		p[i] = pj - rate * d;
	}
}
