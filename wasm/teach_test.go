package main

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/models/modeltest"
)

var (
	red  = color.NRGBA{200, 30, 30, 255}
	blue = color.NRGBA{30, 30, 200, 255}
)

func newTeacher(t *testing.T) *Teacher {
	t.Helper()
	tc, err := NewTeacher("small.cnw", mustRead(t, modelPath))
	if err != nil {
		t.Fatal(err)
	}
	return tc
}

// squareRows returns the feature rows of per red and per blue squares,
// alternating, and their labels (red 0, blue 1).
func squareRows(t *testing.T, tc *Teacher, per int) (rows []float32, labels []int) {
	t.Helper()
	for i := range 2 * per {
		c := red
		if i%2 == 1 {
			c = blue
		}
		row, input, err := tc.Features(modeltest.NoisySquarePNG(t, c, 40+i, 36, uint64(i)))
		if err != nil {
			t.Fatal(err)
		}
		if b := input.Bounds(); b.Dx() != 32 || b.Dy() != 32 || len(row) != tc.Dim() {
			t.Fatalf("model input %v, %d features of %d", b, len(row), tc.Dim())
		}
		rows = append(rows, row...)
		labels = append(labels, i%2)
	}
	return rows, labels
}

func TestTeachRedBlue(t *testing.T) {
	tc := newTeacher(t)
	rows, labels := squareRows(t, tc, 6)
	calls, last, total := 0, 0, 0
	r, err := tc.Train([]string{" red ", "blue"}, rows, labels, func(done, all int) {
		calls++
		if done <= last || done > all {
			t.Errorf("progress %d of %d after %d", done, all, last)
		}
		last, total = done, all
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls == 0 || last != total {
		t.Errorf("progress called %d times, last %d of %d", calls, last, total)
	}
	if r.Accuracy < 0.9 || r.Folds != 5 || r.Images != 12 || !slices.Equal(r.Classes, []string{"red", "blue"}) || r.Name != "taught-red-blue.cnw" || r.Known != nil {
		t.Errorf("result %+v", *r)
	}
	f, err := models.Decode(r.File)
	if err != nil {
		t.Fatal(err)
	}
	p := f.Meta.Provenance
	if !slices.Equal(f.Meta.Classes, []string{"red", "blue"}) || !strings.HasPrefix(p.BaseModel, "small.cnw sha256:") ||
		p.Recipe != "head-only" || p.ValAccuracy != r.Accuracy || !strings.Contains(p.Notes, "5-fold cross-validation") {
		t.Errorf("classes %v, provenance %+v", f.Meta.Classes, p)
	}
	// The new file classifies new squares through the ordinary classifier.
	c, err := NewClassifier(r.Name, r.File)
	if err != nil {
		t.Fatal(err)
	}
	for want, col := range []color.NRGBA{red, blue} {
		res, err := c.Classify(modeltest.NoisySquarePNG(t, col, 50, 50, 99+uint64(want)))
		if err != nil {
			t.Fatal(err)
		}
		if res.Top != want {
			t.Errorf("a new %v square: class %d (%v), want %d", col, res.Top, res.Probs, want)
		}
	}
}

func TestTeachRefuses(t *testing.T) {
	tc := newTeacher(t)
	rows, labels := squareRows(t, tc, 3) // red, blue, red, blue, red, blue
	d := tc.Dim()
	nan := slices.Clone(rows)
	nan[d+3] = float32(math.NaN())
	for _, c := range []struct {
		name    string
		classes []string
		rows    []float32
		labels  []int
		want    string
	}{
		{"one class", []string{"red"}, rows, labels, "name 2 to 10 classes"},
		{"eleven classes", strings.Split("a b c d e f g h i j k", " "), rows, labels, "name 2 to 10 classes"},
		{"no name", []string{"red", "  "}, rows, labels, "class 2 has no name"},
		{"duplicate", []string{"Red", "red"}, rows, labels, "both called"},
		{"long name", []string{"red", strings.Repeat("b", MaxClassName+1)}, rows, labels, "longer than"},
		{"empty class", []string{"red", "blue", "green"}, rows, labels, `class "green" has 0 images`},
		{"one image", []string{"red", "blue"}, rows[:3*d], labels[:3], `class "blue" has 1 image:`},
		{"bad label", []string{"red", "blue"}, rows, []int{0, 1, 0, 1, 0, 2}, "image 5 has class 2 of 2"},
		{"short rows", []string{"red", "blue"}, rows[:len(rows)-1], labels, "feature values for 6 images"},
		{"not a number", []string{"red", "blue"}, nan, labels, "feature 3 of image 1 is NaN"},
	} {
		r, err := tc.Train(c.classes, c.rows, c.labels, nil)
		if err == nil {
			t.Errorf("%s: no error, accuracy %.2f", c.name, r.Accuracy)
			continue
		}
		if !strings.Contains(err.Error(), c.want) || ErrorCode(err) != CodeBadArgument {
			t.Errorf("%s: error %q (code %s), want it to say %q", c.name, err, ErrorCode(err), c.want)
		}
	}
}

func TestTeachImageErrors(t *testing.T) {
	tc := newTeacher(t)
	good := mustRead(t, "../static/samples/cat.png")
	for _, c := range []struct {
		name string
		data []byte
		code string
	}{
		{"empty", nil, CodeUnsupported},
		{"text", []byte("not an image"), CodeUnsupported},
		{"truncated", good[:len(good)/2], CodeCorrupt},
		{"huge", hugePNGHeader(20000, 20000), CodeTooLarge},
	} {
		if _, _, err := tc.Features(c.data); ErrorCode(err) != c.code {
			t.Errorf("%s: error %v (code %s), want code %s", c.name, err, ErrorCode(err), c.code)
		}
	}
	if _, _, err := tc.FeaturesRGBA(make([]byte, 11), 2, 2); ErrorCode(err) != CodeBadArgument {
		t.Errorf("short pixels: %v", err)
	}
	// The browser's pixels give the same features as the file.
	pix, w, h := decodeRGBA(t, good)
	a, _, err := tc.FeaturesRGBA(pix, w, h)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := tc.Features(good)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a, b) {
		t.Error("features of the pixels differ from those of the file")
	}
	if _, err := NewTeacher("bad.cnw", good); ErrorCode(err) != CodeBadModel || !strings.Contains(err.Error(), "bad.cnw") {
		t.Errorf("NewTeacher on a PNG: %v", err)
	}
}

func TestTaughtName(t *testing.T) {
	for in, want := range map[string]string{
		"Cat|Dog":               "taught-cat-dog.cnw",
		"my mug|the ça va?|x":   "taught-my-mug-the-a-va-x.cnw",
		"😀|😎":                   "taught-classes.cnw",
		strings.Repeat("a", 70): "taught-" + strings.Repeat("a", 60) + ".cnw",
	} {
		if got := taughtName(strings.Split(in, "|")); got != want {
			t.Errorf("taughtName(%q) = %q, want %q", in, got, want)
		}
	}
}

// BenchmarkTeach60 is teach mode's work for 60 pictures in one worker: the
// features of 3 CIFAR-10 classes × 20 test images (PNG files, decoded as
// the page does) with the shipped default model, then cross-validation
// and training. Under Node:
//
//	GOEXPERIMENT=simd GOOS=js GOARCH=wasm go test -run - -bench Teach60 -benchtime 3x \
//	    -exec="$(go env GOROOT)/lib/wasm/go_js_wasm_exec" ./wasm/
func BenchmarkTeach60(b *testing.B) {
	data, err := os.ReadFile(filepath.Join("..", "..", "shared", "cifar10", "cifar-10-batches-bin", "test_batch.bin"))
	if dir := os.Getenv("CIFAR10_DIR"); dir != "" {
		data, err = os.ReadFile(filepath.Join(dir, "test_batch.bin"))
	}
	if err != nil {
		b.Skipf("CIFAR-10 test batch not found (set CIFAR10_DIR): %v", err)
	}
	def := strings.TrimSpace(string(mustRead(b, filepath.Join("..", "models", "zoo", "DEFAULT"))))
	id := strings.TrimSuffix(strings.TrimSuffix(def, ".cnw"), ".int8")
	base := mustRead(b, filepath.Join("..", "models", "zoo", id, def))
	var files [][]byte
	var labels []int
	count := map[int]int{}
	for r := 0; r+3073 <= len(data) && len(files) < 60; r += 3073 {
		c := slices.Index([]int{2, 4, 6}, int(data[r]))
		if c < 0 || count[c] == 20 {
			continue
		}
		count[c]++
		img := image.NewNRGBA(image.Rect(0, 0, 32, 32))
		for i := range 1024 {
			img.Pix[4*i], img.Pix[4*i+1], img.Pix[4*i+2], img.Pix[4*i+3] = data[r+1+i], data[r+1025+i], data[r+2049+i], 255
		}
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			b.Fatal(err)
		}
		files = append(files, buf.Bytes())
		labels = append(labels, c)
	}
	tc, err := NewTeacher(def, base)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		var rows []float32
		for _, f := range files {
			row, _, err := tc.Features(f)
			if err != nil {
				b.Fatal(err)
			}
			rows = append(rows, row...)
		}
		features := time.Since(start)
		r, err := tc.Train([]string{"bird", "deer", "frog"}, rows, labels, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("features %.2f s, cross-validation and training %.2f s, cross-validated accuracy %.1f %%", features.Seconds(), r.Seconds, 100*r.Accuracy)
	}
}

// TestTeachKnownClass: a class named like one of the base model's (case
// aside) starts from the base's row, and the result and the file say so.
func TestTeachKnownClass(t *testing.T) {
	tc := newTeacher(t)
	rows, labels := squareRows(t, tc, 4)
	r, err := tc.Train([]string{"Cat", "blue"}, rows, labels, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := models.Decode(r.File)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Known, []string{"cat"}) || !strings.Contains(f.Meta.Provenance.Notes, "started from the base model's rows for cat") {
		t.Errorf("known %q, notes %q; want cat started from the base", r.Known, f.Meta.Provenance.Notes)
	}
}
