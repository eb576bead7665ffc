package plots

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"

	"gonum.org/v1/plot/vg"
)

var classes = []string{"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}

// render draws f, checks that the result is a PNG of the expected pixel
// size that is not blank, and keeps a copy in $PLOTS_KEEP when set so
// that the charts can be looked at.
func render(t *testing.T, f *Figure, name string, w, h vg.Length) image.Image {
	t.Helper()
	data, err := f.PNG(w, h)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	wantW, wantH := int(math.Round(float64(w/vg.Inch)*DPI)), int(math.Round(float64(h/vg.Inch)*DPI))
	if b := img.Bounds(); b.Dx() != wantW || b.Dy() != wantH {
		t.Errorf("%s is %v, want %d×%d pixels", name, b.Size(), wantW, wantH)
	}
	if colours(img) < 3 {
		t.Errorf("%s has fewer than 3 colours: blank", name)
	}
	if dir := os.Getenv("PLOTS_KEEP"); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return img
}

func colours(img image.Image) int {
	seen := map[color.RGBA]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 3 {
		for x := b.Min.X; x < b.Max.X; x += 3 {
			r, g, bl, a := img.At(x, y).RGBA()
			seen[color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(bl >> 8), uint8(a >> 8)}] = true
		}
	}
	return len(seen)
}

func TestTrainingCurves(t *testing.T) {
	n := 30
	ep, tl, vl, ta, va := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
	for i := range n {
		e := float64(i + 1)
		ep[i] = e
		tl[i] = 2.2*math.Exp(-e/8) + 0.2
		vl[i] = 2.1*math.Exp(-e/9) + 0.35
		ta[i] = 0.95 - 0.85*math.Exp(-e/7)
		va[i] = 0.88 - 0.78*math.Exp(-e/8)
	}
	vl[3], va[3] = math.NaN(), math.NaN() // an epoch without validation
	f, err := TrainingCurves(ep, tl, vl, ta, va)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Panels) != 2 {
		t.Fatalf("%d panels, want loss and accuracy", len(f.Panels))
	}
	for _, p := range f.Panels {
		if p.Title.Text == "" || p.X.Label.Text != "epoch" || p.Y.Label.Text == "" {
			t.Errorf("panel lacks title or axis labels: %q %q %q", p.Title.Text, p.X.Label.Text, p.Y.Label.Text)
		}
	}
	render(t, f, "training_curves.png", 11*vg.Inch, 4*vg.Inch)

	if _, err := TrainingCurves(ep, tl[:5], vl, ta, va); err == nil {
		t.Error("series shorter than epochs: no error")
	}
	if _, err := TrainingCurves(nil, nil, nil, nil, nil); err == nil {
		t.Error("no epochs: no error")
	}
}

func TestConfusionMatrix(t *testing.T) {
	k := len(classes)
	cm := make([][]int, k)
	for i := range cm {
		cm[i] = make([]int, k)
		for j := range cm[i] {
			cm[i][j] = (i*7 + j*3) % 11
		}
		cm[i][i] = 700 + 20*i
	}
	f, err := ConfusionMatrix("Confusion matrix", cm, classes)
	if err != nil {
		t.Fatal(err)
	}
	img := render(t, f, "confusion_matrix.png", 9*vg.Inch, 7.5*vg.Inch)
	// The diagonal cells are dark: somewhere in the image there is a
	// navy-blue pixel of the top of the colour map.
	dark := false
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y && !dark; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if bl>>8 > 90 && r>>8 < 30 && g>>8 < 70 {
				dark = true
				break
			}
		}
	}
	if !dark {
		t.Error("no dark-blue cell: the heat map was not drawn")
	}

	if _, err := ConfusionMatrix("x", cm[:3], classes); err == nil {
		t.Error("3 rows for 10 classes: no error")
	}
	ragged := [][]int{{1, 2}, {3}}
	if _, err := ConfusionMatrix("x", ragged, []string{"a", "b"}); err == nil {
		t.Error("ragged matrix: no error")
	}
	// A class with no images draws without dividing by zero.
	if _, err := ConfusionMatrix("x", [][]int{{3, 1}, {0, 0}}, []string{"a", "b"}); err != nil {
		t.Errorf("empty row: %v", err)
	}
}

func TestGroupedBars(t *testing.T) {
	train, val := make([]float64, 10), make([]float64, 10)
	for i := range train {
		train[i], val[i] = 4000, 1000
	}
	f, err := GroupedBars("Class distribution", "images", classes, []Series{
		{Name: "train", Values: train},
		{Name: "validation", Values: val},
	})
	if err != nil {
		t.Fatal(err)
	}
	if p := f.Panels[0]; p.Title.Text != "Class distribution" || p.Y.Label.Text != "images" {
		t.Errorf("title %q, y label %q", p.Title.Text, p.Y.Label.Text)
	}
	render(t, f, "grouped_bars.png", 9*vg.Inch, 4.5*vg.Inch)

	if _, err := GroupedBars("x", "y", classes, []Series{{Name: "short", Values: train[:3]}}); err == nil {
		t.Error("series shorter than categories: no error")
	}
	if _, err := GroupedBars("x", "y", nil, nil); err == nil {
		t.Error("nothing to draw: no error")
	}
}

func TestFigureWidthsMustMatchPanels(t *testing.T) {
	f, err := GroupedBars("x", "y", []string{"a"}, []Series{{Name: "s", Values: []float64{1}}})
	if err != nil {
		t.Fatal(err)
	}
	f.Widths = []float64{1, 2}
	if _, err := f.PNG(4*vg.Inch, 3*vg.Inch); err == nil {
		t.Error("2 widths for 1 panel: no error")
	}
	if _, err := (&Figure{}).PNG(4*vg.Inch, 3*vg.Inch); err == nil {
		t.Error("empty figure: no error")
	}
}
