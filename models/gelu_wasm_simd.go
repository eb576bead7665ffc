//go:build goexperiment.simd && wasm

package models

import (
	"math"

	"simd/archsimd"
)

// In a GOEXPERIMENT=simd WebAssembly build the forward GELU runs 4 lanes at
// a time with SIMD128: scalar, it was a third of the browser's forward
// pass. The operations are erf32's, in its order, and SIMD128 fuses
// nothing, so each lane equals GELUAt. The gradient (training only) stays
// scalar.
func init() {
	geluImpls = append(geluImpls, geluImpl{"wasm simd128", geluSIMD128, geluGradScalar})
	useGELU(geluImpls[len(geluImpls)-1])
}

type f4 = archsimd.Float32x4

func bc4(v float32) f4 { return archsimd.BroadcastFloat32x4(v) }

func erf4(x f4) f4 {
	x = x.Max(bc4(-4)).Min(bc4(4))
	x2 := x.Mul(x)
	p := bc4(erfP[0])
	for _, c := range erfP[1:] {
		p = x2.Mul(p).Add(bc4(c))
	}
	q := bc4(erfQ[0])
	for _, c := range erfQ[1:] {
		q = x2.Mul(q).Add(bc4(c))
	}
	return x.Mul(p).Div(q)
}

func geluSIMD128(y, x []float32) {
	i := 0
	for ; i+4 <= len(x); i += 4 {
		v := archsimd.LoadFloat32x4Array((*[4]float32)(x[i : i+4]))
		e := erf4(v.Mul(bc4(1 / math.Sqrt2)))
		bc4(0.5).Mul(v).Mul(e.Add(bc4(1))).StoreArray((*[4]float32)(y[i : i+4]))
	}
	geluScalar(y[i:], x[i:])
}
