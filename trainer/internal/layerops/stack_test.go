package layerops

import (
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/cifarnet-go/cifarnet/models"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// impl picks the convolution and pooling ops of a stack.
type impl struct {
	name               string
	fastConv, fastPool bool
}

var (
	stockImpl    = impl{"gorgonia", false, false}
	fastConvImpl = impl{"layerops-conv+gorgonia-pool", true, false}
	fastImpl     = impl{"layerops", true, true}
)

// convStack is the training graph of the convolution and pooling layers of
// a spec on one batch, ending in the loss Σ out⊙r. Batchnorm, ReLU and
// dropout are left out: they are the same whichever ops are compared.
type convStack struct {
	batch int
	vm    G.VM
	grads G.Nodes // of the filters
}

func newConvStack(tb testing.TB, spec *models.Spec, batch int, im impl) *convStack {
	tb.Helper()
	rng := rand.New(rand.NewPCG(13, 14))
	g := G.NewGraph()
	in := spec.Input
	cur := param(g, "input", randn(rng, batch*in.C*in.H*in.W), batch, in.C, in.H, in.W)
	var filters G.Nodes
	for _, l := range spec.Layers {
		var err error
		switch l.Type {
		case models.Conv2D:
			c := cur.Shape()[1]
			w := param(g, l.Name+".weight", randn(rng, l.Filters*c*l.Kernel*l.Kernel), l.Filters, c, l.Kernel, l.Kernel)
			filters = append(filters, w)
			st := l.EffectiveStride()
			if im.fastConv {
				cur, err = Conv2D(cur, w, nil, st, l.Padding)
			} else {
				cur, err = G.Conv2d(cur, w, tensor.Shape{l.Kernel, l.Kernel}, []int{l.Padding, l.Padding}, []int{st, st}, nil)
			}
		case models.MaxPool:
			st := l.EffectiveStride()
			if im.fastPool {
				cur, err = MaxPool2D(cur, l.Kernel, st, 0)
			} else {
				cur, err = G.MaxPool2D(cur, tensor.Shape{l.Kernel, l.Kernel}, []int{0, 0}, []int{st, st})
			}
		}
		if err != nil {
			tb.Fatalf("%s: %v", l.Name, err)
		}
	}
	grads, err := G.Grad(weightedSum(tb, cur, randn(rng, cur.Shape().TotalSize())), filters...)
	if err != nil {
		tb.Fatal(err)
	}
	return &convStack{batch: batch, vm: G.NewTapeMachine(g), grads: grads}
}

// step runs the graph forward and backward once.
func (s *convStack) step(tb testing.TB) time.Duration {
	start := time.Now()
	s.vm.Reset()
	if err := s.vm.RunAll(); err != nil {
		tb.Fatal(err)
	}
	return time.Since(start)
}

// TestStepMemoryIsSteady runs training steps of the fast stack and checks
// that, once the first steps have sized every buffer, a step allocates
// next to nothing (the tape machine's own bookkeeping) and the heap does
// not grow.
func TestStepMemoryIsSteady(t *testing.T) {
	spec := &models.Spec{Name: "small", Input: models.Shape{C: 3, H: 24, W: 24}, Layers: []models.Layer{
		{Name: "conv1", Type: models.Conv2D, Filters: 16, Kernel: 3, Padding: 1},
		{Name: "pool1", Type: models.MaxPool, Kernel: 2},
		{Name: "conv2", Type: models.Conv2D, Filters: 16, Kernel: 3, Stride: 2, Padding: 1},
		{Name: "conv3", Type: models.Conv2D, Filters: 16, Kernel: 1},
	}}
	s := newConvStack(t, spec, 4, fastImpl)
	defer s.vm.Close()
	for range 3 {
		s.step(t)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const steps = 50
	for range steps {
		s.step(t)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perStep := (after.TotalAlloc - before.TotalAlloc) / steps
	// The first layer's output alone is 4·16·24·24 floats = 144 KiB; what
	// remains is gorgonia's: its tape machine and the ops of the loss.
	if perStep > 64<<10 {
		t.Errorf("a step allocates %d bytes", perStep)
	}
	if grow := int64(after.HeapInuse) - int64(before.HeapInuse); grow > 1<<20 {
		t.Errorf("heap in use grew by %d bytes over %d steps", grow, steps)
	}
	t.Logf("steady state: %d bytes allocated per step", perStep)
}

// BenchmarkKerasConvStackStep times one training step (forward and
// backward, no solver) of keras-cnn's convolution stack at batch 128 with
// gorgonia's ops, our convolution alone, and our convolution and pooling.
// The three run in turn within each iteration so that load from other
// processes hits them alike; run with -benchtime=Nx.
func BenchmarkKerasConvStackStep(b *testing.B) {
	const batch = 128
	impls := []impl{stockImpl, fastConvImpl, fastImpl}
	stacks := make([]*convStack, len(impls))
	for i, im := range impls {
		stacks[i] = newConvStack(b, models.KerasCNN(), batch, im)
		defer stacks[i].vm.Close()
		stacks[i].step(b) // size the buffers
	}
	best := make([]time.Duration, len(impls))
	b.ResetTimer()
	for b.Loop() {
		for i, s := range stacks {
			if d := s.step(b); best[i] == 0 || d < best[i] {
				best[i] = d
			}
		}
	}
	ips := func(d time.Duration) float64 { return batch / d.Seconds() }
	for i, im := range impls {
		b.ReportMetric(ips(best[i]), "img/s:"+im.name)
	}
	b.ReportMetric(best[0].Seconds()/best[2].Seconds(), "speedup")
}

// BenchmarkKerasConvStackStepFastops times our ops alone, for profiling.
func BenchmarkKerasConvStackStepFastops(b *testing.B) {
	const batch = 128
	s := newConvStack(b, models.KerasCNN(), batch, fastImpl)
	defer s.vm.Close()
	s.step(b)
	b.ResetTimer()
	for b.Loop() {
		s.step(b)
	}
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "img/s")
}
