//go:build goexperiment.simd && wasm

package models

import "simd/archsimd"

// Byte indices that gather the even (odd) lanes of a vector into lanes 0
// and 1 (lo) or 2 and 3 (hi); -128 selects zero.
var (
	evenLo = archsimd.LoadInt8x16Array(&[16]int8{0, 1, 2, 3, 8, 9, 10, 11, -128, -128, -128, -128, -128, -128, -128, -128})
	evenHi = archsimd.LoadInt8x16Array(&[16]int8{-128, -128, -128, -128, -128, -128, -128, -128, 0, 1, 2, 3, 8, 9, 10, 11})
	oddLo  = archsimd.LoadInt8x16Array(&[16]int8{4, 5, 6, 7, 12, 13, 14, 15, -128, -128, -128, -128, -128, -128, -128, -128})
	oddHi  = archsimd.LoadInt8x16Array(&[16]int8{-128, -128, -128, -128, -128, -128, -128, -128, 4, 5, 6, 7, 12, 13, 14, 15})
)

func asBytes(x f4) archsimd.Int8x16 { return x.ToBits().ReshapeToUint8s().BitsToInt8() }

func asFloats(x archsimd.Int8x16) f4 { return x.ToBits().ReshapeToUint32s().BitsToFloat32() }

// maxPool2Row sets out[i] to the largest of r0[2i], r0[2i+1], r1[2i] and
// r1[2i+1], four outputs at a time with SIMD128 as far as both rows have
// the eight values, and returns how many it set. f32x4.max is the max
// builtin's (NaN wins, +0 over −0).
func maxPool2Row(out, r0, r1 []float32) int {
	i := 0
	for ; i+4 <= len(out) && 2*i+8 <= len(r0) && 2*i+8 <= len(r1); i += 4 {
		a := archsimd.LoadFloat32x4Array((*[4]float32)(r0[2*i : 2*i+4])).Max(archsimd.LoadFloat32x4Array((*[4]float32)(r1[2*i : 2*i+4])))
		b := archsimd.LoadFloat32x4Array((*[4]float32)(r0[2*i+4 : 2*i+8])).Max(archsimd.LoadFloat32x4Array((*[4]float32)(r1[2*i+4 : 2*i+8])))
		ab, bb := asBytes(a), asBytes(b)
		even := asFloats(ab.LookupOrZero(evenLo).Or(bb.LookupOrZero(evenHi)))
		odd := asFloats(ab.LookupOrZero(oddLo).Or(bb.LookupOrZero(oddHi)))
		even.Max(odd).StoreArray((*[4]float32)(out[i : i+4]))
	}
	return i
}
