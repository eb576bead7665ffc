//go:build goexperiment.simd && amd64

package models

import (
	"math"

	"simd/archsimd"
)

// The 8-lane forms of GELU and its gradient for AVX2 CPUs with FMA (the
// AVX-512 ones in gelu_avx512.go do 16 lanes); same polynomials as erf32
// and exp32. AVX2 has no VSCALEFPS, so 2^n goes into the exponent bits as
// in exp32.

type f8 = archsimd.Float32x8

func bc8(v float32) f8 { return archsimd.BroadcastFloat32x8(v) }

func erf8(x f8) f8 {
	x = x.Max(bc8(-4)).Min(bc8(4))
	x2 := x.Mul(x)
	p := bc8(erfP[0])
	for _, c := range erfP[1:] {
		p = x2.MulAdd(p, bc8(c))
	}
	q := bc8(erfQ[0])
	for _, c := range erfQ[1:] {
		q = x2.MulAdd(q, bc8(c))
	}
	return x.Mul(p).Div(q)
}

// exp8 is exp32 for 8 lanes, 0 below -87 as there.
func exp8(x f8) f8 {
	keep := x.GreaterEqual(bc8(-87))
	x = x.Max(bc8(-87))
	n := x.Mul(bc8(math.Log2E)).Round()
	r := n.MulAdd(bc8(-ln2Hi), x)
	r = n.MulAdd(bc8(-ln2Lo), r)
	p := bc8(expP[0])
	for _, c := range expP[1:] {
		p = r.MulAdd(p, bc8(c))
	}
	scale := n.ConvertToInt32().Add(archsimd.BroadcastInt32x8(127)).ShiftAllLeft(23).AsFloat32x8()
	return p.Mul(scale).Masked(keep)
}

func geluAVX2(y, x []float32) {
	i := 0
	for ; i+8 <= len(x); i += 8 {
		v := archsimd.LoadFloat32x8(x[i:])
		e := erf8(v.Mul(bc8(1 / math.Sqrt2)))
		v.Mul(bc8(0.5)).Mul(e.Add(bc8(1))).Store(y[i:])
	}
	geluScalar(y[i:], x[i:])
}

func geluGradAVX2(dx, dy, x []float32) {
	i := 0
	for ; i+8 <= len(x); i += 8 {
		v := archsimd.LoadFloat32x8(x[i:])
		cdf := erf8(v.Mul(bc8(1/math.Sqrt2))).MulAdd(bc8(0.5), bc8(0.5))
		pdf := exp8(v.Mul(v).Mul(bc8(-0.5))).Mul(bc8(1 / 2.5066282746310002))
		g := v.MulAdd(pdf, cdf)
		g.Mul(archsimd.LoadFloat32x8(dy[i:])).Store(dx[i:])
	}
	geluGradScalar(dx[i:], dy[i:], x[i:])
}
