package models

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The PyTorch reference lives in testdata/reference: reference.py reads the
// spec files written here, fills the tensors from the same generator as
// referenceStream, and writes float64 logits that the float32 forward pass
// must match.

var update = flag.Bool("update", false, "rewrite testdata/reference/*.spec.json from the presets")

const (
	referenceSeed   = 20261123
	referenceInputs = 4
)

// referenceStream is splitmix64 yielding uniforms in [-1, 1) with 24-bit
// resolution, bit for bit the same as Stream in reference.py.
type referenceStream struct{ state uint64 }

func (s *referenceStream) uniform() float64 {
	s.state += 0x9E3779B97F4A7C15
	z := s.state
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	z ^= z >> 31
	return float64(z>>40)/float64(1<<23) - 1
}

// referenceValue mirrors param_value in reference.py.
func referenceValue(p Param, u float64) float32 {
	switch {
	case strings.HasSuffix(p.Name, ".running_var"):
		return float32(1 + 0.5*u)
	case strings.HasSuffix(p.Name, ".running_mean"), strings.HasSuffix(p.Name, ".bias"):
		return float32(0.2 * u)
	case len(p.Shape) == 1:
		return float32(1 + 0.5*u)
	}
	fanIn := p.Size() / p.Shape[0]
	return float32(u * math.Sqrt(6/float64(fanIn)))
}

type referenceSpec struct {
	Spec   *Spec `json:"spec"`
	Params []struct {
		Name  string `json:"name"`
		Shape []int  `json:"shape"`
	} `json:"params"`
}

func referencePath(preset, kind string) string {
	return filepath.Join("testdata", "reference", preset+"."+kind+".json")
}

// edgeSpec exercises what the presets do not: an add reading a convolution
// whose batchnorm must then not be folded, an add reading an activation that
// an in-place batchnorm follows, strided projections (one from the input),
// and batchnorm after a linear layer.
func edgeSpec() *Spec {
	return &Spec{Name: "edge-cases", Input: Shape{3, 8, 8}, Layers: []Layer{
		{Name: "c1", Type: Conv2D, Filters: 4, Kernel: 3, Padding: 1, Bias: true},
		{Name: "bn1", Type: BatchNorm},
		{Name: "r1", Type: ReLU},
		{Name: "bn2", Type: BatchNorm, Eps: 1e-3},
		{Name: "c2", Type: Conv2D, Filters: 4, Kernel: 3, Padding: 1},
		{Name: "bn3", Type: BatchNorm},
		{Name: "add1", Type: Add, From: "c2"},
		{Name: "lr", Type: LeakyReLU, Alpha: 0.2},
		{Name: "c3", Type: Conv2D, Filters: 6, Kernel: 3, Stride: 2, Padding: 1},
		{Name: "add2", Type: Add, From: "r1", Project: true},
		{Name: "g", Type: GELU},
		{Name: "pool", Type: MaxPool, Kernel: 2},
		{Name: "add3", Type: Add, From: InputName, Project: true},
		{Name: "gap", Type: GlobalAvgPool},
		{Name: "flat", Type: Flatten},
		{Name: "fc", Type: Linear, Units: 10, Bias: true},
		{Name: "fc_bn", Type: BatchNorm},
		{Name: "drop", Type: Dropout, Rate: 0.5},
		{Name: "softmax", Type: Softmax},
	}}
}

// referenceSpecs are the specs checked against PyTorch.
func referenceSpecs() map[string]*Spec {
	specs := map[string]*Spec{"edge-cases": edgeSpec()}
	for _, name := range PresetNames() {
		specs[name], _ = Preset(name)
	}
	return specs
}

func TestReferenceSpecs(t *testing.T) {
	for name, spec := range referenceSpecs() {
		params, err := spec.Params()
		if err != nil {
			t.Fatal(err)
		}
		var ref referenceSpec
		ref.Spec = spec
		for _, p := range params {
			ref.Params = append(ref.Params, struct {
				Name  string `json:"name"`
				Shape []int  `json:"shape"`
			}{p.Name, p.Shape})
		}
		data, _ := json.MarshalIndent(ref, "", " ")
		data = append(data, '\n')
		path := referencePath(name, "spec")
		if *update {
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		old, err := os.ReadFile(path)
		if err != nil || string(old) != string(data) {
			t.Errorf("%s is out of date with preset %q: run go test ./models -run TestReferenceSpecs -update, then /usr/bin/python3 models/testdata/reference/reference.py", path, name)
		}
	}
}

// TestForwardMatchesPyTorch runs each spec with and without Winograd,
// whichever this CPU's kernel makes the default.
func TestForwardMatchesPyTorch(t *testing.T) {
	defer func(saved bool) { winogradEnabled = saved }(winogradEnabled)
	for _, wino := range []bool{false, true} {
		winogradEnabled = wino
		t.Run(fmt.Sprintf("winograd=%v", wino), testForwardMatchesPyTorch)
	}
}

func testForwardMatchesPyTorch(t *testing.T) {
	for name, spec := range referenceSpecs() {
		t.Run(name, func(t *testing.T) {
			params, err := spec.Params()
			if err != nil {
				t.Fatal(err)
			}
			stream := referenceStream{referenceSeed}
			f := &File{Meta: Meta{
				Spec:          *spec,
				Classes:       CIFAR10Classes,
				Normalization: Normalization{Mean: []float32{0, 0, 0}, Std: []float32{1, 1, 1}},
				DType:         Float32,
			}, Tensors: map[string]*Tensor{}}
			for _, p := range params {
				data := make([]float32, p.Size())
				for i := range data {
					data[i] = referenceValue(p, stream.uniform())
				}
				f.Tensors[p.Name] = &Tensor{Name: p.Name, Shape: p.Shape, Data: data}
			}
			x := make([]float32, referenceInputs*spec.Input.Size())
			for i := range x {
				x[i] = float32(2 * stream.uniform())
			}
			raw, err := os.ReadFile(referencePath(name, "logits"))
			if err != nil {
				t.Fatalf("%v (generate with /usr/bin/python3 models/testdata/reference/reference.py)", err)
			}
			var want struct {
				Logits [][]float64 `json:"logits"`
			}
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatal(err)
			}
			m, err := NewModel(f)
			if err != nil {
				t.Fatal(err)
			}
			p := m.NewPredictor()
			check := func(how string, got []float32, img int) {
				worst := 0.0
				for j, w := range want.Logits[img] {
					worst = max(worst, math.Abs(float64(got[j])-w))
				}
				if worst > 1e-4 {
					t.Errorf("%s image %d: max |Δlogit| = %.3g > 1e-4 (got %v, want %v)", how, img, worst, got, want.Logits[img])
				}
				t.Logf("%s image %d: max |Δlogit| = %.2g", how, img, worst)
			}
			if _, err := p.PredictBatch(x, referenceInputs); err != nil {
				t.Fatal(err)
			}
			batch := append([]float32(nil), p.Logits()...)
			for i := 0; i < referenceInputs; i++ {
				check("batch", batch[i*10:(i+1)*10], i)
				size := spec.Input.Size()
				if _, err := p.Predict(x[i*size : (i+1)*size]); err != nil {
					t.Fatal(err)
				}
				check("single", p.Logits(), i)
			}
		})
	}
}
