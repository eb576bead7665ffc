package onnx

import (
	"fmt"
	"math"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/trainer/internal/onnx/onnxpb"
	"google.golang.org/protobuf/proto"
)

// Export converts a weight file into a serialized ONNX model whose input
// "input" is a batch of normalised CHW images [batch, C, H, W] (the batch
// size is symbolic) and whose output is [batch, classes]: "probabilities"
// when the spec ends with softmax, "logits" otherwise.
func Export(f *models.File) ([]byte, error) {
	m, err := ExportModel(f)
	if err != nil {
		return nil, err
	}
	data, err := proto.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("onnx export: %w", err)
	}
	return data, nil
}

// ExportModel is Export before serialization.
func ExportModel(f *models.File) (*onnxpb.ModelProto, error) {
	if err := f.Validate(); err != nil {
		return nil, fmt.Errorf("onnx export: %w", err)
	}
	spec := &f.Meta.Spec
	shapes, err := spec.Shapes()
	if err != nil {
		return nil, fmt.Errorf("onnx export: %w", err)
	}
	e := &exporter{
		f:          f,
		spec:       spec,
		shapes:     shapes,
		graph:      &onnxpb.GraphProto{Name: ptr(spec.Name)},
		rank:       map[string]int{InputName: 4},
		fromTarget: map[int]bool{},
		consts:     map[string]bool{},
		flat:       map[string]string{},
	}
	for i, l := range spec.Layers {
		if l.Type == models.Add {
			j, err := spec.FromIndex(i)
			if err != nil {
				return nil, fmt.Errorf("onnx export: %w", err)
			}
			e.fromTarget[j] = true
		}
	}
	out, err := e.layers()
	if err != nil {
		return nil, fmt.Errorf("onnx export: %w", err)
	}

	outName := LogitsOut
	if last := spec.Layers[len(spec.Layers)-1]; last.Type == models.Softmax {
		outName = ProbabilitiesOut
	}
	e.rename(out, outName)
	if err := e.checkUnique(); err != nil {
		return nil, fmt.Errorf("onnx export: %w", err)
	}
	classes := len(f.Meta.Classes)
	in := spec.Input
	e.graph.Input = []*onnxpb.ValueInfoProto{valueInfo(InputName, dimParam("batch"), dimValue(in.C), dimValue(in.H), dimValue(in.W))}
	e.graph.Output = []*onnxpb.ValueInfoProto{valueInfo(outName, dimParam("batch"), dimValue(classes))}

	props, err := metadataProps(&f.Meta)
	if err != nil {
		return nil, fmt.Errorf("onnx export: %w", err)
	}
	return &onnxpb.ModelProto{
		IrVersion:     ptr(int64(irVersion)),
		OpsetImport:   []*onnxpb.OperatorSetIdProto{{Domain: ptr(""), Version: ptr(int64(Opset))}},
		ProducerName:  ptr("cifarnet"),
		DocString:     ptr(fmt.Sprintf("CIFAR-style image classifier %q. Input: RGB pixels scaled to [0, 1], then (x - mean) / std per channel (metadata_props %q), in CHW order. Output: %s over the classes in metadata_props %q.", spec.Name, MetaNormalization, outName, MetaClasses)),
		Graph:         e.graph,
		MetadataProps: props,
		ModelVersion:  ptr(int64(1)),
	}, nil
}

// exporter builds the graph layer by layer. Every layer's output value is
// named after the layer.
type exporter struct {
	f          *models.File
	spec       *models.Spec
	shapes     []models.Shape
	graph      *onnxpb.GraphProto
	rank       map[string]int    // rank of each value: 4 (NCHW) or 2 (NC)
	fromTarget map[int]bool      // layers whose output an add reads
	consts     map[string]bool   // scalar initializers already added
	flat       map[string]string // NC version of NCHW values, once made
}

func (e *exporter) tensor(name string) *models.Tensor { return e.f.Tensors[name] }

// node appends a node whose single output is named out.
func (e *exporter) node(op, out string, rank int, inputs []string, attrs ...*onnxpb.AttributeProto) string {
	e.graph.Node = append(e.graph.Node, &onnxpb.NodeProto{
		OpType:    ptr(op),
		Name:      ptr(out),
		Input:     inputs,
		Output:    []string{out},
		Attribute: attrs,
	})
	e.rank[out] = rank
	return out
}

func (e *exporter) initializer(name string, shape []int, data []float32) string {
	e.graph.Initializer = append(e.graph.Initializer, floatTensor(name, shape, data))
	return name
}

// scalar returns a shared scalar constant.
func (e *exporter) scalar(name string, v float32) string {
	if !e.consts[name] {
		e.consts[name] = true
		e.initializer(name, nil, []float32{v})
	}
	return name
}

