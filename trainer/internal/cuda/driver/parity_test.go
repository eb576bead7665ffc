//go:build cifarnet_cuda

package driver

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/trainer/internal/backend"
	"github.com/cifarnet-go/cifarnet/trainer/internal/nn"
	"github.com/cifarnet-go/cifarnet/trainer/internal/optim"
)

// The parity tests train the same network from the same weights on the
// same batches on the CPU backend (gorgonia) and on the GPU (this package
// through backend.Open, so the registration is exercised too), and compare
// the loss, the updated parameters (running statistics included) and the
// evaluation logits. Dropout is on in the presets that have it: both
// backends draw masks from the same counter hash of the step's seed.
//
// The differences come from float32 summation order (cuBLAS against the
// CPU's kernels, parallel reductions); with TF32 off (the default) they
// stay far below the tolerances, which the tests log as the worst seen.
const (
	parityBatch  = 32
	paritySteps  = 3
	lossTol      = 2e-4 // |Δloss| / (1 + |loss|)
	paramTol     = 5e-4 // |Δw| / (1 + |w|), after paritySteps SGD updates
	logitTol     = 2e-3 // |Δlogit| / (1 + |logit|)
	parityInitSd = 7
)

// skipWithoutGPU skips unless GPU 0 can be used.
func skipWithoutGPU(t *testing.T) {
	t.Helper()
	gpus, err := List()
	if err != nil {
		t.Skipf("no GPU: %v", err)
	}
	if len(gpus) == 0 {
		t.Skip("no GPU: the driver lists none")
	}
}

