//go:build cifarnet_cuda

package main

// The GPU trainer, bin/trainer-cuda (./build.sh cuda): registers the CUDA
// backend, so that --device cuda and auto train on the GPU. It links
// libcuda.so.1 and starts only where the NVIDIA driver is installed; where
// the driver finds no GPU it says so in one line and exits (package
// preflight). bin/trainer, built without the tag, stays CPU-only and
// cgo-free.
import _ "github.com/cifarnet-go/cifarnet/trainer/internal/cuda/driver"
