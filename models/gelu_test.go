package models

import (
	"math"
	"testing"
)

// geluExact is the float64 reference: 0.5·x·(1+erf(x/√2)) and its
// derivative.
func geluExact(x float64) (y, dy float64) {
	cdf := 0.5 * (1 + math.Erf(x/math.Sqrt2))
	pdf := math.Exp(-0.5*x*x) / math.Sqrt(2*math.Pi)
	return x * cdf, cdf + x*pdf
}

func TestGELUMatchesFloat64(t *testing.T) {
	var worstY, worstDY float64
	for i := -200000; i <= 200000; i++ {
		x := float32(i) * 1e-4 // [-20, 20] in steps of 1e-4
		wantY, wantDY := geluExact(float64(x))
		// Relative to max(1, |y|): GELU(x) ≈ x for large x.
		eY := math.Abs(float64(GELUAt(x))-wantY) / math.Max(1, math.Abs(wantY))
		eDY := math.Abs(float64(GELUDerivative(x)) - wantDY)
		worstY, worstDY = max(worstY, eY), max(worstDY, eDY)
	}
	t.Logf("worst error: GELU %.2g, derivative %.2g", worstY, worstDY)
	// erf32's 2e-7 near its clamp at ±4, times x/2 ≈ 2.8 there, is the
	// worst case of GELU (1.1e-6 at x = -5.56).
	if worstY > 2e-6 || worstDY > 5e-7 {
		t.Fatalf("GELU error %.3g, derivative error %.3g; want ≤ 2e-6 and 5e-7", worstY, worstDY)
	}
}

func TestGELUExtremes(t *testing.T) {
	for _, c := range []struct{ x, y, dy float32 }{
		{0, 0, 0.5},
		{float32(math.Inf(1)), float32(math.Inf(1)), 1},
		{-1e30, 0, 0},
		{1e30, 1e30, 1},
	} {
		if y := GELUAt(c.x); y != c.y {
			t.Errorf("GELUAt(%g) = %g, want %g", c.x, y, c.y)
		}
		if dy := GELUDerivative(c.x); c.x < 1e30 && dy != c.dy {
			t.Errorf("GELUDerivative(%g) = %g, want %g", c.x, dy, c.dy)
		}
	}
	if y := GELUAt(float32(math.NaN())); !math.IsNaN(float64(y)) {
		t.Errorf("GELUAt(NaN) = %g, want NaN", y)
	}
}

func TestExp32(t *testing.T) {
	var worst float64
	for i := 0; i <= 870000; i++ {
		x := -float32(i) * 1e-4
		want := math.Exp(float64(x))
		e := math.Abs(float64(exp32(x))-want) / want
		worst = max(worst, e)
	}
	t.Logf("worst relative error %.2g", worst)
	if worst > 5e-7 {
		t.Fatalf("exp32 relative error %.3g, want ≤ 5e-7", worst)
	}
}

func BenchmarkGELU(b *testing.B) {
	x := make([]float32, 1<<16)
	for i := range x {
		x[i] = float32(i-len(x)/2) * 1e-4
	}
	y := make([]float32, len(x))
	b.Run("float32", func(b *testing.B) {
		for b.Loop() {
			GELUSlice(y, x)
		}
	})
	b.Run("math.Erf", func(b *testing.B) {
		for b.Loop() {
			for i, v := range x {
				y[i] = float32(0.5 * float64(v) * (1 + math.Erf(float64(v)/math.Sqrt2)))
			}
		}
	})
}

// The slice forms (vectorised under GOEXPERIMENT=simd on AVX2 and AVX-512,
// with fused multiply-adds) are as accurate as the scalar functions, tails
// included.
func TestGELUSlices(t *testing.T) {
	defer useGELU(geluImpls[len(geluImpls)-1])
	for _, impl := range geluImpls {
		useGELU(impl)
		t.Run(impl.name, testGELUSlices)
	}
}

func testGELUSlices(t *testing.T) {
	const n = 100003 // not a multiple of 16
	x, dy := make([]float32, n), make([]float32, n)
	for i := range x {
		x[i] = float32(i-n/2) * 4e-4 // [-20, 20]
		dy[i] = float32(i%7) - 3
	}
	y, dx := make([]float32, n), make([]float32, n)
	GELUSlice(y, x)
	GELUGradSlice(dx, dy, x)
	for i, v := range x {
		wy, wd := geluExact(float64(v))
		if d := math.Abs(float64(y[i]) - wy); d > 2e-6*math.Max(1, math.Abs(wy)) {
			t.Fatalf("GELUSlice at %g: %g, want %g", v, y[i], wy)
		}
		if d := math.Abs(float64(dx[i]) - float64(dy[i])*wd); d > 5e-7*math.Max(1, math.Abs(float64(dy[i]))) {
			t.Fatalf("GELUGradSlice at %g: %g, want %g", v, dx[i], float64(dy[i])*wd)
		}
	}
	// Infinities at the vector and the scalar positions.
	inf := float32(math.Inf(1))
	big := []float32{inf, 1e30, -1e30, 0, inf, 1e30, -1e30, 0, inf, 1e30, -1e30, 0, inf, 1e30, -1e30, 0, inf}
	out := make([]float32, len(big))
	GELUSlice(out, big)
	for i, v := range big {
		if want := GELUAt(v); out[i] != want {
			t.Errorf("GELUSlice(%g) = %g, want %g", v, out[i], want)
		}
	}
}
