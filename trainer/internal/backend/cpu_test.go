package backend

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/trainer/internal/evaluate"
	"github.com/cifarnet-go/cifarnet/trainer/internal/nn"
	"github.com/cifarnet-go/cifarnet/trainer/internal/optim"
)

func TestCPUDevice(t *testing.T) {
	d := CPUDevice()
	if d.Kind != "cpu" || d.ID != "cpu" || !strings.HasSuffix(d.Name, " threads") || strings.HasPrefix(d.Name, ",") {
		t.Errorf("CPU device %+v", d)
	}
	if s := d.String(); !strings.HasPrefix(s, "cpu (") {
		t.Errorf("String() = %q", s)
	}
	t.Log(d)
}

// smallNet is a convolution, batchnorm, dropout and linear head: every
// kind of state a step touches.
func smallNet(t *testing.T) *nn.Net {
	t.Helper()
	spec := &models.Spec{
		Name:  "small",
		Input: models.Shape{C: 3, H: 8, W: 8},
		Layers: []models.Layer{
			{Name: "conv", Type: models.Conv2D, Filters: 4, Kernel: 3, Padding: 1},
			{Name: "bn", Type: models.BatchNorm},
			{Name: "relu", Type: models.ReLU},
			{Name: "gap", Type: models.GlobalAvgPool},
			{Name: "drop", Type: models.Dropout, Rate: 0.2},
			{Name: "fc", Type: models.Linear, Units: 3, Bias: true},
		},
	}
	net, err := nn.New(spec, 7)
	if err != nil {
		t.Fatal(err)
	}
	return net
}

func batch(n int, seed uint64) Batch {
	rng := rand.New(rand.NewPCG(seed, 1))
	b := Batch{X: make([]float32, n*3*8*8), Labels: make([]uint8, n), N: n}
	for i := range b.X {
		b.X[i] = float32(rng.NormFloat64())
	}
	for i := range b.Labels {
		b.Labels[i] = uint8(rng.IntN(3))
	}
	return b
}

// TestCPUStepIsTheGraphStep checks that the CPU backend computes exactly
// what the training loop did before it: the graph's step, clipping, the
// optimiser and the averaging, in that order, on full and short batches;
// and that it leaves the caller's network alone.
func TestCPUStepIsTheGraphStep(t *testing.T) {
	cfg := Config{Net: smallNet(t), Batch: 8, Optimizer: optim.Config{Name: "adamw", LR: 0.01, WeightDecay: 1e-3},
		GradClip: 0.5, LabelSmoothing: 0.1, BatchNormMomentum: 0.1,
		Averaging: Averaging{Name: "lookahead", Every: 2, Decay: 0.9, Power: 1, TotalSteps: 4}}
	initial := cfg.Net.Snapshot()
	b, err := NewCPU(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	// By hand, on a copy.
	ref := smallNet(t)
	var params [][]float32
	var sizes []int
	for _, p := range ref.Trainable() {
		params, sizes = append(params, p.Data), append(sizes, len(p.Data))
	}
	opt, _ := optim.New(cfg.Optimizer, sizes)
	slow := ref.Snapshot()
	graphs := map[int]*nn.Graph{}
	for step, n := range []int{8, 8, 5, 8} {
		bt := batch(n, uint64(step))
		seed := uint64(100 + step)
		got, err := b.Step(bt, 0.01, int64(step+1), seed)
		if err != nil {
			t.Fatal(err)
		}
		g := graphs[n]
		if g == nil {
			g, _ = ref.NewTrainGraph(n, cfg.BatchNormMomentum)
			graphs[n] = g
			defer g.Close()
		}
		loss, logits, err := g.Step(bt.X, bt.Labels, cfg.LabelSmoothing, seed)
		if err != nil {
			t.Fatal(err)
		}
		correct := evaluate.Correct(logits, bt.Labels, 3)
		grads, _ := g.Grads()
		optim.ClipGlobalNorm(grads, cfg.GradClip)
		opt.Step(params, grads, 0.01)
		if a := cfg.Averaging; a.Due(int64(step + 1)) {
			w := float32(1 - a.DecayAt(int64(step+1)))
			for i, p := range ref.Params() {
				for j, v := range p.Data {
					slow[i][j] += w * (v - slow[i][j])
				}
				copy(p.Data, slow[i])
			}
		}
		if got.Loss != loss || got.Correct != correct {
			t.Errorf("step %d: %+v, by hand loss %g correct %d", step+1, got, loss, correct)
		}
	}
	ps, _ := b.Params()
	avg, _ := b.Averaged()
	for i, p := range ref.Params() {
		if !slices.Equal(ps[i], p.Data) || !slices.Equal(avg[i], slow[i]) {
			t.Errorf("%s differs from the graph step by hand", p.Name)
		}
	}
	for i, p := range cfg.Net.Params() {
		if !slices.Equal(p.Data, initial[i]) {
			t.Errorf("Step changed the caller's %s", p.Name)
		}
	}
	st, _ := b.OptState()
	if want := opt.State(); st.Steps != want.Steps || !slices.Equal(st.Slots[1][0], want.Slots[1][0]) {
		t.Errorf("optimiser state differs")
	}

	// Forward is the evaluation graph's on the backend's weights.
	if err := ref.Restore(ps); err != nil {
		t.Fatal(err)
	}
	eval, _ := ref.NewEvalGraph(8)
	defer eval.Close()
	x := batch(3, 9).X
	want, _ := eval.Forward(x, 3)
	want = slices.Clone(want)
	got, err := b.Forward(x, 3)
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("Forward %v (%v), eval graph %v", got, err, want)
	}
	// More images than the configured batch run in chunks, each image's
	// logits the same as on its own.
	many := batch(11, 4).X
	got, err = b.Forward(many, 11)
	k := eval.Classes()
	if err != nil || len(got) != 11*k {
		t.Fatalf("Forward of 11 images with batch %d: %d logits (%v)", cfg.Batch, len(got), err)
	}
	got = slices.Clone(got)
	per := len(many) / 11
	for i := range 11 {
		one, err := eval.Forward(many[i*per:(i+1)*per], 1)
		if err != nil || !slices.Equal(got[i*k:(i+1)*k], one) {
			t.Errorf("image %d of 11: logits %v, alone %v (%v)", i, got[i*k:(i+1)*k], one, err)
		}
	}
	if _, err := b.Forward(many[:per-1], 1); err == nil {
		t.Error("Forward accepted an image of the wrong size")
	}
	if _, err := b.Step(batch(9, 1), 0.01, 5, 1); err == nil {
		t.Error("a batch larger than Config.Batch was accepted")
	}
}

