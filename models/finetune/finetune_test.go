package finetune

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cifarnet-go/cifarnet/models"
)

func dataDir(t *testing.T) string {
	dir := os.Getenv("CIFAR10_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "cifar10", "cifar-10-batches-bin")
	}
	if _, err := os.Stat(filepath.Join(dir, "test_batch.bin")); err != nil {
		t.Skipf("CIFAR-10 not found (set CIFAR10_DIR): %v", err)
	}
	return dir
}

// images returns the first per images of each wanted CIFAR-10 test class
// after skip, normalised for base, with labels 0..len(want)-1.
func images(t *testing.T, base *models.File, want []int, skip, per int) ([]float32, []int) {
	data, err := os.ReadFile(filepath.Join(dataDir(t), "test_batch.bin"))
	if err != nil {
		t.Fatal(err)
	}
	const rec = 3073
	seen := map[int]int{}
	var x []float32
	var labels []int
	norm := base.Meta.Normalization
	for r := 0; r+rec <= len(data); r += rec {
		c := slices.Index(want, int(data[r]))
		if c < 0 {
			continue
		}
		seen[c]++
		if seen[c] <= skip || seen[c] > skip+per {
			continue
		}
		for ch := range 3 {
			for _, v := range data[r+1+ch*1024 : r+1+(ch+1)*1024] {
				x = append(x, (float32(v)/255-norm.Mean[ch])/norm.Std[ch])
			}
		}
		labels = append(labels, c)
	}
	return x, labels
}

func shipped(t *testing.T) (*models.File, []byte) {
	path := filepath.Join("..", "zoo", "cifarnet-fast", "cifarnet-fast.int8.cnw")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := models.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	return f, data
}

// shippedExtractor is the shipped model's file, bytes and extractor.
func shippedExtractor(t *testing.T) (*models.File, []byte, *Extractor) {
	t.Helper()
	base, data := shipped(t)
	ex, err := NewExtractor(base)
	if err != nil {
		t.Fatal(err)
	}
	return base, data, ex
}

// features returns the feature rows of images(t, ex.Base, want, skip,
// per), their labels and the rows' length.
func features(t *testing.T, ex *Extractor, want []int, skip, per int) ([]float32, []int, int) {
	t.Helper()
	x, labels := images(t, ex.Base, want, skip, per)
	rows, dim, err := ex.Features(x, len(labels))
	if err != nil {
		t.Fatal(err)
	}
	return rows, labels, dim
}

// TestHeadOnKnownClasses: three CIFAR-10 classes, 20 images each, a new
// head on the shipped model's features; the new weight file classifies
// 100 held-out images per class through the ordinary forward pass.
// (The hardest trio, cat/dog/horse, scores about 85 %: bench/RESULTS.md.)
func TestHeadOnKnownClasses(t *testing.T) {
	base, data, ex := shippedExtractor(t)
	want := []int{2, 4, 6} // bird, deer, frog
	rows, labels, dim := features(t, ex, want, 0, 20)
	losses := 0
	head, err := Train(rows, dim, labels, len(want), Options{Seed: 1}, func(int, float64) bool { losses++; return true })
	if err != nil {
		t.Fatal(err)
	}
	if want := (Options{}).Defaults().Epochs; losses != want {
		t.Errorf("progress called %d times", losses)
	}
	classes := []string{"bird", "deer", "frog"}
	f, err := ex.NewFile(head, classes, "cifarnet-fast.int8.cnw", data, models.Provenance{Dataset: "test"})
	if err != nil {
		t.Fatal(err)
	}
	// Through the file format and the ordinary forward pass.
	path := filepath.Join(t.TempDir(), "animals.cnw")
	if err := models.WriteFile(path, f); err != nil {
		t.Fatal(err)
	}
	back, err := models.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back.Meta.Classes, classes) || back.Meta.Provenance.BaseModel == "" {
		t.Errorf("classes %v, base %q", back.Meta.Classes, back.Meta.Provenance.BaseModel)
	}
	m, err := models.NewModel(back)
	if err != nil {
		t.Fatal(err)
	}
	tx, tl := images(t, base, want, 20, 100)
	probs, err := m.NewPredictor().PredictBatch(tx, len(tl))
	if err != nil {
		t.Fatal(err)
	}
	correct := 0
	for i, l := range tl {
		row := probs[i*3 : (i+1)*3]
		if slices.Index(row, slices.Max(row)) == l {
			correct++
		}
	}
	acc := float64(correct) / float64(len(tl))
	t.Logf("3 classes × 20 training images: %.1f %% of %d held-out images", 100*acc, len(tl))
	if acc < 0.85 {
		t.Errorf("accuracy %.3f on held-out images, want ≥ 0.85", acc)
	}
}

