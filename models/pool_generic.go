//go:build !(goexperiment.simd && wasm)

package models

// maxPool2Row is the 2×2 max-pool of two rows where the build has SIMD;
// here it leaves every output to maxPool's scalar loop.
func maxPool2Row(out, r0, r1 []float32) int { return 0 }
