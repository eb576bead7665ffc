// Package models is the model contract shared by the trainer, the
// WebAssembly module and the server: the declarative architecture spec, the
// versioned weight file, image preprocessing and the one forward pass.
package models

import (
	"encoding/json"
	"fmt"
)

// Layer types understood by the spec, the trainer and the forward pass.
const (
	Conv2D        = "conv2d"
	BatchNorm     = "batchnorm"
	ReLU          = "relu"
	LeakyReLU     = "leaky_relu"
	GELU          = "gelu"
	MaxPool       = "maxpool"
	GlobalAvgPool = "global_avg_pool"
	Add           = "add"
	Dropout       = "dropout"
	Flatten       = "flatten"
	Linear        = "linear"
	Softmax       = "softmax"
)

// DefaultBatchNormEps is used when a batchnorm layer leaves Eps at zero; it
// matches PyTorch's default.
const DefaultBatchNormEps = 1e-5

// Shape is a feature-map shape in CHW order. Vectors (after flatten or
// linear) are C×1×1.
type Shape struct {
	C int `json:"c"`
	H int `json:"h"`
	W int `json:"w"`
}

// Size is the number of elements in the shape.
func (s Shape) Size() int { return s.C * s.H * s.W }

func (s Shape) String() string { return fmt.Sprintf("%d×%d×%d", s.C, s.H, s.W) }

// Layer is one step of a sequential network. Each layer reads the output of
// the layer before it; an add layer also reads the output of From.
type Layer struct {
	Name string `json:"name"`
	Type string `json:"type"`

	// conv2d: Filters output channels; linear: Units outputs.
	Filters int `json:"filters,omitempty"`
	Units   int `json:"units,omitempty"`
	// conv2d and maxpool. Stride 0 means 1 for conv2d and Kernel for maxpool.
	Kernel  int  `json:"kernel,omitempty"`
	Stride  int  `json:"stride,omitempty"`
	Padding int  `json:"padding,omitempty"`
	Bias    bool `json:"bias,omitempty"` // conv2d and linear

	Alpha float64 `json:"alpha,omitempty"` // leaky_relu negative slope
	Eps   float64 `json:"eps,omitempty"`   // batchnorm; 0 means DefaultBatchNormEps
	Rate  float64 `json:"rate,omitempty"`  // dropout probability (training only)

	// add: From names an earlier layer whose output is added to this
	// layer's input. With Project, the skip path first goes through a 1×1
	// convolution without bias (stride inferred from the spatial sizes)
	// and a batchnorm, so that channel counts and sizes may differ.
	From    string `json:"from,omitempty"`
	Project bool   `json:"project,omitempty"`
}

// Spec is a whole network: an input shape and a list of layers.
type Spec struct {
	Name   string  `json:"name"`
	Input  Shape   `json:"input"`
	Layers []Layer `json:"layers"`
}

// Param describes one tensor that a weight file must hold for a spec.
// Names follow PyTorch's state_dict conventions: conv weights are
// [out, in, kh, kw], linear weights [out, in].
type Param struct {
	Name      string
	Shape     []int
	Trainable bool // false for batchnorm running statistics
}

// Size is the number of elements of the parameter.
func (p Param) Size() int {
	n := 1
	for _, d := range p.Shape {
		n *= d
	}
	return n
}

// LayerError is returned for a problem with one layer of a spec.
type LayerError struct {
	Index int
	Name  string
	Err   error
}

func (e *LayerError) Error() string {
	return fmt.Sprintf("layer %d (%q): %v", e.Index, e.Name, e.Err)
}

func (e *LayerError) Unwrap() error { return e.Err }

// EffectiveStride returns the effective stride of a conv2d or maxpool layer.
func (l Layer) EffectiveStride() int {
	if l.Stride > 0 {
		return l.Stride
	}
	if l.Type == MaxPool {
		return l.Kernel
	}
	return 1
}

// EffectiveEps returns the batchnorm epsilon with the default applied.
func (l Layer) EffectiveEps() float64 {
	if l.Eps > 0 {
		return l.Eps
	}
	return DefaultBatchNormEps
}

// projectStride is the stride of a 1×1 convolution without padding that
// maps the spatial size of from onto that of to.
func projectStride(from, to Shape) (int, error) {
	for st := 1; st <= 16; st++ {
		if convOut(from.H, 1, st, 0) == to.H && convOut(from.W, 1, st, 0) == to.W {
			return st, nil
		}
	}
	return 0, fmt.Errorf("cannot project %v onto %v with a strided 1×1 convolution", from, to)
}

