//go:build !(wasm && goexperiment.simd)

package winograd

// inputTiles4 and outputTiles4 transform groups of four neighbouring tiles
// with SIMD where the build has it; here they leave every tile to the
// scalar loop.
func inputTiles4(v []float32, xs int, even, odd []float32, pw, tw int) int { return 0 }

func outputTiles4(dst, m []float32, xs, oy, oh, ow, tw int, b float32) int { return 0 }