func open(t *testing.T, device string, cfg backend.Config) backend.Backend {
	t.Helper()
	b, err := backend.Open(device, cfg, nil)
	if err != nil {
		t.Fatalf("open %s: %v", device, err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// images returns n random images in about [−2, 2] and their labels.
func images(net *nn.Net, n int, seed uint64) ([]float32, []uint8) {
	rng := rand.New(rand.NewPCG(seed, 1))
	x := make([]float32, n*net.Spec().Input.Size())
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	labels := make([]uint8, n)
	for i := range labels {
		labels[i] = uint8(rng.IntN(10))
	}
	return x, labels
}

type parityCase struct {
	name   string
	preset string
	cfg    func(net *nn.Net) backend.Config
	scales bool    // set per-parameter learning-rate scales, one frozen
	lr     float64 // the learning rate of every step
	// paramTol bounds the parameters' relative difference after
	// paritySteps steps.
	paramTol float64
}

func parityCases() []parityCase {
	var cases []parityCase
	for _, p := range models.PresetNames() {
		cases = append(cases, parityCase{name: p + "/sgd", preset: p, lr: 0.05, paramTol: paramTol, cfg: func(net *nn.Net) backend.Config {
			return backend.Config{
				Net: net, Batch: parityBatch, GradClip: 0.5, LabelSmoothing: 0.1, BatchNormMomentum: 0.1,
				Optimizer: optim.Config{Name: "sgd", LR: 0.05, Momentum: 0.9, Nesterov: true, WeightDecay: 5e-4},
			}
		}})
	}
	// The fast recipe's pieces: AdamW, scales (a frozen stem), lookahead.
	// Adam divides by √v: an element whose gradient is rounding noise
	// steps by up to lr either way on either backend, so its bound is in
	// learning rates (lr·paritySteps), not in float32 rounding.
	cases = append(cases, parityCase{name: "cifarnet-fast/adamw-lookahead", preset: "cifarnet-fast", scales: true, lr: 1e-3, paramTol: 3e-3, cfg: func(net *nn.Net) backend.Config {
		return backend.Config{
			Net: net, Batch: parityBatch, LabelSmoothing: 0.2, BatchNormMomentum: 0.4,
			Optimizer: optim.Config{Name: "adamw", LR: 1e-3, WeightDecay: 0.05},
			Averaging: backend.Averaging{Name: "lookahead", Every: 2, Decay: 0.9, Power: 1, TotalSteps: paritySteps},
		}
	}})
	return cases
}

// open builds the case's network from parityInitSd and its backend
// configuration.
func (c parityCase) open(t *testing.T) (*nn.Net, backend.Config) {
	t.Helper()
	spec, err := models.Preset(c.preset)
	if err != nil {
		t.Fatal(err)
	}
	net, err := nn.New(spec, parityInitSd)
	if err != nil {
		t.Fatal(err)
	}
	return net, c.cfg(net)
}

// run trains b for paritySteps steps at lr and returns the losses.
func run(t *testing.T, b backend.Backend, net *nn.Net, scales optim.Scales, lr float64) []backend.StepResult {
	t.Helper()
	if scales != nil {
		if err := b.SetScales(scales); err != nil {
			t.Fatal(err)
		}
	}
	var res []backend.StepResult
	for step := int64(1); step <= paritySteps; step++ {
		x, labels := images(net, parityBatch, uint64(step))
		r, err := b.Step(backend.Batch{X: x, Labels: labels, N: parityBatch}, lr, step, uint64(100+step))
		if err != nil {
			t.Fatalf("%s: step %d: %v", b.Device().ID, step, err)
		}
		res = append(res, r)
	}
	return res
}

func TestParityWithCPU(t *testing.T) {
	skipWithoutGPU(t)
	for _, c := range parityCases() {
		t.Run(c.name, func(t *testing.T) {
			net, cfg := c.open(t)
			var scales optim.Scales
			if c.scales {
				scales = make(optim.Scales, len(net.Trainable()))
				for i := range scales {
					scales[i] = 1
				}
				scales[0], scales[1] = 0, 4
			}
			cpu, gpu := open(t, "cpu", cfg), open(t, "cuda:0", cfg)
			if gpu.Device().Kind != backend.CUDAKind {
				t.Fatalf("cuda:0 opened %+v", gpu.Device())
			}
			want, got := run(t, cpu, net, scales, c.lr), run(t, gpu, net, scales, c.lr)
			for i := range want {
				d := math.Abs(got[i].Loss-want[i].Loss) / (1 + math.Abs(want[i].Loss))
				t.Logf("step %d: loss %.6f on the GPU, %.6f on the CPU (relative %.2g); correct %d, %d", i+1, got[i].Loss, want[i].Loss, d, got[i].Correct, want[i].Correct)
				if d > lossTol || math.IsNaN(d) {
					t.Errorf("step %d: loss %g on the GPU, %g on the CPU (relative %.2g > %.2g)", i+1, got[i].Loss, want[i].Loss, d, lossTol)
				}
				if abs(got[i].Correct-want[i].Correct) > 1 {
					t.Errorf("step %d: %d correct on the GPU, %d on the CPU", i+1, got[i].Correct, want[i].Correct)
				}
			}
			pc, err := cpu.Params()
			if err != nil {
				t.Fatal(err)
			}
			pg, err := gpu.Params()
			if err != nil {
				t.Fatal(err)
			}
			compareParams(t, "parameters", net, pg, pc, c.paramTol)
			if cfg.Averaging.On() {
				ac, err := cpu.Averaged()
				if err != nil {
					t.Fatal(err)
				}
				ag, err := gpu.Averaged()
				if err != nil {
					t.Fatal(err)
				}
				compareParams(t, "slow weights", net, ag, ac, c.paramTol)
			}

			x, _ := images(net, 50, 99) // not a multiple of anything the kernels tile by
			lc, err := cpu.Forward(x, 50)
			if err != nil {
				t.Fatal(err)
			}
			lc = append([]float32(nil), lc...)
			lg, err := gpu.Forward(x, 50)
			if err != nil {
				t.Fatal(err)
			}
			worst, at := worstDiff(lg, lc)
			t.Logf("evaluation logits: worst relative difference %.2g at %d", worst, at)
			if worst > logitTol || math.IsNaN(worst) {
				t.Errorf("evaluation logit %d: %g on the GPU, %g on the CPU (relative %.2g > %.2g)", at, lg[at], lc[at], worst, logitTol)
			}
		})
	}
}

// TestDeterminism trains twice on the GPU from the same weights, batches
// and seeds and wants the same bits.
func TestDeterminism(t *testing.T) {
	skipWithoutGPU(t)
	for _, c := range parityCases() {
		t.Run(c.name, func(t *testing.T) {
			net, cfg := c.open(t)
			var params [2][][]float32
			var losses [2][]backend.StepResult
			for i := range 2 {
				g := open(t, "cuda:0", cfg)
				losses[i] = run(t, g, net, nil, c.lr)
				var err error
				if params[i], err = g.Params(); err != nil {
					t.Fatal(err)
				}
				g.Close()
			}
			for s := range losses[0] {
				if losses[0][s] != losses[1][s] {
					t.Errorf("step %d: %+v, then %+v", s+1, losses[0][s], losses[1][s])
				}
			}
			for i, p := range net.Params() {
				for j := range params[0][i] {
					if math.Float32bits(params[0][i][j]) != math.Float32bits(params[1][i][j]) {
						t.Errorf("%s[%d]: %g, then %g", p.Name, j, params[0][i][j], params[1][i][j])
						break
					}
				}
			}
		})
	}
}

// compareParams compares got with want tensor by tensor, logging the
// worst difference of all.
func compareParams(t *testing.T, what string, net *nn.Net, got, want [][]float32, tol float64) {
	t.Helper()
	if len(got) != len(want) || len(got) != len(net.Params()) {
		t.Fatalf("%s: %d tensors on the GPU, %d on the CPU, %d in the net", what, len(got), len(want), len(net.Params()))
	}
	overall, where := 0.0, ""
	for i, p := range net.Params() {
		if len(got[i]) != len(want[i]) {
			t.Fatalf("%s: %s has %d values on the GPU, %d on the CPU", what, p.Name, len(got[i]), len(want[i]))
		}
		worst, at := worstDiff(got[i], want[i])
		if worst > overall || math.IsNaN(worst) {
			overall, where = worst, fmt.Sprintf("%s[%d]", p.Name, at)
		}
		if worst > tol || math.IsNaN(worst) {
			t.Errorf("%s: %s[%d] = %g on the GPU, %g on the CPU (relative %.2g > %.2g)", what, p.Name, at, got[i][at], want[i][at], worst, tol)
		}
	}
	t.Logf("%s: worst relative difference %.2g at %s", what, overall, where)
}

// worstDiff returns the largest |g−w|/(1+|w|) and where.
func worstDiff(got, want []float32) (float64, int) {
	worst, at := 0.0, 0
	for j, w := range want {
		d := math.Abs(float64(got[j])-float64(w)) / (1 + math.Abs(float64(w)))
		if d > worst || math.IsNaN(d) {
			worst, at = d, j
			if math.IsNaN(d) {
				break
			}
		}
	}
	return worst, at
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
