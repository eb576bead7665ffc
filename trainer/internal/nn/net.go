// Package nn trains networks described by a models.Spec with gorgonia: it
// holds the parameters, named and shaped exactly as Spec.Params() and the
// weight file, and builds training and evaluation graphs over them. Custom
// ops cover what gorgonia lacks or does differently (batchnorm with
// state_dict parameters, exact GELU, seeded dropout, per-channel bias,
// global average pooling, softmax cross-entropy).
package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/cifarnet-go/cifarnet/models"
	"gorgonia.org/tensor"
)

// Param is one parameter tensor of a network. Data is the live storage:
// every graph built from the network reads it, and optimisers update it in
// place.
type Param struct {
	models.Param
	Data  []float32
	dense *tensor.Dense
}

// Net is a network's spec and parameters.
type Net struct {
	spec   models.Spec
	shapes []models.Shape
	params []*Param
	byName map[string]*Param
	// frozenBN makes training graphs normalise with the running
	// statistics and leave them unchanged.
	frozenBN bool
}

// FreezeBatchNormStatistics makes the training graphs built afterwards
// normalise with the running statistics, as evaluation does, and never
// update them; γ and β still train.
func (n *Net) FreezeBatchNormStatistics() { n.frozenBN = true }

// New returns a network for spec with PyTorch's default initialisation:
// convolution and linear weights and biases uniform in ±1/√fan_in (what
// kaiming_uniform_(a=√5) gives), batchnorm γ=1, β=0, running mean 0 and
// running variance 1. The same spec and seed give the same weights.
func New(spec *models.Spec, seed uint64) (*Net, error) {
	n, err := newNet(spec)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(seed, 0x696e6974)) // "init"
	for _, p := range n.params {
		switch {
		case strings.HasSuffix(p.Name, ".running_var"):
			fill(p.Data, 1)
		case strings.HasSuffix(p.Name, ".running_mean"):
			fill(p.Data, 0)
		case n.isBatchNorm(p.Name):
			if strings.HasSuffix(p.Name, ".weight") {
				fill(p.Data, 1)
			} else {
				fill(p.Data, 0)
			}
		default: // conv, linear or projection weight or bias
			bound := 1 / math.Sqrt(float64(n.fanIn(p.Name)))
			for i := range p.Data {
				p.Data[i] = float32((2*rng.Float64() - 1) * bound)
			}
		}
	}
	return n, nil
}

// FromFile returns a network holding a copy of a weight file's spec and
// weights.
func FromFile(f *models.File) (*Net, error) {
	n, err := newNet(&f.Meta.Spec)
	if err != nil {
		return nil, err
	}
	if err := n.Load(f); err != nil {
		return nil, err
	}
	return n, nil
}

func newNet(spec *models.Spec) (*Net, error) {
	shapes, err := spec.Shapes()
	if err != nil {
		return nil, fmt.Errorf("spec %q: %w", spec.Name, err)
	}
	ps, err := spec.Params()
	if err != nil {
		return nil, fmt.Errorf("spec %q: %w", spec.Name, err)
	}
	n := &Net{spec: *spec, shapes: shapes, byName: make(map[string]*Param, len(ps))}
	n.spec.Layers = slices.Clone(spec.Layers)
	for _, mp := range ps {
		data := make([]float32, mp.Size())
		p := &Param{
			Param: mp,
			Data:  data,
			dense: tensor.New(tensor.WithShape(mp.Shape...), tensor.WithBacking(data)),
		}
		n.params = append(n.params, p)
		n.byName[p.Name] = p
	}
	return n, nil
}

func fill(d []float32, v float32) {
	for i := range d {
		d[i] = v
	}
}

// isBatchNorm reports whether a parameter belongs to a batchnorm layer
// (including an add layer's projection batchnorm).
func (n *Net) isBatchNorm(name string) bool {
	if strings.Contains(name, ".proj_bn.") {
		return true
	}
	layer := name[:strings.LastIndex(name, ".")]
	for _, l := range n.spec.Layers {
		if l.Name == layer {
			return l.Type == models.BatchNorm
		}
	}
	return false
}

// fanIn is the number of inputs of each output of the layer a weight or
// bias belongs to.
func (n *Net) fanIn(name string) int {
	w := n.byName[name[:strings.LastIndex(name, ".")]+".weight"]
	return w.Size() / w.Shape[0]
}

// Spec returns the network's architecture.
func (n *Net) Spec() *models.Spec { return &n.spec }

// Params returns every parameter in Spec.Params() order.
func (n *Net) Params() []*Param { return n.params }

// Param returns the named parameter, or nil.
func (n *Net) Param(name string) *Param { return n.byName[name] }

// Trainable returns the parameters an optimiser updates, in Spec.Params()
// order; gradients from a Graph come in the same order.
func (n *Net) Trainable() []*Param {
	var ps []*Param
	for _, p := range n.params {
		if p.Trainable {
			ps = append(ps, p)
		}
	}
	return ps
}

// Load copies a weight file's tensors into the network. The file's spec
// must have exactly the network's parameters.
func (n *Net) Load(f *models.File) error {
	for _, p := range n.params {
		t, ok := f.Tensors[p.Name]
		if !ok {
			return fmt.Errorf("load weights: tensor %q missing", p.Name)
		}
		if !slices.Equal(t.Shape, p.Shape) || len(t.Data) != len(p.Data) {
			return fmt.Errorf("load weights: tensor %q has shape %v, network needs %v", p.Name, t.Shape, p.Shape)
		}
	}
	if len(f.Tensors) != len(n.params) {
		return fmt.Errorf("load weights: file has %d tensors, network %d", len(f.Tensors), len(n.params))
	}
	for _, p := range n.params {
		copy(p.Data, f.Tensors[p.Name].Data)
	}
	return nil
}

// File returns a float32 weight file holding a copy of the network's
// parameters under meta; meta's spec is replaced by the network's.
func (n *Net) File(meta models.Meta) *models.File {
	meta.Spec = n.spec
	meta.Spec.Layers = slices.Clone(n.spec.Layers)
	meta.DType = models.Float32
	f := &models.File{Meta: meta, Tensors: make(map[string]*models.Tensor, len(n.params))}
	for _, p := range n.params {
		f.Tensors[p.Name] = &models.Tensor{Name: p.Name, Shape: slices.Clone(p.Shape), Data: slices.Clone(p.Data)}
	}
	return f
}

// Snapshot returns a copy of every parameter's values, in Params() order.
func (n *Net) Snapshot() [][]float32 {
	s := make([][]float32, len(n.params))
	for i, p := range n.params {
		s[i] = slices.Clone(p.Data)
	}
	return s
}

// Restore sets every parameter from a Snapshot.
func (n *Net) Restore(s [][]float32) error {
	if len(s) != len(n.params) {
		return fmt.Errorf("restore: snapshot has %d tensors, network %d", len(s), len(n.params))
	}
	for i, p := range n.params {
		if len(s[i]) != len(p.Data) {
			return fmt.Errorf("restore: tensor %q has %d values, snapshot %d", p.Name, len(p.Data), len(s[i]))
		}
	}
	for i, p := range n.params {
		copy(p.Data, s[i])
	}
	return nil
}
