package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// transpose returns the N×M transpose of a row-major M×N matrix.
func transpose(a []float32, m, n int) []float32 {
	t := make([]float32, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			t[j*m+i] = a[i*n+j]
		}
	}
	return t
}

// trainShapes cover partial row panels, partial column panels, depths
// beyond one kc block and the conv layers of keras-cnn.
var trainShapes = [][3]int{{1, 1, 1}, {5, 7, 3}, {4, 300, 33}, {13, 600, 17}, {32, 1024, 27}, {27, 32, 1024}, {64, 64, 288}, {7, 257, 70}}

func TestPackIntoMulAddMatchesNaive(t *testing.T) { eachKernel(t, testPackIntoMulAddMatchesNaive) }

func testPackIntoMulAddMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, sz := range trainShapes {
		m, k, n := sz[0], sz[1], sz[2]
		for _, transA := range []bool{false, true} {
			for _, transB := range []bool{false, true} {
				t.Run(fmt.Sprintf("%dx%dx%d/transA=%v/transB=%v", m, k, n, transA, transB), func(t *testing.T) {
					a, b, c0 := randSlice(r, m*k), randSlice(r, k*n), randSlice(r, m*n)
					want := naive(a, b, m, k, n, nil)
					for i := range want {
						want[i] += c0[i]
					}
					src := a
					if transA {
						src = transpose(a, m, k)
					}
					// Dirty buffers: PackInto must overwrite all of
					// its panels, including the zero padding.
					buf := make([]float32, PackedSize(m, k)+5)
					for i := range buf {
						buf[i] = float32(math.NaN())
					}
					scratch := make([]float32, ScratchSize(k, n))
					for i := range scratch {
						scratch[i] = float32(math.NaN())
					}
					p := PackInto(buf, src, m, k, transA)
					ldc := n + 2
					c := make([]float32, m*ldc)
					for i := 0; i < m; i++ {
						copy(c[i*ldc:], c0[i*n:(i+1)*n])
						c[i*ldc+n], c[i*ldc+n+1] = 42, 42
					}
					if transB {
						// Bᵀ stored with a row stride wider than K.
						bt := transpose(b, k, n)
						ld := k + 3
						wide := make([]float32, n*ld)
						for j := 0; j < n; j++ {
							copy(wide[j*ld:], bt[j*k:(j+1)*k])
						}
						p.MulAddTransB(c, ldc, wide, ld, n, scratch)
					} else {
						p.MulAdd(c, ldc, b, n, n, scratch)
					}
					for i := 0; i < m; i++ {
						if c[i*ldc+n] != 42 || c[i*ldc+n+1] != 42 {
							t.Fatalf("row %d: values right of the matrix were overwritten", i)
						}
						for j := 0; j < n; j++ {
							got, w := c[i*ldc+j], want[i*n+j]
							if math.Abs(float64(got-w)) > 1e-4*math.Sqrt(float64(k))*(1+math.Abs(float64(w))) {
								t.Fatalf("c[%d][%d] = %v, want %v", i, j, got, w)
							}
						}
					}
				})
			}
		}
	}
}

func TestPackIntoMatchesPack(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	m, k := 10, 37
	a := randSlice(r, m*k)
	want := Pack(a, m, k)
	for _, transA := range []bool{false, true} {
		src := a
		if transA {
			src = transpose(a, m, k)
		}
		got := PackInto(make([]float32, PackedSize(m, k)), src, m, k, transA)
		if got.M != m || got.K != k || len(got.data) != len(want.data) {
			t.Fatalf("transA=%v: got %d×%d with %d floats, want %d×%d with %d", transA, got.M, got.K, len(got.data), m, k, len(want.data))
		}
		for i := range want.data {
			if got.data[i] != want.data[i] {
				t.Fatalf("transA=%v: packed[%d] = %v, want %v", transA, i, got.data[i], want.data[i])
			}
		}
	}
}

func TestTrainingKernelsDoNotAllocate(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	m, k, n := 9, 40, 35
	a, b := randSlice(r, m*k), randSlice(r, k*n)
	buf := make([]float32, PackedSize(m, k))
	c := make([]float32, m*n)
	s := make([]float32, ScratchSize(k, n))
	bt := transpose(b, k, n)
	allocs := testing.AllocsPerRun(10, func() {
		p := PackInto(buf, a, m, k, false)
		p.MulAdd(c, n, b, n, n, s)
		p = PackInto(buf, a, m, k, true) // reads a as 40×9: any data will do
		p.MulAddTransB(c, n, bt, k, n, s)
	})
	if allocs != 0 {
		t.Fatalf("PackInto/MulAdd/MulAddTransB allocate %v times per call", allocs)
	}
}

func BenchmarkMulAddTransB(b *testing.B) {
	r := rand.New(rand.NewPCG(13, 14))
	// dW = dY·colsᵀ for keras-cnn's conv layers at 32×32, 16×16 and 8×8.
	for _, sz := range [][3]int{{32, 1024, 288}, {64, 256, 576}, {128, 64, 1152}} {
		m, k, n := sz[0], sz[1], sz[2]
		b.Run(fmt.Sprintf("%dx%dx%d", m, k, n), func(b *testing.B) {
			a, bt := randSlice(r, m*k), randSlice(r, n*k)
			buf := make([]float32, PackedSize(m, k))
			c := make([]float32, m*n)
			s := make([]float32, ScratchSize(k, n))
			for b.Loop() {
				p := PackInto(buf, a, m, k, false)
				p.MulAddTransB(c, n, bt, k, n, s)
			}
			b.ReportMetric(float64(2*m*k*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// rowPanels serves a stored matrix through the Panels interface.
type rowPanels struct {
	b   []float32
	ldb int
}

func (p *rowPanels) PackPanels(dst []float32, k0, kb, n, nr int) {
	packB(dst, p.b, p.ldb, k0, kb, n, nr)
}

func TestMulPanelsMatchesNaive(t *testing.T) { eachKernel(t, testMulPanelsMatchesNaive) }

func testMulPanelsMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	for _, sz := range trainShapes {
		m, k, n := sz[0], sz[1], sz[2]
		a, b, bias := randSlice(r, m*k), randSlice(r, k*n), randSlice(r, m)
		want := naive(a, b, m, k, n, bias)
		c := make([]float32, m*n)
		for i := range c {
			c[i] = float32(math.NaN()) // MulPanels sets C, it does not add to it
		}
		s := make([]float32, ScratchSize(k, n))
		src := &rowPanels{b, n}
		p := Pack(a, m, k)
		p.MulPanels(c, n, src, n, bias, s)
		for i := range want {
			if math.Abs(float64(c[i]-want[i])) > 1e-4*math.Sqrt(float64(k))*(1+math.Abs(float64(want[i]))) {
				t.Fatalf("%dx%dx%d: c[%d] = %v, want %v", m, k, n, i, c[i], want[i])
			}
		}
		if allocs := testing.AllocsPerRun(5, func() { p.MulPanels(c, n, src, n, bias, s) }); allocs != 0 {
			t.Fatalf("MulPanels allocates %v times per call", allocs)
		}
	}
}
