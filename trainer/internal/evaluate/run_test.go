package evaluate

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/models/modeltest"
	"github.com/cifarnet-go/cifarnet/trainer/internal/cifar"
)

// tinyModel is a small random network on CIFAR-shaped input.
func tinyModel(t *testing.T) *models.Model {
	t.Helper()
	spec := &models.Spec{Name: "tiny-cifar", Input: models.Shape{C: 3, H: 32, W: 32}, Layers: []models.Layer{
		{Name: "conv", Type: models.Conv2D, Filters: 6, Kernel: 3, Stride: 2, Padding: 1, Bias: true},
		{Name: "act", Type: models.ReLU},
		{Name: "pool", Type: models.GlobalAvgPool},
		{Name: "fc", Type: models.Linear, Units: 10, Bias: true},
		{Name: "prob", Type: models.Softmax},
	}}
	m, err := models.NewModel(modeltest.RandomFile(spec, 7))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// randomSet has n random images with random labels.
func randomSet(n int, seed uint64) *cifar.Set {
	rng := rand.New(rand.NewPCG(seed, 1))
	s := &cifar.Set{Images: make([]byte, n*cifar.ImageSize), Labels: make([]uint8, n), Classes: models.CIFAR10Classes}
	for i := range s.Images {
		s.Images[i] = byte(rng.IntN(256))
	}
	for i := range s.Labels {
		s.Labels[i] = uint8(rng.IntN(10))
	}
	return s
}

// reference classifies every image with one predictor, one image at a
// time, normalising with plain float arithmetic rather than the tables.
func reference(t *testing.T, m *models.Model, s *cifar.Set) []int {
	t.Helper()
	p := m.NewPredictor()
	x := make([]float32, cifar.ImageSize)
	out := make([]int, s.Len())
	n := m.Meta.Normalization
	for i := range s.Len() {
		for j, v := range s.Image(i) {
			c := j / cifar.PlaneSize
			x[j] = (float32(v)/255 - n.Mean[c]) / n.Std[c]
		}
		probs, err := p.Predict(x)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = Argmax(probs, 10)[0]
	}
	return out
}

func TestRunMatchesReference(t *testing.T) {
	m := tinyModel(t)
	s := randomSet(203, 1) // not a multiple of the batch: a short last batch
	want := reference(t, m, s)
	// Label every image with the model's own answer: accuracy must be 1,
	// which fails if batches and labels get out of step across workers.
	for i, p := range want {
		s.Labels[i] = uint8(p)
	}
	for _, workers := range []int{1, 2, 3} {
		res, err := Run(m, s, Options{Workers: workers, BatchSize: 16, LatencyImages: 50})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(res.Pred, want) {
			t.Fatalf("%d workers: predictions differ from one-by-one reference", workers)
		}
		if res.Metrics.Accuracy != 1 || res.Metrics.N != 203 {
			t.Errorf("%d workers: accuracy %g on %d images, want 1 on 203", workers, res.Metrics.Accuracy, res.Metrics.N)
		}
		if res.Batched.Images != 203 || res.Batched.BatchSize != 16 || !(res.Batched.MsPerImage > 0) || !(res.Batched.ImagesPerSecond > 0) {
			t.Errorf("batched speed %+v", res.Batched)
		}
		if res.Single == nil || res.Single.Images != 50 || res.Single.BatchSize != 1 || res.SingleDisagreements != 0 {
			t.Errorf("single pass %+v, %d disagreements", res.Single, res.SingleDisagreements)
		}
	}
	res, err := Run(m, s, Options{LatencyImages: -1})
	if err != nil || res.Single != nil || res.Batched.BatchSize != DefaultBatchSize {
		t.Errorf("defaults without batch-1 pass: %+v, %v", res, err)
	}
}

// TestRunReportsProgress: a long pass says how far it is, at every tenth
// of its images, with the time left.
func TestRunReportsProgress(t *testing.T) {
	var log strings.Builder
	if _, err := Run(tinyModel(t), randomSet(200, 2), Options{Workers: 2, BatchSize: 10, LatencyImages: -1, Log: &log}); err != nil {
		t.Fatal(err)
	}
	out := log.String()
	lines := strings.Count(out, "/200 images, ")
	if !strings.Contains(out, "accuracy, batches of 10: 200 images...") || lines < 5 || lines > 9 ||
		!strings.Contains(out, " left\n") || !strings.Contains(out, "done in") {
		t.Errorf("progress log:\n%s", out)
	}
}

func TestRunRejectsMismatchedData(t *testing.T) {
	m := tinyModel(t)
	if _, err := Run(m, &cifar.Set{}, Options{}); err == nil {
		t.Error("empty set: no error")
	}
	small := &cifar.Set{Images: make([]byte, 2*100), Labels: []uint8{0, 1}}
	if _, err := Run(m, small, Options{}); err == nil {
		t.Error("images of 100 bytes: no error")
	}
	s := randomSet(4, 2)
	s.Classes = []string{"a", "b"}
	if _, err := Run(m, s, Options{}); err == nil {
		t.Error("2 class names for a 10-class model: no error")
	}
	s = randomSet(4, 2)
	s.Labels[3] = 12
	if _, err := Run(m, s, Options{}); err == nil {
		t.Error("label 12: no error")
	}
}

func TestNormalizer(t *testing.T) {
	z, err := NewNormalizer(models.Normalization{Mean: []float32{0.5, 0, 1}, Std: []float32{0.5, 1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	src := []byte{0, 255, 0, 255, 51, 255} // planes of 2 values
	dst := make([]float32, 6)
	z.Normalize(dst, src)
	want := []float32{-1, 1, 0, 1, (0.2 - 1) / 2, 0}
	for i := range want {
		if math.Abs(float64(dst[i]-want[i])) > 1e-6 {
			t.Fatalf("normalised %v, want %v", dst, want)
		}
	}
	for _, bad := range []models.Normalization{
		{Mean: []float32{0}, Std: []float32{0}},
		{Mean: []float32{0, 0}, Std: []float32{1}},
		{},
	} {
		if _, err := NewNormalizer(bad); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}

func BenchmarkRunTinyModel(b *testing.B) {
	spec := &models.Spec{Name: "tiny-cifar", Input: models.Shape{C: 3, H: 32, W: 32}, Layers: []models.Layer{
		{Name: "conv", Type: models.Conv2D, Filters: 6, Kernel: 3, Stride: 2, Padding: 1, Bias: true},
		{Name: "pool", Type: models.GlobalAvgPool},
		{Name: "fc", Type: models.Linear, Units: 10, Bias: true},
	}}
	m, err := models.NewModel(modeltest.RandomFile(spec, 7))
	if err != nil {
		b.Fatal(err)
	}
	s := randomSet(512, 3)
	for b.Loop() {
		if _, err := Run(m, s, Options{LatencyImages: -1}); err != nil {
			b.Fatal(err)
		}
	}
}