// as2D flattens an NCHW value to NC (a no-op on NC values).
func (e *exporter) as2D(v string) string {
	if e.rank[v] == 2 {
		return v
	}
	if f, ok := e.flat[v]; ok {
		return f
	}
	e.flat[v] = e.node("Flatten", v+"/flatten", 2, []string{v}, intAttr("axis", 1))
	return e.flat[v]
}

// withBias appends the optional bias input when there is one.
func withBias(inputs []string, bias string) []string {
	if bias != "" {
		inputs = append(inputs, bias)
	}
	return inputs
}

// layers emits every layer and returns the value holding the output.
func (e *exporter) layers() (string, error) {
	layers := e.spec.Layers
	valueOf := make([]string, len(layers))
	cur := InputName
	for i := 0; i < len(layers); i++ {
		l := layers[i]
		// A batchnorm right after a conv or linear layer is folded into its
		// weights, unless an add reads the un-normalised output.
		var bn *models.Layer
		if (l.Type == models.Conv2D || l.Type == models.Linear) && i+1 < len(layers) &&
			layers[i+1].Type == models.BatchNorm && !e.fromTarget[i] {
			bn = &layers[i+1]
		}
		switch l.Type {
		case models.Conv2D:
			w, b := e.folded(l.Name, l.Bias, bn)
			st, p := l.EffectiveStride(), l.Padding
			cur = e.node("Conv", l.Name, 4, withBias([]string{cur, w}, b),
				intsAttr("kernel_shape", l.Kernel, l.Kernel), intsAttr("strides", st, st),
				intsAttr("pads", p, p, p, p), intsAttr("dilations", 1, 1), intAttr("group", 1))
		case models.Linear:
			x := e.as2D(cur)
			w, b := e.folded(l.Name, l.Bias, bn)
			cur = e.node("Gemm", l.Name, 2, withBias([]string{x, w}, b), intAttr("transB", 1))
		case models.BatchNorm:
			cur = e.node("BatchNormalization", l.Name, e.rank[cur],
				[]string{cur, l.Name + ".weight", l.Name + ".bias", l.Name + ".running_mean", l.Name + ".running_var"},
				floatAttr("epsilon", float32(l.EffectiveEps())))
			for _, s := range []string{".weight", ".bias", ".running_mean", ".running_var"} {
				t := e.tensor(l.Name + s)
				e.initializer(t.Name, t.Shape, t.Data)
			}
		case models.ReLU:
			cur = e.node("Relu", l.Name, e.rank[cur], []string{cur})
		case models.LeakyReLU:
			cur = e.node("LeakyRelu", l.Name, e.rank[cur], []string{cur}, floatAttr("alpha", float32(l.Alpha)))
		case models.GELU:
			cur = e.gelu(l.Name, cur)
		case models.MaxPool:
			st := l.EffectiveStride()
			cur = e.node("MaxPool", l.Name, 4, []string{cur},
				intsAttr("kernel_shape", l.Kernel, l.Kernel), intsAttr("strides", st, st))
		case models.GlobalAvgPool:
			cur = e.node("GlobalAveragePool", l.Name, 4, []string{cur})
		case models.Add:
			j, err := e.spec.FromIndex(i)
			if err != nil {
				return "", err
			}
			skip := InputName
			if j >= 0 {
				skip = valueOf[j]
			}
			if l.Project {
				if e.rank[skip] != 4 {
					return "", &models.LayerError{Index: i, Name: l.Name, Err: fmt.Errorf("a projected add of a flattened value cannot be exported")}
				}
				st, err := e.spec.ProjectStride(i, e.shapes)
				if err != nil {
					return "", err
				}
				proj := models.Layer{Name: l.Name + ".proj_bn", Type: models.BatchNorm}
				w, b := e.folded(l.Name+".proj", false, &proj)
				skip = e.node("Conv", l.Name+".proj", 4, []string{skip, w, b},
					intsAttr("kernel_shape", 1, 1), intsAttr("strides", st, st),
					intsAttr("pads", 0, 0, 0, 0), intsAttr("dilations", 1, 1), intAttr("group", 1))
			}
			x := cur
			if e.rank[x] != e.rank[skip] { // equal shapes, but one is flattened
				x, skip = e.as2D(x), e.as2D(skip)
			}
			cur = e.node("Add", l.Name, e.rank[x], []string{x, skip})
		case models.Dropout:
			// Identity at inference.
		case models.Flatten:
			cur = e.as2D(cur)
		case models.Softmax:
			cur = e.node("Softmax", l.Name, 2, []string{e.as2D(cur)}, intAttr("axis", 1))
		default:
			return "", &models.LayerError{Index: i, Name: l.Name, Err: fmt.Errorf("layer type %q has no ONNX equivalent", l.Type)}
		}
		valueOf[i] = cur
		if bn != nil {
			i++
			valueOf[i] = cur
		}
	}
	return e.as2D(cur), nil
}

