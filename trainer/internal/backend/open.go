package backend

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// GPU describes one CUDA device as the driver reports it.
type GPU struct {
	Index             int
	Name              string // e.g. "NVIDIA H200"
	MemoryBytes       int64
	ComputeCapability string // e.g. "9.0"
	CUDAVersion       string // the driver's CUDA version, e.g. "13.0"
	Driver            string // e.g. "580.65.06"; "" when unknown
}

// ID is what --device accepts to choose the GPU: "cuda:0".
func (g GPU) ID() string { return "cuda:" + strconv.Itoa(g.Index) }

// CUDASupport lists and opens GPUs. Only the GPU trainer has one (build
// tag cifarnet_cuda, ./build.sh cuda; package cuda/driver).
type CUDASupport interface {
	// GPUs lists the usable GPUs in index order; when there are none it
	// returns an error saying why (no driver, no device, too old a
	// driver).
	GPUs() ([]GPU, error)
	// Open opens a backend on GPU index.
	Open(index int, cfg Config) (Backend, error)
}

// CUDA is nil in CPU-only builds; the GPU trainer's build sets it in an
// init function.
var CUDA CUDASupport

// NoCUDA explains what to do when this binary cannot use a GPU.
const NoCUDA = "this trainer was built without CUDA; build the GPU trainer with ./build.sh cuda (bin/trainer-cuda) on a GPU host"

// Device kinds, as ParseDevice returns them.
const (
	Auto     = "auto"
	CPUKind  = "cpu"
	CUDAKind = "cuda"
)

// ParseDevice parses a device choice: "auto" (or ""), "cpu", "cuda" (GPU
// 0) or "cuda:N". index is the GPU's for "cuda", else 0.
func ParseDevice(s string) (kind string, index int, err error) {
	switch s {
	case "", Auto:
		return Auto, 0, nil
	case CPUKind:
		return CPUKind, 0, nil
	case CUDAKind:
		return CUDAKind, 0, nil
	}
	if rest, ok := strings.CutPrefix(s, CUDAKind+":"); ok {
		// Digits only: Atoi would accept "+1" and "-0".
		if n, err := strconv.Atoi(rest); err == nil && rest != "" && strings.Trim(rest, "0123456789") == "" {
			return CUDAKind, n, nil
		}
	}
	return "", 0, fmt.Errorf("device %q: want auto, cpu, cuda or cuda:N (N the GPU's index, see trainer devices)", s)
}

// Open opens a training backend on device ("auto", "cpu", "cuda" or
// "cuda:N"). auto takes the first GPU when there is one and otherwise the
// CPU, writing one line to log that says why.
func Open(device string, cfg Config, log io.Writer) (Backend, error) {
	if log == nil {
		log = io.Discard
	}
	kind, g, why, err := choose(device)
	switch {
	case err != nil:
		return nil, err
	case kind == CUDAKind:
		b, err := openGPU(g, cfg)
		if err != nil && (device == "" || device == Auto) {
			// auto chose the GPU: say how to do without it.
			err = fmt.Errorf("%w (--device cpu trains on the CPU)", err)
		}
		return b, err
	case why != "":
		fmt.Fprintf(log, "training on the CPU: %s\n", why)
	}
	return NewCPU(cfg)
}

// Check reports, without opening anything, whether Open would find the
// device: the same errors, early.
func Check(device string) error {
	_, _, _, err := choose(device)
	return err
}

// choose resolves a device choice to the CPU or one GPU; why says why
// auto did not take a GPU.
func choose(device string) (kind string, gpu GPU, why string, err error) {
	kind, index, err := ParseDevice(device)
	if err != nil || kind == CPUKind {
		return kind, GPU{}, "", err
	}
	if kind == Auto {
		if CUDA == nil {
			return CPUKind, GPU{}, NoCUDA, nil
		}
		gpus, err := CUDA.GPUs()
		if err == nil && len(gpus) == 0 {
			err = errors.New("no GPU found")
		}
		if err != nil {
			return CPUKind, GPU{}, oneLine(err), nil
		}
		return CUDAKind, gpus[0], "", nil
	}
	id := fmt.Sprintf("cuda:%d", index)
	if CUDA == nil {
		return "", GPU{}, "", fmt.Errorf("device %s: %s", id, NoCUDA)
	}
	gpus, err := CUDA.GPUs()
	if err != nil {
		return "", GPU{}, "", fmt.Errorf("device %s: no usable GPU: %s", id, oneLine(err))
	}
	for _, g := range gpus {
		if g.Index == index {
			return CUDAKind, g, "", nil
		}
	}
	if len(gpus) == 0 {
		return "", GPU{}, "", fmt.Errorf("device %s: no GPU found", id)
	}
	have := make([]string, len(gpus))
	for i, g := range gpus {
		have[i] = fmt.Sprintf("%s (%s)", g.ID(), g.Name)
	}
	return "", GPU{}, "", fmt.Errorf("device %s: no such GPU; this machine has %s", id, strings.Join(have, ", "))
}

func openGPU(g GPU, cfg Config) (Backend, error) {
	b, err := CUDA.Open(g.Index, cfg)
	if err != nil {
		return nil, fmt.Errorf("open %s (%s): %w", g.ID(), g.Name, err)
	}
	return b, nil
}

// oneLine joins a multi-line error message (errors.Join) into one line.
func oneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}
