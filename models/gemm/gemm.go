// Package gemm is the single-precision matrix multiply behind every
// convolution and linear layer of the forward pass. It needs no cgo, and
// its only assembly is the amd64 micro-kernel, so that it builds for
// js/wasm unchanged; speed comes from packing both operands into panels and
// a register-blocked micro-kernel.
package gemm

import "fmt"

// mr is the number of rows of A the micro-kernels handle at once.
const mr = 4

// maxNR is the widest column block of any micro-kernel.
const maxNR = 48

// microKernel accumulates an mr×nr block of C (row stride ldc) from a packed
// A panel (depth×mr) and a packed B panel (depth×nr).
type microKernel struct {
	name string
	nr   int
	full func(ap, bp, c []float32, ldc int)
}

// available lists the micro-kernels this build and CPU can run: the
// portable one, then any vector kernels that register themselves at init.
// Tests run every one of them.
var available = []microKernel{{"scalar 4×4", 4, kernel4x4}}

// kern is the micro-kernel in use: the fastest available.
var kern = available[0]

// register adds a vector micro-kernel at init and makes the widest one
// available the one in use, whatever order the inits run in.
func register(k microKernel) {
	available = append(available, k)
	if k.nr > kern.nr {
		kern = k
	}
}

// Kernel names the micro-kernel in use, for benchmark reports.
func Kernel() string { return kern.name }

// KernelWidth is the number of columns of C the micro-kernel in use
// computes at once: 4 for the portable one, 12 for WebAssembly SIMD128,
// 24 for AVX2, 48 for AVX-512.
func KernelWidth() int { return kern.nr }

// kc bounds the depth of one packed panel so that a panel of B stays in L1/L2.
const kc = 256

// Packed is an M×K matrix (the weights) packed into mr-row panels once, so
// that repeated multiplications skip repacking it.
type Packed struct {
	M, K int
	data []float32 // ceil(M/mr) panels of K×mr, zero-padded
}

// Pack packs a row-major M×K matrix.
func Pack(a []float32, m, k int) *Packed {
	if len(a) < m*k {
		panic("gemm: Pack: matrix shorter than m×k")
	}
	p := PackInto(make([]float32, PackedSize(m, k)), a, m, k, false)
	return &p
}

// Data returns the packed panels, PackedSize(M, K) floats, for saving a
// built model; FromPanels wraps them again. They must not be modified.
func (a *Packed) Data() []float32 { return a.data }

// FromPanels wraps panels that Data returned for an m×k matrix.
func FromPanels(data []float32, m, k int) (*Packed, error) {
	if m <= 0 || k <= 0 {
		return nil, fmt.Errorf("gemm: packed matrix %d×%d, need positive sizes", m, k)
	}
	if n := PackedSize(m, k); len(data) != n {
		return nil, fmt.Errorf("gemm: packed %d×%d matrix needs %d values, got %d", m, k, n, len(data))
	}
	return &Packed{M: m, K: k, data: data}, nil
}

// ScratchSize is the length of the scratch slice Mul needs for a K×N B.
func ScratchSize(k, n int) int {
	// n rounded up to any kernel's nr (at most maxNR) is below n+maxNR.
	return (n+maxNR-1)*min(k, kc) + mr*maxNR
}

// Mul sets C = A·B + bias, where B is K×N row-major with row stride ldb and
// C is M×N row-major with row stride ldc. bias (length M, one value per
// row) may be nil. scratch must hold ScratchSize(K, N) floats; nothing is
// allocated.
func (a *Packed) Mul(c []float32, ldc int, b []float32, ldb, n int, bias []float32, scratch []float32) {
	a.setBias(c, ldc, n, bias)
	a.accumulate(c, ldc, n, source{pack: packB, b: b, ldb: ldb}, scratch)
}

// setBias sets each row i of the M×N matrix C to bias[i], or to zero when
// bias is nil, for the kernel to accumulate onto.
func (a *Packed) setBias(c []float32, ldc, n int, bias []float32) {
	for i := 0; i < a.M; i++ {
		row := c[i*ldc : i*ldc+n]
		if bias == nil {
			clear(row)
			continue
		}
		v := bias[i]
		for j := range row {
			row[j] = v
		}
	}
}

// source is where accumulate gets B's panels: a stored matrix b packed by
// pack, or a caller's Panels.
type source struct {
	pack       packFunc
	b          []float32
	ldb        int
	transposed bool // b holds Bᵀ (packBT)
	panels     Panels
}

// from returns the stored matrix b from column j0 of B on.
func (s source) from(j0 int) []float32 {
	if s.transposed {
		return s.b[j0*s.ldb:]
	}
	return s.b[j0:]
}

// narrow, where the build has one, is a 4-column kernel for a last panel
// of at most 4 columns, which the full kernel would compute mostly on zero
// padding: 16 columns, a 7×7 Winograd layer's, are 12 + 4 instead of 24.
var narrow *microKernel

// tall, where the build has a narrow kernel, computes that kernel's block
// for three A panels (12 rows) at once: the narrow kernel reuses each B
// vector for 4 rows, this one each A vector for 4 columns and each B value
// for 12 rows, which is the full kernel's ratio of loads to arithmetic. The
// panels are stride floats apart in ap; bp is the narrow panel (kb×4).
var tall func(ap []float32, stride int, bp, c []float32, ldc int)

