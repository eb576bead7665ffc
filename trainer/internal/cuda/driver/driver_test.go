//go:build cifarnet_cuda

package driver

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cifarnet-go/cifarnet/trainer/internal/cuda/device"
	"github.com/cifarnet-go/cifarnet/trainer/internal/cuda/kernels"
)

// The tests below that need a GPU skip without one, saying why; the
// others (parsing, formatting) run anywhere the test binary starts, which
// needs libcuda.so.1 (the NVIDIA driver's library, with or without a GPU).

// openGPU opens GPU 0 or skips the test.
func openGPU(t *testing.T) *Device {
	t.Helper()
	gpus, err := List()
	if err != nil {
		t.Skipf("no GPU: %v", err)
	}
	if len(gpus) == 0 {
		t.Skip("no GPU: the driver lists none")
	}
	d, err := Open(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Error(err)
		}
	})
	return d
}

func TestList(t *testing.T) {
	gpus, err := List()
	if err != nil {
		t.Skipf("no GPU: %v", err)
	}
	for _, g := range gpus {
		t.Logf("%s: %s, %s, compute capability %s, CUDA %s, driver %q", g.ID(), g.Name, size(g.MemoryBytes), g.ComputeCapability, g.CUDAVersion, g.Driver)
		if g.Name == "" || g.MemoryBytes <= 0 || g.ComputeCapability == "" || g.CUDAVersion == "" {
			t.Errorf("incomplete description %+v", g)
		}
	}
	d := openGPU(t)
	t.Logf("opened %s; cuBLAS: %s", d.Name(), d.BLAS())
}

