// Package modeltest builds deterministic weight files for tests: random
// but plausible weights for any spec, and a tiny spec that exercises every
// layer with parameters; and runs a file's forward pass for tests that
// compare it with something else; and makes test pictures.
package modeltest

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/cifarnet-go/cifarnet/models"
)

// RandomFile returns a float32 File holding deterministic random weights
// for every parameter of spec: He-normal conv and linear weights, biases
// ~N(0, 0.1), and batchnorm layers with non-trivial statistics (gamma and
// running variance uniform in [0.5, 1.5], beta and running mean ~N(0, 0.1))
// so that a forward pass that ignores any of them gives different results.
// The same spec and seed always give the same file.
//
// It panics if spec is invalid: it is meant for tests, whose specs are
// fixed.
func RandomFile(spec *models.Spec, seed uint64) *models.File {
	params, err := spec.Params()
	if err != nil {
		panic(fmt.Sprintf("modeltest.RandomFile: %v", err))
	}
	out, err := spec.Output()
	if err != nil {
		panic(fmt.Sprintf("modeltest.RandomFile: %v", err))
	}
	rng := rand.New(rand.NewPCG(seed, 0x6369666172))
	normal := func(std float64) float32 { return float32(rng.NormFloat64() * std) }
	uniform := func(lo, hi float64) float32 { return float32(lo + (hi-lo)*rng.Float64()) }

	f := &models.File{
		Meta: models.Meta{
			Spec:          cloneSpec(spec),
			Classes:       classNames(out.C),
			Normalization: normalization(spec.Input.C),
			DType:         models.Float32,
			Provenance: models.Provenance{
				Dataset: "none",
				Notes:   "random weights for tests",
			},
		},
		Tensors: make(map[string]*models.Tensor, len(params)),
	}
	for _, p := range params {
		t := &models.Tensor{Name: p.Name, Shape: slices.Clone(p.Shape), Data: make([]float32, p.Size())}
		var gen func() float32
		switch {
		case len(p.Shape) >= 2: // conv or linear weight: He initialisation
			fanIn := p.Size() / p.Shape[0]
			std := math.Sqrt(2 / float64(fanIn))
			gen = func() float32 { return normal(std) }
		case strings.HasSuffix(p.Name, ".running_var"), strings.HasSuffix(p.Name, ".weight"):
			gen = func() float32 { return uniform(0.5, 1.5) }
		default: // biases, batchnorm beta and running mean
			gen = func() float32 { return normal(0.1) }
		}
		for i := range t.Data {
			t.Data[i] = gen()
		}
		f.Tensors[p.Name] = t
	}
	if err := f.Validate(); err != nil {
		panic(fmt.Sprintf("modeltest.RandomFile: built an invalid file: %v", err))
	}
	return f
}

// cloneSpec copies spec so that the file does not share its layer slice.
func cloneSpec(spec *models.Spec) models.Spec {
	s := *spec
	s.Layers = slices.Clone(spec.Layers)
	return s
}

// classNames are the CIFAR-10 names for a 10-way classifier and generic
// names otherwise.
func classNames(n int) []string {
	if n == len(models.CIFAR10Classes) {
		return slices.Clone(models.CIFAR10Classes)
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("class%d", i)
	}
	return names
}

// normalization is the CIFAR-10 training-set statistics for RGB input and
// a generic mean 0.5, std 0.25 per channel otherwise.
func normalization(channels int) models.Normalization {
	if channels == 3 {
		return models.Normalization{
			Mean: []float32{0.4914, 0.4822, 0.4465},
			Std:  []float32{0.2470, 0.2435, 0.2616},
		}
	}
	n := models.Normalization{Mean: make([]float32, channels), Std: make([]float32, channels)}
	for i := range channels {
		n.Mean[i], n.Std[i] = 0.5, 0.25
	}
	return n
}

// TinySpec is a small network on 3×8×8 input with every layer type that
// has parameters (conv2d with and without bias, batchnorm, a projected and
// a plain residual add, linear) and most that do not. Its weight file is a
// few kilobytes, which keeps fuzzing and exhaustive corruption tests fast.
func TinySpec() *models.Spec {
	return &models.Spec{
		Name:  "tiny",
		Input: models.Shape{C: 3, H: 8, W: 8},
		Layers: []models.Layer{
			{Name: "conv1", Type: models.Conv2D, Filters: 4, Kernel: 3, Padding: 1, Bias: true},
			{Name: "bn1", Type: models.BatchNorm},
			{Name: "relu1", Type: models.ReLU},
			{Name: "conv2", Type: models.Conv2D, Filters: 4, Kernel: 3, Padding: 1},
			{Name: "bn2", Type: models.BatchNorm},
			{Name: "res1", Type: models.Add, From: "relu1"},
			{Name: "act2", Type: models.LeakyReLU, Alpha: 0.1},
			{Name: "pool", Type: models.MaxPool, Kernel: 2},
			{Name: "conv3", Type: models.Conv2D, Filters: 6, Kernel: 3, Stride: 2, Padding: 1},
			{Name: "res2", Type: models.Add, From: "pool", Project: true},
			{Name: "gelu", Type: models.GELU},
			{Name: "gap", Type: models.GlobalAvgPool},
			{Name: "drop", Type: models.Dropout, Rate: 0.2},
			{Name: "flatten", Type: models.Flatten},
			{Name: "fc", Type: models.Linear, Units: 10, Bias: true},
			{Name: "softmax", Type: models.Softmax},
		},
	}
}

// Predict returns the class probabilities of the n normalised images in x
// under f's forward pass (a copy), failing t on any error.
func Predict(t testing.TB, f *models.File, x []float32, n int) []float32 {
	t.Helper()
	m, err := models.NewModel(f)
	if err != nil {
		t.Fatal(err)
	}
	p, err := m.NewPredictor().PredictBatch(x, n)
	if err != nil {
		t.Fatal(err)
	}
	return slices.Clone(p)
}

// NoisySquarePNG is a w×h PNG of colour c with per-pixel noise of ±40
// levels, the same for the same seed: two colours make two classes any
// model tells apart, each picture a little different.
func NoisySquarePNG(t testing.TB, c color.NRGBA, w, h int, seed uint64) []byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	jitter := func(v uint8) uint8 { return uint8(max(0, min(255, int(v)+rng.IntN(81)-40))) }
	for y := range h {
		for x := range w {
			img.SetNRGBA(x, y, color.NRGBA{jitter(c.R), jitter(c.G), jitter(c.B), 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