// accumulate adds A·B to C, B being N columns wide.
func (a *Packed) accumulate(c []float32, ldc int, n int, src source, scratch []float32) {
	m, k := a.M, a.K
	kn := kern
	nr := kn.nr
	np := (n + nr - 1) / nr
	lastKn, lastNR := kn, nr // the last panel's kernel and width
	if rest := n - (np-1)*nr; narrow != nil && src.panels == nil && rest <= narrow.nr {
		lastKn, lastNR = *narrow, narrow.nr
	}
	edge := scratch[len(scratch)-mr*maxNR:] // block for kernelEdge
	for k0 := 0; k0 < k; k0 += kc {
		kb := min(kc, k-k0)
		switch {
		case src.panels != nil:
			src.panels.PackPanels(scratch[:np*nr*kb], k0, kb, n, nr)
		case lastNR != nr:
			j0 := (np - 1) * nr
			src.pack(scratch[:j0*kb], src.b, src.ldb, k0, kb, j0, nr)
			src.pack(scratch[j0*kb:(j0+lastNR)*kb], src.from(j0), src.ldb, k0, kb, n-j0, lastNR)
		default:
			src.pack(scratch[:np*nr*kb], src.b, src.ldb, k0, kb, n, nr)
		}
		// A B panel (kb×nr, up to 48 KB) stays in L1 while every A panel
		// streams past it from L2; the other order re-reads all of packed
		// B, which outgrows L2 for wide images, once per four rows of A.
		for pj := 0; pj < np; pj++ {
			pk, w := kn, nr
			if pj == np-1 {
				pk, w = lastKn, lastNR
			}
			bp := scratch[pj*nr*kb : pj*nr*kb+w*kb]
			j0 := pj * nr
			pi := 0
			if pj == np-1 && lastNR != nr && tall != nil && j0+w <= n {
				for ; (pi+3)*mr <= m; pi += 3 {
					tall(a.data[pi*k*mr+k0*mr:], k*mr, bp, c[pi*mr*ldc+j0:], ldc)
				}
			}
			for ; pi*mr < m; pi++ {
				ap := a.data[pi*k*mr+k0*mr : pi*k*mr+(k0+kb)*mr]
				i0 := pi * mr
				if i0+mr <= m && j0+w <= n {
					pk.full(ap, bp, c[i0*ldc+j0:], ldc)
				} else {
					kernelEdge(pk, ap, bp, c, ldc, i0, j0, m, n, edge)
				}
			}
		}
	}
}

// packFunc copies rows k0..k0+kb of a K×N operand into nr-column panels.
type packFunc func(dst, b []float32, ldb, k0, kb, n, nr int)

// packB copies rows k0..k0+kb of B into nr-column panels, zero-padding the
// last panel.
func packB(dst, b []float32, ldb, k0, kb, n, nr int) {
	np := (n + nr - 1) / nr
	for pj := 0; pj < np; pj++ {
		j0 := pj * nr
		p := dst[pj*nr*kb : (pj+1)*nr*kb]
		if j0+nr <= n {
			for kk := 0; kk < kb; kk++ {
				copyRow(p[kk*nr:kk*nr+nr], b[(k0+kk)*ldb+j0:])
			}
			continue
		}
		for kk := 0; kk < kb; kk++ {
			d := p[kk*nr : kk*nr+nr]
			for r := 0; r < nr; r++ {
				if j0+r < n {
					d[r] = b[(k0+kk)*ldb+j0+r]
				} else {
					d[r] = 0
				}
			}
		}
	}
}

// kernel4x4 accumulates a 4×4 block of C from a packed A panel and a packed
// B panel of the same depth.
func kernel4x4(ap, bp []float32, c []float32, ldc int) {
	var c00, c01, c02, c03, c10, c11, c12, c13 float32
	var c20, c21, c22, c23, c30, c31, c32, c33 float32
	n := len(ap) / mr
	ap = ap[:n*4]
	bp = bp[:n*4]
	for k := 0; k < n; k++ {
		a := ap[k*4 : k*4+4 : k*4+4]
		b := bp[k*4 : k*4+4 : k*4+4]
		b0, b1, b2, b3 := b[0], b[1], b[2], b[3]
		a0 := a[0]
		c00 += a0 * b0
		c01 += a0 * b1
		c02 += a0 * b2
		c03 += a0 * b3
		a1 := a[1]
		c10 += a1 * b0
		c11 += a1 * b1
		c12 += a1 * b2
		c13 += a1 * b3
		a2 := a[2]
		c20 += a2 * b0
		c21 += a2 * b1
		c22 += a2 * b2
		c23 += a2 * b3
		a3 := a[3]
		c30 += a3 * b0
		c31 += a3 * b1
		c32 += a3 * b2
		c33 += a3 * b3
	}
	r := c[0:4:4]
	r[0] += c00
	r[1] += c01
	r[2] += c02
	r[3] += c03
	r = c[ldc : ldc+4 : ldc+4]
	r[0] += c10
	r[1] += c11
	r[2] += c12
	r[3] += c13
	r = c[2*ldc : 2*ldc+4 : 2*ldc+4]
	r[0] += c20
	r[1] += c21
	r[2] += c22
	r[3] += c23
	r = c[3*ldc : 3*ldc+4 : 3*ldc+4]
	r[0] += c30
	r[1] += c31
	r[2] += c32
	r[3] += c33
}

// kernelEdge handles blocks that overhang the right or bottom edge of C:
// the packed panels are zero-padded, so the full kernel runs into a
// temporary block and only the part inside C is added.
func kernelEdge(kn microKernel, ap, bp []float32, c []float32, ldc, i0, j0, m, n int, acc []float32) {
	clear(acc)
	kn.full(ap, bp, acc, kn.nr)
	for r := 0; r < mr && i0+r < m; r++ {
		for s := 0; s < kn.nr && j0+s < n; s++ {
			c[(i0+r)*ldc+j0+s] += acc[r*kn.nr+s]
		}
	}
}
