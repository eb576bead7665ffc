//go:build cgo

// Package emu is a device.Device that runs the CUDA kernels on the host:
// emu.cpp compiles kernels.cu as C++ and runs each launch's threads one
// after the other, and the GEMMs are plain loops with cuBLAS's
// column-major semantics. It is slow and exists for tests: the kernels'
// results on it are the GPU's up to floating-point contraction and
// accumulation order.
//
// Memory is C heap memory, so device addresses are host addresses. Upload,
// Download, Copy, Zero and the GEMMs check that they stay inside one
// allocation; kernel accesses are not checked: for that, run the tests
// under AddressSanitizer with the kernels instrumented too:
//
//	CGO_CXXFLAGS="-fsanitize=address -g -O1" go test -asan ./trainer/internal/cuda/...
package emu

/*
#cgo CXXFLAGS: -std=c++17 -O2
#include <stdlib.h>
#include <string.h>
#include "emu_api.h"

static void emu_copy_in(uintptr_t dst, const float* src, size_t n) { memcpy((void*)dst, src, n * sizeof(float)); }
static void emu_copy_out(float* dst, uintptr_t src, size_t n) { memcpy(dst, (const void*)src, n * sizeof(float)); }
static void emu_move(uintptr_t dst, uintptr_t src, size_t n) { memmove((void*)dst, (const void*)src, n * sizeof(float)); }
static void emu_zero(uintptr_t p, size_t n) { memset((void*)p, 0, n * sizeof(float)); }
static uintptr_t emu_calloc(size_t bytes) { return (uintptr_t)calloc(1, bytes); }
static void emu_free(uintptr_t p) { free((void*)p); }
*/
import "C"

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"unsafe"

	"github.com/cifarnet-go/cifarnet/trainer/internal/cuda/device"
)

// Device is the host emulator of a GPU.
type Device struct {
	mu      sync.Mutex
	allocs  map[device.Ptr]int // address → bytes
	kernels map[string]kernelInfo
	closed  bool
}

type kernelInfo struct {
	index int
	sig   string // one letter per parameter, as emu_api.h says
}

var _ device.Device = (*Device)(nil)

// New returns an emulated device.
func New() (*Device, error) {
	d := &Device{allocs: map[device.Ptr]int{}, kernels: map[string]kernelInfo{}}
	for i := range int(C.emu_kernel_count()) {
		d.kernels[C.GoString(C.emu_kernel_name(C.int(i)))] = kernelInfo{i, C.GoString(C.emu_kernel_sig(C.int(i)))}
	}
	return d, nil
}

// Kernels returns the names of the kernels the emulator can run, sorted.
func (d *Device) Kernels() []string {
	names := make([]string, 0, len(d.kernels))
	for n := range d.kernels {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// SourceSum is the sha256 (hex) that kernels/gen.sh recorded for the
// kernels.cu compiled into the emulator.
func SourceSum() string { return C.GoString(C.emu_kernels_sha256()) }

// Name implements device.Device.
func (d *Device) Name() string { return "host emulator" }

// Alloc implements device.Device.
func (d *Device) Alloc(bytes int) (device.Ptr, error) {
	if bytes < 0 {
		return 0, fmt.Errorf("emu: alloc %d bytes", bytes)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return 0, errors.New("emu: alloc on a closed device")
	}
	// A zero-byte allocation still gets its own address.
	p := device.Ptr(C.emu_calloc(C.size_t(max(bytes, 4))))
	if p == 0 {
		return 0, fmt.Errorf("emu: alloc %d bytes: out of memory", bytes)
	}
	d.allocs[p] = bytes
	return p, nil
}

// Free implements device.Device.
func (d *Device) Free(p device.Ptr) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.allocs[p]; !ok {
		return fmt.Errorf("emu: free %#x: not an allocation", uintptr(p))
	}
	delete(d.allocs, p)
	C.emu_free(C.uintptr_t(p))
	return nil
}

// span checks that the bytes [p, p+bytes) lie inside one allocation; the
// caller holds d.mu.
func (d *Device) span(what string, p device.Ptr, bytes int) error {
	if bytes < 0 {
		return fmt.Errorf("emu: %s: negative size %d", what, bytes)
	}
	for base, n := range d.allocs {
		if p >= base && p-base <= device.Ptr(n) && bytes <= n-int(p-base) {
			return nil
		}
	}
	return fmt.Errorf("emu: %s: %d bytes at %#x are not inside one allocation", what, bytes, uintptr(p))
}

// Upload implements device.Device.
func (d *Device) Upload(dst device.Ptr, src []float32) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.span("upload", dst, 4*len(src)); err != nil {
		return err
	}
	if len(src) > 0 {
		C.emu_copy_in(C.uintptr_t(dst), (*C.float)(unsafe.Pointer(&src[0])), C.size_t(len(src)))
	}
	return nil
}

