//go:build cifarnet_cuda

package driver

import (
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/cifarnet-go/cifarnet/trainer/internal/backend"
	"github.com/cifarnet-go/cifarnet/trainer/internal/cuda/driver/preflight"
	"gorgonia.org/cu"
)

// List describes every GPU the driver shows, in index order. It fails
// with preflight's explanation when the driver did not initialise.
func List() ([]backend.GPU, error) {
	if err := preflight.Err(); err != nil {
		return nil, fmt.Errorf("cuda: %w", err)
	}
	n, err := cu.NumDevices()
	if err != nil {
		return nil, fmt.Errorf("cuda: count GPUs: %w", cuError(err))
	}
	version, driver := "", driverVersion()
	if v := cu.Version(); v > 0 {
		version = cudaVersion(v)
	}
	gpus := make([]backend.GPU, 0, n)
	for i := range n {
		g := backend.GPU{Index: i, CUDAVersion: version, Driver: driver}
		d, err := cu.GetDevice(i)
		if err != nil {
			return nil, fmt.Errorf("cuda: GPU %d: %w", i, cuError(err))
		}
		if g.Name, err = d.Name(); err != nil {
			return nil, fmt.Errorf("cuda: GPU %d: name: %w", i, cuError(err))
		}
		if g.MemoryBytes, err = d.TotalMem(); err != nil {
			return nil, fmt.Errorf("cuda: GPU %d: memory: %w", i, cuError(err))
		}
		major, minor, err := d.ComputeCapability()
		if err != nil {
			return nil, fmt.Errorf("cuda: GPU %d: compute capability: %w", i, cuError(err))
		}
		g.ComputeCapability = fmt.Sprintf("%d.%d", major, minor)
		gpus = append(gpus, g)
	}
	return gpus, nil
}

var driverVersionRE = regexp.MustCompile(`\s(\d+\.\d+(?:\.\d+)?)\s`)

// driverVersion reads the kernel module's version from
// /proc/driver/nvidia/version ("NVRM version: NVIDIA UNIX x86_64 Kernel
// Module  580.65.06  Sun Jul 27 …"); "" when it cannot.
func driverVersion() string {
	b, err := os.ReadFile("/proc/driver/nvidia/version")
	if err != nil {
		return ""
	}
	return parseDriverVersion(string(b))
}

func parseDriverVersion(s string) string {
	for line := range strings.Lines(s) {
		if !strings.HasPrefix(line, "NVRM version:") {
			continue
		}
		if m := driverVersionRE.FindStringSubmatch(line + " "); m != nil {
			return m[1]
		}
	}
	return ""
}
