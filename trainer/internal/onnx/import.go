package onnx

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/trainer/internal/onnx/onnxpb"
	"google.golang.org/protobuf/proto"
)

// ImportOptions supply what an ONNX file may lack. Fields that are set
// override the file's metadata_props.
type ImportOptions struct {
	Name          string // spec name; default: the graph's name
	Classes       []string
	Normalization *models.Normalization
}

// ErrNoClasses and ErrNoNormalization are returned (wrapped) when neither
// the file's metadata_props nor the options give the class names or the
// input normalisation.
var (
	ErrNoClasses       = errors.New("no class names: the ONNX metadata_props have no \"classes\" entry")
	ErrNoNormalization = errors.New("no input normalisation: the ONNX metadata_props have no \"normalization\" entry")
)

// Import converts a serialized ONNX model into a float32 weight file. The
// model must be a CNN over one NCHW float input of fixed C×H×W (the batch
// size may be symbolic) built from the operators Export writes; anything
// else gives an error that says what is not supported.
func Import(data []byte, opts ImportOptions) (*models.File, error) {
	var m onnxpb.ModelProto
	if err := proto.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("onnx import: not an ONNX model: %w", err)
	}
	f, err := ImportModel(&m, opts)
	if err != nil {
		return nil, fmt.Errorf("onnx import: %w", err)
	}
	return f, nil
}

// ImportModel is Import after parsing.
func ImportModel(m *onnxpb.ModelProto, opts ImportOptions) (*models.File, error) {
	if m.GetGraph() == nil {
		return nil, fmt.Errorf("the file has no graph: not an ONNX model")
	}
	opset, err := defaultOpset(m)
	if err != nil {
		return nil, err
	}
	md, err := parseMetadata(m.GetMetadataProps())
	if err != nil {
		return nil, err
	}
	g, err := newGraph(m.GetGraph())
	if err != nil {
		return nil, err
	}
	input, err := inputShape(m.GetGraph(), g.input)
	if err != nil {
		return nil, err
	}
	steps, err := g.mainPath()
	if err != nil {
		return nil, err
	}
	name := opts.Name
	if name == "" {
		name = m.GetGraph().GetName()
	}
	if name == "" {
		name = "imported"
	}
	c := &converter{
		g:       g,
		opset:   opset,
		f:       &models.File{Tensors: map[string]*models.Tensor{}},
		layerOf: map[string]string{g.input: models.InputName},
		rank:    map[string]int{g.input: 4},
		names:   map[string]bool{models.InputName: true},
		strides: map[string]int{},
	}
	c.f.Meta.Spec = models.Spec{Name: name, Input: input}
	for i, st := range steps {
		if err := c.step(st, i == len(steps)-1); err != nil {
			return nil, fmt.Errorf("node %q (%s): %w", st.n.name, st.n.op, err)
		}
	}
	if err := c.checkProjections(); err != nil {
		return nil, err
	}
	if err := c.meta(md, opts, m); err != nil {
		return nil, err
	}
	if err := checkParamNames(&c.f.Meta.Spec); err != nil {
		return nil, err
	}
	if err := checkFinite(c.f); err != nil {
		return nil, err
	}
	if err := c.f.Validate(); err != nil {
		return nil, err
	}
	return c.f, nil
}

// defaultOpset returns the version of the default operator set.
func defaultOpset(m *onnxpb.ModelProto) (int64, error) {
	for _, o := range m.GetOpsetImport() {
		if d := o.GetDomain(); d != "" && d != "ai.onnx" {
			continue
		}
		v := o.GetVersion()
		if v < minImportOpset || v > maxImportOpset {
			return 0, fmt.Errorf("opset %d is not supported (supported: %d to %d)", v, minImportOpset, maxImportOpset)
		}
		return v, nil
	}
	return 0, fmt.Errorf("the model imports no version of the default operator set")
}

