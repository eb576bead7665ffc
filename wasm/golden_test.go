package main

// The golden file pins the probabilities the committed model gives for the
// committed images, computed natively with the models package directly.
// The same cases run under js/wasm through the JavaScript API (see
// main_js_test.go), so the browser must agree with native Go.
//
// Regenerate (only when the models package changes its numbers on purpose):
//
//	go test ./wasm -run TestGolden -update

import (
	"bytes"
	"encoding/json"
	"flag"
	"image"
	"image/draw"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/models/modeltest"
)

var update = flag.Bool("update", false, "rewrite wasm/testdata (model, images, expected.json)")

const (
	modelPath  = "testdata/small.cnw"
	goldenPath = "testdata/expected.json"
	// Native and WebAssembly builds may use different kernels (SIMD versus
	// plain Go), so sums can round differently.
	tolerance = 1e-5
)

// goldenCase is one image classified one way.
type goldenCase struct {
	Name  string    `json:"name"`
	Image string    `json:"image"` // path relative to the package directory
	RGBA  bool      `json:"rgba"`  // decode in Go, then go through classifyRGBA
	TTA   []string  `json:"tta"`   // test-time augmentations set on the model
	Top   int       `json:"top"`
	Probs []float32 `json:"probs"`
}

type golden struct {
	Model string       `json:"model"`
	Cases []goldenCase `json:"cases"`
}

// smallSpec is a 32×32 RGB network of a few thousand parameters with most
// layer types, small enough to commit its weight file.
func smallSpec() *models.Spec {
	return &models.Spec{
		Name:  "wasm-test-small",
		Input: models.Shape{C: 3, H: 32, W: 32},
		Layers: []models.Layer{
			{Name: "conv1", Type: models.Conv2D, Filters: 8, Kernel: 3, Padding: 1, Bias: true},
			{Name: "bn1", Type: models.BatchNorm},
			{Name: "act1", Type: models.GELU},
			{Name: "pool1", Type: models.MaxPool, Kernel: 2},
			{Name: "conv2", Type: models.Conv2D, Filters: 12, Kernel: 3, Padding: 1},
			{Name: "bn2", Type: models.BatchNorm},
			{Name: "res", Type: models.Add, From: "pool1", Project: true},
			{Name: "act2", Type: models.LeakyReLU, Alpha: 0.1},
			{Name: "pool2", Type: models.MaxPool, Kernel: 2},
			{Name: "conv3", Type: models.Conv2D, Filters: 16, Kernel: 3, Stride: 2, Padding: 1},
			{Name: "act3", Type: models.ReLU},
			{Name: "gap", Type: models.GlobalAvgPool},
			{Name: "fc", Type: models.Linear, Units: 10, Bias: true},
			{Name: "softmax", Type: models.Softmax},
		},
	}
}

// goldenCases lists what is checked; Top and Probs are filled in.
func goldenCases() []goldenCase {
	cat := filepath.Join("..", "static", "samples", "cat.png")
	return []goldenCase{
		{Name: "png", Image: cat},
		{Name: "jpeg-non-square", Image: "testdata/ship-50x37.jpg"},
		{Name: "rgba", Image: cat, RGBA: true},
		{Name: "png-tta", Image: cat, TTA: []string{"flip", "translate"}},
		{Name: "jpeg-flip", Image: "testdata/ship-50x37.jpg", TTA: []string{"flip"}},
	}
}

// withTTA returns the committed model's bytes with its TTA hint replaced.
func withTTA(t testing.TB, model []byte, tta []string) []byte {
	t.Helper()
	if tta == nil {
		return model
	}
	f, err := models.Decode(model)
	if err != nil {
		t.Fatal(err)
	}
	f.Meta.Inference.TTA = tta
	var buf bytes.Buffer
	if err := models.Encode(&buf, f); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// decodeRGBA decodes an image file into non-premultiplied RGBA rows, as a
// canvas would hand them over.
func decodeRGBA(t testing.TB, data []byte) (pix []byte, w, h int) {
	t.Helper()
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	dst := image.NewNRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(dst, dst.Bounds(), img, b.Min, draw.Src)
	return dst.Pix, b.Dx(), b.Dy()
}

func readGolden(t testing.TB) golden {
	t.Helper()
	data, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatalf("%v (run go test ./wasm -run TestGolden -update natively to create it)", err)
	}
	var g golden
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatalf("%s: %v", goldenPath, err)
	}
	if len(g.Cases) == 0 {
		t.Fatalf("%s has no cases", goldenPath)
	}
	return g
}

