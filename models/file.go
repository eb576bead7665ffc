package models

import (
	"fmt"
	"slices"
)

// DType is how a tensor is stored in a weight file. Tensors are always
// float32 in memory.
type DType string

// Storage types of a weight file's tensors.
const (
	Float32 DType = "float32"
	Float16 DType = "float16"
	// Int8 stores symmetric per-output-channel quantised weights with one
	// float32 scale per slice along the first dimension.
	Int8 DType = "int8"
)

// Normalization is the per-channel mean and standard deviation subtracted
// from and divided into input pixels scaled to [0, 1].
type Normalization struct {
	Mean []float32 `json:"mean"`
	Std  []float32 `json:"std"`
}

// Provenance records where a model came from.
type Provenance struct {
	Dataset        string  `json:"dataset,omitempty"`
	Recipe         string  `json:"recipe,omitempty"`
	Command        string  `json:"command,omitempty"` // the command that reproduces it
	Epochs         int     `json:"epochs,omitempty"`
	ValAccuracy    float64 `json:"val_accuracy,omitempty"`
	TestAccuracy   float64 `json:"test_accuracy,omitempty"`
	TestAccuracyTT float64 `json:"test_accuracy_tta,omitempty"`
	TrainSeconds   float64 `json:"train_seconds,omitempty"` // epochs: training and validation
	WallSeconds    float64 `json:"wall_seconds,omitempty"`  // the whole train command, set-up included, summed over resumes
	Trainer        string  `json:"trainer,omitempty"`       // trainer version or commit
	Device         string  `json:"device,omitempty"`        // where it was trained, e.g. "cuda:0 (NVIDIA H200)"
	BaseModel      string  `json:"base_model,omitempty"`    // fine-tuned from: the base file's name and SHA-256
	Created        string  `json:"created,omitempty"`       // UTC, RFC 3339
	Notes          string  `json:"notes,omitempty"`
}

// InferenceOptions are hints front ends honour when classifying.
type InferenceOptions struct {
	// TTA lists test-time augmentations whose probabilities are averaged:
	// "flip" (horizontal mirror) and "translate" (±1 pixel shifts).
	TTA []string `json:"tta,omitempty"`
}

// Meta is the JSON header of a weight file: everything but the tensors.
type Meta struct {
	Spec          Spec             `json:"spec"`
	Classes       []string         `json:"classes"`
	Normalization Normalization    `json:"normalization"`
	DType         DType            `json:"dtype"`
	Provenance    Provenance       `json:"provenance"`
	Inference     InferenceOptions `json:"inference,omitzero"`
}

// Tensor is a named float32 array with its shape.
type Tensor struct {
	Name  string
	Shape []int
	Data  []float32
}

// File is a whole weight file in memory.
type File struct {
	Meta    Meta
	Tensors map[string]*Tensor
}

// Validate checks the metadata and that the tensors are exactly the ones
// the spec needs, with the right shapes.
func (f *File) Validate() error {
	if err := f.Meta.Validate(); err != nil {
		return err
	}
	params, err := f.Meta.Spec.Params()
	if err != nil {
		return err
	}
	want := make(map[string]bool, len(params))
	for _, p := range params {
		want[p.Name] = true
		t, ok := f.Tensors[p.Name]
		if !ok {
			return fmt.Errorf("tensor %q missing (shape %v)", p.Name, p.Shape)
		}
		if !slices.Equal(t.Shape, p.Shape) {
			return fmt.Errorf("tensor %q has shape %v, spec needs %v", p.Name, t.Shape, p.Shape)
		}
		if len(t.Data) != p.Size() {
			return fmt.Errorf("tensor %q holds %d values, shape %v needs %d", p.Name, len(t.Data), p.Shape, p.Size())
		}
	}
	for name := range f.Tensors {
		if !want[name] {
			return fmt.Errorf("tensor %q is not used by spec %q", name, f.Meta.Spec.Name)
		}
	}
	return nil
}

// Validate checks the header on its own: spec, classes and normalisation.
func (m *Meta) Validate() error {
	out, err := m.Spec.Output()
	if err != nil {
		return err
	}
	if out.H != 1 || out.W != 1 {
		return fmt.Errorf("spec %q outputs %v, want a vector of class scores", m.Spec.Name, out)
	}
	if len(m.Classes) != out.C {
		return fmt.Errorf("%d class names for %d outputs", len(m.Classes), out.C)
	}
	c := m.Spec.Input.C
	if len(m.Normalization.Mean) != c || len(m.Normalization.Std) != c {
		return fmt.Errorf("normalization needs %d means and stds, has %d and %d", c, len(m.Normalization.Mean), len(m.Normalization.Std))
	}
	for i, s := range m.Normalization.Std {
		if !(s > 0) {
			return fmt.Errorf("normalization std[%d] = %g, must be positive", i, s)
		}
	}
	switch m.DType {
	case Float32, Float16, Int8:
	default:
		return fmt.Errorf("unknown dtype %q", m.DType)
	}
	for _, t := range m.Inference.TTA {
		if t != "flip" && t != "translate" {
			return fmt.Errorf("unknown test-time augmentation %q", t)
		}
	}
	return nil
}
