//go:build cifarnet_cuda

package driver

// cuBLAS is loaded with dlopen when the first Device opens, not linked:
// its soname changes with every CUDA major version (libcublas.so.11 for
// the 11.x toolkit whose headers build this, libcublas.so.13 on a CUDA 13
// host, often only inside a Python wheel), and gorgonia.org/cu/blas would
// pin one. Only the few entry points below are used, called through
// function pointers from C so that each call is one cgo call with typed
// arguments. The _v2 entry points keep their names and ABI from CUDA 11
// through 13.

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>

typedef void *blas_handle;
typedef void *blas_stream;

static void *blas_lib;
static int (*p_create)(blas_handle *);
static int (*p_destroy)(blas_handle);
static int (*p_set_stream)(blas_handle, blas_stream);
static int (*p_set_math_mode)(blas_handle, int);
static int (*p_get_version)(blas_handle, int *);
static int (*p_sgemm)(blas_handle, int, int, int, int, int, const float *, const float *, int, const float *, int, const float *, float *, int);
static int (*p_sgemm_strided_batched)(blas_handle, int, int, int, int, int, const float *, const float *, int, long long, const float *, int, long long, const float *, float *, int, long long, int);
static const char *(*p_status_string)(int);

// blas_open loads the library at path and its symbols; it returns NULL or
// what failed (dlerror's text, or the missing symbol's name).
static const char *blas_open(const char *path) {
	void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (lib == NULL) {
		return dlerror();
	}
#define SYM(var, name) \
	*(void **)(&var) = dlsym(lib, name); \
	if (var == NULL) { dlclose(lib); return "symbol " name " not found"; }
	SYM(p_create, "cublasCreate_v2")
	SYM(p_destroy, "cublasDestroy_v2")
	SYM(p_set_stream, "cublasSetStream_v2")
	SYM(p_set_math_mode, "cublasSetMathMode")
	SYM(p_get_version, "cublasGetVersion_v2")
	SYM(p_sgemm, "cublasSgemm_v2")
	SYM(p_sgemm_strided_batched, "cublasSgemmStridedBatched")
#undef SYM
	*(void **)(&p_status_string) = dlsym(lib, "cublasGetStatusString"); // 11.4.2 and later
	blas_lib = lib;
	return NULL;
}

static int blas_create(blas_handle *h) { return p_create(h); }
static int blas_destroy(blas_handle h) { return p_destroy(h); }
static int blas_set_stream(blas_handle h, blas_stream s) { return p_set_stream(h, s); }
static int blas_set_math_mode(blas_handle h, int mode) { return p_set_math_mode(h, mode); }
static int blas_get_version(blas_handle h, int *v) { return p_get_version(h, v); }

static const char *blas_status_string(int s) {
	return p_status_string == NULL ? NULL : p_status_string(s);
}

static int blas_sgemm(blas_handle h, int ta, int tb, int m, int n, int k, float alpha,
		unsigned long long a, int lda, unsigned long long b, int ldb, float beta,
		unsigned long long c, int ldc) {
	return p_sgemm(h, ta, tb, m, n, k, &alpha, (const float *)a, lda, (const float *)b, ldb, &beta, (float *)c, ldc);
}

static int blas_sgemm_strided_batched(blas_handle h, int ta, int tb, int m, int n, int k, float alpha,
		unsigned long long a, int lda, long long sa, unsigned long long b, int ldb, long long sb,
		float beta, unsigned long long c, int ldc, long long sc, int batch) {
	return p_sgemm_strided_batched(h, ta, tb, m, n, k, &alpha, (const float *)a, lda, sa,
		(const float *)b, ldb, sb, &beta, (float *)c, ldc, sc, batch);
}
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"unsafe"

	"github.com/cifarnet-go/cifarnet/trainer/internal/cuda/device"
)

// Sonames tried in order after $CIFARNET_CUBLAS: the newest first.
var cublasNames = []string{"libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"}

// CUBLAS_DEFAULT_MATH and CUBLAS_TF32_TENSOR_OP_MATH.
const (
	mathDefault = 0
	mathTF32    = 3
)

var (
	blasOnce sync.Once
	blasPath string // the library loaded
	blasErr  error
)

// loadCublas loads cuBLAS once per process (findCublas).
func loadCublas() (string, error) {
	blasOnce.Do(func() { blasPath, blasErr = findCublas(os.Getenv("CIFARNET_CUBLAS")) })
	return blasPath, blasErr
}

