//go:build goexperiment.simd && amd64

package models

import (
	"math"

	"simd/archsimd"
)

// With GOEXPERIMENT=simd, GELU and its gradient run 16 lanes at a time on
// an AVX-512 CPU and 8 on an AVX2 one with FMA (gelu_avx2.go), with the
// same polynomials as erf32 and exp32 (fused multiply-adds round slightly
// differently: the results agree to a few units in the last place).
func init() {
	if archsimd.X86.AVX2() && archsimd.X86.FMA() {
		geluImpls = append(geluImpls, geluImpl{"avx2", geluAVX2, geluGradAVX2})
	}
	if archsimd.X86.AVX512() {
		geluImpls = append(geluImpls, geluImpl{"avx512", geluAVX512, geluGradAVX512})
	}
	useGELU(geluImpls[len(geluImpls)-1])
}

type f16 = archsimd.Float32x16

func bc(v float32) f16 { return archsimd.BroadcastFloat32x16(v) }

// erf16 and exp16 are erf32 and exp32 for 16 lanes, with the same
// coefficients.
func erf16(x f16) f16 {
	x = x.Max(bc(-4)).Min(bc(4))
	x2 := x.Mul(x)
	p := bc(erfP[0])
	for _, c := range erfP[1:] {
		p = x2.MulAdd(p, bc(c))
	}
	q := bc(erfQ[0])
	for _, c := range erfQ[1:] {
		q = x2.MulAdd(q, bc(c))
	}
	return x.Mul(p).Div(q)
}

// exp16 applies 2^n with VSCALEFPS, which underflows to 0 for very
// negative x by itself.
func exp16(x f16) f16 {
	x = x.Max(bc(-100))
	n := x.Mul(bc(math.Log2E)).RoundScaled(0)
	r := n.MulAdd(bc(-ln2Hi), x)
	r = n.MulAdd(bc(-ln2Lo), r)
	p := bc(expP[0])
	for _, c := range expP[1:] {
		p = r.MulAdd(p, bc(c))
	}
	return p.Scale(n)
}

func geluAVX512(y, x []float32) {
	i := 0
	for ; i+16 <= len(x); i += 16 {
		v := archsimd.LoadFloat32x16(x[i:])
		e := erf16(v.Mul(bc(1 / math.Sqrt2)))
		v.Mul(bc(0.5)).Mul(e.Add(bc(1))).Store(y[i:])
	}
	geluScalar(y[i:], x[i:])
}

func geluGradAVX512(dx, dy, x []float32) {
	i := 0
	for ; i+16 <= len(x); i += 16 {
		v := archsimd.LoadFloat32x16(x[i:])
		cdf := erf16(v.Mul(bc(1/math.Sqrt2))).MulAdd(bc(0.5), bc(0.5))
		pdf := exp16(v.Mul(v).Mul(bc(-0.5))).Mul(bc(1 / 2.5066282746310002))
		g := v.MulAdd(pdf, cdf)
		g.Mul(archsimd.LoadFloat32x16(dy[i:])).Store(dx[i:])
	}
	geluGradScalar(dx[i:], dy[i:], x[i:])
}
