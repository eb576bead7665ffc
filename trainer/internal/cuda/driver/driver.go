//go:build cifarnet_cuda

// Package driver is device.Device on a real NVIDIA GPU: the CUDA driver API
// through gorgonia.org/cu, the project's kernels loaded from their PTX, and
// cuBLAS loaded at run time (see cublas.go). It exists only in binaries
// built with the build tag cifarnet_cuda (./build.sh cuda), whose trainer
// it registers as backend.CUDA (register.go).
//
// The tag is not "cuda": gorgonia.org/gorgonia switches its own graph
// machinery to CUDA under that tag (and then needs cuDNN and links
// cuBLAS 11), while this build keeps gorgonia on the CPU.
//
// # Threads
//
// A CUDA context is current per OS thread, and goroutines move between
// threads. Every method of Device therefore locks its goroutine to the
// thread, makes the device's context current and unlocks when done: one
// cuCtxSetCurrent per call (a thread-local store in the driver, well under a
// microsecond), against the several microseconds a launch costs anyway. The
// alternative, demanding that callers use the Device from one goroutine
// locked to its thread, would leak into the training loop and fail
// silently (CUDA_ERROR_INVALID_CONTEXT at best) when broken. A mutex makes
// concurrent calls safe too, though the backend makes none.
package driver