// TestCPUState checks the copies in and out: parameters, optimiser state,
// slow weights, and the errors on the wrong shapes.
func TestCPUState(t *testing.T) {
	cfg := Config{Net: smallNet(t), Batch: 4, Optimizer: optim.Config{Name: "sgd", LR: 0.1, Momentum: 0.9}}
	b, err := NewCPU(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.Step(batch(4, 1), 0.1, 1, 1); err != nil {
		t.Fatal(err)
	}
	p, _ := b.Params()
	s, _ := b.OptState()
	p2 := make([][]float32, len(p))
	for i := range p {
		p2[i] = slices.Clone(p[i])
		p2[i][0] = 42
	}
	if err := b.SetParams(p2); err != nil {
		t.Fatal(err)
	}
	p2[0][0] = 7 // SetParams copies
	if got, _ := b.Params(); got[0][0] != 42 {
		t.Errorf("SetParams: first value %g, want 42", got[0][0])
	}
	if err := b.SetParams(p[:1]); err == nil {
		t.Error("SetParams accepted too few tensors")
	}
	if err := b.SetOptState(s); err != nil {
		t.Error(err)
	}
	if err := b.SetOptState(optim.State{Kind: "adam"}); err == nil {
		t.Error("SetOptState accepted Adam's state for SGD")
	}
	if avg, err := b.Averaged(); avg != nil || err != nil {
		t.Errorf("Averaged without averaging: %v, %v", avg, err)
	}
	if err := b.SetAveraged(p); err == nil {
		t.Error("SetAveraged accepted weights without averaging")
	}
	if err := b.SetScales(optim.Scales{1}); err == nil {
		t.Error("SetScales accepted the wrong number of scales")
	}
}

// TestAveraging checks the averaging formula on a linear layer: nothing
// between updates, halfway at decay 0.5, lookahead resetting the trained
// weights and EMA leaving them.
func TestAveraging(t *testing.T) {
	spec := &models.Spec{Name: "lin", Input: models.Shape{C: 2, H: 1, W: 1},
		Layers: []models.Layer{{Name: "fc", Type: models.Linear, Units: 1}}}
	for _, name := range []string{"lookahead", "ema"} {
		net, _ := nn.New(spec, 1)
		copy(net.Param("fc.weight").Data, []float32{1, 1})
		a := Averaging{Name: name, Every: 2, Decay: 0.5, Power: 1, TotalSteps: 10}
		b, err := NewCPU(Config{Net: net, Batch: 1, Optimizer: optim.Config{Name: "sgd", LR: 1}, Averaging: a})
		if err != nil {
			t.Fatal(err)
		}
		c := b.(*cpu)
		w := c.net.Param("fc.weight").Data
		copy(w, []float32{3, 5})
		c.average(1) // not a multiple of Every: nothing
		if c.slow[0][0] != 1 || w[0] != 3 {
			t.Fatalf("%s: step 1 changed the weights", name)
		}
		c.average(10) // d = 0.5·(10/10)¹: halfway
		if !slices.Equal(c.slow[0], []float32{2, 3}) {
			t.Errorf("%s: slow weights %v, want [2 3]", name, c.slow[0])
		}
		if want := map[string][]float32{"lookahead": {2, 3}, "ema": {3, 5}}[name]; !slices.Equal(w, want) {
			t.Errorf("%s: trained weights %v after the update, want %v", name, w, want)
		}
		if d := a.DecayAt(5); d != 0.25 {
			t.Errorf("decay at step 5 of 10 = %g, want 0.25", d)
		}
		if err := b.SetAveraged([][]float32{{1}}); err == nil {
			t.Errorf("%s: SetAveraged accepted the wrong shapes", name)
		}
		b.Close()
	}
	if (Averaging{}).On() || (Averaging{Name: "none"}).On() {
		t.Error("averaging on without a name")
	}
}

func TestConfigValidate(t *testing.T) {
	good := Config{Net: smallNet(t), Batch: 4, Optimizer: optim.Config{Name: "sgd", LR: 0.1}}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []func(*Config){
		func(c *Config) { c.Net = nil },
		func(c *Config) { c.Batch = 0 },
		func(c *Config) { c.Optimizer.Name = "rmsprop" },
		func(c *Config) { c.LabelSmoothing = 1 },
		func(c *Config) { c.Averaging = Averaging{Name: "swa"} },
		func(c *Config) { c.Averaging = Averaging{Name: "ema", Every: 0, TotalSteps: 1} },
	} {
		bad := good
		c(&bad)
		if _, err := NewCPU(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
