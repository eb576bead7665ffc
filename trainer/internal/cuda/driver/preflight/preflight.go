//go:build cifarnet_cuda

// Package preflight initialises the CUDA driver before gorgonia.org/cu
// does, so that a GPU trainer started where CUDA cannot work says why in
// one line instead of cu's "Error in initialization…".
//
// gorgonia.org/cu calls cuInit(0) in its package initialiser and exits the
// process when it fails. Go initialises packages in import-path order
// among those whose imports are already initialised; this package sorts
// before gorgonia.org/cu ("github.com/…" < "gorgonia.org/…") and imports
// only C and standard packages that cu imports too (directly or not), so
// whenever cu is ready to be initialised this package is ready as well and
// comes first (RanFirst checks it in the running binary).
//
// On failure the init prints one line to stderr and exits with status 1,
// except for help requests ("help", "-h", "--help", "version" as the first
// argument, or -h/--help anywhere), "devices" (which lists the GPUs, or
// says why there are none) and test binaries: there it records the
// failure and the program goes on without a GPU. For those this package
// defines the symbol cuInit itself: the static linker binds cu's call to
// this definition (an executable's symbol wins over libcuda.so.1's), which
// forwards to the driver's cuInit found with dlsym(RTLD_NEXT) and, after a
// failure the program chose to survive, answers CUDA_SUCCESS so that cu's
// initialiser does not exit. Every later driver call then fails with
// CUDA_ERROR_NOT_INITIALIZED, and package driver reports Err instead.
//
// One case stays outside its reach: a binary that links libcuda cannot
// start at all where libcuda.so.1 is missing (no NVIDIA driver installed);
// the dynamic loader refuses it before any Go code runs, with "error while
// loading shared libraries: libcuda.so.1: cannot open shared object file".
package preflight

/*
#cgo LDFLAGS: -lcuda -ldl
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>
#include <cuda.h>

static int preflight_done;          // the first cuInit has run
static CUresult preflight_result;   // and returned this
static int preflight_survive;       // go on after a failure: cuInit answers success
static int preflight_early;         // cuInit was called before preflight's init (order broken)

static CUresult preflight_real_init(unsigned int flags) {
	CUresult (*real)(unsigned int) = (CUresult (*)(unsigned int))dlsym(RTLD_NEXT, "cuInit");
	if (real == NULL) {
		return CUDA_ERROR_NOT_FOUND;
	}
	return real(flags);
}

// cuInit replaces the driver's for the whole program, gorgonia.org/cu
// included: it runs the driver's cuInit once and remembers the result.
CUresult cuInit(unsigned int flags) {
	if (!preflight_done) {
		preflight_early = 1;
		preflight_result = preflight_real_init(flags);
		preflight_done = 1;
	}
	if (preflight_result != CUDA_SUCCESS && preflight_survive) {
		return CUDA_SUCCESS;
	}
	return preflight_result;
}

static CUresult preflight_init(void) {
	if (!preflight_done) {
		preflight_result = preflight_real_init(0);
		preflight_done = 1;
	}
	return preflight_result;
}

static void preflight_set_survive(void) { preflight_survive = 1; }
static int preflight_was_early(void) { return preflight_early; }

static const char *preflight_error_name(CUresult r) {
	const char *s = NULL;
	if (cuGetErrorName(r, &s) != CUDA_SUCCESS) {
		return NULL;
	}
	return s;
}

static const char *preflight_error_string(CUresult r) {
	const char *s = NULL;
	if (cuGetErrorString(r, &s) != CUDA_SUCCESS) {
		return NULL;
	}
	return s;
}
*/
import "C"

import (
	"os"
	"strconv"
	"strings"
)

// Error is cuInit's failure.
type Error struct {
	Code int    // the CUresult, e.g. 100 (CUDA_ERROR_NO_DEVICE)
	Name string // e.g. "CUDA_ERROR_NO_DEVICE"
	What string // what it means here, e.g. "no NVIDIA GPU is visible"
}

func (e *Error) Error() string {
	return "cuInit failed: " + e.What + " (" + e.Name + ")"
}

var initErr *Error

func init() {
	r := C.preflight_init()
	if r == C.CUDA_SUCCESS {
		return
	}
	initErr = describe(int(r))
	if survive(os.Args) {
		C.preflight_set_survive()
		return
	}
	os.Stderr.WriteString(Message(os.Args[0][strings.LastIndexByte(os.Args[0], '/')+1:], initErr) + "\n")
	os.Exit(1)
}

// Err returns cuInit's failure, nil when the driver initialised.
func Err() error {
	if initErr == nil {
		return nil
	}
	return initErr
}

// RanFirst reports whether this package's init called cuInit before any
// other code did, gorgonia.org/cu's initialiser included.
func RanFirst() bool { return C.preflight_was_early() == 0 }

// Message is the line printed when prog cannot use CUDA.
func Message(prog string, err error) string {
	return prog + ": no usable GPU: " + err.Error() +
		". Run bin/trainer (the CPU build) on this machine, or bin/trainer-cuda on a host with an NVIDIA GPU and driver"
}

// survive reports whether the program should go on after cuInit failed:
// help requests, the devices command and test binaries.
func survive(args []string) bool {
	if len(args) == 0 {
		return false
	}
	if strings.HasSuffix(args[0], ".test") {
		return true
	}
	if len(args) > 1 {
		switch args[1] {
		case "help", "version", "-version", "--version", "devices":
			return true
		}
	}
	for _, a := range args[1:] {
		switch {
		case a == "-h", a == "-help", a == "--help":
			return true
		case strings.HasPrefix(a, "-test."):
			return true
		}
	}
	return false
}

// describe says what cuInit's result r means for someone starting the
// trainer.
func describe(r int) *Error {
	e := &Error{Code: r, Name: C.GoString(C.preflight_error_name(C.CUresult(r)))}
	if e.Name == "" {
		e.Name = "CUresult " + strconv.Itoa(r)
	}
	switch r {
	case C.CUDA_ERROR_NO_DEVICE:
		e.What = "no NVIDIA GPU is visible"
		if v, ok := os.LookupEnv("CUDA_VISIBLE_DEVICES"); ok {
			e.What += " (CUDA_VISIBLE_DEVICES=\"" + v + "\")"
		}
	case C.CUDA_ERROR_SYSTEM_DRIVER_MISMATCH:
		e.What = "libcuda.so.1 does not match the loaded NVIDIA kernel module (reboot after a driver update, or fix LD_LIBRARY_PATH)"
	case C.CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE:
		e.What = "the CUDA forward-compatibility driver in use does not support this GPU"
	case C.CUDA_ERROR_STUB_LIBRARY:
		e.What = "the libcuda.so.1 found is the link-time stub, not the driver (remove the stubs folder from LD_LIBRARY_PATH)"
	case C.CUDA_ERROR_NOT_FOUND:
		e.What = "cuInit not found in the loaded libcuda"
	case C.CUDA_ERROR_OPERATING_SYSTEM, C.CUDA_ERROR_UNKNOWN, C.CUDA_ERROR_NOT_PERMITTED, C.CUDA_ERROR_DEVICE_UNAVAILABLE:
		e.What = "the NVIDIA kernel driver did not answer (is its module loaded, and can this user open /dev/nvidia*?)"
	default:
		e.What = C.GoString(C.preflight_error_string(C.CUresult(r)))
		if e.What == "" {
			e.What = "the CUDA driver failed to initialise"
		}
	}
	return e
}