// folded adds the weight and bias initializers of the conv or linear layer
// called name, with the batchnorm layer bn (if any) folded in, and returns
// their names. The bias is "" when there is neither a bias nor a batchnorm.
func (e *exporter) folded(name string, hasBias bool, bn *models.Layer) (w, b string) {
	wt := e.tensor(name + ".weight")
	var bias []float32
	if hasBias {
		bias = e.tensor(name + ".bias").Data
	}
	data := wt.Data
	if bn != nil {
		out := wt.Shape[0]
		scale, shift := models.BatchNormAffine(e.f, bn.Name, bn.EffectiveEps())
		rest := len(data) / out
		data = make([]float32, len(wt.Data))
		fb := make([]float32, out)
		for o := range out {
			for k := range rest {
				data[o*rest+k] = wt.Data[o*rest+k] * scale[o]
			}
			if bias != nil {
				fb[o] = bias[o] * scale[o]
			}
			fb[o] += shift[o]
		}
		bias = fb
	}
	w = e.initializer(name+".weight", wt.Shape, data)
	if bias != nil {
		b = e.initializer(name+".bias", []int{len(bias)}, bias)
	}
	return w, b
}

// gelu emits the exact GELU, x·½·(1 + erf(x/√2)), in the node order
// PyTorch's exporter uses, and returns its output value.
func (e *exporter) gelu(name, x string) string {
	sqrt2 := e.scalar("gelu.sqrt2", float32(math.Sqrt2))
	one := e.scalar("gelu.one", 1)
	half := e.scalar("gelu.half", 0.5)
	r := e.rank[x]
	d := e.node("Div", name+"/div", r, []string{x, sqrt2})
	erf := e.node("Erf", name+"/erf", r, []string{d})
	a := e.node("Add", name+"/add", r, []string{erf, one})
	m := e.node("Mul", name+"/mul", r, []string{x, a})
	return e.node("Mul", name, r, []string{m, half})
}

// checkUnique verifies that no two values (node outputs, initializers, the
// input) share a name, which layer names like "probabilities" or
// "gelu.one" could cause.
func (e *exporter) checkUnique() error {
	seen := map[string]bool{InputName: true}
	claim := func(v string) error {
		if seen[v] {
			return fmt.Errorf("two ONNX values would be called %q; rename the layer", v)
		}
		seen[v] = true
		return nil
	}
	for _, t := range e.graph.Initializer {
		if err := claim(t.GetName()); err != nil {
			return err
		}
	}
	for _, n := range e.graph.Node {
		for _, v := range n.Output {
			if err := claim(v); err != nil {
				return err
			}
		}
	}
	return nil
}

// rename renames value old to new everywhere in the graph.
func (e *exporter) rename(old, new string) {
	for _, n := range e.graph.Node {
		for i, v := range n.Input {
			if v == old {
				n.Input[i] = new
			}
		}
		for i, v := range n.Output {
			if v == old {
				n.Output[i] = new
			}
		}
	}
}

func intAttr(name string, v int) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: ptr(name), Type: onnxpb.AttributeProto_INT.Enum(), I: ptr(int64(v))}
}

func intsAttr(name string, vs ...int) *onnxpb.AttributeProto {
	ints := make([]int64, len(vs))
	for i, v := range vs {
		ints[i] = int64(v)
	}
	return &onnxpb.AttributeProto{Name: ptr(name), Type: onnxpb.AttributeProto_INTS.Enum(), Ints: ints}
}

func floatAttr(name string, v float32) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: ptr(name), Type: onnxpb.AttributeProto_FLOAT.Enum(), F: ptr(v)}
}

func dimValue(v int) *onnxpb.TensorShapeProto_Dimension {
	return &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: int64(v)}}
}

func dimParam(p string) *onnxpb.TensorShapeProto_Dimension {
	return &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: p}}
}

// valueInfo describes a float32 tensor value.
func valueInfo(name string, dims ...*onnxpb.TensorShapeProto_Dimension) *onnxpb.ValueInfoProto {
	return &onnxpb.ValueInfoProto{
		Name: ptr(name),
		Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
			ElemType: ptr(int32(onnxpb.TensorProto_FLOAT)),
			Shape:    &onnxpb.TensorShapeProto{Dim: dims},
		}}},
	}
}