// inputShape checks the graph input: float, [batch, C, H, W] with C, H and
// W fixed.
func inputShape(g *onnxpb.GraphProto, name string) (models.Shape, error) {
	var vi *onnxpb.ValueInfoProto
	for _, in := range g.GetInput() {
		if in.GetName() == name {
			vi = in
		}
	}
	tt := vi.GetType().GetTensorType()
	if tt == nil {
		return models.Shape{}, fmt.Errorf("input %q is not a tensor", name)
	}
	if et := onnxpb.TensorProto_DataType(tt.GetElemType()); et != onnxpb.TensorProto_FLOAT {
		return models.Shape{}, fmt.Errorf("input %q has element type %v, want FLOAT", name, et)
	}
	dims := tt.GetShape().GetDim()
	if tt.GetShape() == nil || len(dims) != 4 {
		return models.Shape{}, fmt.Errorf("input %q must have a known rank-4 shape [batch, channels, height, width], has %d dimensions", name, len(dims))
	}
	var chw [3]int
	for i, d := range dims {
		p, isParam := d.GetValue().(*onnxpb.TensorShapeProto_Dimension_DimParam)
		v := d.GetDimValue()
		switch {
		case i == 0: // any batch size, fixed or symbolic
			if !isParam && d.GetValue() != nil && v < 1 {
				return models.Shape{}, fmt.Errorf("input %q: batch dimension %d", name, v)
			}
		case isParam || d.GetValue() == nil:
			sym := "unknown"
			if isParam {
				sym = strconv.Quote(p.DimParam)
			}
			return models.Shape{}, fmt.Errorf("dynamic shapes are not supported: input %q dimension %d is %s; export the model with a fixed channels×height×width", name, i, sym)
		case v < 1 || v > 1<<16:
			return models.Shape{}, fmt.Errorf("input %q: dimension %d is %d", name, i, v)
		default:
			chw[i-1] = int(v)
		}
	}
	return models.Shape{C: chw[0], H: chw[1], W: chw[2]}, nil
}

// converter turns main-path steps into spec layers and tensors.
type converter struct {
	g       *graph
	opset   int64
	f       *models.File
	layerOf map[string]string // value → name of the layer producing it
	rank    map[string]int    // value → 4 (NCHW) or 2 (NC)
	names   map[string]bool   // layer names taken
	strides map[string]int    // projected add → ONNX stride of its projection
}

func (c *converter) addLayer(l models.Layer, out string, rank int) {
	c.f.Meta.Spec.Layers = append(c.f.Meta.Spec.Layers, l)
	c.layerOf[out] = l.Name
	c.rank[out] = rank
}

func (c *converter) addTensor(name string, shape []int, data []float32) {
	c.f.Tensors[name] = &models.Tensor{Name: name, Shape: shape, Data: data}
}

// addWeights adds a conv or linear layer's weight and, unless b is nil,
// its bias.
func (c *converter) addWeights(layer string, w *constTensor, b []float32) {
	c.addTensor(layer+".weight", w.shape, w.data)
	if b != nil {
		c.addTensor(layer+".bias", []int{len(b)}, b)
	}
}

// opSuffix matches the operator part of PyTorch's scoped node names,
// "/block1/conv1/Conv" or "/act/Mul_1".
var opSuffix = regexp.MustCompile(`^[A-Z][A-Za-z]*(_[0-9]+)?$`)

// layerName picks a unique layer name: the PyTorch module path of the
// weight initializer ("block1.conv1" for "block1.conv1.weight") when there
// is one, else the node name without its operator part.
func (c *converter) layerName(n *node, weight string) string {
	base, ok := strings.CutSuffix(weight, ".weight")
	if !ok || base == "" {
		base = n.name
		if strings.HasPrefix(base, "/") {
			parts := strings.Split(strings.TrimPrefix(base, "/"), "/")
			if len(parts) > 1 && opSuffix.MatchString(parts[len(parts)-1]) {
				parts = parts[:len(parts)-1]
			}
			base = strings.Join(parts, ".")
		}
		base = strings.ReplaceAll(base, "/", ".")
	}
	if base == "" {
		base = strings.ToLower(n.op)
	}
	name := base
	for i := 2; c.names[name]; i++ {
		name = fmt.Sprintf("%s_%d", base, i)
	}
	c.names[name] = true
	return name
}

