package backend

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/trainer/internal/nn"
	"github.com/cifarnet-go/cifarnet/trainer/internal/optim"
)

func TestParseDevice(t *testing.T) {
	for _, c := range []struct {
		in    string
		kind  string
		index int
	}{
		{"", Auto, 0}, {"auto", Auto, 0}, {"cpu", CPUKind, 0}, {"cuda", CUDAKind, 0},
		{"cuda:0", CUDAKind, 0}, {"cuda:3", CUDAKind, 3}, {"cuda:12", CUDAKind, 12},
	} {
		kind, index, err := ParseDevice(c.in)
		if err != nil || kind != c.kind || index != c.index {
			t.Errorf("ParseDevice(%q) = %q, %d, %v; want %q, %d", c.in, kind, index, err, c.kind, c.index)
		}
	}
	for _, in := range []string{"gpu", "CPU", "cuda:", "cuda:-1", "cuda:+1", "cuda:x", "cuda:1:2", "cuda0", " cpu", "cuda:99999999999999999999"} {
		_, _, err := ParseDevice(in)
		if err == nil || !strings.Contains(err.Error(), "want auto, cpu, cuda or cuda:N") || strings.Contains(err.Error(), "\n") {
			t.Errorf("ParseDevice(%q): %v; want one line listing the accepted forms", in, err)
		}
	}
}

// linearConfig is a backend configuration for a 2-input linear layer.
func linearConfig(t *testing.T) Config {
	t.Helper()
	spec := &models.Spec{Name: "lin", Input: models.Shape{C: 2, H: 1, W: 1},
		Layers: []models.Layer{{Name: "fc", Type: models.Linear, Units: 2, Bias: true}}}
	net, err := nn.New(spec, 1)
	if err != nil {
		t.Fatal(err)
	}
	return Config{Net: net, Batch: 4, Optimizer: optim.Config{Name: "sgd", LR: 0.1}}
}

// withCUDA sets CUDA for a test.
func withCUDA(t *testing.T, c CUDASupport) {
	old := CUDA
	CUDA = c
	t.Cleanup(func() { CUDA = old })
}

func TestOpenCPUOnly(t *testing.T) {
	withCUDA(t, nil)
	cfg := linearConfig(t)
	for _, dev := range []string{"cuda", "cuda:1"} {
		_, err := Open(dev, cfg, nil)
		if cerr := Check(dev); cerr == nil || err == nil || cerr.Error() != err.Error() {
			t.Errorf("Check(%q) = %v, Open: %v; want the same error", dev, cerr, err)
		}
		if err == nil || !strings.Contains(err.Error(), "built without CUDA") || !strings.Contains(err.Error(), "./build.sh cuda") ||
			!strings.Contains(err.Error(), "bin/trainer-cuda") || strings.Contains(err.Error(), "\n") {
			t.Errorf("Open(%q) in a CPU-only build: %v", dev, err)
		}
	}
	if _, err := Open("tpu", cfg, nil); err == nil || !strings.Contains(err.Error(), "cuda:N") {
		t.Errorf("Open(tpu): %v", err)
	}
	var log bytes.Buffer
	b, err := Open("auto", cfg, &log)
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	if b.Device().Kind != CPUKind || strings.Count(log.String(), "\n") != 1 || !strings.Contains(log.String(), "built without CUDA") {
		t.Errorf("auto: %+v, log %q; want the CPU and one line saying why", b.Device(), log.String())
	}
	log.Reset()
	if b, err = Open("cpu", cfg, &log); err != nil || b.Device().ID != "cpu" || log.Len() != 0 {
		t.Errorf("cpu: %v, %v, log %q", b, err, log.String())
	}
	b.Close()
}

// fakeCUDA is a CUDASupport with made-up GPUs that opens CPU backends.
type fakeCUDA struct {
	gpus   []GPU
	err    error
	opened []int
}

func (f *fakeCUDA) GPUs() ([]GPU, error) { return f.gpus, f.err }

func (f *fakeCUDA) Open(index int, cfg Config) (Backend, error) {
	f.opened = append(f.opened, index)
	return NewCPU(cfg)
}

func TestOpenCUDA(t *testing.T) {
	cfg := linearConfig(t)
	f := &fakeCUDA{gpus: []GPU{{Index: 0, Name: "GPU A"}, {Index: 1, Name: "GPU B"}}}
	withCUDA(t, f)
	var log bytes.Buffer
	for _, dev := range []string{"auto", "cuda", "cuda:1"} {
		b, err := Open(dev, cfg, &log)
		if err != nil {
			t.Fatalf("%s: %v", dev, err)
		}
		b.Close()
	}
	if want := []int{0, 0, 1}; len(f.opened) != 3 || f.opened[0] != want[0] || f.opened[2] != want[2] || log.Len() != 0 {
		t.Errorf("opened GPUs %v, want %v; log %q", f.opened, want, log.String())
	}
	_, err := Open("cuda:2", cfg, nil)
	if err == nil || !strings.Contains(err.Error(), "cuda:0 (GPU A), cuda:1 (GPU B)") || Check("cuda:2") == nil {
		t.Errorf("cuda:2: %v; want the GPUs there are", err)
	}
	if err := Check("cuda:1"); err != nil || len(f.opened) != 3 {
		t.Errorf("Check(cuda:1) = %v, opened %v; want nil without opening", err, f.opened)
	}

	// No usable GPU: auto falls back to the CPU and says why; cuda fails.
	f.gpus, f.err = nil, errors.New("CUDA driver 12.2 is older than\nthe 13.0 this trainer needs")
	log.Reset()
	b, err := Open("auto", cfg, &log)
	if err != nil || b.Device().Kind != CPUKind {
		t.Fatalf("auto without a GPU: %v", err)
	}
	b.Close()
	if strings.Count(log.String(), "\n") != 1 || !strings.Contains(log.String(), "older than; the 13.0") {
		t.Errorf("auto without a GPU logged %q", log.String())
	}
	if _, err := Open("cuda", cfg, nil); err == nil || !strings.Contains(err.Error(), "older than") {
		t.Errorf("cuda without a GPU: %v", err)
	}
	f.err = nil
	if _, err := Open("cuda:0", cfg, nil); err == nil || !strings.Contains(err.Error(), "no GPU found") {
		t.Errorf("cuda:0 with an empty list: %v", err)
	}

	// A GPU that does not open: auto says how to train without it.
	withCUDA(t, brokenCUDA{})
	if _, err := Open("auto", cfg, nil); err == nil || err.Error() != "open cuda:0 (GPU A): out of memory (--device cpu trains on the CPU)" {
		t.Errorf("auto with a GPU that fails to open: %v", err)
	}
	if _, err := Open("cuda", cfg, nil); err == nil || err.Error() != "open cuda:0 (GPU A): out of memory" {
		t.Errorf("cuda with a GPU that fails to open: %v", err)
	}
}

type brokenCUDA struct{}

func (brokenCUDA) GPUs() ([]GPU, error) { return []GPU{{Index: 0, Name: "GPU A"}}, nil }

func (brokenCUDA) Open(int, Config) (Backend, error) { return nil, errors.New("out of memory") }
