//go:build wasm && goexperiment.simd

package winograd

import "simd/archsimd"

// In a GOEXPERIMENT=simd WebAssembly build the input and output transforms
// handle four neighbouring tiles at once, one per SIMD128 lane: scalar,
// they took a quarter of the browser's forward pass. Each lane runs the
// scalar transform's operations in its order, so the results are the
// scalar ones bit for bit.

type f4 = archsimd.Float32x4

func load4(s []float32) f4 { return archsimd.LoadFloat32x4Array((*[4]float32)(s[:4])) }

func store4(s []float32, x f4) { x.StoreArray((*[4]float32)(s[:4])) }

// inputTiles4 writes Bᵀ d B of tiles 0..tw rounded down to a multiple of
// four, d coming from rows 0..3 (pw apart) of the even and odd columns of
// the padded plane, to columns 0.. of the 16 matrices (xs apart) of v, and
// returns the first tile it left.
func inputTiles4(v []float32, xs int, even, odd []float32, pw, tw int) int {
	tx := 0
	for ; tx+4 <= tw; tx += 4 {
		var d [4][4]f4
		for r := range 4 {
			e, o := even[r*pw+tx:], odd[r*pw+tx:]
			d[r] = [4]f4{load4(e), load4(o), load4(e[1:]), load4(o[1:])}
		}
		var t [4][4]f4
		for s := range 4 {
			t[0][s] = d[0][s].Sub(d[2][s])
			t[1][s] = d[1][s].Add(d[2][s])
			t[2][s] = d[2][s].Sub(d[1][s])
			t[3][s] = d[1][s].Sub(d[3][s])
		}
		for r := range 4 {
			a, b, c, dd := t[r][0], t[r][1], t[r][2], t[r][3]
			store4(v[(r*4+0)*xs+tx:], a.Sub(c))
			store4(v[(r*4+1)*xs+tx:], b.Add(c))
			store4(v[(r*4+2)*xs+tx:], c.Sub(b))
			store4(v[(r*4+3)*xs+tx:], b.Sub(dd))
		}
	}
	return tx
}

// Byte indices that interleave the lanes of two vectors: lo picks lanes 0
// and 1 of its vector into lanes 0 and 2 (lo) or 1 and 3 (lo shifted), hi
// lanes 2 and 3; -128 selects zero.
var (
	zipLoA = archsimd.LoadInt8x16Array(&[16]int8{0, 1, 2, 3, -128, -128, -128, -128, 4, 5, 6, 7, -128, -128, -128, -128})
	zipLoB = archsimd.LoadInt8x16Array(&[16]int8{-128, -128, -128, -128, 0, 1, 2, 3, -128, -128, -128, -128, 4, 5, 6, 7})
	zipHiA = archsimd.LoadInt8x16Array(&[16]int8{8, 9, 10, 11, -128, -128, -128, -128, 12, 13, 14, 15, -128, -128, -128, -128})
	zipHiB = archsimd.LoadInt8x16Array(&[16]int8{-128, -128, -128, -128, 8, 9, 10, 11, -128, -128, -128, -128, 12, 13, 14, 15})
)

func bytes(x f4) archsimd.Int8x16 { return x.ToBits().ReshapeToUint8s().BitsToInt8() }

func floats(x archsimd.Int8x16) f4 { return x.ToBits().ReshapeToUint32s().BitsToFloat32() }

// zip returns (a0 b0 a1 b1) and (a2 b2 a3 b3).
func zip(a, b f4) (lo, hi f4) {
	ab, bb := bytes(a), bytes(b)
	lo = floats(ab.LookupOrZero(zipLoA).Or(bb.LookupOrZero(zipLoB)))
	hi = floats(ab.LookupOrZero(zipHiA).Or(bb.LookupOrZero(zipHiB)))
	return lo, hi
}

// outputTiles4 writes Aᵀ q A + b of tiles 0..tw rounded down to a multiple
// of four, q being at columns 0.. of the 16 matrices (xs apart) of m, to
// rows oy and oy+1 of the oh×ow plane dst, and returns the first tile it
// left.
func outputTiles4(dst, m []float32, xs, oy, oh, ow, tw int, b float32) int {
	bias := archsimd.BroadcastFloat32x4(b)
	tx := 0
	for ; tx+4 <= tw; tx += 4 {
		var q [4][4]f4
		for r := range 4 {
			for s := range 4 {
				q[r][s] = load4(m[(r*4+s)*xs+tx:])
			}
		}
		var p [2][4]f4
		for s := range 4 {
			p[0][s] = q[0][s].Add(q[1][s]).Add(q[2][s])
			p[1][s] = q[1][s].Sub(q[2][s]).Sub(q[3][s])
		}
		for r := 0; r < 2 && oy+r < oh; r++ {
			left := p[r][0].Add(p[r][1]).Add(p[r][2]).Add(bias)
			right := p[r][1].Sub(p[r][2]).Sub(p[r][3]).Add(bias)
			lo, hi := zip(left, right)
			ox := 2 * tx
			row := dst[(oy+r)*ow : (oy+r+1)*ow]
			if ox+8 <= ow {
				store4(row[ox:], lo)
				store4(row[ox+4:], hi)
				continue
			}
			// The last tiles of an odd width overhang by one column.
			var buf [8]float32
			store4(buf[:], lo)
			store4(buf[4:], hi)
			copy(row[ox:], buf[:])
		}
	}
	return tx
}
