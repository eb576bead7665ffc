package nn

import (
	"fmt"
	"testing"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/trainer/internal/layerops"
	"github.com/cifarnet-go/cifarnet/trainer/internal/optim"
)

// throughputCases are every preset at batch 128 and cifarnet-fast at the
// batch bench/train_vs_pytorch.sh compares with PyTorch (with keras-cnn at
// 128).
var throughputCases = []struct {
	preset string
	batch  int
}{
	{"keras-cnn", 128},
	{"cifarnet", 128},
	{"cifarnet-fast", 128},
	{"cifarnet-fast", 512},
}

// BenchmarkTrainThroughput measures full training steps, as the trainer
// runs them (forward in training mode with dropout, cross-entropy,
// backward, Adam update), on one batch of random N(0, 1) images, after one
// untimed warm-up step that allocates the machine's buffers. It reports
// images/s. bench/pytorch_train.py times the same steps in PyTorch; build
// with GOEXPERIMENT=simd for the AVX-512 convolutions.
//
//	GOEXPERIMENT=simd go test -run '^$' -bench TrainThroughput -benchtime 3x ./trainer/internal/nn
func BenchmarkTrainThroughput(b *testing.B) {
	for _, c := range throughputCases {
		b.Run(fmt.Sprintf("%s/batch=%d", c.preset, c.batch), func(b *testing.B) {
			b.Logf("layerops accelerated: %v", layerops.Accelerated())
			spec, err := models.Preset(c.preset)
			if err != nil {
				b.Fatal(err)
			}
			net, err := New(spec, 1)
			if err != nil {
				b.Fatal(err)
			}
			g, err := net.NewTrainGraph(c.batch, DefaultBatchNormMomentum)
			if err != nil {
				b.Fatal(err)
			}
			defer g.Close()
			const lr = 1e-3
			opt, err := optim.New(optim.Config{Name: "adam", LR: lr}, sizes(net))
			if err != nil {
				b.Fatal(err)
			}
			params := data(net)
			x := randomImages(spec, c.batch, 1)
			labels := make([]uint8, c.batch)
			for i := range labels {
				labels[i] = uint8(i % g.Classes())
			}
			var seed uint64 // a fresh dropout mask every step
			step := func() {
				seed++
				if _, _, err := g.Step(x, labels, 0, seed); err != nil {
					b.Fatal(err)
				}
				grads, err := g.Grads()
				if err != nil {
					b.Fatal(err)
				}
				if err := opt.Step(params, grads, lr); err != nil {
					b.Fatal(err)
				}
			}
			step() // warm-up, untimed: b.Loop starts the clock
			for b.Loop() {
				step()
			}
			b.ReportMetric(float64(b.N*c.batch)/b.Elapsed().Seconds(), "images/s")
		})
	}
}