func TestMemory(t *testing.T) {
	d := openGPU(t)
	rng := rand.New(rand.NewPCG(1, 2))
	// Sizes around the staging buffers' (64 KiB and doubling), more
	// buffers than staging slots, uploaded back to back without a sync.
	sizes := []int{1, 7, 16384, 16385, 100003, 1 << 20, 3, 250000}
	ptrs := make([]device.Ptr, len(sizes))
	want := make([][]float32, len(sizes))
	for i, n := range sizes {
		p, err := d.Alloc(4 * n)
		if err != nil {
			t.Fatal(err)
		}
		ptrs[i] = p
		got := make([]float32, n)
		for j := range got {
			got[j] = 1
		}
		if err := d.Download(got, p); err != nil {
			t.Fatal(err)
		}
		for j, v := range got {
			if v != 0 {
				t.Fatalf("alloc of %d floats: [%d] = %g, want 0", n, j, v)
			}
		}
		want[i] = make([]float32, n)
		for j := range want[i] {
			want[i][j] = rng.Float32()
		}
	}
	src := make([]float32, 1<<20)
	for i, p := range ptrs {
		// src is reused at once: Upload must have copied it.
		copy(src, want[i])
		if err := d.Upload(p, src[:sizes[i]]); err != nil {
			t.Fatal(err)
		}
		clear(src)
	}
	for i, p := range ptrs {
		got := make([]float32, sizes[i])
		if err := d.Download(got, p); err != nil {
			t.Fatal(err)
		}
		for j := range got {
			if got[j] != want[i][j] {
				t.Fatalf("buffer %d (%d floats): [%d] = %g, want %g", i, sizes[i], j, got[j], want[i][j])
			}
		}
	}
	// Copy and Zero on part of a buffer.
	big, n := ptrs[5], sizes[5]
	if err := d.Copy(big.Float(10), ptrs[4].Float(0), sizes[4]); err != nil {
		t.Fatal(err)
	}
	if err := d.Zero(big.Float(20), 5); err != nil {
		t.Fatal(err)
	}
	got := make([]float32, n)
	if err := d.Download(got, big); err != nil {
		t.Fatal(err)
	}
	for j := range got {
		w := want[5][j]
		switch {
		case j >= 20 && j < 25:
			w = 0
		case j >= 10 && j < 10+sizes[4]:
			w = want[4][j-10]
		}
		if got[j] != w {
			t.Fatalf("after Copy and Zero: [%d] = %g, want %g", j, got[j], w)
		}
	}
	for _, p := range ptrs {
		if err := d.Free(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Free(ptrs[0]); err == nil {
		t.Error("freeing twice succeeded")
	}
	// More than the GPU has: the error says how much and why.
	_, err := d.Alloc(1 << 50)
	if err == nil || !strings.Contains(err.Error(), "alloc 1024 TiB") || !strings.Contains(err.Error(), "out of memory") {
		t.Errorf("alloc of 1 PiB: %v; want an out-of-memory error naming the size", err)
	} else {
		t.Log(err)
	}
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
}

func TestLaunch(t *testing.T) {
	d := openGPU(t)
	const n = 100000
	p, err := d.Alloc(4 * n)
	if err != nil {
		t.Fatal(err)
	}
	if err := kernels.Fill(d, p, 2.5, n); err != nil {
		t.Fatal(err)
	}
	got := make([]float32, n)
	if err := d.Download(got, p); err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if v != 2.5 {
			t.Fatalf("fill_f32: [%d] = %g, want 2.5", i, v)
		}
	}
	one := device.Dim3{X: 1, Y: 1, Z: 1}
	for _, c := range []struct {
		name        string
		grid, block device.Dim3
		args        []any
		want        string
	}{
		{"fill_f32", one, one, []any{p, float32(1)}, "2 arguments, the kernel takes 3"},
		{"fill_f32", one, one, []any{p, int32(1), int32(1)}, "argument 1 is a int32, the kernel's parameter is .f32"},
		{"fill_f32", one, one, []any{p, float32(1), 1}, "argument 2 is a int"},
		{"fill_f32", device.Dim3{X: 1}, one, []any{p, float32(1), int32(1)}, "every dimension must be at least 1"},
		{"no_such_kernel", one, one, nil, "no such kernel"},
	} {
		err := d.Launch(c.name, c.grid, c.block, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Launch(%s, %v): %v; want an error with %q", c.name, c.args, err, c.want)
		}
	}
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
}

// gemmRef is C = alpha·op(A)·op(B) + beta·C in float64, column-major.
func gemmRef(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	at := func(i, l int) float64 {
		if transA {
			return float64(a[l+i*lda])
		}
		return float64(a[i+l*lda])
	}
	bt := func(l, j int) float64 {
		if transB {
			return float64(b[j+l*ldb])
		}
		return float64(b[l+j*ldb])
	}
	for j := range n {
		for i := range m {
			s := 0.0
			for l := range k {
				s += at(i, l) * bt(l, j)
			}
			c[i+j*ldc] = float32(float64(alpha)*s + float64(beta)*float64(c[i+j*ldc]))
		}
	}
}

func randoms(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

func (d *Device) upload(t *testing.T, v []float32) device.Ptr {
	t.Helper()
	p, err := d.Alloc(4 * len(v))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Upload(p, v); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestGemm checks cuBLAS's column-major conventions as device.Device
// states them, with leading dimensions larger than the rows, against a
// float64 reference. FP32 math: errors are float32 rounding over k terms.
func TestGemm(t *testing.T) {
	d := openGPU(t)
	rng := rand.New(rand.NewPCG(3, 4))
	const m, n, k, pad, batch = 37, 29, 301, 3, 5
	for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
		ta, tb := tr[0], tr[1]
		rowsA, colsA := m, k
		if ta {
			rowsA, colsA = k, m
		}
		rowsB, colsB := k, n
		if tb {
			rowsB, colsB = n, k
		}
		lda, ldb, ldc := rowsA+pad, rowsB+pad, m+pad
		strideA, strideB, strideC := lda*colsA, ldb*colsB, ldc*n
		a, b, c := randoms(rng, batch*strideA), randoms(rng, batch*strideB), randoms(rng, batch*strideC)
		pa, pb, pc := d.upload(t, a), d.upload(t, b), d.upload(t, c)
		const alpha, beta = 0.75, -0.5
		if err := d.Gemm(ta, tb, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc); err != nil {
			t.Fatal(err)
		}
		want := append([]float32(nil), c...)
		gemmRef(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, want, ldc)
		got := make([]float32, len(c))
		if err := d.Download(got, pc); err != nil {
			t.Fatal(err)
		}
		checkClose(t, "Gemm", ta, tb, got, want, k)

		// Batched, on a fresh copy of C.
		if err := d.Upload(pc, c); err != nil {
			t.Fatal(err)
		}
		if err := d.GemmStridedBatched(ta, tb, m, n, k, alpha, pa, lda, strideA, pb, ldb, strideB, beta, pc, ldc, strideC, batch); err != nil {
			t.Fatal(err)
		}
		want = append(want[:0], c...)
		for i := range batch {
			gemmRef(ta, tb, m, n, k, alpha, a[i*strideA:], lda, b[i*strideB:], ldb, beta, want[i*strideC:], ldc)
		}
		if err := d.Download(got, pc); err != nil {
			t.Fatal(err)
		}
		checkClose(t, "GemmStridedBatched", ta, tb, got, want, k)
		for _, p := range []device.Ptr{pa, pb, pc} {
			d.Free(p)
		}
	}
}

func checkClose(t *testing.T, what string, ta, tb bool, got, want []float32, k int) {
	t.Helper()
	// |error| ≲ k·ε·Σ|a·b| ≈ k·ε·√k for unit normals; padding is untouched.
	tol := float64(k) * 6e-8 * math.Sqrt(float64(k)) * 4
	for i := range got {
		if d := math.Abs(float64(got[i] - want[i])); d > tol || math.IsNaN(d) {
			t.Fatalf("%s transA=%v transB=%v: [%d] = %g, want %g (tolerance %.2g)", what, ta, tb, i, got[i], want[i], tol)
		}
	}
}

func TestPTXParams(t *testing.T) {
	params := ptxParams(kernels.PTX)
	if len(params) != len(kernels.Entries()) {
		t.Errorf("%d entries parsed, kernels.Entries has %d", len(params), len(kernels.Entries()))
	}
	if got := strings.Join(params["fill_f32"], " "); got != "u64 f32 u32" {
		t.Errorf("fill_f32's parameters: %q, want \"u64 f32 u32\"", got)
	}
	ptx := ".visible .entry k(\n\t.param .align 8 .b8 k_param_0[16],\n\t.param .f64 k_param_1\n)\n{\n}\n"
	if got := strings.Join(ptxParams(ptx)["k"], " "); got != "b8[16] f64" {
		t.Errorf("parameters %q, want \"b8[16] f64\"", got)
	}
	if err := checkArgs([]string{"u64", "f64", "s32"}, []any{device.Ptr(0), uint64(0), uint32(0)}); err != nil {
		t.Error(err)
	}
}

func TestParseDriverVersion(t *testing.T) {
	for in, want := range map[string]string{
		"NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.65.06  Sun Jul 27 07:09:50 UTC 2025\nGCC version:  gcc version 12\n":            "580.65.06",
		"NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.82.07  Release Build  (dvs-builder@U16-I3-B03-4-3)  Wed Aug 27 2025\n": "580.82.07",
		"garbage": "",
	} {
		if got := parseDriverVersion(in); got != want {
			t.Errorf("parseDriverVersion(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSize(t *testing.T) {
	for n, want := range map[int64]string{300: "300 B", 512 << 20: "512 MiB", 3 << 29: "1.5 GiB", 1 << 50: "1024 TiB"} {
		if got := size(n); got != want {
			t.Errorf("size(%d) = %q, want %q", n, got, want)
		}
	}
	if got := cudaVersion(13000); got != "13.0" {
		t.Errorf("cudaVersion(13000) = %q", got)
	}
	if got := cudaVersion(12080); got != "12.8" {
		t.Errorf("cudaVersion(12080) = %q", got)
	}
}

// TestCublasNotFound checks the errors that say how to point at cuBLAS.
// It runs without a GPU (cuBLAS is only dlopened); the library found
// where one is installed is logged.
func TestCublasNotFound(t *testing.T) {
	_, err := findCublas("/nonexistent/libcublas.so.13")
	if err == nil || !strings.Contains(err.Error(), "CIFARNET_CUBLAS=/nonexistent/libcublas.so.13 does not load") {
		t.Errorf("explicit path: %v", err)
	}
	switch name, err := findCublas(""); {
	case err == nil:
		t.Logf("found %s", name)
	case !strings.Contains(err.Error(), "tried libcublas.so.13, libcublas.so.12") || !strings.Contains(err.Error(), "set CIFARNET_CUBLAS"):
		t.Errorf("search: %v", err)
	default:
		t.Logf("as a user would see it: %v", err)
	}
}