// ProjectStride returns the stride of the 1×1 projection of add layer i,
// given the inferred shapes (as returned by Shapes).
func (s *Spec) ProjectStride(i int, shapes []Shape) (int, error) {
	from, err := s.indexOf(s.Layers[i].From, i)
	if err != nil {
		return 0, err
	}
	return projectStride(s.outputShape(from, shapes), s.inputShape(i, shapes))
}

// inputShape is the shape layer i reads.
func (s *Spec) inputShape(i int, shapes []Shape) Shape {
	if i == 0 {
		return s.Input
	}
	return shapes[i-1]
}

// InputName is the name an add layer's From uses for the network input.
const InputName = "input"

// indexOf finds the earlier layer called name, before layer i; -1 stands for
// the network input.
func (s *Spec) indexOf(name string, i int) (int, error) {
	if name == "" {
		return 0, fmt.Errorf("add needs \"from\", the name of an earlier layer or %q", InputName)
	}
	if name == InputName {
		return -1, nil
	}
	for j := 0; j < i; j++ {
		if s.Layers[j].Name == name {
			return j, nil
		}
	}
	return 0, fmt.Errorf("from %q: no earlier layer has that name", name)
}

// FromIndex returns the index of the layer an add layer reads, -1 for the
// network input.
func (s *Spec) FromIndex(i int) (int, error) { return s.indexOf(s.Layers[i].From, i) }

// outputShape is the shape of layer j's output, j = -1 being the input.
func (s *Spec) outputShape(j int, shapes []Shape) Shape {
	if j < 0 {
		return s.Input
	}
	return shapes[j]
}

func convOut(in, kernel, stride, pad int) int { return (in+2*pad-kernel)/stride + 1 }

// Shapes validates the spec and returns the output shape of every layer.
// Errors name the layer at fault.
func (s *Spec) Shapes() ([]Shape, error) {
	const maxInput = 4096
	if s.Input.C <= 0 || s.Input.H <= 0 || s.Input.W <= 0 || s.Input.C > 64 || s.Input.H > maxInput || s.Input.W > maxInput {
		return nil, fmt.Errorf("spec %q: input shape %v must be positive, with at most 64 channels and %d pixels a side", s.Name, s.Input, maxInput)
	}
	if len(s.Layers) == 0 {
		return nil, fmt.Errorf("spec %q: no layers", s.Name)
	}
	const maxDim = 1 << 16
	shapes := make([]Shape, len(s.Layers))
	names := make(map[string]bool, len(s.Layers))
	for i, l := range s.Layers {
		fail := func(format string, a ...any) error {
			return &LayerError{Index: i, Name: l.Name, Err: fmt.Errorf(format, a...)}
		}
		if l.Name == "" || l.Name == InputName {
			return nil, fail("layer needs a name other than %q", InputName)
		}
		if names[l.Name] {
			return nil, fail("duplicate layer name")
		}
		names[l.Name] = true
		in := s.inputShape(i, shapes)
		out := in
		switch l.Type {
		case Conv2D:
			if l.Filters <= 0 || l.Filters > maxDim {
				return nil, fail("filters must be in 1..%d, got %d", maxDim, l.Filters)
			}
			if l.Kernel <= 0 || l.Kernel > 15 || l.Stride < 0 || l.Stride > 15 || l.Padding < 0 || l.Padding >= l.Kernel {
				return nil, fail("kernel %d, stride %d, padding %d: need 1 ≤ kernel ≤ 15, 0 ≤ stride ≤ 15, 0 ≤ padding < kernel", l.Kernel, l.Stride, l.Padding)
			}
			st := l.EffectiveStride()
			if in.H+2*l.Padding < l.Kernel || in.W+2*l.Padding < l.Kernel {
				return nil, fail("kernel %d larger than padded input %v", l.Kernel, in)
			}
			out = Shape{l.Filters, convOut(in.H, l.Kernel, st, l.Padding), convOut(in.W, l.Kernel, st, l.Padding)}
		case MaxPool:
			if l.Kernel <= 0 || l.Stride < 0 || l.Padding != 0 {
				return nil, fail("maxpool needs kernel > 0, stride ≥ 0 and no padding")
			}
			if in.H < l.Kernel || in.W < l.Kernel {
				return nil, fail("pool kernel %d larger than input %v", l.Kernel, in)
			}
			st := l.EffectiveStride()
			out = Shape{in.C, convOut(in.H, l.Kernel, st, 0), convOut(in.W, l.Kernel, st, 0)}
		case GlobalAvgPool:
			out = Shape{in.C, 1, 1}
		case Flatten:
			out = Shape{in.Size(), 1, 1}
		case Linear:
			if in.H != 1 || in.W != 1 {
				return nil, fail("linear needs a vector input (flatten or global_avg_pool first), got %v", in)
			}
			if l.Units <= 0 || l.Units > 1<<20 {
				return nil, fail("units must be in 1..%d, got %d", 1<<20, l.Units)
			}
			out = Shape{l.Units, 1, 1}
		case BatchNorm, ReLU, GELU, Softmax:
			if l.Eps < 0 {
				return nil, fail("eps must not be negative")
			}
		case LeakyReLU:
			if l.Alpha < 0 || l.Alpha >= 1 {
				return nil, fail("alpha must be in [0, 1), got %g", l.Alpha)
			}
		case Dropout:
			if l.Rate < 0 || l.Rate >= 1 {
				return nil, fail("rate must be in [0, 1), got %g", l.Rate)
			}
		case Add:
			j, err := s.indexOf(l.From, i)
			if err != nil {
				return nil, fail("%v", err)
			}
			from := s.outputShape(j, shapes)
			if l.Project {
				if _, err := projectStride(from, in); err != nil {
					return nil, fail("%v", err)
				}
			} else if from != in {
				return nil, fail("adds %q of shape %v to input of shape %v; set project for a 1×1 projection", l.From, from, in)
			}
		case "":
			return nil, fail("layer has no type")
		default:
			return nil, fail("unknown layer type %q", l.Type)
		}
		if out.C <= 0 || out.H <= 0 || out.W <= 0 {
			return nil, fail("output shape %v is empty", out)
		}
		if out.Size() > 1<<26 {
			return nil, fail("output shape %v is too large", out)
		}
		shapes[i] = out
	}
	return shapes, nil
}

