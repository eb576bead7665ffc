package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func naive(a, b []float32, m, k, n int, bias []float32) []float32 {
	c := make([]float32, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			if bias != nil {
				s = float64(bias[i])
			}
			for kk := 0; kk < k; kk++ {
				s += float64(a[i*k+kk]) * float64(b[kk*n+j])
			}
			c[i*n+j] = float32(s)
		}
	}
	return c
}

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// eachKernel runs f as a subtest with every micro-kernel this build and
// CPU can run, so that a machine with a vector kernel still checks the
// slower ones.
func eachKernel(t *testing.T, f func(t *testing.T)) {
	saved := kern
	defer func() { kern = saved }()
	for _, k := range available {
		kern = k
		t.Run(k.name, f)
	}
}

func TestMulMatchesNaive(t *testing.T) { eachKernel(t, testMulMatchesNaive) }

func testMulMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, sz := range [][3]int{{1, 1, 1}, {4, 4, 4}, {5, 7, 3}, {64, 27, 961}, {13, 300, 17}, {256, 2304, 9}, {10, 256, 1}, {3, 600, 5}, {8, 64, 16}, {6, 300, 28}, {256, 256, 64}, {12, 40, 4}, {28, 300, 16}, {24, 9, 3}, {64, 576, 4}} {
		m, k, n := sz[0], sz[1], sz[2]
		t.Run(fmt.Sprintf("%dx%dx%d", m, k, n), func(t *testing.T) {
			a, b, bias := randSlice(r, m*k), randSlice(r, k*n), randSlice(r, m)
			want := naive(a, b, m, k, n, bias)
			// Write into a wider C to check ldc handling and that
			// nothing outside the M×N window is touched.
			ldc := n + 3
			c := make([]float32, m*ldc)
			for i := range c {
				c[i] = 42
			}
			Pack(a, m, k).Mul(c, ldc, b, n, n, bias, make([]float32, ScratchSize(k, n)))
			for i := 0; i < m; i++ {
				for j := 0; j < ldc; j++ {
					got := c[i*ldc+j]
					if j >= n {
						if got != 42 {
							t.Fatalf("c[%d][%d] outside the matrix was overwritten: %v", i, j, got)
						}
						continue
					}
					w := want[i*n+j]
					if math.Abs(float64(got-w)) > 1e-4*math.Sqrt(float64(k))*(1+math.Abs(float64(w))) {
						t.Fatalf("c[%d][%d] = %v, want %v", i, j, got, w)
					}
				}
			}
		})
	}
}

func TestMulNilBiasAndZeroAlloc(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	m, k, n := 6, 9, 10
	a, b := randSlice(r, m*k), randSlice(r, k*n)
	p := Pack(a, m, k)
	c := make([]float32, m*n)
	s := make([]float32, ScratchSize(k, n))
	allocs := testing.AllocsPerRun(10, func() { p.Mul(c, n, b, n, n, nil, s) })
	if allocs != 0 {
		t.Fatalf("Mul allocates %v times per call", allocs)
	}
	want := naive(a, b, m, k, n, nil)
	for i := range want {
		if math.Abs(float64(c[i]-want[i])) > 1e-4 {
			t.Fatalf("c[%d] = %v, want %v", i, c[i], want[i])
		}
	}
}

func BenchmarkMul(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, sz := range [][3]int{{64, 576, 225}, {256, 2304, 49}, {256, 256, 256}} {
		m, k, n := sz[0], sz[1], sz[2]
		b.Run(fmt.Sprintf("%dx%dx%d", m, k, n), func(b *testing.B) {
			a, bm := randSlice(r, m*k), randSlice(r, k*n)
			p := Pack(a, m, k)
			c := make([]float32, m*n)
			s := make([]float32, ScratchSize(k, n))
			b.ResetTimer()
			for b.Loop() {
				p.Mul(c, n, bm, n, n, nil, s)
			}
			b.ReportMetric(float64(2*m*k*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkKernel measures each micro-kernel alone on panels that stay in
// L1, the ceiling the packing and loop order can at best reach.
func BenchmarkKernel(b *testing.B) {
	const depth = 256
	for _, k := range available {
		b.Run(k.name, func(b *testing.B) {
			r := rand.New(rand.NewPCG(9, 10))
			ap, bp := randSlice(r, depth*mr), randSlice(r, depth*k.nr)
			c := make([]float32, mr*k.nr)
			for b.Loop() {
				k.full(ap, bp, c, k.nr)
			}
			flops := 2 * float64(depth*mr*k.nr) * float64(b.N)
			b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
	if tall != nil {
		b.Run("tall 12×4", func(b *testing.B) {
			r := rand.New(rand.NewPCG(9, 10))
			ap, bp := randSlice(r, 3*depth*mr), randSlice(r, depth*4)
			c := make([]float32, 3*mr*4)
			for b.Loop() {
				tall(ap, depth*mr, bp, c, 4)
			}
			flops := 2 * float64(depth*3*mr*4) * float64(b.N)
			b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
