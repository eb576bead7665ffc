package kernels

import (
	"math"
	"testing"

	"github.com/cifarnet-go/cifarnet/models"
)

func TestElementwise(t *testing.T) {
	e := newEnv(t)
	const n = 1037 // not a multiple of the block size
	a, b := e.randn(n, 1, 0), e.randn(n, 2, 0.5)
	pa, pb := e.up(a), e.up(b)
	y := e.nan(n)

	e.ok(Fill(e.d, y, 2.5, n))
	same(t, "fill", e.down(y, n), repeat(2.5, n))

	e.ok(Add(e.d, y, pa, pb, n))
	want := make([]float32, n)
	for i := range want {
		want[i] = a[i] + b[i]
	}
	same(t, "add", e.down(y, n), want)

	e.ok(Mul(e.d, y, pa, pb, n))
	for i := range want {
		want[i] = a[i] * b[i]
	}
	same(t, "mul", e.down(y, n), want)

	// Lerp in run/average.go's form: s += w·(v − s).
	slow := e.up(a)
	e.ok(Lerp(e.d, slow, pb, 0.3, n))
	for i := range want {
		s := a[i]
		want[i] = s + 0.3*(b[i]-s)
	}
	same(t, "lerp", e.down(slow, n), want)
}

func repeat(v float32, n int) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func TestBiasAdd(t *testing.T) {
	e := newEnv(t)
	for _, s := range []struct{ n, c, hw int }{{3, 5, 7}, {4, 3, 1}, {1, 1, 1}} {
		total := s.n * s.c * s.hw
		x, b := e.randn(total, 1, 0), e.randn(s.c, 1, 0)
		want := make([]float32, total)
		for i := range want {
			want[i] = x[i] + b[(i/s.hw)%s.c]
		}
		px, pb, y := e.up(x), e.up(b), e.nan(total)
		e.ok(BiasAdd(e.d, y, px, pb, s.n, s.c, s.hw))
		same(t, "bias", e.down(y, total), want)
		e.ok(BiasAdd(e.d, px, px, pb, s.n, s.c, s.hw)) // in place
		same(t, "bias in place", e.down(px, total), want)
	}
}

func TestActivations(t *testing.T) {
	e := newEnv(t)
	const n = 999
	x := e.randn(n, 3, 0)
	x[0], x[1], x[2], x[3] = 0, float32(math.Copysign(0, -1)), 9, -9
	dy := e.randn(n, 1, 0)
	px, pdy := e.up(x), e.up(dy)
	const alpha = 0.1
	for _, c := range []struct {
		a     Activation
		f, df func(x float64) float64
		rtol  float64
	}{
		{ReLU, func(x float64) float64 { return max(x, 0) }, func(x float64) float64 { return step(x, 0) }, 0},
		{LeakyReLU, func(x float64) float64 {
			if x > 0 {
				return x
			}
			return float64(float32(alpha) * float32(x))
		}, func(x float64) float64 { return step(x, alpha) }, 0},
		{GELU, func(x float64) float64 { return 0.5 * x * (1 + math.Erf(x/math.Sqrt2)) }, func(x float64) float64 {
			return 0.5*(1+math.Erf(x/math.Sqrt2)) + x*math.Exp(-x*x/2)/math.Sqrt(2*math.Pi)
		}, 1e-5},
	} {
		y, dx := e.nan(n), e.nan(n)
		e.ok(Act(e.d, c.a, alpha, y, px, n))
		e.ok(ActGrad(e.d, c.a, alpha, dx, px, pdy, n))
		wantY, wantDX := make([]float64, n), make([]float64, n)
		for i, v := range x {
			wantY[i] = c.f(float64(v))
			if c.rtol > 0 {
				wantDX[i] = float64(dy[i]) * c.df(float64(v))
			} else {
				wantDX[i] = float64(dy[i] * float32(c.df(float64(v)))) // exact in float32
			}
		}
		// GELU: float32 erff/expf against float64, a few ulps plus an
		// absolute floor where GELU(x) underflows towards 0 for x ≪ 0.
		near(t, c.a.String(), e.down(y, n), wantY, c.rtol, c.rtol*1e-1)
		near(t, c.a.String()+"'", e.down(dx, n), wantDX, c.rtol, c.rtol*1e-1)
		if c.a == GELU {
			// The CPU backend's float32 polynomial (models.GELUAt).
			gy, gdx := e.down(y, n), e.down(dx, n)
			for i, v := range x {
				if d := math.Abs(float64(gy[i] - models.GELUAt(v))); d > 1e-6*(1+math.Abs(float64(v))) {
					t.Errorf("gelu(%g) = %g, models.GELUAt %g", v, gy[i], models.GELUAt(v))
				}
				if d := math.Abs(float64(gdx[i] - dy[i]*models.GELUDerivative(v))); d > 2e-6*(1+math.Abs(float64(dy[i]))) {
					t.Errorf("gelu'(%g)·dy = %g, models: %g", v, gdx[i], dy[i]*models.GELUDerivative(v))
				}
			}
		}
	}
	if err := Act(e.d, Activation(9), 0, px, px, n); err == nil {
		t.Error("unknown activation: no error")
	}
}

func step(x, below float64) float64 {
	if x > 0 {
		return 1
	}
	return below
}

func TestDropBits(t *testing.T) {
	// Computed independently (Python, arbitrary-precision integers masked
	// to 64 bits).
	for _, c := range []struct {
		seed, stream uint64
		i            int
		want         uint32
	}{
		{0, 0, 0, 0xf2fea582},
		{1, 2, 3, 0x39932fc1},
		{12345, 7, 1000000, 0xdf371ae8},
		{math.MaxUint64, 1 << 63, 41, 0x6236e6ab},
	} {
		if got := DropBits(c.seed, c.stream, c.i); got != c.want {
			t.Errorf("DropBits(%d, %d, %d) = %#x, want %#x", c.seed, c.stream, c.i, got, c.want)
		}
	}
}

func TestDropout(t *testing.T) {
	e := newEnv(t)
	const n = 5003
	x := e.randn(n, 1, 0)
	px := e.up(x)
	for _, rate := range []float64{0, 0.25, 0.5} {
		const seed, stream = 0xdeadbeef, 42
		y, mask := e.nan(n), e.nan(n)
		e.ok(Dropout(e.d, y, mask, px, n, rate, seed, stream))
		gy, gm := e.down(y, n), e.down(mask, n)
		keep := float32(1 / (1 - rate))
		threshold := uint32(rate * math.MaxUint32)
		dropped := 0
		for i := range n {
			m := keep
			if DropBits(seed, stream, i) < threshold {
				m = 0
				dropped++
			}
			if gm[i] != m || gy[i] != x[i]*m {
				t.Fatalf("rate %g: element %d: mask %g y %g, want %g and %g", rate, i, gm[i], gy[i], m, x[i]*m)
			}
		}
		if frac := float64(dropped) / n; math.Abs(frac-rate) > 0.03 {
			t.Errorf("rate %g: dropped %.3f", rate, frac)
		}
	}
	if err := Dropout(e.d, px, px, px, n, 1, 0, 0); err == nil {
		t.Error("rate 1: no error")
	}
}
