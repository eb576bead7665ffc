package models

import "math"

// GELUAt and GELUDerivative, in float32, shared by the forward pass and the
// trainer so that both compute the same function. The exact GELU is
// 0.5·x·(1+erf(x/√2)) (PyTorch's nn.GELU()); math.Erf works in float64
// and was a third of a training step, so erf and exp are evaluated here
// with float32 polynomials accurate to a few units in the last place.

// GELUAt returns 0.5·x·(1+erf(x/√2)).
func GELUAt(x float32) float32 {
	return 0.5 * x * (1 + erf32(x*(1/math.Sqrt2)))
}

// GELUDerivative returns dGELU/dx = Φ(x) + x·φ(x), Φ and φ being the
// standard normal distribution and density functions.
func GELUDerivative(x float32) float32 {
	cdf := 0.5 * (1 + erf32(x*(1/math.Sqrt2)))
	pdf := exp32(-0.5*x*x) * (1 / 2.5066282746310002) // 1/√(2π)
	return cdf + x*pdf
}

// erf's rational approximation (Eigen's and XLA's for float32): on
// [-4, 4], where erf already rounds to ±1 outside, erf(x) = x·P(x²)/Q(x²)
// with P and Q evaluated by Horner's rule from these coefficients, highest
// power first. Its error is below 2.5e-7 absolute.
var (
	erfP = [...]float32{
		-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06, -5.69250639462346e-05,
		-7.34990630326855e-04, -2.95459980854025e-03, -1.60960333262415e-02,
	}
	erfQ = [...]float32{
		-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03, -7.37332916720468e-03,
		-1.42647390514189e-02,
	}
)

// e^r for |r| ≤ ln2/2 by its degree-6 Taylor polynomial (relative error
// below 2e-7), highest power first; exp32 and its vector twin reduce
// x = n·ln2 + r with ln2 split into ln2Hi, exact in float32, and ln2Lo.
var expP = [...]float32{1.0 / 720, 1.0 / 120, 1.0 / 24, 1.0 / 6, 0.5, 1, 1}

const (
	ln2Hi = 0.693359375
	ln2Lo = -2.12194440e-4
)

func erf32(x float32) float32 {
	x = min(max(x, -4), 4)
	x2 := x * x
	p := erfP[0]
	for _, c := range erfP[1:] {
		p = x2*p + c
	}
	q := erfQ[0]
	for _, c := range erfQ[1:] {
		q = x2*q + c
	}
	return x * p / q
}

// exp32 is e^x for x ≤ 0 (enough for the normal density), 2^n put into
// the exponent bits. Below -87 the result would be subnormal and is
// returned as 0.
func exp32(x float32) float32 {
	if x < -87 {
		return 0
	}
	n := float32(math.Floor(float64(x*math.Log2E + 0.5)))
	r := x - n*ln2Hi - n*ln2Lo
	p := expP[0]
	for _, c := range expP[1:] {
		p = r*p + c
	}
	return p * math.Float32frombits(uint32(int32(n)+127)<<23)
}

// geluImpl is one implementation of the slice forms.
type geluImpl struct {
	name string
	gelu func(y, x []float32)
	grad func(dx, dy, x []float32)
}

// geluImpls lists the implementations this build and CPU can run, slowest
// first: vector ones register themselves at init (gelu_avx512.go). Tests
// run every one; geluSlice and geluGradSlice are the last, the fastest.
var geluImpls = []geluImpl{{"scalar", geluScalar, geluGradScalar}}

var (
	geluSlice     = geluScalar
	geluGradSlice = geluGradScalar
)

// useGELU makes impl the one GELUSlice and GELUGradSlice call.
func useGELU(impl geluImpl) { geluSlice, geluGradSlice = impl.gelu, impl.grad }

func geluScalar(y, x []float32) {
	for i, v := range x {
		y[i] = GELUAt(v)
	}
}

func geluGradScalar(dx, dy, x []float32) {
	for i, v := range x {
		dx[i] = dy[i] * GELUDerivative(v)
	}
}

// GELUSlice sets y[i] = GELU(x[i]); y and x have the same length.
func GELUSlice(y, x []float32) { geluSlice(y[:len(x)], x) }

// GELUGradSlice sets dx[i] = dy[i]·GELU'(x[i]), the backward pass of GELU;
// the three slices have the same length.
func GELUGradSlice(dx, dy, x []float32) { geluGradSlice(dx[:len(x)], dy[:len(x)], x) }
