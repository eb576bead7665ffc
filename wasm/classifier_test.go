package main

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/models/modeltest"
)

func loadSmall(t *testing.T, tta []string) *Classifier {
	t.Helper()
	model, err := os.ReadFile(modelPath)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClassifier("small.cnw", withTTA(t, model, tta))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestInfo(t *testing.T) {
	c := loadSmall(t, []string{"flip"})
	info := c.Info()
	params, _ := smallSpec().TrainableParams()
	if info.Name != "small.cnw" || info.Spec != "wasm-test-small" || info.Layers != len(smallSpec().Layers) ||
		info.Params != params || info.DType != models.Float32 || len(info.Classes) != 10 ||
		info.Input != (models.Shape{C: 3, H: 32, W: 32}) || !slices.Equal(info.TTA, []string{"flip"}) || info.Size < 1000 {
		t.Errorf("info = %+v", info)
	}
	if info.FLOPs <= 0 {
		t.Errorf("flops = %d", info.FLOPs)
	}
	// The page and the worker count forward passes from ttaViews.
	for _, tc := range []struct {
		tta   []string
		views int
	}{{nil, 1}, {[]string{"flip"}, 2}, {[]string{"translate"}, 3}, {[]string{"flip", "translate"}, 6}} {
		if got := loadSmall(t, tc.tta).Info().TTAViews; got != tc.views {
			t.Errorf("TTA %v: ttaViews %d, want %d", tc.tta, got, tc.views)
		}
	}
}

// The classifier must give exactly what the models package gives: it adds
// nothing but timing and the arg max.
func TestClassifyMatchesModels(t *testing.T) {
	c := loadSmall(t, nil)
	data, err := os.ReadFile(filepath.Join("..", "static", "samples", "frog.png"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Classify(data)
	if err != nil {
		t.Fatal(err)
	}
	want := nativeProbs(t, mustRead(t, modelPath), goldenCase{Image: filepath.Join("..", "static", "samples", "frog.png")})
	if !slices.Equal(r.Probs, want) {
		t.Errorf("probs %v, want %v", r.Probs, want)
	}
	if r.Top != argmax(want) {
		t.Errorf("top %d, want %d", r.Top, argmax(want))
	}
	if b := r.Input.Bounds(); b.Dx() != 32 || b.Dy() != 32 {
		t.Errorf("model input is %v, want 32×32", b)
	}
	if r.Infer <= 0 || r.Total < r.Infer {
		t.Errorf("timings infer %v total %v", r.Infer, r.Total)
	}
	// The probabilities must not alias the predictor's buffer.
	first := slices.Clone(r.Probs)
	if _, err := c.Classify(mustRead(t, filepath.Join("..", "static", "samples", "truck.png"))); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(first, r.Probs) {
		t.Error("a second classification changed the first result")
	}
}

func TestClassifyRGBAMatchesFile(t *testing.T) {
	c := loadSmall(t, nil)
	data := mustRead(t, filepath.Join("..", "static", "samples", "dog.png"))
	fromFile, err := c.Classify(data)
	if err != nil {
		t.Fatal(err)
	}
	pix, w, h := decodeRGBA(t, data)
	fromPix, err := c.ClassifyRGBA(pix, w, h)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(fromFile.Probs, fromPix.Probs) || !bytes.Equal(fromFile.Input.Pix, fromPix.Input.Pix) {
		t.Error("an opaque PNG gives different results from its file and from its pixels")
	}
	if _, err := c.ClassifyRGBA(pix[:len(pix)-1], w, h); ErrorCode(err) != CodeBadArgument {
		t.Errorf("short pixel buffer: err %v, code %q, want %q", err, ErrorCode(err), CodeBadArgument)
	}
}

// A model asking for test-time augmentation gets it: the result is
// PredictTTA's, not Predict's.
func TestTTA(t *testing.T) {
	plain := loadSmall(t, nil)
	tta := loadSmall(t, []string{models.TTAFlip, models.TTATranslate})
	data := mustRead(t, filepath.Join("..", "static", "samples", "horse.png"))
	x, _, err := models.PreprocessImage(data, plain.info.Input, plain.info.Normalization)
	if err != nil {
		t.Fatal(err)
	}
	want, err := tta.pred.PredictTTA(x)
	if err != nil {
		t.Fatal(err)
	}
	want = slices.Clone(want)
	r, err := tta.Classify(data)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Probs, want) {
		t.Errorf("TTA probs %v, want PredictTTA's %v", r.Probs, want)
	}
	p, err := plain.Classify(data)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Equal(p.Probs, r.Probs) {
		t.Error("with and without TTA give the same probabilities")
	}
}

func TestImageErrors(t *testing.T) {
	c := loadSmall(t, nil)
	good := mustRead(t, filepath.Join("..", "static", "samples", "cat.png"))
	for _, tc := range []struct {
		name string
		data []byte
		code string
	}{
		{"empty", nil, CodeUnsupported},
		{"text", []byte("hello, this is not an image\n"), CodeUnsupported},
		{"truncated png", good[:len(good)/2], CodeCorrupt},
		{"png header only", good[:40], CodeCorrupt},
		{"huge png", hugePNGHeader(20000, 20000), CodeTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := c.Classify(tc.data)
			if err == nil {
				t.Fatalf("no error, result top %d", r.Top)
			}
			if got := ErrorCode(err); got != tc.code {
				t.Errorf("error %q has code %q, want %q", err, got, tc.code)
			}
		})
	}
	// The classifier still works afterwards.
	if _, err := c.Classify(good); err != nil {
		t.Fatal(err)
	}
}

// hugePNGHeader is a PNG signature and a valid IHDR chunk declaring w×h
// pixels, with no image data.
func hugePNGHeader(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 6 // 8-bit RGBA
	binary.Write(&b, binary.BigEndian, uint32(len(ihdr)))
	chunk := append([]byte("IHDR"), ihdr...)
	b.Write(chunk)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(chunk))
	return b.Bytes()
}

