package nn

import (
	"math"
	"runtime"
	"testing"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/models/modeltest"
	"github.com/cifarnet-go/cifarnet/trainer/internal/evaluate"
	"github.com/cifarnet-go/cifarnet/trainer/internal/optim"
)

// train runs steps Adam steps on one batch and returns the first and last
// loss and the last batch accuracy.
func train(t testing.TB, net *Net, g *Graph, x []float32, labels []uint8, steps int) (first, last, acc float64) {
	opt, err := optim.New(optim.Config{Name: "adam", LR: 1e-2}, sizes(net))
	if err != nil {
		t.Fatal(err)
	}
	params := data(net)
	for s := range steps {
		loss, logits, err := g.Step(x, labels, 0, uint64(s))
		if err != nil {
			t.Fatal(err)
		}
		if s == 0 {
			first = loss
		}
		last = loss
		acc = accuracy(logits, labels, g.Classes())
		grads, err := g.Grads()
		if err != nil {
			t.Fatal(err)
		}
		if err := opt.Step(params, grads, 1e-2); err != nil {
			t.Fatal(err)
		}
	}
	return first, last, acc
}

func sizes(n *Net) []int {
	var s []int
	for _, p := range n.Trainable() {
		s = append(s, len(p.Data))
	}
	return s
}

func data(n *Net) [][]float32 {
	var d [][]float32
	for _, p := range n.Trainable() {
		d = append(d, p.Data)
	}
	return d
}

func accuracy(logits []float32, labels []uint8, k int) float64 {
	return float64(evaluate.Correct(logits, labels, k)) / float64(len(labels))
}

// TestOverfitsABatch trains the tiny spec (every layer type, dropout
// included) on one batch of random images with random labels: with working
// gradients it memorises them, and the evaluation graph, using the running
// statistics the training steps accumulated, classifies them too.
func TestOverfitsABatch(t *testing.T) {
	spec := modeltest.TinySpec()
	net, err := New(spec, 1)
	if err != nil {
		t.Fatal(err)
	}
	const batch = 32
	g, err := net.NewTrainGraph(batch, DefaultBatchNormMomentum)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	x := randomImages(spec, batch, 2)
	labels := make([]uint8, batch)
	for i := range labels {
		labels[i] = uint8((i * 7) % 10)
	}
	first, last, acc := train(t, net, g, x, labels, 300)
	t.Logf("loss %.3f → %.3f, batch accuracy %.2f", first, last, acc)
	if !(first > 2) || !(last < 0.3*first) {
		t.Errorf("loss %.3f → %.3f: did not fall below 30%% of the start", first, last)
	}
	if acc < 0.8 { // in training mode, with dropout
		t.Errorf("training accuracy %.2f, want ≥ 0.8", acc)
	}
	ev, err := net.NewEvalGraph(batch)
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	logits, err := ev.Forward(x, batch)
	if err != nil {
		t.Fatal(err)
	}
	if a := accuracy(logits, labels, 10); a < 0.9 {
		t.Errorf("evaluation accuracy %.2f, want ≥ 0.9", a)
	}
}

// TestNewInitialisation checks PyTorch's default initialisation bounds and
// determinism.
func TestNewInitialisation(t *testing.T) {
	spec, _ := models.Preset("cifarnet")
	a, err := New(spec, 5)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := New(spec, 5)
	c, _ := New(spec, 6)
	w := a.Param("block2.conv1.weight")
	bound := 1 / math.Sqrt(64*9)
	var maxAbs float64
	for _, v := range w.Data {
		maxAbs = max(maxAbs, math.Abs(float64(v)))
	}
	if maxAbs > bound || maxAbs < 0.95*bound {
		t.Errorf("conv weight max |w| %g, want just under 1/√fan_in = %g", maxAbs, bound)
	}
	if a.Param("block1.bn1.weight").Data[0] != 1 || a.Param("block1.add.proj_bn.running_var").Data[3] != 1 ||
		a.Param("block1.bn1.bias").Data[0] != 0 {
		t.Error("batchnorm not initialised to γ=1, β=0, var=1")
	}
	if b.Param("fc.bias").Data[3] != a.Param("fc.bias").Data[3] || c.Param("fc.bias").Data[3] == a.Param("fc.bias").Data[3] {
		t.Error("initialisation not determined by the seed")
	}
	// Round trip through a weight file.
	f := a.File(models.Meta{})
	if err := c.Load(f); err != nil {
		t.Fatal(err)
	}
	if c.Param("block4.conv2.weight").Data[17] != w.Data[17] && c.Param("block4.conv2.weight").Data[17] != a.Param("block4.conv2.weight").Data[17] {
		t.Error("Load did not copy the weights")
	}
	tiny, _ := New(modeltest.TinySpec(), 1)
	if err := tiny.Load(f); err == nil {
		t.Error("weights of another spec loaded")
	}
}

// BenchmarkTrainStep measures one forward and backward pass plus an AdamW
// update at batch 128, reporting images/s and the Go heap in use.
func BenchmarkTrainStep(b *testing.B) {
	for _, name := range models.PresetNames() {
		b.Run(name, func(b *testing.B) {
			spec, _ := models.Preset(name)
			net, err := New(spec, 1)
			if err != nil {
				b.Fatal(err)
			}
			const batch = 128
			g, err := net.NewTrainGraph(batch, DefaultBatchNormMomentum)
			if err != nil {
				b.Fatal(err)
			}
			defer g.Close()
			opt, _ := optim.New(optim.Config{Name: "adamw", LR: 1e-3, WeightDecay: 1e-4}, sizes(net))
			params := data(net)
			x := randomImages(spec, batch, 1)
			labels := make([]uint8, batch)
			for i := range labels {
				labels[i] = uint8(i % 10)
			}
			step := func(s int) {
				if _, _, err := g.Step(x, labels, 0, uint64(s)); err != nil {
					b.Fatal(err)
				}
				grads, err := g.Grads()
				if err != nil {
					b.Fatal(err)
				}
				if err := opt.Step(params, grads, 1e-3); err != nil {
					b.Fatal(err)
				}
			}
			step(0) // allocate the machine's buffers
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				step(i + 1)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "images/s")
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
		})
	}
}
