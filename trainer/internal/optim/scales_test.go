package optim

import (
	"math"
	"testing"
)

// TestScalesReparametrise checks the property the head scale of the fast
// recipe relies on: training u = s·w with plain SGD (the gradient of w is
// s·∂L/∂u) is the same as training u directly with learning-rate scale s²,
// weight decay included, for L(u) = ½‖u − target‖².
func TestScalesReparametrise(t *testing.T) {
	const s = 1.0 / 9
	target := []float64{3, -2, 0.5}
	for _, c := range []Config{
		{Name: "sgd", LR: 0.5, Momentum: 0.85, Nesterov: true, WeightDecay: 0.01},
		{Name: "sgd", LR: 0.5, Momentum: 0.9, WeightDecay: 0.02},
		{Name: "sgd", LR: 0.5},
	} {
		plain, _ := New(c, []int{3})
		scaled, _ := New(c, []int{3})
		if err := scaled.SetScales(Scales{s * s}); err != nil {
			t.Fatal(err)
		}
		w := []float32{2, 2, 2}             // u = s·w
		u := []float32{2 * s, 2 * s, 2 * s} // trained directly
		gw, gu := make([]float32, 3), make([]float32, 3)
		for step := range 30 {
			for j := range 3 {
				gu[j] = u[j] - float32(target[j])
				gw[j] = float32(s) * (float32(s)*w[j] - float32(target[j]))
			}
			plain.Step([][]float32{w}, [][]float32{gw}, c.LR)
			scaled.Step([][]float32{u}, [][]float32{gu}, c.LR)
			for j := range 3 {
				if d := math.Abs(float64(u[j]) - s*float64(w[j])); d > 1e-5 {
					t.Fatalf("%+v step %d: u[%d] = %g, s·w = %g", c, step, j, u[j], s*w[j])
				}
			}
		}
	}
}

// TestScalesDecayAndFreeze checks that a scale changes the step but not
// the weight decay, and that scale 0 leaves a parameter and its momentum
// alone.
func TestScalesDecayAndFreeze(t *testing.T) {
	for _, name := range []string{"sgd", "adamw"} {
		c := Config{Name: name, LR: 0.1, WeightDecay: 0.5}
		o, _ := New(c, []int{1, 1})
		o.SetScales(Scales{64, 1})
		p := [][]float32{{1}, {1}}
		o.Step(p, [][]float32{{0}, {0}}, c.LR) // zero gradient: decay only
		if p[0][0] != p[1][0] || math.Abs(float64(p[0][0])-0.95) > 1e-6 {
			t.Errorf("%s: decay with scales 64 and 1 gives %g and %g, want 0.95 for both", name, p[0][0], p[1][0])
		}
	}
	for _, c := range []Config{{Name: "sgd", LR: 0.1, Momentum: 0.9, Nesterov: true, WeightDecay: 0.01}, {Name: "adam", LR: 0.01, WeightDecay: 0.1}} {
		want := runOptimizer(t, c)
		o, _ := New(c, []int{3, 2})
		p := [][]float32{{0.5, -1, 2}, {7, 8}}
		if err := o.SetScales(Scales{1, 0}); err != nil {
			t.Fatal(err)
		}
		for step := range 5 {
			o.Step(p, [][]float32{grad(step), {1, -1}}, c.LR)
		}
		if p[1][0] != 7 || p[1][1] != 8 {
			t.Errorf("%s: frozen parameter moved to %v", c.Name, p[1])
		}
		for _, slot := range o.State().Slots {
			if slot[1][0] != 0 || slot[1][1] != 0 {
				t.Errorf("%s: frozen parameter's moments changed: %v", c.Name, slot[1])
			}
		}
		for j := range p[0] {
			if math.Abs(float64(p[0][j]-want[4][j])) > 1e-7 {
				t.Errorf("%s: unfrozen parameter %d = %g, alone %g", c.Name, j, p[0][j], want[4][j])
			}
		}
	}
	o, _ := New(Config{Name: "sgd", LR: 1}, []int{1, 1})
	for _, bad := range []Scales{{1}, {1, -1}, {math.NaN(), 1}, {math.Inf(1), 1}} {
		if err := o.SetScales(bad); err == nil {
			t.Errorf("scales %v accepted", bad)
		}
	}
}