// step converts one main-path step.
func (c *converter) step(st *link, last bool) error {
	n := st.n
	for _, out := range n.outputs[1:] {
		if out != "" && c.g.users[out] > 0 {
			return fmt.Errorf("output %q is used; only the first output is supported", out)
		}
	}
	r := c.rank[st.main]
	out := st.out()
	switch n.op {
	case "Conv":
		l, w, b, err := c.conv(n)
		if err != nil {
			return err
		}
		l.Name = c.layerName(n, n.inputs[1])
		c.addWeights(l.Name, w, b)
		c.addLayer(l, out, 4)
	case "BatchNormalization":
		eps, p, err := c.batchNorm(n)
		if err != nil {
			return err
		}
		name := c.layerName(n, n.inputs[1])
		for i, s := range []string{".weight", ".bias", ".running_mean", ".running_var"} {
			c.addTensor(name+s, []int{len(p[i])}, p[i])
		}
		c.addLayer(models.Layer{Name: name, Type: models.BatchNorm, Eps: eps}, out, r)
	case "Relu":
		c.addLayer(models.Layer{Name: c.layerName(n, ""), Type: models.ReLU}, out, r)
	case "LeakyRelu":
		alpha, err := floatAttr32(n, "alpha", 0.01)
		if err != nil {
			return err
		}
		c.addLayer(models.Layer{Name: c.layerName(n, ""), Type: models.LeakyReLU, Alpha: short(alpha)}, out, r)
	case "Gelu":
		a, err := stringAttr(n, "approximate", "none")
		if err != nil {
			return err
		}
		if a != "none" {
			return fmt.Errorf("only the exact GELU (approximate=\"none\") is supported, got %q", a)
		}
		c.addLayer(models.Layer{Name: c.layerName(n, ""), Type: models.GELU}, out, r)
	case "MaxPool":
		l, err := c.maxPool(n)
		if err != nil {
			return err
		}
		l.Name = c.layerName(n, "")
		c.addLayer(l, out, 4)
	case "GlobalAveragePool":
		c.addLayer(models.Layer{Name: c.layerName(n, ""), Type: models.GlobalAvgPool}, out, 4)
	case "Flatten":
		axis, err := intAttr64(n, "axis", 1)
		if err != nil {
			return err
		}
		if axis != 1 && !(r == 2 && axis == -1) {
			return fmt.Errorf("only Flatten with axis 1 is supported, got %d", axis)
		}
		c.addLayer(models.Layer{Name: c.layerName(n, ""), Type: models.Flatten}, out, 2)
	case "Gemm":
		if r != 2 {
			return fmt.Errorf("Gemm needs a flattened (rank-2) input")
		}
		l, w, b, err := c.gemm(n)
		if err != nil {
			return err
		}
		l.Name = c.layerName(n, n.inputs[1])
		c.addWeights(l.Name, w, b)
		c.addLayer(l, out, 2)
	case "Softmax":
		if !last {
			return fmt.Errorf("softmax is supported only as the last operation")
		}
		def := int64(-1) // opset 13 changed the default from 1
		if c.opset < 13 {
			def = 1
		}
		axis, err := intAttr64(n, "axis", def)
		if err != nil {
			return err
		}
		if axis < 0 {
			axis += int64(r)
		}
		if axis != 1 {
			return fmt.Errorf("softmax over axis %d of a rank-%d value; only the class axis 1 is supported", axis, r)
		}
		c.addLayer(models.Layer{Name: c.layerName(n, ""), Type: models.Softmax}, out, r)
	case "Add":
		return c.add(st, r)
	default:
		return fmt.Errorf("operator %s is not supported here", n.op)
	}
	return nil
}