// Output is the shape of the network's output.
func (s *Spec) Output() (Shape, error) {
	shapes, err := s.Shapes()
	if err != nil {
		return Shape{}, err
	}
	return shapes[len(shapes)-1], nil
}

// Params lists every tensor a weight file must hold for this spec, in layer
// order.
func (s *Spec) Params() ([]Param, error) {
	shapes, err := s.Shapes()
	if err != nil {
		return nil, err
	}
	var ps []Param
	bn := func(prefix string, c int) {
		ps = append(ps,
			Param{prefix + ".weight", []int{c}, true},
			Param{prefix + ".bias", []int{c}, true},
			Param{prefix + ".running_mean", []int{c}, false},
			Param{prefix + ".running_var", []int{c}, false})
	}
	for i, l := range s.Layers {
		in := s.inputShape(i, shapes)
		switch l.Type {
		case Conv2D:
			ps = append(ps, Param{l.Name + ".weight", []int{l.Filters, in.C, l.Kernel, l.Kernel}, true})
			if l.Bias {
				ps = append(ps, Param{l.Name + ".bias", []int{l.Filters}, true})
			}
		case Linear:
			ps = append(ps, Param{l.Name + ".weight", []int{l.Units, in.C}, true})
			if l.Bias {
				ps = append(ps, Param{l.Name + ".bias", []int{l.Units}, true})
			}
		case BatchNorm:
			bn(l.Name, in.C)
		case Add:
			if l.Project {
				j, _ := s.indexOf(l.From, i)
				ps = append(ps, Param{l.Name + ".proj.weight", []int{in.C, s.outputShape(j, shapes).C, 1, 1}, true})
				bn(l.Name+".proj_bn", in.C)
			}
		}
	}
	return ps, nil
}

// TrainableParams counts the trainable parameters (what PyTorch and Keras
// report as trainable).
func (s *Spec) TrainableParams() (int, error) {
	ps, err := s.Params()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, p := range ps {
		if p.Trainable {
			n += p.Size()
		}
	}
	return n, nil
}

// FLOPs estimates the multiply-adds ×2 of one forward pass (convolutions and
// linear layers only, which dominate).
func (s *Spec) FLOPs() (int64, error) {
	shapes, err := s.Shapes()
	if err != nil {
		return 0, err
	}
	var f int64
	for i, l := range s.Layers {
		in := s.inputShape(i, shapes)
		out := shapes[i]
		switch l.Type {
		case Conv2D:
			f += 2 * int64(out.Size()) * int64(in.C*l.Kernel*l.Kernel)
		case Linear:
			f += 2 * int64(out.C) * int64(in.C)
		case Add:
			if l.Project {
				j, _ := s.indexOf(l.From, i)
				f += 2 * int64(in.Size()) * int64(s.outputShape(j, shapes).C)
			}
		}
	}
	return f, nil
}

// ParseSpec decodes a JSON spec and validates it.
func ParseSpec(data []byte) (*Spec, error) {
	var s Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("parse spec: %w", err)
	}
	if _, err := s.Shapes(); err != nil {
		return nil, err
	}
	return &s, nil
}
