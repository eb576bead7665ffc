// Package device is what the CUDA backend needs from a GPU: memory, the
// project's kernels launched by name, and single-precision GEMM with
// cuBLAS's conventions. The real GPU (package driver, build tag cuda) and
// the host emulator that runs the same kernel sources on the CPU for tests
// (package emu) implement it.
package device

// Ptr is a device address; 0 is no memory. Offsets are in bytes:
// p + Ptr(4*i) is float32 element i.
type Ptr uintptr

// Float returns the address of float32 (or int32) element i of p.
func (p Ptr) Float(i int) Ptr { return p + Ptr(4*i) }

// Dim3 is a grid or block size.
type Dim3 struct{ X, Y, Z int }

// Device is one GPU. Work is queued in call order on one stream: a launch
// or a GEMM may still be running when its call returns; Download and Sync
// wait for everything queued before them. An error from asynchronous work
// may surface at a later call.
type Device interface {
	// Name is the GPU's name, e.g. "NVIDIA H200".
	Name() string
	// Alloc returns bytes of device memory, zeroed.
	Alloc(bytes int) (Ptr, error)
	Free(p Ptr) error
	// Upload copies src to device memory at dst; src may be reused as
	// soon as it returns.
	Upload(dst Ptr, src []float32) error
	// Download copies device memory at src into dst after the queued work
	// has finished.
	Download(dst []float32, src Ptr) error
	// Copy copies n float32 values from src to dst on the device.
	Copy(dst, src Ptr, n int) error
	// Zero sets n float32 values at p to 0.
	Zero(p Ptr, n int) error
	// Launch queues kernel (its name in the PTX) on grid×block threads.
	// args are the kernel's parameters in order, each a Ptr, int32,
	// uint32, int64, uint64 or float32, matching its C signature exactly.
	Launch(kernel string, grid, block Dim3, args ...any) error
	// Gemm computes C = alpha·op(A)·op(B) + beta·C in column-major order
	// exactly as cublasSgemm does: op(A) is m×k, op(B) k×n, C m×n, with
	// leading dimensions lda, ldb, ldc (transA/transB: A or B transposed).
	Gemm(transA, transB bool, m, n, k int, alpha float32, a Ptr, lda int, b Ptr, ldb int, beta float32, c Ptr, ldc int) error
	// GemmStridedBatched is batch GEMMs like Gemm, the i-th reading
	// A + i·strideA, B + i·strideB and writing C + i·strideC (strides in
	// elements), as cublasSgemmStridedBatched.
	GemmStridedBatched(transA, transB bool, m, n, k int, alpha float32, a Ptr, lda, strideA int, b Ptr, ldb, strideB int, beta float32, c Ptr, ldc, strideC int, batch int) error
	// Sync waits for the queued work and reports its first error.
	Sync() error
	// Close frees everything the device allocated.
	Close() error
}