func TestTrainRefusesBadInput(t *testing.T) {
	rows := []float32{1, 2, 3, 4}
	for _, c := range []struct {
		labels  []int
		classes int
	}{
		{[]int{0, 1}, 1},
		{[]int{0, 2}, 2},
		{[]int{0}, 2},
		{[]int{0, 1}, MaxClasses + 1},
	} {
		if _, err := Train(rows, 2, c.labels, c.classes, Options{}, nil); err == nil {
			t.Errorf("labels %v of %d classes: no error", c.labels, c.classes)
		}
	}
}

// separable returns per rows of each of classes classes whose feature c is
// large for class c, with noise elsewhere.
func separable(classes, per, dim int) ([]float32, []int) {
	var rows []float32
	var labels []int
	for i := range classes * per {
		c := i % classes
		for j := range dim {
			v := float32((i*7+j*13)%11)/11 - 0.5
			if j == c {
				v += 5
			}
			rows = append(rows, v)
		}
		labels = append(labels, c)
	}
	return rows, labels
}

func TestCrossValidate(t *testing.T) {
	rows, labels := separable(3, 6, 8)
	calls, last := 0, 0
	acc, err := CrossValidate(rows, 8, labels, 3, 3, Options{Seed: 2}, func(done, total int) bool {
		calls++
		if total != 3*150 || done != last+1 {
			t.Errorf("progress %d of %d after %d", done, total, last)
		}
		last = done
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if acc != 1 {
		t.Errorf("accuracy %.3f on separable features, want 1", acc)
	}
	if calls != 3*150 {
		t.Errorf("progress called %d times, want %d", calls, 3*150)
	}
	// Labels that carry no information: the held-out folds cannot all be right.
	shuffled := slices.Clone(labels)
	slices.Reverse(shuffled[:9])
	if acc, err := CrossValidate(rows, 8, shuffled, 3, 3, Options{}, nil); err != nil || acc == 1 {
		t.Errorf("mislabelled rows: accuracy %.3f, err %v", acc, err)
	}
}

func TestCrossValidateRefusesTooFewImages(t *testing.T) {
	rows, labels := separable(2, 3, 4)
	if _, err := CrossValidate(rows, 4, labels, 2, 4, Options{}, nil); err == nil {
		t.Error("4 folds of 3 images per class: no error")
	}
	if _, err := CrossValidate(rows, 4, labels, 2, 1, Options{}, nil); err == nil {
		t.Error("1 fold: no error")
	}
	if _, err := CrossValidate(rows[:5], 4, labels, 2, 2, Options{}, nil); err == nil {
		t.Error("short rows: no error")
	}
}

func TestHeadProvenance(t *testing.T) {
	p := HeadProvenance("the page", Options{}, 20, 20, 5, 0.9, 1.5)
	if p.Recipe != "head-only" || p.ValAccuracy != 0.9 || p.Epochs != (Options{}).Defaults().Epochs ||
		!strings.Contains(p.Notes, "5-fold cross-validation") || !strings.Contains(p.Notes, "20 images") {
		t.Errorf("provenance %+v", p)
	}
	if p := HeadProvenance("d", Options{}, 16, 4, 0, 0.5, 1); !strings.Contains(p.Notes, "4 held-out images") {
		t.Errorf("held-out notes %q", p.Notes)
	}
}

// TestKnownRows: classes the base model has, by name (case and spaces
// ignored), start from its classifier rows; others do not.
func TestKnownRows(t *testing.T) {
	base, _, ex := shippedExtractor(t)
	if st := ex.KnownRows([]string{"mug", "spoon"}); st != nil {
		t.Errorf("no class the base has, yet a start for %v", st.Names())
	}
	if st := ex.KnownRows([]string{"Cat", "cat ", "dog"}); st == nil || !slices.Equal(st.Names(), []string{"dog"}) {
		t.Errorf("two names for the base's cat: start %+v, want dog's row only", st)
	}
	st := ex.KnownRows([]string{" Cat", "mug", "dog"})
	if st == nil || !slices.Equal(st.Known, []bool{true, false, true}) || !slices.Equal(st.Names(), []string{"cat", "dog"}) {
		t.Fatalf("start %+v", st)
	}
	w := base.Tensors[ex.Head+".weight"]
	dim := w.Shape[1]
	cat := slices.Index(base.Meta.Classes, "cat")
	if st.Dim != dim || !slices.Equal(st.W[:dim], w.Data[cat*dim:(cat+1)*dim]) || slices.ContainsFunc(st.W[dim:2*dim], func(v float32) bool { return v != 0 }) {
		t.Error("the start's rows are not the base's rows of its classes")
	}
	// Untrained, the new head is the base's rows: folding the
	// standardisation in and out keeps them.
	rows, labels, _ := features(t, ex, []int{3, 5}, 0, 10)
	two := ex.KnownRows([]string{"cat", "dog"})
	h, err := Train(rows, dim, labels, 2, Options{Seed: 1, Start: two, Epochs: 1, LR: 1e-12}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range h.W {
		if d := math.Abs(float64(v - two.W[i])); d > 1e-4*(1+math.Abs(float64(two.W[i]))) {
			t.Fatalf("weight %d: %g after no training, started at %g", i, v, two.W[i])
		}
	}
	if _, err := Train(rows, dim, labels, 3, Options{Start: two}, nil); err == nil {
		t.Error("a start of 2 classes accepted for 3")
	}
	prov := HeadProvenance("test", Options{Start: st}, 60, 60, 5, 0.9, 1)
	if !strings.Contains(prov.Notes, "started from the base model's rows for cat, dog") {
		t.Errorf("provenance notes %q do not say which classes started from the base", prov.Notes)
	}
}

// TestKnownRowsAccuracy: the hardest trio of classes the base knows,
// cat/dog/horse, 20 images a class: a head that starts from the base's
// rows keeps the base's own accuracy on the three (about 90 %), where one
// trained from scratch on 60 images reaches about 85 % (bench/RESULTS.md).
func TestKnownRowsAccuracy(t *testing.T) {
	_, _, ex := shippedExtractor(t)
	want := []int{3, 5, 7}
	rows, labels, dim := features(t, ex, want, 0, 20)
	held, tl, _ := features(t, ex, want, 20, 200)
	acc := func(h *Head) float64 {
		ok := 0
		for i, l := range tl {
			if h.Predict(held[i*dim:(i+1)*dim]) == l {
				ok++
			}
		}
		return float64(ok) / float64(len(tl))
	}
	fresh, err := Train(rows, dim, labels, 3, Options{Seed: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	started, err := Train(rows, dim, labels, 3, Options{Seed: 1, Start: ex.KnownRows([]string{"cat", "dog", "horse"})}, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, b := acc(fresh), acc(started)
	t.Logf("cat/dog/horse, 20 images a class, %d held out: %.1f %% from scratch, %.1f %% from the base's rows", len(tl), 100*a, 100*b)
	if b < 0.87 || b < a+0.02 {
		t.Errorf("from the base's rows %.3f, from scratch %.3f: want ≥ 0.87 and 2 points better", b, a)
	}
}
