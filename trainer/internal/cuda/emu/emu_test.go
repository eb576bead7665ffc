package emu

import (
	"crypto/sha256"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/cifarnet-go/cifarnet/trainer/internal/cuda/device"
	"github.com/cifarnet-go/cifarnet/trainer/internal/cuda/kernels"
)

func newDevice(t *testing.T) *Device {
	t.Helper()
	d, err := New()
	if err != nil {
		t.Skipf("no host emulator in this build: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func upload(t *testing.T, d *Device, v []float32) device.Ptr {
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

func download(t *testing.T, d *Device, p device.Ptr, n int) []float32 {
	t.Helper()
	out := make([]float32, n)
	if err := d.Download(out, p); err != nil {
		t.Fatal(err)
	}
	return out
}

// The emulator's table and the PTX hold the same kernels.
func TestKernelTableMatchesPTX(t *testing.T) {
	d := newDevice(t)
	ptx := kernels.Entries()
	slices.Sort(ptx)
	if len(ptx) == 0 {
		t.Fatal("no .entry in kernels.PTX")
	}
	if got := d.Kernels(); !slices.Equal(got, ptx) {
		t.Errorf("emulator kernels %v\nPTX entries %v", got, ptx)
	}
}

// Go's build cache does not see ../kernels/kernels.cu, which emu.cpp
// includes; gen.sh writes its hash into kernels_sum.h here so that a
// change rebuilds the emulator.
func TestSourceUpToDate(t *testing.T) {
	newDevice(t)
	src, err := os.ReadFile("../kernels/kernels.cu")
	if err != nil {
		t.Fatal(err)
	}
	if sum := fmt.Sprintf("%x", sha256.Sum256(src)); SourceSum() != sum {
		t.Errorf("the emulator was built from kernels.cu with sha256 %s, the file has %s: run trainer/internal/cuda/kernels/gen.sh", SourceSum(), sum)
	}
}

func TestMemory(t *testing.T) {
	d := newDevice(t)
	p := upload(t, d, []float32{1, 2, 3, 4})
	q, err := d.Alloc(16)
	if err != nil {
		t.Fatal(err)
	}
	if got := download(t, d, q, 4); !slices.Equal(got, []float32{0, 0, 0, 0}) {
		t.Errorf("fresh allocation holds %v, want zeros", got)
	}
	if err := d.Copy(q.Float(1), p, 3); err != nil {
		t.Fatal(err)
	}
	if err := d.Zero(p.Float(2), 2); err != nil {
		t.Fatal(err)
	}
	if got := download(t, d, q, 4); !slices.Equal(got, []float32{0, 1, 2, 3}) {
		t.Errorf("after copy: %v", got)
	}
	if got := download(t, d, p, 4); !slices.Equal(got, []float32{1, 2, 0, 0}) {
		t.Errorf("after zero: %v", got)
	}
	if err := d.Copy(q.Float(2), p, 3); err == nil {
		t.Error("copy past the end of an allocation: no error")
	}
	if err := d.Upload(p.Float(1), make([]float32, 4)); err == nil {
		t.Error("upload past the end of an allocation: no error")
	}
	if err := d.Free(q); err != nil {
		t.Fatal(err)
	}
	if err := d.Free(q); err == nil {
		t.Error("double free: no error")
	}
	if err := d.Download(make([]float32, 1), q); err == nil {
		t.Error("download from freed memory: no error")
	}
}

func TestLaunchChecksArguments(t *testing.T) {
	d := newDevice(t)
	p := upload(t, d, []float32{-1, 2, -3})
	one := device.Dim3{X: 1, Y: 1, Z: 1}
	blk := device.Dim3{X: 32, Y: 1, Z: 1}
	for _, c := range []struct {
		name   string
		kernel string
		grid   device.Dim3
		args   []any
		want   string
	}{
		{"unknown", "no_such_kernel", one, []any{p, p, int32(3)}, "no such kernel"},
		{"count", "relu_fwd", one, []any{p, p}, "2 arguments"},
		{"type", "relu_fwd", one, []any{p, p, 3}, "argument 2 is int"},
		{"float64", "fill_f32", one, []any{p, 1.5, int32(3)}, "argument 1 is float64"},
		{"grid", "relu_fwd", device.Dim3{}, []any{p, p, int32(3)}, "grid"},
	} {
		err := d.Launch(c.kernel, c.grid, blk, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one saying %q", c.name, err, c.want)
		}
	}
	if err := d.Launch("relu_fwd", device.Dim3{X: 2, Y: 1, Z: 1}, device.Dim3{X: 2, Y: 1, Z: 1}, p, p, int32(3)); err != nil {
		t.Fatal(err)
	}
	if got := download(t, d, p, 3); !slices.Equal(got, []float32{0, 2, 0}) {
		t.Errorf("relu in place: %v", got)
	}
}

// refGemm is column-major C = alpha·op(A)·op(B) + beta·C in float64.
func refGemm(ta, tb bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) []float64 {
	out := make([]float64, len(c))
	for i := range c {
		out[i] = float64(c[i])
	}
	for j := range n {
		for i := range m {
			var s float64
			for l := range k {
				ai, bi := i+l*lda, l+j*ldb
				if ta {
					ai = l + i*lda
				}
				if tb {
					bi = j + l*ldb
				}
				x, y := a[ai], b[bi]
				s += float64(x) * float64(y)
			}
			out[i+j*ldc] = float64(alpha)*s + float64(beta)*float64(c[i+j*ldc])
		}
	}
	return out
}

func randVec(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func TestGemm(t *testing.T) {
	d := newDevice(t)
	r := rand.New(rand.NewPCG(1, 2))
	const m, n, k, batch = 5, 7, 3, 3
	for _, ta := range []bool{false, true} {
		for _, tb := range []bool{false, true} {
			ar, ac := m, k
			if ta {
				ar, ac = k, m
			}
			br, bc := k, n
			if tb {
				br, bc = n, k
			}
			lda, ldb, ldc := ar+2, br+1, m+3
			sa, sb, sc := lda*ac+4, ldb*bc, ldc*n+1
			a, b, c := randVec(r, sa*batch), randVec(r, sb*batch), randVec(r, sc*batch)
			pa, pb, pc := upload(t, d, a), upload(t, d, b), upload(t, d, c)
			if err := d.GemmStridedBatched(ta, tb, m, n, k, 1.5, pa, lda, sa, pb, ldb, sb, 0.5, pc, ldc, sc, batch); err != nil {
				t.Fatal(err)
			}
			got := download(t, d, pc, len(c))
			for i := range batch {
				want := refGemm(ta, tb, m, n, k, 1.5, a[i*sa:], lda, b[i*sb:], ldb, 0.5, c[i*sc:(i+1)*sc], ldc)
				for j, w := range want {
					if g := got[i*sc+j]; math.Abs(float64(g)-w) > 1e-5*(1+math.Abs(w)) {
						t.Fatalf("transA=%v transB=%v batch %d: C[%d] = %g, want %g", ta, tb, i, j, g, w)
					}
				}
			}
			// beta = 0 must not read C: NaNs there do not leak.
			if err := d.Upload(pc, slices.Repeat([]float32{float32(math.NaN())}, len(c))); err != nil {
				t.Fatal(err)
			}
			if err := d.Gemm(ta, tb, m, n, k, 1, pa, lda, pb, ldb, 0, pc, ldc); err != nil {
				t.Fatal(err)
			}
			got = download(t, d, pc, sc)
			for j := range n {
				for i := range m {
					if math.IsNaN(float64(got[i+j*ldc])) {
						t.Fatalf("transA=%v transB=%v: beta 0 read C", ta, tb)
					}
				}
			}
			if err := d.Gemm(ta, tb, m, n, k, 1, pa, lda, pb, ldb, 0, pc, m-1); err == nil {
				t.Errorf("transA=%v transB=%v: ldc below m: no error", ta, tb)
			}
		}
	}
}
