//go:build !(wasm && goexperiment.simd)

package gemm

// copyRow copies one row of a B panel.
func copyRow(dst, src []float32) { copy(dst, src) }