// Download implements device.Device.
func (d *Device) Download(dst []float32, src device.Ptr) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.span("download", src, 4*len(dst)); err != nil {
		return err
	}
	if len(dst) > 0 {
		C.emu_copy_out((*C.float)(unsafe.Pointer(&dst[0])), C.uintptr_t(src), C.size_t(len(dst)))
	}
	return nil
}

// Copy implements device.Device.
func (d *Device) Copy(dst, src device.Ptr, n int) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.span("copy source", src, 4*n); err != nil {
		return err
	}
	if err := d.span("copy destination", dst, 4*n); err != nil {
		return err
	}
	C.emu_move(C.uintptr_t(dst), C.uintptr_t(src), C.size_t(n))
	return nil
}

// Zero implements device.Device.
func (d *Device) Zero(p device.Ptr, n int) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.span("zero", p, 4*n); err != nil {
		return err
	}
	C.emu_zero(C.uintptr_t(p), C.size_t(n))
	return nil
}

// Launch implements device.Device. It checks the arguments against the
// kernel's C signature.
func (d *Device) Launch(kernel string, grid, block device.Dim3, args ...any) error {
	k, ok := d.kernels[kernel]
	if !ok {
		return fmt.Errorf("emu: launch %s: no such kernel", kernel)
	}
	if err := checkDims(grid, block); err != nil {
		return fmt.Errorf("emu: launch %s: %w", kernel, err)
	}
	if len(args) != len(k.sig) {
		return fmt.Errorf("emu: launch %s: %d arguments, the kernel takes %d", kernel, len(args), len(k.sig))
	}
	// kernelParams in C memory: a pointer per argument into 8-byte slots.
	n := len(args)
	buf := C.calloc(C.size_t(max(n, 1)), 16)
	defer C.free(buf)
	slots := unsafe.Slice((*uint64)(buf), n)
	params := unsafe.Slice((*unsafe.Pointer)(unsafe.Add(buf, 8*n)), n)
	for i, a := range args {
		v, code := argBits(a)
		if code != k.sig[i] {
			return fmt.Errorf("emu: launch %s: argument %d is %T, the kernel wants %s", kernel, i, a, typeName(k.sig[i]))
		}
		slots[i] = v
		params[i] = unsafe.Add(buf, 8*i)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("emu: launch %s on a closed device", kernel)
	}
	var pp *unsafe.Pointer
	if n > 0 {
		pp = &params[0]
	}
	C.emu_launch(C.int(k.index), pp, C.unsigned(grid.X), C.unsigned(grid.Y), C.unsigned(grid.Z),
		C.unsigned(block.X), C.unsigned(block.Y), C.unsigned(block.Z))
	return nil
}

// checkDims applies CUDA's limits on grid and block sizes.
func checkDims(grid, block device.Dim3) error {
	if grid.X < 1 || grid.Y < 1 || grid.Z < 1 || grid.X > math.MaxInt32 || grid.Y > 65535 || grid.Z > 65535 {
		return fmt.Errorf("grid %+v out of range", grid)
	}
	if block.X < 1 || block.Y < 1 || block.Z < 1 || block.X > 1024 || block.Y > 1024 || block.Z > 64 ||
		block.X*block.Y*block.Z > 1024 {
		return fmt.Errorf("block %+v out of range", block)
	}
	return nil
}

