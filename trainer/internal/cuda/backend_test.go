package cuda_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/trainer/internal/backend"
	"github.com/cifarnet-go/cifarnet/trainer/internal/cuda"
	"github.com/cifarnet-go/cifarnet/trainer/internal/cuda/emu"
	"github.com/cifarnet-go/cifarnet/trainer/internal/nn"
	"github.com/cifarnet-go/cifarnet/trainer/internal/optim"
)

// These tests run the CUDA backend's whole step (the compiled graph, the
// kernels' sources, cuBLAS-convention GEMMs, clipping, the optimiser and
// weight averaging) on the host emulator and compare it with the CPU's
// gorgonia graph and optimiser, so that the first run on a real GPU finds
// few bugs.

// openEmu opens the CUDA backend on the emulator, skipping without cgo.
func openEmu(t *testing.T, cfg backend.Config) *cuda.Backend {
	t.Helper()
	dev, err := emu.New()
	if err != nil {
		t.Skipf("no host emulator: %v", err)
	}
	b, err := cuda.New(dev, "emu", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// batchOf returns n random images in about [−2, 2] and their labels.
func batchOf(net *nn.Net, n int, seed uint64) ([]float32, []uint8) {
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

// cpuStep is one training step the way the CPU trains today: the gorgonia
// graph, global-norm clipping and the optimiser, in place on net.
func cpuStep(t *testing.T, net *nn.Net, opt optim.Optimizer, x []float32, labels []uint8, cfg backend.Config, lr float64, seed uint64) float64 {
	t.Helper()
	g, err := net.NewTrainGraph(len(labels), cfg.BatchNormMomentum)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	loss, _, err := g.Step(x, labels, cfg.LabelSmoothing, seed)
	if err != nil {
		t.Fatal(err)
	}
	grads, err := g.Grads()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.GradClip > 0 {
		optim.ClipGlobalNorm(grads, cfg.GradClip)
	}
	var params [][]float32
	for _, p := range net.Trainable() {
		params = append(params, p.Data)
	}
	if err := opt.Step(params, grads, lr); err != nil {
		t.Fatal(err)
	}
	return loss
}

// compare reports tensors that differ by more than tol·(1+|want|).
func compare(t *testing.T, what string, net *nn.Net, got [][]float32, tol float64) {
	t.Helper()
	for i, p := range net.Params() {
		worst, at := 0.0, 0
		for j, w := range p.Data {
			d := math.Abs(float64(got[i][j])-float64(w)) / (1 + math.Abs(float64(w)))
			if d > worst || math.IsNaN(d) {
				worst, at = d, j
			}
		}
		if worst > tol || math.IsNaN(worst) {
			t.Errorf("%s: %s[%d] = %g on the GPU path, %g on the CPU (relative %.2g > %.2g)", what, p.Name, at, got[i][at], p.Data[at], worst, tol)
		}
	}
}

func TestStepMatchesCPU(t *testing.T) {
	for _, name := range models.PresetNames() {
		t.Run(name, func(t *testing.T) {
			spec, err := models.Preset(name)
			if err != nil {
				t.Fatal(err)
			}
			net, err := nn.New(spec, 3)
			if err != nil {
				t.Fatal(err)
			}
			const n = 3
			cfg := backend.Config{
				Net: net, Batch: n, GradClip: 0.5, LabelSmoothing: 0.1, BatchNormMomentum: 0.1,
				Optimizer: optim.Config{Name: "sgd", LR: 0.05, Momentum: 0.9, Nesterov: true, WeightDecay: 5e-4},
			}
			gpu := openEmu(t, cfg)
			opt, err := optim.New(cfg.Optimizer, sizes(net))
			if err != nil {
				t.Fatal(err)
			}
			for step := int64(1); step <= 2; step++ {
				x, labels := batchOf(net, n, uint64(step))
				seed := uint64(100 + step) // dropout masks: the same counter hash on both
				want := cpuStep(t, net, opt, x, labels, cfg, 0.05, seed)
				res, err := gpu.Step(backend.Batch{X: x, Labels: labels, N: n}, 0.05, step, seed)
				if err != nil {
					t.Fatal(err)
				}
				if math.Abs(res.Loss-want) > 1e-4*(1+math.Abs(want)) {
					t.Errorf("step %d: loss %g on the GPU path, %g on the CPU", step, res.Loss, want)
				}
			}
			got, err := gpu.Params()
			if err != nil {
				t.Fatal(err)
			}
			// Two SGD steps move the weights by lr × gradient; float32 sums in
			// another order differ far less than this.
			compare(t, "after 2 steps", net, got, 2e-4)

			// More images than the batch, and not a multiple of it: Forward
			// runs the evaluation graph on chunks.
			const m = 2*n + 1
			x, _ := batchOf(net, m, 9)
			ev, err := net.NewEvalGraph(m)
			if err != nil {
				t.Fatal(err)
			}
			defer ev.Close()
			want, err := ev.Forward(x, m)
			if err != nil {
				t.Fatal(err)
			}
			logits, err := gpu.Forward(x, m)
			if err != nil {
				t.Fatal(err)
			}
			if len(logits) != len(want) {
				t.Fatalf("%d logits for %d images, want %d", len(logits), m, len(want))
			}
			for i := range want {
				if math.Abs(float64(logits[i]-want[i])) > 1e-3*(1+math.Abs(float64(want[i]))) {
					t.Fatalf("evaluation logit %d: %g on the GPU path, %g on the CPU", i, logits[i], want[i])
				}
			}
		})
	}
}

func sizes(net *nn.Net) []int {
	var s []int
	for _, p := range net.Trainable() {
		s = append(s, len(p.Data))
	}
	return s
}

// TestAdamLookaheadAndState runs the fast recipe's pieces (AdamW,
// per-parameter scales, lookahead) over several steps, a short last batch,
// and moves the optimiser state and slow weights off and back on the
// device as checkpoints and resumes do.
func TestAdamLookaheadAndState(t *testing.T) {
	spec, err := models.Preset("cifarnet-fast")
	if err != nil {
		t.Fatal(err)
	}
	net, err := nn.New(spec, 5)
	if err != nil {
		t.Fatal(err)
	}
	cfg := backend.Config{
		Net: net, Batch: 4, BatchNormMomentum: 0.4,
		Optimizer: optim.Config{Name: "adamw", LR: 1e-3, WeightDecay: 0.05},
		Averaging: backend.Averaging{Name: "lookahead", Every: 2, Decay: 0.9, Power: 1, TotalSteps: 4},
	}
	gpu := openEmu(t, cfg)
	scales := make(optim.Scales, len(net.Trainable()))
	for i := range scales {
		scales[i] = 1
	}
	scales[0] = 0 // frozen, as the whitening stem
	scales[1] = 4
	if err := gpu.SetScales(scales); err != nil {
		t.Fatal(err)
	}
	opt, err := optim.New(cfg.Optimizer, sizes(net))
	if err != nil {
		t.Fatal(err)
	}
	if err := opt.SetScales(scales); err != nil {
		t.Fatal(err)
	}
	slow := net.Snapshot()
	for step := int64(1); step <= 4; step++ {
		n := 4
		if step == 3 {
			n = 3 // an epoch's short last batch
		}
		x, labels := batchOf(net, n, uint64(step))
		cpuStep(t, net, opt, x, labels, cfg, 1e-3, 0)
		if _, err := gpu.Step(backend.Batch{X: x, Labels: labels, N: n}, 1e-3, step, 0); err != nil {
			t.Fatal(err)
		}
		if step%2 == 0 { // run's averager, inlined
			w := float32(1 - 0.9*float64(step)/4)
			for i, p := range net.Params() {
				for j, v := range p.Data {
					slow[i][j] += w * (v - slow[i][j])
				}
				copy(p.Data, slow[i])
			}
		}
	}
	got, err := gpu.Params()
	if err != nil {
		t.Fatal(err)
	}
	// Adam divides by √v: an element whose gradient is almost 0 can step
	// by up to lr on either path, so the bound is in learning rates.
	compare(t, "after 4 steps", net, got, 3e-3)
	if !slices.Equal(got[0], net.Params()[0].Data) {
		t.Errorf("the frozen parameter %s changed", net.Params()[0].Name)
	}

	st, err := gpu.OptState()
	if err != nil {
		t.Fatal(err)
	}
	want := opt.State()
	if st.Kind != want.Kind || st.Steps != want.Steps || len(st.Slots) != len(want.Slots) {
		t.Fatalf("optimiser state %s after %d steps with %d slots, want %s, %d, %d", st.Kind, st.Steps, len(st.Slots), want.Kind, want.Steps, len(want.Slots))
	}
	avg, err := gpu.Averaged()
	if err != nil {
		t.Fatal(err)
	}
	// Round trip: what comes off the device goes back on unchanged.
	if err := gpu.SetOptState(st); err != nil {
		t.Fatal(err)
	}
	if err := gpu.SetAveraged(avg); err != nil {
		t.Fatal(err)
	}
	again, err := gpu.OptState()
	if err != nil {
		t.Fatal(err)
	}
	for s := range st.Slots {
		for i := range st.Slots[s] {
			if !slices.Equal(st.Slots[s][i], again.Slots[s][i]) {
				t.Fatalf("optimiser slot %d of parameter %d changed in a round trip", s, i)
			}
		}
	}
	bad := optim.State{Kind: "sgd", Steps: 1, Slots: st.Slots[:1]}
	if err := gpu.SetOptState(bad); err == nil {
		t.Error("SetOptState accepted SGD state for AdamW")
	}
	if _, err := gpu.Step(backend.Batch{X: make([]float32, 5*3072), Labels: make([]uint8, 5), N: 5}, 1e-3, 5, 0); err == nil {
		t.Error("Step accepted a batch larger than the backend's")
	}
	if _, err := gpu.Step(backend.Batch{X: make([]float32, 3072), Labels: []uint8{10}, N: 1}, 1e-3, 5, 0); err == nil {
		t.Error("Step accepted label 10 for 10 classes")
	}
}
