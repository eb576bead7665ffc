package cuda_test

import (
	"strings"
	"testing"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/trainer/internal/backend"
	"github.com/cifarnet-go/cifarnet/trainer/internal/cuda"
	"github.com/cifarnet-go/cifarnet/trainer/internal/cuda/device"
	"github.com/cifarnet-go/cifarnet/trainer/internal/cuda/emu"
	"github.com/cifarnet-go/cifarnet/trainer/internal/nn"
	"github.com/cifarnet-go/cifarnet/trainer/internal/optim"
)

// TestProfileReport profiles two steps of keras-cnn on the emulator and
// wants every kind of call a step makes in the report, booked per step.
func TestProfileReport(t *testing.T) {
	dev, err := emu.New()
	if err != nil {
		t.Skipf("no host emulator: %v", err)
	}
	spec, err := models.Preset("keras-cnn")
	if err != nil {
		t.Fatal(err)
	}
	net, err := nn.New(spec, 3)
	if err != nil {
		t.Fatal(err)
	}
	prof := device.Profile(dev)
	b, err := cuda.New(prof, "emu", backend.Config{Net: net, Batch: 4, BatchNormMomentum: 0.1,
		Optimizer: optim.Config{Name: "adam", LR: 1e-3}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	x, labels := batchOf(net, 4, 1)
	in := backend.Batch{X: x, Labels: labels, N: 4}
	if _, err := b.Step(in, 1e-3, 1, 1); err != nil {
		t.Fatal(err)
	}
	prof.Reset()
	for step := int64(2); step <= 3; step++ {
		if _, err := b.Step(in, 1e-3, step, uint64(step)); err != nil {
			t.Fatal(err)
		}
	}
	var out strings.Builder
	if err := prof.Report(&out, 2); err != nil {
		t.Fatal(err)
	}
	report := out.String()
	t.Log(report)
	for _, want := range []string{"profile: 2 steps", "kernel ", "cublas ", "copy ", "host ", "copy: upload", "copy: download", "cublas: sgemm", "kernel: adam"} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if err := prof.Report(&out, 0); err == nil {
		t.Error("a report over 0 steps: no error")
	}
}