// add converts a residual add and its projection, if any.
func (c *converter) add(st *link, r int) error {
	if c.rank[st.skip] != r {
		return fmt.Errorf("adds values of rank %d and %d", r, c.rank[st.skip])
	}
	l := models.Layer{Name: c.layerName(st.n, ""), Type: models.Add, From: c.layerOf[st.skip]}
	if st.proj != nil {
		conv := st.proj[0]
		cl, w, b, err := c.conv(conv)
		if err != nil {
			return fmt.Errorf("projection %q: %w", conv.name, err)
		}
		if cl.Padding != 0 {
			return fmt.Errorf("projection %q: a 1×1 projection must not pad", conv.name)
		}
		// The spec's projection is conv → batchnorm (default eps); store any
		// conv bias and batchnorm as that batchnorm's affine transform.
		out := w.shape[0]
		scale := make([]float32, out)
		shift := make([]float32, out)
		for i := range scale {
			scale[i] = 1
			if b != nil {
				shift[i] = b[i]
			}
		}
		if len(st.proj) == 2 {
			eps, p, err := c.batchNorm(st.proj[1])
			if err != nil {
				return fmt.Errorf("projection %q: %w", st.proj[1].name, err)
			}
			if len(p[0]) != out {
				return fmt.Errorf("projection %q: batchnorm has %d channels, the convolution %d", st.proj[1].name, len(p[0]), out)
			}
			if eps == 0 {
				eps = models.DefaultBatchNormEps
			}
			s, t := affine(p, eps)
			for i := range scale {
				scale[i], shift[i] = s[i], shift[i]*s[i]+t[i]
			}
		}
		zeros := make([]float32, out)
		vars := make([]float32, out)
		for i := range vars {
			vars[i] = float32(1 - models.DefaultBatchNormEps) // so that 1/√(var+eps) = 1
		}
		l.Project = true
		c.addTensor(l.Name+".proj.weight", w.shape, w.data)
		c.addTensor(l.Name+".proj_bn.weight", []int{out}, scale)
		c.addTensor(l.Name+".proj_bn.bias", []int{out}, shift)
		c.addTensor(l.Name+".proj_bn.running_mean", []int{out}, zeros)
		c.addTensor(l.Name+".proj_bn.running_var", []int{out}, vars)
		c.strides[l.Name] = cl.EffectiveStride()
	}
	c.addLayer(l, st.out(), r)
	return nil
}

// checkProjections verifies that each projection's stride is the one the
// spec infers from the shapes, since the spec does not store it.
func (c *converter) checkProjections() error {
	spec := &c.f.Meta.Spec
	shapes, err := spec.Shapes()
	if err != nil {
		return err
	}
	for i, l := range spec.Layers {
		want, ok := c.strides[l.Name]
		if !ok {
			continue
		}
		got, err := spec.ProjectStride(i, shapes)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("add %q: projection stride %d does not map the skip path onto the main path's shape (stride %d would)", l.Name, want, got)
		}
	}
	return nil
}

// conv checks a Conv node's attributes and returns the layer (unnamed),
// its weights and its bias (nil if none).
func (c *converter) conv(n *node) (models.Layer, *constTensor, []float32, error) {
	w, err := c.param(n, 1, "weights")
	if err != nil {
		return models.Layer{}, nil, nil, err
	}
	if len(w.shape) != 4 || w.shape[2] != w.shape[3] {
		return models.Layer{}, nil, nil, fmt.Errorf("weights of shape %v: only 2-D convolutions with square kernels are supported", w.shape)
	}
	k := w.shape[2]
	group, err := intAttr64(n, "group", 1)
	if err != nil {
		return models.Layer{}, nil, nil, err
	}
	if group != 1 {
		return models.Layer{}, nil, nil, fmt.Errorf("group %d: only group 1 (no grouped or depthwise convolution) is supported", group)
	}
	ks, err := intsAttr64(n, "kernel_shape", nil)
	if err != nil {
		return models.Layer{}, nil, nil, err
	}
	if ks != nil && !slices.Equal(ks, []int64{int64(k), int64(k)}) {
		return models.Layer{}, nil, nil, fmt.Errorf("kernel_shape %v does not match weights %v", ks, w.shape)
	}
	stride, pad, err := windowAttrs(n)
	if err != nil {
		return models.Layer{}, nil, nil, err
	}
	l := models.Layer{Type: models.Conv2D, Filters: w.shape[0], Kernel: k, Padding: pad}
	if stride != 1 {
		l.Stride = stride
	}
	var bias []float32
	if len(n.inputs) > 2 && n.inputs[2] != "" {
		b, err := c.param(n, 2, "bias")
		if err != nil {
			return models.Layer{}, nil, nil, err
		}
		if len(b.data) != w.shape[0] {
			return models.Layer{}, nil, nil, fmt.Errorf("bias has %d values for %d filters", len(b.data), w.shape[0])
		}
		bias = b.data
		l.Bias = true
	}
	return l, w, bias, nil
}

