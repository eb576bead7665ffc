package models_test

import (
	"math"
	"slices"
	"testing"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/models/modeltest"
)

// logitsOf runs one view through a plain Predict.
func logitsOf(t *testing.T, p *models.Predictor, x []float32) []float64 {
	t.Helper()
	if _, err := p.Predict(x); err != nil {
		t.Fatal(err)
	}
	out := make([]float64, 10)
	for i, v := range p.Logits() {
		out[i] = float64(v)
	}
	return out
}

// view builds dst(c, y, x) = src(c, y+dy, x') with x' mirrored when flip,
// reflecting at the borders; written independently of models' helpers.
func view(src []float32, s models.Shape, dy, dx int, flip bool) []float32 {
	ref := func(i, n int) int {
		switch {
		case i < 0:
			return -i
		case i >= n:
			return 2*n - 2 - i
		}
		return i
	}
	dst := make([]float32, len(src))
	for c := 0; c < s.C; c++ {
		for y := 0; y < s.H; y++ {
			for x := 0; x < s.W; x++ {
				sx := x
				if flip {
					sx = s.W - 1 - x
				}
				dst[(c*s.H+y)*s.W+x] = src[(c*s.H+ref(y+dy, s.H))*s.W+ref(sx+dx, s.W)]
			}
		}
	}
	return dst
}

func TestPredictTTAMatchesAirbenchWeighting(t *testing.T) {
	spec, _ := models.Preset("cifarnet-fast")
	f := modeltest.RandomFile(spec, 11)
	f.Meta.Inference.TTA = []string{models.TTAFlip, models.TTATranslate}
	m, err := models.NewModel(f)
	if err != nil {
		t.Fatal(err)
	}
	p := m.NewPredictor()
	x := input(1, m.InputSize(), 9)
	in := spec.Input
	want := make([]float64, 10)
	for _, v := range []struct {
		dy, dx int
		w      float64
	}{{0, 0, 0.25}, {-1, -1, 0.125}, {1, 1, 0.125}} {
		// Mirroring after shifting: the shifted view, then its mirror.
		a := view(x, in, v.dy, v.dx, false)
		b := view(a, in, 0, 0, true)
		for _, l := range [][]float64{logitsOf(t, p, a), logitsOf(t, p, b)} {
			for j := range want {
				want[j] += v.w * l[j]
			}
		}
	}
	hi, sum := math.Inf(-1), 0.0
	for _, v := range want {
		hi = math.Max(hi, v)
	}
	for j, v := range want {
		want[j] = math.Exp(v - hi)
		sum += want[j]
	}
	got, err := p.PredictTTA(x)
	if err != nil {
		t.Fatal(err)
	}
	for j := range want {
		if d := math.Abs(float64(got[j]) - want[j]/sum); d > 1e-5 {
			t.Fatalf("class %d: TTA probability %v, want %v", j, got[j], want[j]/sum)
		}
	}
	if a := testing.AllocsPerRun(2, func() { p.PredictTTA(x) }); a != 0 {
		t.Errorf("PredictTTA allocates %v times per call", a)
	}
}

func TestPredictTTAWithoutOptionsIsPredict(t *testing.T) {
	m, p := newPredictor(t, "keras-cnn")
	x := input(1, m.InputSize(), 4)
	a, _ := p.Predict(x)
	a = append([]float32(nil), a...)
	b, err := p.PredictTTA(x)
	if err != nil {
		t.Fatal(err)
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("class %d: %v vs %v", i, a[i], b[i])
		}
	}
}

// The views of one image split into parts (as the page splits them across
// its workers) and added in part order give PredictTTA's probabilities.
func TestPredictTTAPartsAddUp(t *testing.T) {
	spec, _ := models.Preset("cifarnet-fast")
	for _, tta := range [][]string{{models.TTAFlip, models.TTATranslate}, {models.TTAFlip}, {models.TTATranslate}} {
		f := modeltest.RandomFile(spec, 12)
		f.Meta.Inference.TTA = tta
		m, err := models.NewModel(f)
		if err != nil {
			t.Fatal(err)
		}
		views, err := m.TTAViews()
		if err != nil {
			t.Fatal(err)
		}
		p := m.NewPredictor()
		x := input(1, m.InputSize(), 5)
		want, err := p.PredictTTA(x)
		if err != nil {
			t.Fatal(err)
		}
		want = append([]float32(nil), want...)
		for parts := 1; parts <= views; parts++ {
			sum := make([]float32, len(want))
			for part := range parts {
				// A predictor per part, as each worker has its own.
				got, err := m.NewPredictor().PredictTTAPart(x, part, parts)
				if err != nil {
					t.Fatal(err)
				}
				for j := range sum {
					sum[j] += got[j]
				}
			}
			m.FinishTTA(sum)
			for j := range want {
				d := math.Abs(float64(sum[j] - want[j]))
				if parts == 1 && d != 0 || d > 1e-6 {
					t.Errorf("%v, %d parts: class %d: %v, PredictTTA %v", tta, parts, j, sum[j], want[j])
				}
			}
		}
		if _, err := p.PredictTTAPart(x, 0, views+1); err == nil {
			t.Errorf("%v: %d parts of %d views accepted", tta, views+1, views)
		}
	}
}

// PredictTTAFirst hands over the image's own prediction first (Predict's,
// bit for bit) and returns PredictTTA's probabilities bit for bit.
func TestPredictTTAFirst(t *testing.T) {
	spec, _ := models.Preset("cifarnet-fast")
	for _, tta := range [][]string{{models.TTAFlip, models.TTATranslate}, {models.TTAFlip}, {models.TTATranslate}, nil} {
		f := modeltest.RandomFile(spec, 13)
		f.Meta.Inference.TTA = tta
		m, err := models.NewModel(f)
		if err != nil {
			t.Fatal(err)
		}
		x := input(1, m.InputSize(), 6)
		p := m.NewPredictor()
		plain, err := p.Predict(x)
		if err != nil {
			t.Fatal(err)
		}
		plain = append([]float32(nil), plain...)
		want, err := p.PredictTTA(x)
		if err != nil {
			t.Fatal(err)
		}
		want = append([]float32(nil), want...)

		// A fresh predictor, as a worker's first image has.
		var first []float32
		got, err := m.NewPredictor().PredictTTAFirst(x, func(probs []float32) {
			if first != nil {
				t.Errorf("%v: first called twice", tta)
			}
			first = append([]float32(nil), probs...)
		})
		if err != nil {
			t.Fatal(err)
		}
		if tta == nil {
			if first != nil {
				t.Errorf("no augmentations, yet first was called with %v", first)
			}
		} else if !slices.Equal(first, plain) {
			t.Errorf("%v: first %v, Predict %v", tta, first, plain)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%v: %v, PredictTTA %v", tta, got, want)
		}
	}
}