// findCublas loads env when it is not empty (a path, or a name for the
// dynamic loader's search), else the first of cublasNames that loads.
func findCublas(env string) (string, error) {
	var tried []string
	try := func(name string) bool {
		c := C.CString(name)
		defer C.free(unsafe.Pointer(c))
		if msg := C.blas_open(c); msg != nil {
			tried = append(tried, C.GoString(msg))
			return false
		}
		return true
	}
	if env != "" {
		if try(env) {
			return env, nil
		}
		return "", fmt.Errorf("cuBLAS: CIFARNET_CUBLAS=%s does not load: %s", env, tried[0])
	}
	for _, name := range cublasNames {
		if try(name) {
			return name, nil
		}
	}
	return "", fmt.Errorf("cuBLAS not found (tried %s: %s); set CIFARNET_CUBLAS to the path of libcublas.so.N "+
		"(find / -name 'libcublas.so*'; pip's nvidia-cublas wheel has it under site-packages/nvidia/cu*/lib) "+
		"or add its folder to LD_LIBRARY_PATH",
		strings.Join(cublasNames, ", "), strings.Join(tried, "; "))
}

// cublas is a handle bound to one stream.
type cublas struct {
	h       C.blas_handle
	version int
	tf32    bool
}

// newCublas creates a handle on the current context, bound to stream (a
// CUstream, which is a cudaStream_t).
func newCublas(stream unsafe.Pointer) (*cublas, error) {
	if _, err := loadCublas(); err != nil {
		return nil, err
	}
	b := &cublas{tf32: tf32()}
	if s := C.blas_create(&b.h); s != 0 {
		return nil, fmt.Errorf("cublasCreate: %w", blasError(s))
	}
	mode := C.int(mathDefault)
	if b.tf32 {
		mode = mathTF32
	}
	var v C.int
	for _, step := range []struct {
		what string
		do   func() C.int
	}{
		{"cublasSetStream", func() C.int { return C.blas_set_stream(b.h, C.blas_stream(stream)) }},
		{"cublasSetMathMode", func() C.int { return C.blas_set_math_mode(b.h, mode) }},
		{"cublasGetVersion", func() C.int { return C.blas_get_version(b.h, &v) }},
	} {
		if s := step.do(); s != 0 {
			C.blas_destroy(b.h)
			return nil, fmt.Errorf("%s: %w", step.what, blasError(s))
		}
	}
	b.version = int(v)
	return b, nil
}

// describe says which library, version and math mode: "libcublas.so.13
// 13.0.0, FP32 math".
func (b *cublas) describe() string {
	math := "FP32 math"
	if b.tf32 {
		math = "TF32 tensor-op math (CIFARNET_TF32=1)"
	}
	v := b.version
	return fmt.Sprintf("%s %d.%d.%d, %s", blasPath, v/10000, v%10000/100, v%100, math)
}

func (b *cublas) close() error {
	if s := C.blas_destroy(b.h); s != 0 {
		return blasError(s)
	}
	return nil
}

func trans(t bool) C.int {
	if t {
		return 1 // CUBLAS_OP_T
	}
	return 0 // CUBLAS_OP_N
}

func (b *cublas) sgemm(transA, transB bool, m, n, k int, alpha float32, a device.Ptr, lda int, bp device.Ptr, ldb int, beta float32, c device.Ptr, ldc int) error {
	s := C.blas_sgemm(b.h, trans(transA), trans(transB), C.int(m), C.int(n), C.int(k), C.float(alpha),
		C.ulonglong(a), C.int(lda), C.ulonglong(bp), C.int(ldb), C.float(beta), C.ulonglong(c), C.int(ldc))
	if s != 0 {
		return blasError(s)
	}
	return nil
}

func (b *cublas) sgemmStridedBatched(transA, transB bool, m, n, k int, alpha float32, a device.Ptr, lda, strideA int, bp device.Ptr, ldb, strideB int, beta float32, c device.Ptr, ldc, strideC int, batch int) error {
	s := C.blas_sgemm_strided_batched(b.h, trans(transA), trans(transB), C.int(m), C.int(n), C.int(k), C.float(alpha),
		C.ulonglong(a), C.int(lda), C.longlong(strideA), C.ulonglong(bp), C.int(ldb), C.longlong(strideB),
		C.float(beta), C.ulonglong(c), C.int(ldc), C.longlong(strideC), C.int(batch))
	if s != 0 {
		return blasError(s)
	}
	return nil
}

// blasStatus names cublasStatus_t values for libraries without
// cublasGetStatusString.
var blasStatus = map[int]string{
	1:  "CUBLAS_STATUS_NOT_INITIALIZED",
	3:  "CUBLAS_STATUS_ALLOC_FAILED",
	7:  "CUBLAS_STATUS_INVALID_VALUE",
	8:  "CUBLAS_STATUS_ARCH_MISMATCH",
	11: "CUBLAS_STATUS_MAPPING_ERROR",
	13: "CUBLAS_STATUS_EXECUTION_FAILED",
	14: "CUBLAS_STATUS_INTERNAL_ERROR",
	15: "CUBLAS_STATUS_NOT_SUPPORTED",
	16: "CUBLAS_STATUS_LICENSE_ERROR",
}

func blasError(s C.int) error {
	if msg := C.blas_status_string(s); msg != nil {
		return errors.New(C.GoString(msg))
	}
	if name, ok := blasStatus[int(s)]; ok {
		return errors.New(name)
	}
	return fmt.Errorf("cublasStatus_t %d", int(s))
}
