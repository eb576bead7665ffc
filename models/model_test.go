package models_test

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/models/modeltest"
)

func newPredictor(t testing.TB, preset string) (*models.Model, *models.Predictor) {
	t.Helper()
	spec, err := models.Preset(preset)
	if err != nil {
		t.Fatal(err)
	}
	m, err := models.NewModel(modeltest.RandomFile(spec, 7))
	if err != nil {
		t.Fatal(err)
	}
	return m, m.NewPredictor()
}

func input(n, size int, seed float64) []float32 {
	x := make([]float32, n*size)
	for i := range x {
		x[i] = float32(math.Sin(float64(i)*0.37 + seed))
	}
	return x
}

func TestPredictProbabilities(t *testing.T) {
	for _, preset := range models.PresetNames() {
		m, p := newPredictor(t, preset)
		probs, err := p.Predict(input(1, m.InputSize(), 1))
		if err != nil {
			t.Fatal(err)
		}
		if len(probs) != 10 {
			t.Fatalf("%s: %d probabilities, want 10", preset, len(probs))
		}
		sum := 0.0
		for _, v := range probs {
			if !(v >= 0 && v <= 1) {
				t.Fatalf("%s: probability %v out of [0, 1]", preset, v)
			}
			sum += float64(v)
		}
		if math.Abs(sum-1) > 1e-5 {
			t.Errorf("%s: probabilities sum to %v", preset, sum)
		}
	}
}

// A batch gives each image the result it gets alone, whatever the batch
// size and order of calls (buffers are reused and grown).
func TestBatchMatchesSingle(t *testing.T) {
	m, p := newPredictor(t, "cifarnet")
	size := m.InputSize()
	x := input(5, size, 2)
	single := make([][]float32, 5)
	for i := range single {
		probs, err := p.Predict(x[i*size : (i+1)*size])
		if err != nil {
			t.Fatal(err)
		}
		single[i] = append([]float32(nil), probs...)
	}
	for _, n := range []int{3, 5, 2} {
		probs, err := p.PredictBatch(x[:n*size], n)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			for j := 0; j < 10; j++ {
				if d := math.Abs(float64(probs[i*10+j] - single[i][j])); d > 1e-6 {
					t.Fatalf("batch %d image %d class %d differs by %g", n, i, j, d)
				}
			}
		}
	}
}

func TestPredictSteadyStateAllocatesNothing(t *testing.T) {
	for _, preset := range models.PresetNames() {
		m, p := newPredictor(t, preset)
		x := input(1, m.InputSize(), 3)
		xs := input(4, m.InputSize(), 4)
		p.Predict(x)
		p.PredictBatch(xs, 4)
		if a := testing.AllocsPerRun(3, func() { p.Predict(x) }); a != 0 {
			t.Errorf("%s: Predict allocates %v times per call", preset, a)
		}
		if a := testing.AllocsPerRun(2, func() { p.PredictBatch(xs, 4) }); a != 0 {
			t.Errorf("%s: PredictBatch allocates %v times per call", preset, a)
		}
	}
}

func TestPredictRejectsBadInput(t *testing.T) {
	m, p := newPredictor(t, "cifarnet-fast")
	for _, tc := range []struct {
		n    int
		x    []float32
		want string
	}{
		{1, nil, "input has 0 values"},
		{1, make([]float32, m.InputSize()-1), "want 1 images"},
		{2, make([]float32, m.InputSize()), "want 2 images"},
		{0, make([]float32, m.InputSize()), "batch size 0"},
	} {
		if _, err := p.PredictBatch(tc.x, tc.n); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("PredictBatch(len %d, %d): error %v, want %q", len(tc.x), tc.n, err, tc.want)
		}
	}
}

func TestNewModelRejectsInvalidFiles(t *testing.T) {
	spec, _ := models.Preset("keras-cnn")
	f := modeltest.RandomFile(spec, 1)
	delete(f.Tensors, "fc2.weight")
	if _, err := models.NewModel(f); err == nil || !strings.Contains(err.Error(), `"fc2.weight" missing`) {
		t.Errorf("missing tensor: error %v", err)
	}
	f = modeltest.RandomFile(spec, 1)
	f.Tensors["fc2.weight"].Shape = []int{10, 255}
	if _, err := models.NewModel(f); err == nil || !strings.Contains(err.Error(), "shape") {
		t.Errorf("wrong shape: error %v", err)
	}
}

func BenchmarkPredict(b *testing.B) {
	for _, preset := range models.PresetNames() {
		for _, n := range []int{1, 64} {
			b.Run(fmt.Sprintf("%s/batch=%d", preset, n), func(b *testing.B) {
				m, p := newPredictor(b, preset)
				x := input(n, m.InputSize(), 5)
				flops, _ := m.Meta.Spec.FLOPs()
				b.ResetTimer()
				for b.Loop() {
					if _, err := p.PredictBatch(x, n); err != nil {
						b.Fatal(err)
					}
				}
				perImage := b.Elapsed().Seconds() / float64(b.N*n)
				b.ReportMetric(perImage*1e3, "ms/image")
				b.ReportMetric(float64(flops)/perImage/1e9, "GFLOP/s")
			})
		}
		// What test-time augmentation costs per image: six views (the
		// image and two diagonal shifts, each mirrored) as the browser
		// runs them, one image at a time.
		b.Run(preset+"/batch=1,tta=flip+translate", func(b *testing.B) {
			spec, err := models.Preset(preset)
			if err != nil {
				b.Fatal(err)
			}
			f := modeltest.RandomFile(spec, 7)
			f.Meta.Inference.TTA = []string{models.TTAFlip, models.TTATranslate}
			m, err := models.NewModel(f)
			if err != nil {
				b.Fatal(err)
			}
			p := m.NewPredictor()
			x := input(1, m.InputSize(), 5)
			for b.Loop() {
				if _, err := p.PredictTTA(x); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N)*1e3, "ms/image")
		})
	}
}