func checkProbs(t testing.TB, got []float32, want goldenCase) {
	t.Helper()
	if len(got) != len(want.Probs) {
		t.Fatalf("%s: %d probabilities, want %d", want.Name, len(got), len(want.Probs))
	}
	for i := range got {
		if d := math.Abs(float64(got[i] - want.Probs[i])); !(d <= tolerance) {
			t.Errorf("%s: p[%d] = %.8f, want %.8f (|diff| %.2g > %g)", want.Name, i, got[i], want.Probs[i], d, tolerance)
		}
	}
}

// nativeProbs classifies c with the models package alone.
func nativeProbs(t testing.TB, model []byte, c goldenCase) []float32 {
	t.Helper()
	f, err := models.Decode(withTTA(t, model, c.TTA))
	if err != nil {
		t.Fatal(err)
	}
	m, err := models.NewModel(f)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(c.Image)
	if err != nil {
		t.Fatal(err)
	}
	in := m.Meta.Spec.Input
	var x []float32
	if c.RGBA {
		pix, w, h := decodeRGBA(t, data)
		img, err := models.ImageFromRGBA(pix, w, h)
		if err != nil {
			t.Fatal(err)
		}
		x = models.Normalize(models.ModelInput(img, in.W), m.Meta.Normalization, nil)
	} else if x, _, err = models.PreprocessImage(data, in, m.Meta.Normalization); err != nil {
		t.Fatal(err)
	}
	probs, err := m.NewPredictor().PredictTTA(x)
	if err != nil {
		t.Fatal(err)
	}
	return probs
}

func TestGolden(t *testing.T) {
	if *update {
		if runtime.GOOS == "js" {
			t.Fatal("-update must run natively")
		}
		writeTestdata(t)
	}
	g := readGolden(t)
	model, err := os.ReadFile(filepath.Join("testdata", g.Model))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range g.Cases {
		t.Run(c.Name, func(t *testing.T) {
			probs := nativeProbs(t, model, c)
			checkProbs(t, probs, c)
			if top := argmax(probs); top != c.Top {
				t.Errorf("top class %d, want %d", top, c.Top)
			}
		})
	}
}

func argmax(p []float32) int {
	best := 0
	for i := range p {
		if p[i] > p[best] {
			best = i
		}
	}
	return best
}

// writeTestdata regenerates the committed model, the JPEG test image and
// the golden probabilities.
func writeTestdata(t *testing.T) {
	if err := models.WriteFile(modelPath, modeltest.RandomFile(smallSpec(), 20240611)); err != nil {
		t.Fatal(err)
	}
	// A non-square JPEG, so that centre cropping and resizing are covered.
	ship, err := os.ReadFile(filepath.Join("..", "static", "samples", "ship.png"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := png.Decode(bytes.NewReader(ship))
	if err != nil {
		t.Fatal(err)
	}
	big := image.NewNRGBA(image.Rect(0, 0, 50, 37))
	for y := range 37 {
		for x := range 50 {
			big.Set(x, y, src.At(x*32/50, y*32/37))
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, big, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("testdata/ship-50x37.jpg", buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	model, err := os.ReadFile(modelPath)
	if err != nil {
		t.Fatal(err)
	}
	g := golden{Model: filepath.Base(modelPath)}
	for _, c := range goldenCases() {
		c.Probs = nativeProbs(t, model, c)
		c.Top = argmax(c.Probs)
		g.Cases = append(g.Cases, c)
	}
	out, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(goldenPath, append(out, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}
