//go:build goexperiment.simd && wasm

package models

import "testing"

// The SIMD128 GELU does erf32's operations in its order without fusing, so
// it must equal GELUAt bit for bit, keeping the browser's logits the
// scalar build's.
func TestGELUSIMD128EqualsScalar(t *testing.T) {
	x := make([]float32, 40001)
	for i := range x {
		x[i] = float32(i-len(x)/2) * 3e-4
	}
	y := make([]float32, len(x))
	geluSIMD128(y, x)
	for i, v := range x {
		if want := GELUAt(v); y[i] != want {
			t.Fatalf("geluSIMD128 at %g: %g, want GELUAt's %g", v, y[i], want)
		}
	}
}