// argBits returns a kernel argument's value as the low bytes of a
// little-endian slot and its signature letter (0 for a type Launch does
// not take).
func argBits(a any) (uint64, byte) {
	switch v := a.(type) {
	case device.Ptr:
		return uint64(v), 'p'
	case int32:
		return uint64(uint32(v)), 'i'
	case uint32:
		return uint64(v), 'u'
	case int64:
		return uint64(v), 'l'
	case uint64:
		return v, 'U'
	case float32:
		return uint64(math.Float32bits(v)), 'f'
	}
	return 0, 0
}

func typeName(code byte) string {
	switch code {
	case 'p':
		return "a pointer (device.Ptr)"
	case 'i':
		return "int (int32)"
	case 'u':
		return "unsigned (uint32)"
	case 'l':
		return "long long (int64)"
	case 'U':
		return "unsigned long long (uint64)"
	case 'f':
		return "float (float32)"
	case 'd':
		return "double, which Launch cannot pass"
	}
	return fmt.Sprintf("type %q", code)
}

// matrix checks that a column-major rows×cols matrix with leading
// dimension ld at p lies inside one allocation.
func (d *Device) matrix(what string, p device.Ptr, rows, cols, ld int) error {
	if ld < max(1, rows) {
		return fmt.Errorf("emu: gemm: %s: leading dimension %d below %d rows", what, ld, rows)
	}
	if rows == 0 || cols == 0 {
		return nil
	}
	return d.span("gemm "+what, p, 4*((cols-1)*ld+rows))
}

func (d *Device) gemm(transA, transB bool, m, n, k int, alpha float32, a device.Ptr, lda int, b device.Ptr, ldb int, beta float32, c device.Ptr, ldc int) error {
	if m < 0 || n < 0 || k < 0 {
		return fmt.Errorf("emu: gemm: negative size %d×%d×%d", m, n, k)
	}
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	if err := d.matrix("A", a, ar, ac, lda); err != nil {
		return err
	}
	if err := d.matrix("B", b, br, bc, ldb); err != nil {
		return err
	}
	if err := d.matrix("C", c, m, n, ldc); err != nil {
		return err
	}
	C.emu_gemm(cBool(transA), cBool(transB), C.int(m), C.int(n), C.int(k), C.float(alpha), C.uintptr_t(a), C.int(lda),
		C.uintptr_t(b), C.int(ldb), C.float(beta), C.uintptr_t(c), C.int(ldc))
	return nil
}

func cBool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// Gemm implements device.Device.
func (d *Device) Gemm(transA, transB bool, m, n, k int, alpha float32, a device.Ptr, lda int, b device.Ptr, ldb int, beta float32, c device.Ptr, ldc int) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.gemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// GemmStridedBatched implements device.Device.
func (d *Device) GemmStridedBatched(transA, transB bool, m, n, k int, alpha float32, a device.Ptr, lda, strideA int, b device.Ptr, ldb, strideB int, beta float32, c device.Ptr, ldc, strideC int, batch int) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range batch {
		if err := d.gemm(transA, transB, m, n, k, alpha, a.Float(i*strideA), lda, b.Float(i*strideB), ldb, beta, c.Float(i*strideC), ldc); err != nil {
			return fmt.Errorf("emu: gemm batch %d: %w", i, err)
		}
	}
	return nil
}

// Sync implements device.Device: the emulator runs everything at once.
func (d *Device) Sync() error { return nil }

// Close implements device.Device: it frees every allocation.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for p := range d.allocs {
		C.emu_free(C.uintptr_t(p))
	}
	d.allocs, d.closed = map[device.Ptr]int{}, true
	return nil
}
