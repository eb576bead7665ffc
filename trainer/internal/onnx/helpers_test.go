package onnx

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/models/modeltest"
	"github.com/cifarnet-go/cifarnet/trainer/internal/cifar"
)

// tolerance is the largest difference allowed between probabilities
// computed by two implementations of the same network.
const tolerance = 1e-4

// testSpecs are the networks every conversion is checked on: the presets
// and the tiny spec that has every layer type.
func testSpecs(t *testing.T) map[string]*models.Spec {
	t.Helper()
	specs := map[string]*models.Spec{"tiny": modeltest.TinySpec()}
	for _, name := range models.PresetNames() {
		s, err := models.Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		specs[name] = s
	}
	return specs
}

// cifarDir finds the CIFAR-10 binary batches: $CIFAR10_DIR, or
// ../shared/cifar10/cifar-10-batches-bin beside the repository (four levels
// up from this package). It returns "" when there is no test batch.
func cifarDir(t testing.TB) string {
	d := os.Getenv("CIFAR10_DIR")
	if d == "" {
		d = filepath.Join("..", "..", "..", "..", "shared", "cifar10", "cifar-10-batches-bin")
	}
	if _, err := os.Stat(filepath.Join(d, cifar.TestFile)); err != nil {
		return ""
	}
	return d
}

// inputs returns n normalised CHW images for f: the first n CIFAR-10 test
// images when f takes 3×32×32 input and the data set is there, else
// deterministic noise in the same range.
func inputs(t testing.TB, f *models.File, n int) []float32 {
	t.Helper()
	in := f.Meta.Spec.Input
	if d := cifarDir(t); d != "" && in == (models.Shape{C: 3, H: 32, W: 32}) {
		set, err := cifar.LoadFile(filepath.Join(d, cifar.TestFile))
		if err != nil {
			t.Fatal(err)
		}
		return normalize(set, n, f.Meta.Normalization)
	}
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	x := make([]float32, n*in.Size())
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return x
}

// normalize scales the first n images of set to [0, 1] and applies the
// per-channel normalisation.
func normalize(set *cifar.Set, n int, norm models.Normalization) []float32 {
	const plane = 32 * 32
	x := make([]float32, 0, n*3*plane)
	for i := range n {
		for j, v := range set.Image(i) {
			c := j / plane
			x = append(x, (float32(v)/255-norm.Mean[c])/norm.Std[c])
		}
	}
	return x
}

// maxDiff is the largest absolute difference between a and b.
func maxDiff(t testing.TB, a, b []float32) float64 {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%d values against %d", len(a), len(b))
	}
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i])-float64(b[i])))
	}
	return d
}