func TestModelErrors(t *testing.T) {
	model := mustRead(t, modelPath)
	flipped := slices.Clone(model)
	flipped[len(flipped)-100] ^= 0x40
	var gray bytes.Buffer
	graySpec := modeltest.TinySpec()
	graySpec.Input.C = 1
	if err := models.Encode(&gray, modeltest.RandomFile(graySpec, 1)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, data, want string
	}{
		{"empty", "", ""},
		{"not a model", "GIF89a not a weight file", "magic"},
		{"truncated", string(model[:len(model)/2]), ""},
		{"bit flip", string(flipped), "damaged"},
		{"grayscale input", gray.String(), "RGB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewClassifier("x.cnw", []byte(tc.data))
			if err == nil {
				t.Fatal("no error")
			}
			if ErrorCode(err) != CodeBadModel {
				t.Errorf("code %q, want %q", ErrorCode(err), CodeBadModel)
			}
			if !strings.Contains(err.Error(), "x.cnw") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("message %q should name the file and say %q", err, tc.want)
			}
		})
	}
}

// No input may panic: the JavaScript side would lose the whole module.
func TestRandomInputsDoNotPanic(t *testing.T) {
	c := loadSmall(t, nil)
	good := mustRead(t, filepath.Join("..", "static", "samples", "bird.png"))
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		data := slices.Clone(good[:rng.IntN(len(good))+1])
		for range rng.IntN(4) {
			data[rng.IntN(len(data))] = byte(rng.Uint32())
		}
		c.Classify(data) // errors are fine; panics fail the test
	}
	img := image.NewNRGBA(image.Rect(0, 0, 1, 1))
	var one bytes.Buffer
	if err := png.Encode(&one, img); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Classify(one.Bytes()); err != nil {
		t.Errorf("1×1 transparent PNG: %v", err)
	}
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// SetTTA switches between the model's test-time augmentations and a plain
// forward pass, and cannot turn on what the model does not have.
func TestSetTTA(t *testing.T) {
	c := loadSmall(t, []string{models.TTAFlip, models.TTATranslate})
	data := mustRead(t, filepath.Join("..", "static", "samples", "horse.png"))
	x, _, err := models.PreprocessImage(data, c.info.Input, c.info.Normalization)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Info().TTAOn {
		t.Fatal("a TTA model starts with TTA off")
	}
	want, err := c.pred.PredictTTA(x)
	if err != nil {
		t.Fatal(err)
	}
	want = slices.Clone(want)
	plain, err := c.pred.Predict(x)
	if err != nil {
		t.Fatal(err)
	}
	plain = slices.Clone(plain)
	for _, tc := range []struct {
		on   bool
		want []float32
	}{{false, plain}, {true, want}} {
		if info := c.SetTTA(tc.on); info.TTAOn != tc.on {
			t.Errorf("SetTTA(%v): TTAOn %v", tc.on, info.TTAOn)
		}
		r, err := c.Classify(data)
		if err != nil {
			t.Fatal(err)
		}
		if r.TTA != tc.on || !slices.Equal(r.Probs, tc.want) {
			t.Errorf("TTA %v: result TTA %v, probs %v, want %v", tc.on, r.TTA, r.Probs, tc.want)
		}
	}
	if info := loadSmall(t, nil).SetTTA(true); info.TTAOn {
		t.Error("SetTTA(true) turned TTA on for a model without any")
	}
}
