package nn

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/models/modeltest"
)

// randomImages returns n normalised-looking images for spec.
func randomImages(spec *models.Spec, n int, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 1))
	x := make([]float32, n*spec.Input.Size())
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return x
}

// TestEvalMatchesPredictor checks that the evaluation graph computes the
// same logits as the models package's inference forward pass, layer
// semantics and parameter layout included, for every preset.
func TestEvalMatchesPredictor(t *testing.T) {
	specs := []*models.Spec{modeltest.TinySpec()}
	for _, name := range models.PresetNames() {
		s, err := models.Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		specs = append(specs, s)
	}
	for _, spec := range specs {
		t.Run(spec.Name, func(t *testing.T) {
			f := modeltest.RandomFile(spec, 7)
			net, err := FromFile(f)
			if err != nil {
				t.Fatal(err)
			}
			const n = 3
			g, err := net.NewEvalGraph(4) // one padding row
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			x := randomImages(spec, n, 11)
			got, err := g.Forward(x, n)
			if err != nil {
				t.Fatal(err)
			}
			m, err := models.NewModel(f)
			if err != nil {
				t.Fatal(err)
			}
			p := m.NewPredictor()
			if _, err := p.PredictBatch(x, n); err != nil {
				t.Fatal(err)
			}
			want := p.Logits()
			if len(got) != len(want) {
				t.Fatalf("%d logits, predictor gives %d", len(got), len(want))
			}
			for i := range want {
				if d := math.Abs(float64(got[i] - want[i])); d > 1e-4*max(1, math.Abs(float64(want[i]))) {
					t.Errorf("logit %d: graph %g, predictor %g", i, got[i], want[i])
				}
			}
		})
	}
}

// smoothSpec is the tiny spec without kinks that finite differences could
// straddle: GELU for every activation and a strided convolution for the
// max-pool. The kinked ops are checked on their own in ops_test.go.
func smoothSpec() *models.Spec {
	s := modeltest.TinySpec()
	for i, l := range s.Layers {
		switch l.Type {
		case models.ReLU, models.LeakyReLU:
			s.Layers[i] = models.Layer{Name: l.Name, Type: models.GELU}
		case models.MaxPool:
			s.Layers[i] = models.Layer{Name: l.Name, Type: models.Conv2D, Filters: 4, Kernel: 2, Stride: 2}
		}
	}
	return s
}

// TestGradientsMatchFiniteDifferences checks every trainable parameter's
// gradient through a whole network with batchnorm, residual adds (plain
// and projected), GELU, global average pooling, dropout, linear layers and
// label-smoothed cross-entropy against central differences of the loss.
// Dropout uses the same seed on every evaluation, so the loss is a
// deterministic function of the weights.
func TestGradientsMatchFiniteDifferences(t *testing.T) {
	spec := smoothSpec()
	net, err := New(spec, 3)
	if err != nil {
		t.Fatal(err)
	}
	const batch = 4
	g, err := net.NewTrainGraph(batch, DefaultBatchNormMomentum)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	x := randomImages(spec, batch, 5)
	labels := []uint8{1, 7, 3, 9}
	const seed, smoothing = 42, 0.1
	running := saveRunning(net)
	loss := func() float64 {
		l, _, err := g.Step(x, labels, smoothing, seed)
		if err != nil {
			t.Fatal(err)
		}
		restoreRunning(net, running) // training steps move them
		return l
	}
	loss()
	grads, err := g.Grads()
	if err != nil {
		t.Fatal(err)
	}
	analytic := make([][]float32, len(grads))
	for i, gr := range grads {
		analytic[i] = append([]float32(nil), gr...)
	}
	rng := rand.New(rand.NewPCG(9, 9))
	for pi, p := range net.Trainable() {
		for range 3 {
			j := rng.IntN(len(p.Data))
			orig := p.Data[j]
			const h = 1e-2
			p.Data[j] = orig + h
			up := loss()
			p.Data[j] = orig - h
			down := loss()
			p.Data[j] = orig
			num := (up - down) / (2 * h)
			a := float64(analytic[pi][j])
			if math.Abs(num-a) > 1e-3+0.03*math.Abs(num) {
				t.Errorf("%s[%d]: gradient %g, finite difference %g", p.Name, j, a, num)
			}
		}
	}
}

func saveRunning(n *Net) map[string][]float32 {
	m := map[string][]float32{}
	for _, p := range n.Params() {
		if !p.Trainable {
			m[p.Name] = append([]float32(nil), p.Data...)
		}
	}
	return m
}

func restoreRunning(n *Net, m map[string][]float32) {
	for name, d := range m {
		copy(n.Param(name).Data, d)
	}
}
