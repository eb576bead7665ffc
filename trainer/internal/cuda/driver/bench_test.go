//go:build cifarnet_cuda

package driver

import (
	"fmt"
	"os"
	"testing"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/trainer/internal/backend"
	"github.com/cifarnet-go/cifarnet/trainer/internal/cuda"
	"github.com/cifarnet-go/cifarnet/trainer/internal/cuda/device"
	"github.com/cifarnet-go/cifarnet/trainer/internal/nn"
	"github.com/cifarnet-go/cifarnet/trainer/internal/optim"
)

// benchBatches are the batch sizes every preset is timed at.
var benchBatches = []int{128, 512}

// benchConfig is the step BenchmarkStep times and bench/pytorch_train.py
// --device cuda times in PyTorch: forward in training mode (dropout on),
// cross-entropy, backward, Adam with lr 1e-3.
func benchConfig(net *nn.Net, batch int) backend.Config {
	return backend.Config{
		Net: net, Batch: batch, BatchNormMomentum: 0.1,
		Optimizer: optim.Config{Name: "adam", LR: 1e-3},
	}
}

// BenchmarkStep times full training steps on GPU 0, the loss read back,
// on one batch of random N(0, 1) images, for every preset at each of
// benchBatches. bench/gpu.sh runs it as
//
//	driver.test -test.run '^$' -test.bench 'BenchmarkStep/^cifarnet-fast$/^batch=512$' -test.benchtime 20x -test.count 3
func BenchmarkStep(b *testing.B) {
	for _, preset := range models.PresetNames() {
		for _, batch := range benchBatches {
			b.Run(fmt.Sprintf("%s/batch=%d", preset, batch), func(b *testing.B) {
				if _, err := List(); err != nil {
					b.Skipf("no GPU: %v", err)
				}
				net := benchNet(b, preset)
				g, err := backend.Open("cuda:0", benchConfig(net, batch), nil)
				if err != nil {
					b.Fatal(err)
				}
				defer g.Close()
				timeSteps(b, g, net, batch, nil)
				b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "images/s")
			})
		}
	}
}

// BenchmarkStepProfile runs the steps BenchmarkStep times with every
// device call waited for and timed, and writes where a step's time goes
// (kernels by name, cuBLAS, copies, host) to standard output.
func BenchmarkStepProfile(b *testing.B) {
	for _, preset := range models.PresetNames() {
		for _, batch := range benchBatches {
			b.Run(fmt.Sprintf("%s/batch=%d", preset, batch), func(b *testing.B) {
				if _, err := List(); err != nil {
					b.Skipf("no GPU: %v", err)
				}
				net := benchNet(b, preset)
				dev, err := Open(0)
				if err != nil {
					b.Fatal(err)
				}
				prof := device.Profile(dev)
				g, err := cuda.New(prof, "cuda:0", benchConfig(net, batch))
				if err != nil {
					b.Fatal(err)
				}
				defer g.Close()
				timeSteps(b, g, net, batch, prof.Reset)
				fmt.Printf("== %s, batch %d\n", preset, batch)
				if err := prof.Report(os.Stdout, b.N); err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}

// timeSteps runs two untimed steps (the first allocate and JIT-compile),
// then b.N timed ones on one batch of random images; started, when not
// nil, runs between the two.
func timeSteps(b *testing.B, g backend.Backend, net *nn.Net, batch int, started func()) {
	b.Helper()
	x, labels := images(net, batch, 1)
	in := backend.Batch{X: x, Labels: labels, N: batch}
	for i := range 2 {
		if _, err := g.Step(in, 1e-3, int64(i+1), uint64(i)); err != nil {
			b.Fatal(err)
		}
	}
	if started != nil {
		started()
	}
	b.ResetTimer()
	for i := range b.N {
		if _, err := g.Step(in, 1e-3, int64(i+3), uint64(i+2)); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
}

func benchNet(b *testing.B, preset string) *nn.Net {
	b.Helper()
	spec, err := models.Preset(preset)
	if err != nil {
		b.Fatal(err)
	}
	net, err := nn.New(spec, 1)
	if err != nil {
		b.Fatal(err)
	}
	return net
}