// windowAttrs reads the strides and pads of a Conv or MaxPool, which must
// be the same along both axes and symmetric, with no dilation.
func windowAttrs(n *node) (stride, pad int, err error) {
	ap, err := stringAttr(n, "auto_pad", "NOTSET")
	if err != nil {
		return 0, 0, err
	}
	if ap != "NOTSET" && ap != "VALID" {
		return 0, 0, fmt.Errorf("auto_pad %s is not supported; export with explicit pads", ap)
	}
	strides, err := intsAttr64(n, "strides", []int64{1, 1})
	if err != nil {
		return 0, 0, err
	}
	pads, err := intsAttr64(n, "pads", []int64{0, 0, 0, 0})
	if err != nil {
		return 0, 0, err
	}
	dil, err := intsAttr64(n, "dilations", []int64{1, 1})
	if err != nil {
		return 0, 0, err
	}
	if len(strides) != 2 || strides[0] != strides[1] || strides[0] < 1 || strides[0] > 15 {
		return 0, 0, fmt.Errorf("strides %v: only equal strides of 1 to 15 on both axes are supported", strides)
	}
	if len(pads) != 4 || pads[0] != pads[1] || pads[0] != pads[2] || pads[0] != pads[3] || pads[0] < 0 || pads[0] > 15 {
		return 0, 0, fmt.Errorf("pads %v: only the same padding of 0 to 15 on every side is supported", pads)
	}
	if ap == "VALID" && pads[0] != 0 {
		return 0, 0, fmt.Errorf("auto_pad VALID with pads %v", pads)
	}
	if !slices.Equal(dil, []int64{1, 1}) {
		return 0, 0, fmt.Errorf("dilations %v: dilated windows are not supported", dil)
	}
	return int(strides[0]), int(pads[0]), nil
}

func (c *converter) maxPool(n *node) (models.Layer, error) {
	ks, err := intsAttr64(n, "kernel_shape", nil)
	if err != nil {
		return models.Layer{}, err
	}
	if len(ks) != 2 || ks[0] != ks[1] || ks[0] < 1 || ks[0] > 1<<16 {
		return models.Layer{}, fmt.Errorf("kernel_shape %v: only square 2-D pooling windows are supported", ks)
	}
	ceil, err := intAttr64(n, "ceil_mode", 0)
	if err != nil {
		return models.Layer{}, err
	}
	if ceil != 0 {
		return models.Layer{}, fmt.Errorf("ceil_mode %d is not supported", ceil)
	}
	stride, pad, err := windowAttrs(n)
	if err != nil {
		return models.Layer{}, err
	}
	if pad != 0 {
		return models.Layer{}, fmt.Errorf("padded max-pooling is not supported")
	}
	l := models.Layer{Type: models.MaxPool, Kernel: int(ks[0])}
	if stride != l.Kernel {
		l.Stride = stride
	}
	return l, nil
}

