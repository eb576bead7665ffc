//go:build !cgo

package emu

import (
	"errors"

	"github.com/cifarnet-go/cifarnet/trainer/internal/cuda/device"
)

// Device is the host emulator, which needs cgo.
type Device struct{ device.Device }

// New fails: the emulator compiles the kernels with the C++ compiler.
func New() (*Device, error) {
	return nil, errors.New("emu: the CUDA host emulator needs cgo (CGO_ENABLED=1 and g++)")
}

// Kernels returns nothing without cgo.
func (d *Device) Kernels() []string { return nil }
