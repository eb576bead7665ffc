package e2e

import (
	"math"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/models/modeltest"
)

// One image with test-time augmentation, given to an idle pool of two, has
// its six views split between the two workers; the page adds the parts
// up to what one worker computes: native Go's PredictTTA within float
// rounding, the same top class, and the same as the page's own answers
// for the same images in a batch, where each worker takes whole images.
func TestTTASplitAcrossPool(t *testing.T) {
	dist, m := ttaSite(t)
	p := m.NewPredictor()

	ctx := openPool(t, dist, 2)
	split := timeOneAtATime(t, ctx, 1)
	byName := map[string][]float32{}
	for _, c := range split {
		if c.State != "done" || !c.TTA || c.Parts != 2 {
			t.Errorf("%s: state %q, tta %v, on %d workers; want done with TTA on 2", c.Name, c.State, c.TTA, c.Parts)
			continue
		}
		x := sampleInput(t, m, c.Name)
		want, err := p.PredictTTA(x)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Probs) != len(want) {
			t.Fatalf("%s: %d probabilities", c.Name, len(c.Probs))
		}
		for j := range want {
			if d := math.Abs(float64(c.Probs[j] - want[j])); !(d <= tolerance) {
				t.Errorf("%s: p[%d] = %.7f split across the pool, %.7f natively", c.Name, j, c.Probs[j], want[j])
			}
		}
		if argmax(c.Probs) != argmax(want) {
			t.Errorf("%s: top %d split, %d natively", c.Name, argmax(c.Probs), argmax(want))
		}
		byName[c.Name] = c.Probs
	}

	// The same images in one drop: whole images per worker.
	dropSamples(t, ctx, 10, "batch-")
	cards := waitCards(t, ctx, 20)
	for _, c := range cards[10:] {
		want := byName[sampleOf(c.File)]
		if c.State != "done" || len(c.Probs) != len(want) {
			t.Errorf("%s: state %q, %d probabilities", c.File, c.State, len(c.Probs))
			continue
		}
		for j := range want {
			if d := math.Abs(float64(c.Probs[j] - want[j])); d > 1e-6 {
				t.Errorf("%s: p[%d] = %.7f in a batch, %.7f split", c.File, j, c.Probs[j], want[j])
			}
		}
		if c.TopIndex != argmax(want) {
			t.Errorf("%s: top %d in a batch, %d split", c.File, c.TopIndex, argmax(want))
		}
	}
	parts, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#results .result[data-parts]').length`))
	if err != nil || parts > 11 {
		t.Errorf("%d images of 20 split (%v); the batch should mostly not be", parts, err)
	}
}

// One image with test-time augmentation on a pool of one: the card shows
// the answer from the image alone first (native Predict's class and
// probability, before the final answer), then the six views' answer
// (native PredictTTA). The images of a drop do not each get one.
func TestFirstAnswer(t *testing.T) {
	dist, m := ttaSite(t)
	p := m.NewPredictor()

	ctx := openPool(t, dist, 1)
	for _, c := range timeOneAtATime(t, ctx, 1) {
		x := sampleInput(t, m, c.Name)
		plain, err := p.Predict(x)
		if err != nil {
			t.Fatal(err)
		}
		top := argmax(plain)
		if c.FirstLabel != m.Meta.Classes[top] || !(math.Abs(float64(c.FirstP-plain[top])) <= tolerance) {
			t.Errorf("%s: first answer %q %.7f, natively %q %.7f", c.Name, c.FirstLabel, c.FirstP, m.Meta.Classes[top], plain[top])
		}
		if !(c.FirstMs > 0 && c.FirstMs < c.Ms) {
			t.Errorf("%s: first answer after %.1f ms, final after %.1f ms; want it first", c.Name, c.FirstMs, c.Ms)
		}
		want, err := p.PredictTTA(x)
		if err != nil {
			t.Fatal(err)
		}
		if c.State != "done" || !c.TTA || c.Parts != 1 || len(c.Probs) != len(want) {
			t.Fatalf("%s: state %q, tta %v, on %d workers, %d probabilities; want done with TTA on 1", c.Name, c.State, c.TTA, c.Parts, len(c.Probs))
		}
		for j := range want {
			if d := math.Abs(float64(c.Probs[j] - want[j])); !(d <= tolerance) {
				t.Errorf("%s: p[%d] = %.7f after a first answer, %.7f natively", c.Name, j, c.Probs[j], want[j])
			}
		}
	}

	dropSamples(t, ctx, 10, "batch-")
	waitCards(t, ctx, 20)
	firsts, err := chromedp.Run(ctx, chromedp.Evaluate[int](`Array.from(document.querySelectorAll('#results .result')).slice(0, 10).filter((li) => li.dataset.firstLabel).length`))
	if err != nil || firsts > 2 {
		t.Errorf("%d images of a drop of 10 had a first answer (%v); want at most the ones given alone", firsts, err)
	}
}

// ttaSite is a site whose one model has test-time augmentation (flip +
// translate: six views), and that model, natively.
func ttaSite(t *testing.T) (string, *models.Model) {
	t.Helper()
	tta := []string{models.TTAFlip, models.TTATranslate}
	dist := singleModelSite(t, tta)
	f := modeltest.RandomFile(models.CifarNetFast(), 42) // what singleModelSite writes
	f.Meta.Inference.TTA = tta
	m, err := models.NewModel(f)
	if err != nil {
		t.Fatal(err)
	}
	return dist, m
}

// sampleInput is the model input m makes of the sample named name.
func sampleInput(t *testing.T, m *models.Model, name string) []float32 {
	t.Helper()
	_, data := sample(t, name)
	x, _, err := models.PreprocessImage(data, m.Meta.Spec.Input, m.Meta.Normalization)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func argmax(v []float32) int {
	top := 0
	for i, x := range v {
		if x > v[top] {
			top = i
		}
	}
	return top
}