// batchNorm returns a BatchNormalization node's epsilon (0 for the
// default) and its scale, bias, mean and variance.
func (c *converter) batchNorm(n *node) (float64, [4][]float32, error) {
	var p [4][]float32
	tm, err := intAttr64(n, "training_mode", 0)
	if err != nil {
		return 0, p, err
	}
	if tm != 0 {
		return 0, p, fmt.Errorf("training_mode %d: only inference-mode batchnorm is supported", tm)
	}
	if len(n.inputs) != 5 {
		return 0, p, fmt.Errorf("has %d inputs, want 5", len(n.inputs))
	}
	for i, what := range []string{"scale", "bias", "mean", "variance"} {
		t, err := c.param(n, i+1, what)
		if err != nil {
			return 0, p, err
		}
		if len(t.shape) != 1 || (i > 0 && len(t.data) != len(p[0])) {
			return 0, p, fmt.Errorf("%s has shape %v; want one value per channel", what, t.shape)
		}
		p[i] = t.data
	}
	for i, v := range p[3] {
		if v < 0 {
			return 0, p, fmt.Errorf("variance[%d] = %g is negative", i, v)
		}
	}
	eps, err := floatAttr32(n, "epsilon", 1e-5)
	if err != nil {
		return 0, p, err
	}
	if !(eps > 0) {
		return 0, p, fmt.Errorf("epsilon %g: must be positive", eps)
	}
	if eps == float32(models.DefaultBatchNormEps) {
		return 0, p, nil
	}
	return short(eps), p, nil
}

// affine is batchnorm parameters p as y = x·scale + shift.
func affine(p [4][]float32, eps float64) (scale, shift []float32) {
	f := &models.File{Tensors: map[string]*models.Tensor{}}
	for i, s := range []string{".weight", ".bias", ".running_mean", ".running_var"} {
		f.Tensors["bn"+s] = &models.Tensor{Data: p[i]}
	}
	return models.BatchNormAffine(f, "bn", eps)
}

// gemm converts a Gemm node into a linear layer: weights [out, in] and
// bias (nil if none), with alpha and beta folded in.
func (c *converter) gemm(n *node) (models.Layer, *constTensor, []float32, error) {
	ta, err := intAttr64(n, "transA", 0)
	if err != nil {
		return models.Layer{}, nil, nil, err
	}
	if ta != 0 {
		return models.Layer{}, nil, nil, fmt.Errorf("transA %d is not supported", ta)
	}
	tb, err := intAttr64(n, "transB", 0)
	if err != nil {
		return models.Layer{}, nil, nil, err
	}
	alpha, err := floatAttr32(n, "alpha", 1)
	if err != nil {
		return models.Layer{}, nil, nil, err
	}
	beta, err := floatAttr32(n, "beta", 1)
	if err != nil {
		return models.Layer{}, nil, nil, err
	}
	b, err := c.param(n, 1, "weights")
	if err != nil {
		return models.Layer{}, nil, nil, err
	}
	if len(b.shape) != 2 {
		return models.Layer{}, nil, nil, fmt.Errorf("weights of shape %v, want a matrix", b.shape)
	}
	out, in := b.shape[0], b.shape[1]
	w := &constTensor{shape: []int{out, in}, data: make([]float32, len(b.data))}
	if tb == 0 { // B is [in, out]
		out, in = in, out
		w.shape = []int{out, in}
		for i := range in {
			for o := range out {
				w.data[o*in+i] = b.data[i*out+o]
			}
		}
	} else {
		copy(w.data, b.data)
	}
	for i := range w.data {
		w.data[i] *= alpha
	}
	l := models.Layer{Type: models.Linear, Units: out}
	if len(n.inputs) < 3 || n.inputs[2] == "" {
		return l, w, nil, nil
	}
	ct, err := c.param(n, 2, "bias")
	if err != nil {
		return models.Layer{}, nil, nil, err
	}
	bias := make([]float32, out)
	switch len(ct.data) {
	case out:
		copy(bias, ct.data)
	case 1: // broadcast scalar
		for i := range bias {
			bias[i] = ct.data[0]
		}
	default:
		return models.Layer{}, nil, nil, fmt.Errorf("bias of shape %v for %d outputs", ct.shape, out)
	}
	for i := range bias {
		bias[i] *= beta
	}
	l.Bias = true
	return l, w, bias, nil
}