/*
#cgo LDFLAGS: -lcuda
#include <cuda.h>
#include <stdlib.h>

static CUresult driver_alloc_host(void **p, size_t bytes) { return cuMemAllocHost(p, bytes); }

static const char *driver_error_name(int r) {
	const char *s = NULL;
	if (cuGetErrorName((CUresult)r, &s) != CUDA_SUCCESS) {
		return NULL;
	}
	return s;
}

static const char *driver_error_string(int r) {
	const char *s = NULL;
	if (cuGetErrorString((CUresult)r, &s) != CUDA_SUCCESS) {
		return NULL;
	}
	return s;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"unsafe"

	"github.com/cifarnet-go/cifarnet/trainer/internal/cuda/device"
	"github.com/cifarnet-go/cifarnet/trainer/internal/cuda/driver/preflight"
	"github.com/cifarnet-go/cifarnet/trainer/internal/cuda/kernels"
	"gorgonia.org/cu"
)

// Device is one GPU: its primary context, one non-blocking stream on which
// all work is queued in call order, the kernels' module and a cuBLAS
// handle bound to the stream.
type Device struct {
	mu     sync.Mutex
	index  int
	name   string
	dev    cu.Device
	ctx    cu.CUContext
	stream cu.Stream
	module cu.Module
	funcs  map[string]cu.Function
	params map[string][]string // each kernel's parameter types in the PTX: "u64", "f32", …
	blas   *cublas
	allocs map[device.Ptr]int // live allocations and their sizes, for Free and Close

	// staging are pinned host buffers for asynchronous copies: a buffer
	// is reused once the event recorded after its last copy has passed.
	staging []*staging
	uses    uint64 // counts staging uses, for picking the least recent

	args    []uint64         // Launch's argument values, one 8-byte slot each
	argPtrs []unsafe.Pointer // and their addresses, the kernelParams

	// recent are the last kernels launched since the last Sync, newest
	// last, for naming the suspects of an asynchronous error.
	recent []string
	closed bool
}

type staging struct {
	p     unsafe.Pointer // pinned host memory (cuMemAllocHost)
	size  int
	ev    cu.Event // recorded after the last copy that used p
	busy  bool     // ev may not have passed yet
	usedn uint64
}

const (
	maxStaging = 4        // pinned buffers kept at most
	minStaging = 64 << 10 // smallest pinned buffer, bytes
	maxRecent  = 4
)

var _ device.Device = (*Device)(nil)

// Open opens GPU index (0-based, as cuDeviceGet and nvidia-smi count):
// retains its primary context, creates the stream, loads the kernels from
// their PTX (the driver compiles them for this GPU) and cuBLAS.
func Open(index int) (d *Device, err error) {
	if err := preflight.Err(); err != nil {
		return nil, fmt.Errorf("cuda: %w", err)
	}
	n, err := cu.NumDevices()
	if err != nil {
		return nil, fmt.Errorf("cuda: count GPUs: %w", cuError(err))
	}
	if index < 0 || index >= n {
		return nil, fmt.Errorf("cuda: no GPU %d (this machine has %d)", index, n)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	d = &Device{index: index, funcs: map[string]cu.Function{}, allocs: map[device.Ptr]int{}}
	if d.dev, err = cu.GetDevice(index); err != nil {
		return nil, fmt.Errorf("cuda: GPU %d: %w", index, cuError(err))
	}
	if d.name, err = d.dev.Name(); err != nil {
		return nil, fmt.Errorf("cuda: GPU %d: name: %w", index, cuError(err))
	}
	if d.ctx, err = d.dev.RetainPrimaryCtx(); err != nil {
		return nil, fmt.Errorf("cuda: GPU %d (%s): retain the primary context: %w", index, d.name, cuError(err))
	}
	// From here on, a failure undoes what was made.
	defer func() {
		if err != nil {
			d.release()
			d = nil
		}
	}()
	if err := cu.SetCurrentContext(d.ctx); err != nil {
		return d, fmt.Errorf("cuda: GPU %d (%s): make the context current: %w", index, d.name, cuError(err))
	}
	if d.stream, err = cu.MakeStream(cu.NonBlocking); err != nil {
		return d, fmt.Errorf("cuda: GPU %d (%s): create a stream: %w", index, d.name, cuError(err))
	}
	if err := d.load(kernels.PTX); err != nil {
		return d, err
	}
	if d.blas, err = newCublas(unsafe.Pointer(d.stream.C())); err != nil {
		return d, fmt.Errorf("cuda: GPU %d (%s): %w", index, d.name, err)
	}
	return d, nil
}

// load loads the kernels' module from PTX, with the JIT compiler's error
// log in the error.
func (d *Device) load(ptx string) error {
	if ptx == "" {
		return errors.New("cuda: the kernels' PTX (package kernels) is empty")
	}
	errLog := &cu.JITErrorLogBuffer{Buffer: make([]byte, 32<<10)}
	mod, err := cu.LoadDataEx(ptx, errLog)
	if err == nil {
		d.module = mod
		d.params = ptxParams(ptx)
		return nil
	}
	msg := fmt.Sprintf("cuda: load the kernels' PTX on %s: %v", d.name, cuError(err))
	if code, ok := resultCode(err); ok && (code == C.CUDA_ERROR_UNSUPPORTED_PTX_VERSION || code == C.CUDA_ERROR_INVALID_PTX) {
		if v := cu.Version(); v > 0 {
			msg += fmt.Sprintf(" (the driver supports CUDA %s: the PTX may need a newer one)", cudaVersion(v))
		}
	}
	if l := strings.TrimSpace(string(errLog.Buffer[:cStrLen(errLog.Buffer)])); l != "" {
		msg += "\nJIT log:\n" + l
	}
	return errors.New(msg)
}

func cStrLen(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return len(b)
}

// Index is the GPU's index, as Open took it.
func (d *Device) Index() int { return d.index }

// Name is the GPU's name, e.g. "NVIDIA H200".
func (d *Device) Name() string { return d.name }

// BLAS describes the cuBLAS library in use: its path and version.
func (d *Device) BLAS() string {
	if d.blas == nil {
		return ""
	}
	return d.blas.describe()
}

// enter locks the device and the calling goroutine's thread and makes the
// device's context current on it; leave undoes it.
func (d *Device) enter() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return errors.New("cuda: device is closed")
	}
	runtime.LockOSThread()
	if err := cu.SetCurrentContext(d.ctx); err != nil {
		d.leave()
		return fmt.Errorf("cuda: make the context current: %w", cuError(err))
	}
	return nil
}

func (d *Device) leave() {
	runtime.UnlockOSThread()
	d.mu.Unlock()
}

// Alloc returns bytes of device memory, zeroed on the stream.
func (d *Device) Alloc(bytes int) (device.Ptr, error) {
	switch {
	case bytes < 0:
		return 0, fmt.Errorf("cuda: alloc %d bytes", bytes)
	case bytes == 0:
		return 0, nil
	}
	if err := d.enter(); err != nil {
		return 0, err
	}
	defer d.leave()
	p, err := cu.MemAlloc(int64(bytes))
	if err != nil {
		err = cuError(err)
		if code, _ := resultCode(err); code == C.CUDA_ERROR_OUT_OF_MEMORY {
			if free, total, e := cu.MemInfo(); e == nil {
				err = fmt.Errorf("%w; %s free of %s", err, size(free), size(total))
			}
		}
		return 0, fmt.Errorf("cuda: alloc %s: %w", size(int64(bytes)), err)
	}
	if bytes%4 == 0 {
		err = cu.MemsetD32Async(p, 0, int64(bytes/4), d.stream)
	} else {
		err = cu.MemsetD8Async(p, 0, int64(bytes), d.stream)
	}
	if err != nil {
		cu.MemFree(p)
		return 0, fmt.Errorf("cuda: zero %s: %w", size(int64(bytes)), cuError(err))
	}
	d.allocs[device.Ptr(p)] = bytes
	return device.Ptr(p), nil
}

// Free releases memory from Alloc once the queued work, which may still
// use it, has finished.
func (d *Device) Free(p device.Ptr) error {
	if p == 0 {
		return nil
	}
	if err := d.enter(); err != nil {
		return err
	}
	defer d.leave()
	n, ok := d.allocs[p]
	if !ok {
		return fmt.Errorf("cuda: free %#x: not an allocation of this device", uintptr(p))
	}
	delete(d.allocs, p)
	// cuMemFree is documented to wait for the device only in practice;
	// the stream's sync makes it certain, and frees are rare.
	serr := d.sync("free")
	if err := cu.MemFree(cu.DevicePtr(p)); err != nil {
		return fmt.Errorf("cuda: free %s at %#x: %w", size(int64(n)), uintptr(p), cuError(err))
	}
	return serr
}

// Upload copies src through a pinned buffer, so the copy to the device is
// asynchronous and src is free as soon as Upload returns.
func (d *Device) Upload(dst device.Ptr, src []float32) error {
	if len(src) == 0 {
		return nil
	}
	if err := d.enter(); err != nil {
		return err
	}
	defer d.leave()
	bytes := 4 * len(src)
	s, err := d.stage(bytes)
	if err != nil {
		return fmt.Errorf("cuda: upload %s: %w", size(int64(bytes)), err)
	}
	copy(unsafe.Slice((*float32)(s.p), len(src)), src)
	if err := cu.MemcpyHtoDAsync(cu.DevicePtr(dst), s.p, int64(bytes), d.stream); err != nil {
		return fmt.Errorf("cuda: upload %s to %#x: %w", size(int64(bytes)), uintptr(dst), cuError(err))
	}
	return d.record(s)
}

// Download copies device memory at src into dst once the queued work has
// finished.
func (d *Device) Download(dst []float32, src device.Ptr) error {
	if len(dst) == 0 {
		return nil
	}
	if err := d.enter(); err != nil {
		return err
	}
	defer d.leave()
	bytes := 4 * len(dst)
	s, err := d.stage(bytes)
	if err != nil {
		return fmt.Errorf("cuda: download %s: %w", size(int64(bytes)), err)
	}
	if err := cu.MemcpyDtoHAsync(s.p, cu.DevicePtr(src), int64(bytes), d.stream); err != nil {
		return fmt.Errorf("cuda: download %s from %#x: %w", size(int64(bytes)), uintptr(src), cuError(err))
	}
	if err := d.sync("download"); err != nil {
		return err
	}
	copy(dst, unsafe.Slice((*float32)(s.p), len(dst)))
	return nil
}

// stage returns a pinned buffer of at least bytes that no queued copy
// uses: the smallest idle one that is big enough, else a new one while
// there are fewer than maxStaging, else the least recently used idle one
// grown, else the least recently used one once its last copy has
// finished, grown if need be.
func (d *Device) stage(bytes int) (*staging, error) {
	var fit, idleLRU, lru *staging
	for _, s := range d.staging {
		idle, err := s.idle()
		if err != nil {
			return nil, err
		}
		if idle && s.size >= bytes && (fit == nil || s.size < fit.size) {
			fit = s
		}
		if idle && (idleLRU == nil || s.usedn < idleLRU.usedn) {
			idleLRU = s
		}
		if lru == nil || s.usedn < lru.usedn {
			lru = s
		}
	}
	pick := fit
	if pick == nil && len(d.staging) < maxStaging {
		ev, err := cu.MakeEvent(cu.DisableTiming)
		if err != nil {
			return nil, fmt.Errorf("create an event: %w", cuError(err))
		}
		pick = &staging{ev: ev}
		d.staging = append(d.staging, pick)
	}
	if pick == nil {
		pick = idleLRU
	}
	if pick == nil {
		pick = lru
		if err := pick.ev.Synchronize(); err != nil {
			return nil, d.asyncError("wait for a copy", err)
		}
		pick.busy = false
	}
	if pick.size < bytes {
		if pick.p != nil {
			cu.MemFreeHost(pick.p)
			pick.p, pick.size = nil, 0
		}
		n := minStaging
		for n < bytes {
			n *= 2
		}
		var p unsafe.Pointer
		if r := C.driver_alloc_host(&p, C.size_t(n)); r != C.CUDA_SUCCESS {
			return nil, fmt.Errorf("pin %s of host memory: %w", size(int64(n)), codeError(int(r)))
		}
		pick.p, pick.size = p, n
	}
	d.uses++
	pick.usedn = d.uses
	return pick, nil
}

// idle reports whether the last copy through s has finished.
func (s *staging) idle() (bool, error) {
	if !s.busy {
		return true, nil
	}
	switch err := s.ev.Query(); {
	case err == nil:
		s.busy = false
		return true, nil
	case isCode(err, C.CUDA_ERROR_NOT_READY):
		return false, nil
	default:
		return false, fmt.Errorf("query a copy's event: %w", cuError(err))
	}
}

// record marks s busy until the work queued so far has run.
func (d *Device) record(s *staging) error {
	if err := s.ev.Record(d.stream); err != nil {
		return fmt.Errorf("cuda: record an event: %w", cuError(err))
	}
	s.busy = true
	return nil
}

// Copy copies n float32 values from src to dst on the device.
func (d *Device) Copy(dst, src device.Ptr, n int) error {
	if n <= 0 {
		return nil
	}
	if err := d.enter(); err != nil {
		return err
	}
	defer d.leave()
	if err := cu.MemcpyDtoDAsync(cu.DevicePtr(dst), cu.DevicePtr(src), int64(4*n), d.stream); err != nil {
		return fmt.Errorf("cuda: copy %d floats %#x → %#x: %w", n, uintptr(src), uintptr(dst), cuError(err))
	}
	return nil
}

// Zero sets n float32 values at p to 0.
func (d *Device) Zero(p device.Ptr, n int) error {
	if n <= 0 {
		return nil
	}
	if err := d.enter(); err != nil {
		return err
	}
	defer d.leave()
	if err := cu.MemsetD32Async(cu.DevicePtr(p), 0, int64(n), d.stream); err != nil {
		return fmt.Errorf("cuda: zero %d floats at %#x: %w", n, uintptr(p), cuError(err))
	}
	return nil
}

// Launch queues kernel on grid×block threads. Every dimension must be at
// least 1 (Dim3{X: n} is not a valid grid: say Y: 1, Z: 1); a launch with
// nothing to do is the caller's to skip.
func (d *Device) Launch(kernel string, grid, block device.Dim3, args ...any) error {
	if !valid(grid) || !valid(block) {
		return fmt.Errorf("cuda: launch %s: grid %v, block %v: every dimension must be at least 1", kernel, grid, block)
	}
	if err := d.enter(); err != nil {
		return err
	}
	defer d.leave()
	fn, err := d.function(kernel)
	if err != nil {
		return err
	}
	if err := checkArgs(d.params[kernel], args); err != nil {
		return fmt.Errorf("cuda: launch %s: %w", kernel, err)
	}
	if cap(d.args) < len(args) {
		d.args = make([]uint64, len(args))
		d.argPtrs = make([]unsafe.Pointer, len(args))
	}
	vals, params := d.args[:len(args)], d.argPtrs[:len(args)]
	for i, a := range args {
		// Each value sits in an 8-byte slot: the driver reads as many
		// bytes as the parameter has, the low ones on this little-endian
		// machine, and cu copies 8 bytes per parameter.
		switch v := a.(type) {
		case device.Ptr:
			vals[i] = uint64(v)
		case int32:
			vals[i] = uint64(uint32(v))
		case uint32:
			vals[i] = uint64(v)
		case int64:
			vals[i] = uint64(v)
		case uint64:
			vals[i] = v
		case float32:
			vals[i] = uint64(math.Float32bits(v))
		default:
			return fmt.Errorf("cuda: launch %s: argument %d is a %T; want device.Ptr, int32, uint32, int64, uint64 or float32", kernel, i, a)
		}
		params[i] = unsafe.Pointer(&vals[i])
	}
	if err := fn.Launch(grid.X, grid.Y, grid.Z, block.X, block.Y, block.Z, 0, d.stream, params); err != nil {
		return fmt.Errorf("cuda: launch %s on grid %v, block %v: %w", kernel, grid, block, cuError(err))
	}
	if len(d.recent) == maxRecent {
		d.recent = append(d.recent[:0], d.recent[1:]...)
	}
	d.recent = append(d.recent, kernel)
	return nil
}

func valid(g device.Dim3) bool { return g.X >= 1 && g.Y >= 1 && g.Z >= 1 }

var (
	entryRE = regexp.MustCompile(`(?s)\.entry\s+(\w+)\s*\((.*?)\)`)
	paramRE = regexp.MustCompile(`\.param\s+(?:\.align\s+\d+\s+)?\.([bsuf]\d+)\s+\w+(\[\d+\])?`)
)

// ptxParams returns each entry's parameter types ("u64", "f32", …; "b8[16]"
// for a by-value struct) from the PTX, for checking Launch's arguments: the
// driver takes whatever bytes it is given.
func ptxParams(ptx string) map[string][]string {
	m := map[string][]string{}
	for _, e := range entryRE.FindAllStringSubmatch(ptx, -1) {
		types := []string{}
		for _, p := range paramRE.FindAllStringSubmatch(e[2], -1) {
			types = append(types, p[1]+p[2])
		}
		m[e[1]] = types
	}
	return m
}

// checkArgs checks args against a kernel's parameter types: their number,
// and each one's size and kind (float32 for .f32, int32 or uint32 for the
// other 32-bit types, device.Ptr, int64 or uint64 for 64-bit ones, which
// include a double passed as its bits). Unknown kernels pass: the lookup
// reports them.
func checkArgs(types []string, args []any) error {
	if types == nil {
		return nil
	}
	if len(args) != len(types) {
		return fmt.Errorf("%d arguments, the kernel takes %d", len(args), len(types))
	}
	for i, a := range args {
		t, ok := types[i], false
		switch a.(type) {
		case float32:
			ok = t == "f32"
		case int32, uint32:
			ok = t == "u32" || t == "s32" || t == "b32"
		case device.Ptr, int64, uint64:
			ok = t == "u64" || t == "s64" || t == "b64" || t == "f64"
		}
		if !ok {
			return fmt.Errorf("argument %d is a %T, the kernel's parameter is .%s", i, a, t)
		}
	}
	return nil
}

// function returns kernel from the module, looked up once.
func (d *Device) function(kernel string) (cu.Function, error) {
	if fn, ok := d.funcs[kernel]; ok {
		return fn, nil
	}
	fn, err := d.module.Function(kernel)
	if err != nil {
		if isCode(err, C.CUDA_ERROR_NOT_FOUND) {
			return fn, fmt.Errorf("cuda: launch %s: no such kernel in the PTX (an extern \"C\" __global__ function of that name)", kernel)
		}
		return fn, fmt.Errorf("cuda: launch %s: %w", kernel, cuError(err))
	}
	d.funcs[kernel] = fn
	return fn, nil
}

// Gemm is cublasSgemm on the device's stream.
func (d *Device) Gemm(transA, transB bool, m, n, k int, alpha float32, a device.Ptr, lda int, b device.Ptr, ldb int, beta float32, c device.Ptr, ldc int) error {
	if err := fitInt32(m, n, k, lda, ldb, ldc); err != nil {
		return fmt.Errorf("cuda: sgemm %d×%d×%d: %w", m, n, k, err)
	}
	if err := d.enter(); err != nil {
		return err
	}
	defer d.leave()
	if err := d.blas.sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc); err != nil {
		return fmt.Errorf("cuda: sgemm %s%s m=%d n=%d k=%d lda=%d ldb=%d ldc=%d: %w", op(transA), op(transB), m, n, k, lda, ldb, ldc, err)
	}
	d.noteRecent("cublasSgemm")
	return nil
}

// GemmStridedBatched is cublasSgemmStridedBatched on the device's stream.
func (d *Device) GemmStridedBatched(transA, transB bool, m, n, k int, alpha float32, a device.Ptr, lda, strideA int, b device.Ptr, ldb, strideB int, beta float32, c device.Ptr, ldc, strideC int, batch int) error {
	if err := fitInt32(m, n, k, lda, ldb, ldc, batch); err != nil {
		return fmt.Errorf("cuda: sgemm batched %d×%d×%d ×%d: %w", m, n, k, batch, err)
	}
	if batch == 0 {
		return nil
	}
	if err := d.enter(); err != nil {
		return err
	}
	defer d.leave()
	if err := d.blas.sgemmStridedBatched(transA, transB, m, n, k, alpha, a, lda, strideA, b, ldb, strideB, beta, c, ldc, strideC, batch); err != nil {
		return fmt.Errorf("cuda: sgemm batched %s%s m=%d n=%d k=%d batch=%d: %w", op(transA), op(transB), m, n, k, batch, err)
	}
	d.noteRecent("cublasSgemmStridedBatched")
	return nil
}

func (d *Device) noteRecent(name string) {
	if len(d.recent) == maxRecent {
		d.recent = append(d.recent[:0], d.recent[1:]...)
	}
	d.recent = append(d.recent, name)
}

func op(trans bool) string {
	if trans {
		return "T"
	}
	return "N"
}

func fitInt32(vs ...int) error {
	for _, v := range vs {
		if v < 0 || v > math.MaxInt32 {
			return fmt.Errorf("size %d out of cuBLAS's int range", v)
		}
	}
	return nil
}

// Sync waits for the queued work and reports its first error.
func (d *Device) Sync() error {
	if err := d.enter(); err != nil {
		return err
	}
	defer d.leave()
	return d.sync("sync")
}

func (d *Device) sync(what string) error {
	if err := d.stream.Synchronize(); err != nil {
		return d.asyncError(what, err)
	}
	d.recent = d.recent[:0]
	for _, s := range d.staging {
		s.busy = false
	}
	return nil
}

// asyncError describes an error of queued work, naming the last launches
// since the previous Sync. Most such errors (an illegal address, a
// kernel's trap) leave the context unusable.
func (d *Device) asyncError(what string, err error) error {
	err = cuError(err)
	if len(d.recent) == 0 {
		return fmt.Errorf("cuda: %s: %w", what, err)
	}
	return fmt.Errorf("cuda: %s: %w (from work queued since the last sync, the last launches being %s; CUDA_LAUNCH_BLOCKING=1 makes the failing launch report it)",
		what, err, strings.Join(d.recent, ", "))
}

// Close waits for the queued work, frees every allocation, pinned buffer,
// the module, the stream and cuBLAS's handle and releases the primary
// context. Closing twice is harmless.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cu.SetCurrentContext(d.ctx); err != nil {
		return fmt.Errorf("cuda: close: make the context current: %w", cuError(err))
	}
	var errs []error
	if err := d.stream.Synchronize(); err != nil {
		errs = append(errs, d.asyncError("close", err))
	}
	failed, first := 0, error(nil)
	for p, n := range d.allocs {
		if err := cu.MemFree(cu.DevicePtr(p)); err != nil {
			if failed == 0 {
				first = fmt.Errorf("free %s: %w", size(int64(n)), cuError(err))
			}
			failed++
		}
	}
	if failed > 0 {
		errs = append(errs, fmt.Errorf("cuda: close: %d of %d frees failed, the first: %w", failed, len(d.allocs), first))
	}
	d.allocs = nil
	if err := d.release(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// release frees what Open made, in reverse; the context must be current.
func (d *Device) release() error {
	var errs []error
	for _, s := range d.staging {
		if s.p != nil {
			cu.MemFreeHost(s.p)
		}
		cu.DestroyEvent(&s.ev)
	}
	d.staging = nil
	if d.blas != nil {
		if err := d.blas.close(); err != nil {
			errs = append(errs, fmt.Errorf("cuda: close cuBLAS: %w", err))
		}
		d.blas = nil
	}
	if d.module != (cu.Module{}) {
		if err := d.module.Unload(); err != nil {
			errs = append(errs, fmt.Errorf("cuda: unload the kernels: %w", cuError(err)))
		}
		d.module = cu.Module{}
	}
	if d.stream != (cu.Stream{}) {
		if err := d.stream.Destroy(); err != nil {
			errs = append(errs, fmt.Errorf("cuda: destroy the stream: %w", cuError(err)))
		}
	}
	if d.ctx != (cu.CUContext{}) {
		if err := d.dev.ReleasePrimaryCtx(); err != nil {
			errs = append(errs, fmt.Errorf("cuda: release the primary context: %w", cuError(err)))
		}
		d.ctx = cu.CUContext{}
	}
	return errors.Join(errs...)
}

// resultCode returns the CUresult of an error from gorgonia.org/cu (an int
// type of that package, possibly wrapped).
func resultCode(err error) (int, bool) {
	for ; err != nil; err = errors.Unwrap(err) {
		var ce *cudaError
		if errors.As(err, &ce) {
			return ce.code, true
		}
		v := reflect.ValueOf(err)
		if v.Kind() == reflect.Int && v.Type().PkgPath() == "gorgonia.org/cu" {
			return int(v.Int()), true
		}
	}
	return 0, false
}

func isCode(err error, code C.CUresult) bool {
	c, ok := resultCode(err)
	return ok && c == int(code)
}

// cudaError is a CUresult with the driver's own words for it.
type cudaError struct {
	code       int
	name, text string
}

func (e *cudaError) Error() string { return e.text + " (" + e.name + ")" }

// cuError replaces an error of gorgonia.org/cu, whose text is a bare
// name ("OutOfMemory"), by the driver's description: "out of memory
// (CUDA_ERROR_OUT_OF_MEMORY)". Other errors pass unchanged.
func cuError(err error) error {
	code, ok := resultCode(err)
	if !ok {
		return err
	}
	return codeError(code)
}

func codeError(code int) error {
	e := &cudaError{code: code, name: C.GoString(C.driver_error_name(C.int(code))), text: C.GoString(C.driver_error_string(C.int(code)))}
	if e.name == "" {
		e.name = fmt.Sprintf("CUresult %d", code)
	}
	if e.text == "" {
		e.text = "unknown CUDA error"
	}
	if code == C.CUDA_ERROR_NOT_INITIALIZED {
		if err := preflight.Err(); err != nil {
			e.text += ": " + err.Error()
		}
	}
	return e
}

// size formats a byte count: "512 MiB", "1.5 GiB", "300 B".
func size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, u := float64(n), ""
	for _, s := range []string{"KiB", "MiB", "GiB", "TiB"} {
		v /= unit
		u = s
		if v < unit {
			break
		}
	}
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f %s", v, u)
	}
	return fmt.Sprintf("%.1f %s", v, u)
}

// cudaVersion formats cuDriverGetVersion's number: 13000 → "13.0".
func cudaVersion(v int) string { return fmt.Sprintf("%d.%d", v/1000, v%1000/10) }

// tf32 reports whether CIFARNET_TF32=1 asks cuBLAS for TF32 tensor-core
// math (10-bit mantissas in the products; off by default).
func tf32() bool { return os.Getenv("CIFARNET_TF32") == "1" }
