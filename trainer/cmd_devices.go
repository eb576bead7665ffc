package main

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/cifarnet-go/cifarnet/trainer/internal/backend"
)

func runDevices(e *env, args []string) error {
	fs := e.flags("", `Lists the devices "trainer train --device" can train on: the GPUs of a
CUDA build (index, name, memory, compute capability, CUDA and driver
versions), or one line saying why there are none, then the CPU. --device
auto takes the first GPU listed, else the CPU.

Example:
  trainer devices`)
	if err := e.parse(fs, args); err != nil {
		return err
	}
	if _, err := positional(fs); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	switch gpus, err := gpuList(); {
	case err != nil:
		fmt.Fprintf(tw, "cuda\tnone: %v\n", err)
	default:
		for _, g := range gpus {
			fmt.Fprintf(tw, "%s\t%s, %.1f GiB, compute capability %s, CUDA %s", g.ID(), g.Name,
				float64(g.MemoryBytes)/(1<<30), g.ComputeCapability, g.CUDAVersion)
			if g.Driver != "" {
				fmt.Fprintf(tw, ", driver %s", g.Driver)
			}
			fmt.Fprintln(tw)
		}
	}
	cpu := backend.CPUDevice()
	fmt.Fprintf(tw, "%s\t%s\n", cpu.ID, cpu.Name)
	return tw.Flush()
}

// gpuList returns the usable GPUs, or why there are none, in one line.
func gpuList() ([]backend.GPU, error) {
	if backend.CUDA == nil {
		return nil, errors.New(backend.NoCUDA)
	}
	gpus, err := backend.CUDA.GPUs()
	if err == nil && len(gpus) == 0 {
		err = errors.New("no GPU found")
	}
	if err != nil {
		return nil, errors.New(strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return gpus, nil
}
