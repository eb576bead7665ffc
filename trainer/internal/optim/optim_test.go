package optim

import (
	"math"
	"testing"
)

// The expected sequences below were produced by PyTorch 1.13 (float64) for
// the parameter [0.5, −1, 2] and the gradients grad(t) below, t = 0..4.
func grad(t int) []float32 {
	return []float32{0.1 * float32(t+1), -0.3, 0.05 * float32(t-2)}
}

func runOptimizer(t *testing.T, c Config) [][]float32 {
	t.Helper()
	o, err := New(c, []int{3})
	if err != nil {
		t.Fatal(err)
	}
	p := []float32{0.5, -1, 2}
	var out [][]float32
	for step := range 5 {
		if err := o.Step([][]float32{p}, [][]float32{grad(step)}, c.LR); err != nil {
			t.Fatal(err)
		}
		out = append(out, append([]float32(nil), p...))
	}
	return out
}

func assertSequence(t *testing.T, got [][]float32, want [][]float64) {
	t.Helper()
	for s := range want {
		for j := range want[s] {
			if math.Abs(float64(got[s][j])-want[s][j]) > 2e-6 {
				t.Errorf("step %d param %d: got %.9g, PyTorch %.9g", s+1, j, got[s][j], want[s][j])
			}
		}
	}
}

func TestAdamMatchesPyTorch(t *testing.T) {
	// torch.optim.Adam(lr=0.01, weight_decay=0.1): L2 decay in the gradient.
	assertSequence(t, runOptimizer(t, Config{Name: "adam", LR: 0.01, WeightDecay: 0.1}), [][]float64{
		{0.4900000007, -0.9900000003, 1.990000001},
		{0.4801687017, -0.9800006608, 1.980087496},
		{0.4703945842, -0.9700024224, 1.970208973},
		{0.460613796, -0.9600057249, 1.960322708},
		{0.450787873, -0.9500110064, 1.95039866},
	})
}

func TestAdamWMatchesPyTorch(t *testing.T) {
	// torch.optim.AdamW(lr=0.01, weight_decay=0.1): decoupled decay.
	assertSequence(t, runOptimizer(t, Config{Name: "adamw", LR: 0.01, WeightDecay: 0.1}), [][]float64{
		{0.489500001, -0.9890000003, 2.007999999},
		{0.4793586814, -0.9780110007, 2.015313794},
		{0.4692993109, -0.96703299, 2.020504255},
		{0.4592259092, -0.9560659573, 2.021495525},
		{0.4490943093, -0.9451098917, 2.017991128},
	})
}

func TestSGDMatchesPyTorch(t *testing.T) {
	// torch.optim.SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01).
	assertSequence(t, runOptimizer(t, Config{Name: "sgd", LR: 0.1, Momentum: 0.9, Nesterov: true, WeightDecay: 0.01}), [][]float64{
		{0.48005, -0.9411, 2.0152},
		{0.432632905, -0.85720191, 2.02735112},
		{0.350567562, -0.7509119354, 2.031748841},
		{0.2274320445, -0.6245957072, 2.024171083},
		{0.05749346871, -0.4804001908, 2.00083375},
	})
	// torch.optim.SGD(lr=0.1, momentum=0.9).
	assertSequence(t, runOptimizer(t, Config{Name: "sgd", LR: 0.1, Momentum: 0.9}), [][]float64{
		{0.49, -0.97, 2.01},
		{0.461, -0.913, 2.024},
		{0.4049, -0.8317, 2.0366},
		{0.31441, -0.72853, 2.04294},
		{0.182969, -0.605677, 2.038646},
	})
}