// param returns input i of n, which must be a float constant.
func (c *converter) param(n *node, i int, what string) (*constTensor, error) {
	if i >= len(n.inputs) || n.inputs[i] == "" {
		return nil, fmt.Errorf("%s missing", what)
	}
	t, ok := c.g.consts[n.inputs[i]]
	if !ok {
		return nil, fmt.Errorf("%s %q must be an initializer or constant", what, n.inputs[i])
	}
	if t.data == nil && len(t.ints) > 0 {
		return nil, fmt.Errorf("%s %q has an integer type", what, n.inputs[i])
	}
	return t, nil
}

// meta fills in the header: classes and normalisation from the options or
// the metadata, provenance from the metadata and the producer.
func (c *converter) meta(md *metadata, opts ImportOptions, m *onnxpb.ModelProto) error {
	meta := &c.f.Meta
	meta.DType = models.Float32
	switch {
	case opts.Classes != nil:
		meta.Classes = slices.Clone(opts.Classes)
	case md.classes != nil:
		meta.Classes = md.classes
	default:
		return ErrNoClasses
	}
	switch {
	case opts.Normalization != nil:
		meta.Normalization = *opts.Normalization
	case md.normalization != nil:
		meta.Normalization = *md.normalization
	default:
		return ErrNoNormalization
	}
	if md.provenance != nil {
		meta.Provenance = *md.provenance
	}
	if md.inference != nil {
		meta.Inference = *md.inference
	}
	note := "imported from ONNX"
	if p := strings.TrimSpace(m.GetProducerName() + " " + m.GetProducerVersion()); p != "" {
		note += " (produced by " + p + ")"
	}
	if meta.Provenance.Notes != "" {
		note = meta.Provenance.Notes + "; " + note
	}
	meta.Provenance.Notes = note
	return nil
}

// checkParamNames refuses specs whose layer names make two parameters
// share a name (a layer "a.proj" beside an add "a" with a projection).
func checkParamNames(spec *models.Spec) error {
	params, err := spec.Params()
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, p := range params {
		if seen[p.Name] {
			return fmt.Errorf("two parameters would be called %q; rename the nodes", p.Name)
		}
		seen[p.Name] = true
	}
	return nil
}

// checkFinite refuses tensors that folding Gemm's alpha and beta or a
// projection's batchnorm pushed beyond float32's range.
func checkFinite(f *models.File) error {
	for name, t := range f.Tensors {
		for _, v := range t.Data {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("tensor %q: conversion gives %v", name, v)
			}
		}
	}
	return nil
}

// short is f as the float64 with the shortest decimal form that rounds to
// it, so that 0.1f becomes 0.1 and not 0.10000000149011612.
func short(f float32) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(float64(f), 'g', -1, 32), 64)
	return v
}

// Attribute readers: a missing attribute gives the default; one of the
// wrong type is an error.

func attr(n *node, name string, want onnxpb.AttributeProto_AttributeType) (*onnxpb.AttributeProto, error) {
	a, ok := n.attrs[name]
	if !ok {
		return nil, nil
	}
	if a.GetType() != want && a.Type != nil {
		return nil, fmt.Errorf("attribute %s has type %v, want %v", name, a.GetType(), want)
	}
	return a, nil
}

func intAttr64(n *node, name string, def int64) (int64, error) {
	a, err := attr(n, name, onnxpb.AttributeProto_INT)
	if a == nil || err != nil {
		return def, err
	}
	return a.GetI(), nil
}

func intsAttr64(n *node, name string, def []int64) ([]int64, error) {
	a, err := attr(n, name, onnxpb.AttributeProto_INTS)
	if a == nil || err != nil {
		return def, err
	}
	return a.GetInts(), nil
}

func floatAttr32(n *node, name string, def float32) (float32, error) {
	a, err := attr(n, name, onnxpb.AttributeProto_FLOAT)
	if a == nil || err != nil {
		return def, err
	}
	return a.GetF(), nil
}

func stringAttr(n *node, name, def string) (string, error) {
	a, err := attr(n, name, onnxpb.AttributeProto_STRING)
	if a == nil || err != nil {
		return def, err
	}
	return string(a.GetS()), nil
}