func TestOptimizerStateResumes(t *testing.T) {
	for _, c := range []Config{{Name: "adamw", LR: 0.01, WeightDecay: 0.1}, {Name: "sgd", LR: 0.1, Momentum: 0.9, Nesterov: true}} {
		want := runOptimizer(t, c)
		// Two steps, save, restore into a fresh optimiser, three more.
		a, _ := New(c, []int{3})
		p := []float32{0.5, -1, 2}
		for s := range 2 {
			a.Step([][]float32{p}, [][]float32{grad(s)}, c.LR)
		}
		b, _ := New(c, []int{3})
		if err := b.SetState(a.State()); err != nil {
			t.Fatal(err)
		}
		for s := 2; s < 5; s++ {
			b.Step([][]float32{p}, [][]float32{grad(s)}, c.LR)
		}
		for j := range p {
			if p[j] != want[4][j] {
				t.Errorf("%s: resumed param %d = %g, uninterrupted %g", c.Name, j, p[j], want[4][j])
			}
		}
		if err := b.SetState(State{Kind: "other"}); err == nil {
			t.Errorf("%s: state of another kind accepted", c.Name)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{
		{Name: "rmsprop", LR: 1}, {Name: "adam"}, {Name: "adam", LR: -1},
		{Name: "sgd", LR: 1, Nesterov: true}, {Name: "adam", LR: 1, Beta1: 1},
		{Name: "adamw", LR: 1, WeightDecay: -1},
	} {
		if _, err := New(c, []int{1}); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

func TestPlateauMatchesPyTorch(t *testing.T) {
	// ReduceLROnPlateau(mode=min, factor=0.5, patience=2, min_lr=0.1).
	p, err := NewPlateau("min", 0.5, 2, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	metrics := []float64{1.0, 0.9, 0.95, 0.91, 0.92, 0.8, 0.85, 0.86, 0.87, 0.88, 0.89, 0.9, 0.91, 0.92, 0.93}
	want := []float64{1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125, 0.125, 0.125, 0.1}
	lr := 1.0
	for i, m := range metrics {
		lr = p.Step(m, lr)
		if math.Abs(lr-want[i]) > 1e-12 {
			t.Fatalf("epoch %d: lr %g, PyTorch %g", i+1, lr, want[i])
		}
	}
}

func TestWarmupDecay(t *testing.T) {
	w := WarmupDecay{Peak: 1, StartFactor: 0.1, EndFactor: 0, WarmupSteps: 10, TotalSteps: 30}
	if err := w.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		step int64
		want float64
	}{{0, 0.1}, {5, 0.55}, {10, 1}, {20, 0.5}, {30, 0}, {40, 0}} {
		if got := w.LR(c.step); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("linear step %d: %g, want %g", c.step, got, c.want)
		}
	}
	w.Cosine = true
	if got := w.LR(15); math.Abs(got-(1+math.Cos(math.Pi/4))/2) > 1e-12 {
		t.Errorf("cosine step 15: %g", got)
	}
	if (WarmupDecay{Peak: 1, WarmupSteps: 5, TotalSteps: 4}).Validate() == nil {
		t.Error("warm-up longer than the schedule accepted")
	}
}

func TestEarlyStopping(t *testing.T) {
	e, err := NewEarlyStopping("min", 3, 0.01)
	if err != nil {
		t.Fatal(err)
	}
	// 0.995 is not better than 1.0 by more than min_delta.
	metrics := []float64{1.0, 0.8, 0.795, 0.81, 0.79, 0.9}
	wantImproved := []bool{true, true, false, false, false, false}
	wantStop := []bool{false, false, false, false, true, true}
	for i, m := range metrics {
		imp, stop := e.Update(m, i+1)
		if imp != wantImproved[i] || stop != wantStop[i] {
			t.Errorf("epoch %d (%g): improved %v stop %v, want %v %v", i+1, m, imp, stop, wantImproved[i], wantStop[i])
		}
	}
	if e.BestEpoch != 2 || e.Best != 0.8 {
		t.Errorf("best epoch %d value %g, want 2 and 0.8", e.BestEpoch, e.Best)
	}
	acc, _ := NewEarlyStopping(ModeFor("val_accuracy"), 1, 0)
	acc.Update(0.5, 1)
	if imp, _ := acc.Update(0.6, 2); !imp {
		t.Error("higher accuracy not an improvement")
	}
}

func TestClipGlobalNormMatchesPyTorch(t *testing.T) {
	g := [][]float32{{3, 4}, {12}}
	norm := ClipGlobalNorm(g, 6.5)
	if norm != 13 {
		t.Errorf("norm %g, want 13", norm)
	}
	want := []float64{1.4999998846153937, 1.9999998461538582, 5.999999538461575}
	got := []float32{g[0][0], g[0][1], g[1][0]}
	for i := range want {
		if math.Abs(float64(got[i])-want[i]) > 1e-6 {
			t.Errorf("clipped %d: %g, PyTorch %g", i, got[i], want[i])
		}
	}
	small := [][]float32{{0.3, 0.4}}
	ClipGlobalNorm(small, 1)
	if small[0][0] != 0.3 || small[0][1] != 0.4 {
		t.Errorf("gradient under the limit changed: %v", small)
	}
}
