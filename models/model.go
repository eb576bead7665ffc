package models

import (
	"fmt"
	"math"
	"sync"

	"github.com/cifarnet-go/cifarnet/models/gemm"
)

// Model is a validated network with batchnorm folded into the layers before
// it, ready for inference. It is immutable and safe for concurrent use; each
// goroutine runs it through its own Predictor.
type Model struct {
	Meta Meta

	steps   []step
	nvalues int   // activation values; value 0 is the input
	sizes   []int // per-image element count of each value
	output  int   // value holding the logits
	softmax bool  // the spec ends with softmax
	classes int

	arrays [][]float32 // every array the steps hold, in compile order (Snapshot)
}

// step is one operation of the compiled network, reading value in (and
// skip, for add) and writing value out. out == in means in place.
type step struct {
	kind    string
	layer   string
	in, out int
	skip    int // add: value of the skip path
	inShape Shape
	shape   Shape // output shape

	// conv2d and the projection of an add; linear uses w as a 1×1 conv.
	kernel, stride, pad int
	w                   *gemm.Packed
	wino                *wino // replaces w for 3×3 stride-1 convolutions
	bias                []float32
	proj                *step // add: 1×1 projection of the skip path

	scale, shift []float32 // standalone batchnorm as a per-channel affine
	alpha        float32   // leaky_relu
}

// NewModel validates f and compiles it for inference.
func NewModel(f *File) (*Model, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	spec := &f.Meta.Spec
	shapes, err := spec.Shapes()
	if err != nil {
		return nil, err
	}
	m := &Model{Meta: f.Meta, classes: len(f.Meta.Classes)}
	if err := compile(m, f, fromTensors{}, shapes); err != nil {
		return nil, err
	}
	return m, nil
}

// compile builds m's steps for the spec in m.Meta, taking the arrays from
// src (f is the weight file when src builds from it).
func compile(m *Model, f *File, src arraySource, shapes []Shape) error {
	spec := &m.Meta.Spec
	c := compiler{m: m, f: f, src: src, spec: spec, shapes: shapes, fromTarget: map[int]bool{}}
	for i := range spec.Layers {
		if spec.Layers[i].Type == Add {
			j, _ := spec.FromIndex(i)
			c.fromTarget[j] = true
		}
	}
	return c.compile()
}

type compiler struct {
	m          *Model
	f          *File       // nil when src is a snapshot
	src        arraySource // where the built arrays come from
	spec       *Spec
	shapes     []Shape
	fromTarget map[int]bool // layers whose output an add reads later
	valueOf    []int        // value holding each layer's output
	winoTmp    []float32    // unpacked Winograd weights, reused layer to layer
}

func (c *compiler) newValue(s Shape) int {
	c.m.sizes = append(c.m.sizes, s.Size())
	return len(c.m.sizes) - 1
}

func (c *compiler) tensor(name string) []float32 { return c.f.Tensors[name].Data }

// arraySource supplies the arrays a compiled model holds (packed weights,
// biases, affine scales and shifts), in the order the compiler asks for
// them: built from a weight file's tensors, or read back from a snapshot
// of a model built before (snapshot.go), which skips decoding and
// transforming the weights.
type arraySource interface {
	// next returns the next array, which must hold n values; build
	// computes it from the weight file.
	next(n int, build func() []float32) ([]float32, error)
}

// fromTensors builds every array from the weight file.
type fromTensors struct{}

func (fromTensors) next(n int, build func() []float32) ([]float32, error) {
	a := build()
	if len(a) != n {
		return nil, fmt.Errorf("built %d values where the spec needs %d", len(a), n)
	}
	return a, nil
}

// array takes the next array from the source and records it for Snapshot.
func (c *compiler) array(n int, build func() []float32) ([]float32, error) {
	a, err := c.src.next(n, build)
	if err != nil {
		return nil, err
	}
	c.m.arrays = append(c.m.arrays, a)
	return a, nil
}

// packed is the m×k weight matrix that build returns row-major, packed.
func (c *compiler) packed(m, k int, build func() []float32) (*gemm.Packed, error) {
	data, err := c.array(gemm.PackedSize(m, k), func() []float32 {
		w := build()
		if len(w) != m*k {
			return nil // fails the size check
		}
		return gemm.Pack(w, m, k).Data()
	})
	if err != nil {
		return nil, err
	}
	return gemm.FromPanels(data, m, k)
}

// winograd is the Winograd form of the 3×3 convolution layer name, its
// filters scaled by affine's scale (a folded batchnorm).
func (c *compiler) winograd(name string, affine func() (scale, shift []float32), out, in int) (*wino, error) {
	var built *wino
	wg := &wino{}
	for x := range wg.u {
		data, err := c.array(gemm.PackedSize(out, in), func() []float32 {
			if built == nil {
				scale, _ := affine()
				built, c.winoTmp = newWinograd(c.tensor(name+".weight"), scale, out, in, c.winoTmp)
			}
			return built.u[x].Data()
		})
		if err != nil {
			return nil, err
		}
		if wg.u[x], err = gemm.FromPanels(data, out, in); err != nil {
			return nil, err
		}
	}
	return wg, nil
}

// BatchNormAffine returns the per-channel scale and shift, y = x·scale +
// shift, of the batchnorm whose tensors in f are named prefix.weight,
// .bias, .running_mean and .running_var, computed in float64. The forward
// pass folds batchnorm with it, and exporters that fold it must agree.
func BatchNormAffine(f *File, prefix string, eps float64) (scale, shift []float32) {
	g, b := f.Tensors[prefix+".weight"].Data, f.Tensors[prefix+".bias"].Data
	mean, v := f.Tensors[prefix+".running_mean"].Data, f.Tensors[prefix+".running_var"].Data
	scale = make([]float32, len(g))
	shift = make([]float32, len(g))
	for i := range g {
		s := float64(g[i]) / math.Sqrt(float64(v[i])+eps)
		scale[i] = float32(s)
		shift[i] = float32(float64(b[i]) - float64(mean[i])*s)
	}
	return scale, shift
}

// foldedWeights returns weights [out, rest] scaled by a following
// batchnorm's scale, or unchanged when scale is nil; foldedBias folds the
// bias.
func foldedWeights(w, scale []float32, out int) []float32 {
	if scale == nil {
		return w
	}
	rest := len(w) / out
	fw := make([]float32, len(w))
	for o := 0; o < out; o++ {
		for k := 0; k < rest; k++ {
			fw[o*rest+k] = w[o*rest+k] * scale[o]
		}
	}
	return fw
}

// foldedBias returns bias folded with a following batchnorm (scale,
// shift), or unchanged when scale is nil.
func foldedBias(bias, scale, shift []float32, out int) []float32 {
	if scale == nil {
		return bias
	}
	fb := make([]float32, out)
	for o := range fb {
		b := float32(0)
		if bias != nil {
			b = bias[o]
		}
		fb[o] = b*scale[o] + shift[o]
	}
	return fb
}

// overwritable reports whether a step at layer i may write over value v in
// place: not the caller's input, and not an output that an add reads later.
func (c *compiler) overwritable(v, i int) bool {
	if v == 0 {
		return false
	}
	for j := 0; j < i; j++ {
		if c.fromTarget[j] && c.valueOf[j] == v {
			return false
		}
	}
	return true
}

func (c *compiler) compile() error {
	m, spec := c.m, c.spec
	m.sizes = []int{spec.Input.Size()}
	c.valueOf = make([]int, len(spec.Layers))
	cur := 0 // value holding the current activation
	layers := spec.Layers
	for i := 0; i < len(layers); i++ {
		l := layers[i]
		in := spec.inputShape(i, c.shapes)
		out := c.shapes[i]
		inPlace := c.overwritable(cur, i)
		st := step{kind: l.Type, layer: l.Name, in: cur, inShape: in, shape: out}
		switch l.Type {
		case Conv2D, Linear:
			name := l.Name
			hasBias := l.Bias
			// Fold a directly following batchnorm unless something reads
			// the pre-normalisation output.
			fold := i+1 < len(layers) && layers[i+1].Type == BatchNorm && !c.fromTarget[i]
			// Computed once, when the weights or the bias are built.
			affine := func() (scale, shift []float32) { return nil, nil }
			if fold {
				bn := layers[i+1]
				affine = sync.OnceValues(func() ([]float32, []float32) { return BatchNormAffine(c.f, bn.Name, bn.EffectiveEps()) })
			}
			if l.Type == Conv2D {
				st.kernel, st.stride, st.pad = l.Kernel, l.EffectiveStride(), l.Padding
			} else {
				st.kind, st.kernel, st.stride = Conv2D, 1, 1
			}
			k := in.C * st.kernel * st.kernel
			var err error
			if useWinograd(st.kernel, st.stride, out.H, out.W) {
				// Scaled as transformed: no folded copy of the weights.
				st.wino, err = c.winograd(name, affine, out.C, in.C)
			} else {
				st.w, err = c.packed(out.C, k, func() []float32 {
					scale, _ := affine()
					return foldedWeights(c.tensor(name+".weight"), scale, out.C)
				})
			}
			if err != nil {
				return &LayerError{i, l.Name, err}
			}
			st.bias, err = c.array(out.C, func() []float32 {
				var bias []float32
				if hasBias {
					bias = c.tensor(name + ".bias")
				}
				scale, shift := affine()
				if bias = foldedBias(bias, scale, shift, out.C); bias == nil {
					bias = make([]float32, out.C)
				}
				return bias
			})
			if err != nil {
				return &LayerError{i, l.Name, err}
			}
			st.out = c.newValue(out)
			if fold {
				c.valueOf[i] = st.out // the conv's own output never exists
				i++
			}
		case BatchNorm:
			affine := sync.OnceValues(func() ([]float32, []float32) { return BatchNormAffine(c.f, l.Name, l.EffectiveEps()) })
			var err error
			st.scale, err = c.array(out.C, func() []float32 { scale, _ := affine(); return scale })
			if err == nil {
				st.shift, err = c.array(out.C, func() []float32 { _, shift := affine(); return shift })
			}
			if err != nil {
				return &LayerError{i, l.Name, err}
			}
		case MaxPool:
			st.kernel, st.stride = l.Kernel, l.EffectiveStride()
			st.out = c.newValue(out)
		case GlobalAvgPool:
			st.out = c.newValue(out)
		case Add:
			j, _ := spec.FromIndex(i)
			st.skip = 0
			if j >= 0 {
				st.skip = c.valueOf[j]
			}
			if l.Project {
				stride, err := spec.ProjectStride(i, c.shapes)
				if err != nil {
					return err
				}
				affine := sync.OnceValues(func() ([]float32, []float32) { return BatchNormAffine(c.f, l.Name+".proj_bn", DefaultBatchNormEps) })
				from := spec.Input
				if j >= 0 {
					from = c.shapes[j]
				}
				proj := step{kind: Conv2D, layer: l.Name + ".proj", in: st.skip, inShape: from, shape: out,
					kernel: 1, stride: stride}
				proj.w, err = c.packed(out.C, from.C, func() []float32 {
					scale, _ := affine()
					return foldedWeights(c.tensor(l.Name+".proj.weight"), scale, out.C)
				})
				if err == nil {
					proj.bias, err = c.array(out.C, func() []float32 {
						scale, shift := affine()
						return foldedBias(nil, scale, shift, out.C)
					})
				}
				if err != nil {
					return &LayerError{i, l.Name, err}
				}
				proj.out = c.newValue(out)
				st.proj = &proj
			}
		case LeakyReLU:
			st.alpha = float32(l.Alpha)
		case ReLU, GELU:
		case Dropout, Flatten:
			// Identities at inference: CHW memory order is already the
			// flattened order.
			c.valueOf[i] = cur
			continue
		case Softmax:
			if i != len(layers)-1 {
				return &LayerError{i, l.Name, fmt.Errorf("softmax is only supported as the last layer")}
			}
			m.softmax = true
			c.valueOf[i] = cur
			continue
		default:
			return &LayerError{i, l.Name, fmt.Errorf("unknown layer type %q", l.Type)}
		}
		if st.out == 0 { // in-place kinds
			if inPlace {
				st.out = cur
			} else {
				st.out = c.newValue(out)
			}
		}
		m.steps = append(m.steps, st)
		cur = st.out
		c.valueOf[i] = cur
	}
	m.output = cur
	m.nvalues = len(m.sizes)
	return nil
}

// Classes is the number of outputs.
func (m *Model) Classes() int { return m.classes }

// InputSize is the number of floats of one input image.
func (m *Model) InputSize() int { return m.sizes[0] }

// Predictor runs a Model with buffers allocated once and reused: a
// steady-state Predict allocates nothing. Not safe for concurrent use.
type Predictor struct {
	m       *Model
	batch   int         // images the buffers are sized for
	values  [][]float32 // activations of the whole batch, per value
	scratch []float32
	probs   []float32
	views   []float32 // test-time augmentation inputs
	sum     []float32 // their weighted logits, added up
}

// NewPredictor returns a Predictor for m.
func (m *Model) NewPredictor() *Predictor { return &Predictor{m: m} }

func (p *Predictor) ensure(n int) {
	if n <= p.batch {
		return
	}
	m := p.m
	p.values = make([][]float32, m.nvalues)
	for v := 1; v < m.nvalues; v++ {
		p.values[v] = make([]float32, n*m.sizes[v])
	}
	p.scratch = make([]float32, m.scratchSize(min(n, convGroup)))
	p.probs = make([]float32, n*m.classes)
	p.batch = n
}

// Predict classifies one normalised CHW image and returns the class
// probabilities. The returned slice is reused by the next call.
func (p *Predictor) Predict(x []float32) ([]float32, error) {
	return p.PredictBatch(x, 1)
}

// PredictBatch classifies n normalised CHW images stored back to back and
// returns n rows of class probabilities. The returned slice is reused by
// the next call.
func (p *Predictor) PredictBatch(x []float32, n int) ([]float32, error) {
	m := p.m
	if err := p.forward("predict", x, n, m.steps); err != nil {
		return nil, err
	}
	logits := p.values[m.output][:n*m.classes]
	probs := p.probs[:n*m.classes]
	copy(probs, logits)
	if m.softmax {
		for i := 0; i < n; i++ {
			softmax(probs[i*m.classes : (i+1)*m.classes])
		}
	}
	return probs, nil
}

// forward checks that x holds n input images and runs steps on them; the
// input value aliases x only while they run.
func (p *Predictor) forward(what string, x []float32, n int, steps []step) error {
	m := p.m
	if n <= 0 {
		return fmt.Errorf("%s: batch size %d, need at least 1", what, n)
	}
	if len(x) != n*m.sizes[0] {
		return fmt.Errorf("%s: input has %d values, want %d images × %v = %d",
			what, len(x), n, m.Meta.Spec.Input, n*m.sizes[0])
	}
	p.ensure(n)
	p.values[0] = x
	for i := range steps {
		p.run(&steps[i], n)
	}
	p.values[0] = nil
	return nil
}

// Logits returns the pre-softmax scores of the last call, one row per image.
func (p *Predictor) Logits() []float32 {
	if p.batch == 0 {
		return nil
	}
	return p.values[p.m.output][:len(p.probs)]
}

func (p *Predictor) run(st *step, n int) {
	in, out := p.values[st.in], p.values[st.out]
	isz, osz := st.inShape.Size(), st.shape.Size()
	switch {
	case st.kind == Conv2D:
		convBatch(st, in, out, n, p.scratch)
		return
	case st.kind == Add && st.proj != nil:
		convBatch(st.proj, p.values[st.skip], p.values[st.proj.out], n, p.scratch)
	}
	for b := 0; b < n; b++ {
		x := in[b*isz : (b+1)*isz]
		y := out[b*osz : (b+1)*osz]
		switch st.kind {
		case BatchNorm:
			affine(x, y, st.scale, st.shift, st.shape.H*st.shape.W)
		case ReLU:
			for i, v := range x {
				y[i] = max(v, 0)
			}
		case LeakyReLU:
			leakyReLU(x, y, st.alpha)
		case GELU:
			GELUSlice(y, x)
		case MaxPool:
			maxPool(x, y, st.inShape, st.shape, st.kernel, st.stride)
		case GlobalAvgPool:
			hw := st.inShape.H * st.inShape.W
			for ch := range st.shape.C {
				var s float32
				for _, v := range x[ch*hw : (ch+1)*hw] {
					s += v
				}
				y[ch] = s / float32(hw)
			}
		case Add:
			skip := p.values[st.skip][b*p.m.sizes[st.skip] : (b+1)*p.m.sizes[st.skip]]
			if st.proj != nil {
				skip = p.values[st.proj.out][b*osz : (b+1)*osz]
			}
			for i := range y {
				y[i] = x[i] + skip[i]
			}
		}
	}
}

// convGroup is how many images convBatch puts side by side in one matrix
// product: enough for the six views of test-time augmentation, while the
// scratch stays a few MB for any batch size.
const convGroup = 8

// scratchSize is the scratch the largest convolution needs for g images
// side by side: im2col columns, GEMM output and panels.
func (m *Model) scratchSize(g int) int {
	size := 0
	for _, st := range m.steps {
		for _, s := range []*step{&st, st.proj} {
			if s != nil && s.kind == Conv2D {
				size = max(size, convScratch(s, g))
			}
		}
	}
	return size
}

// convScratch is the scratch convBatch needs for g images side by side.
func convScratch(st *step, g int) int {
	if st.wino != nil {
		return winogradScratch(st.inShape, st.shape, g)
	}
	k := st.inShape.C * st.kernel * st.kernel
	cols := g * st.shape.H * st.shape.W
	return k*cols + st.shape.C*cols + gemm.ScratchSize(k, cols)
}

// convBatch computes the convolution of n images stored back to back,
// up to convGroup of them in one matrix product of the packed weights
// [out, in·k·k] and their im2col columns side by side [in·k·k, g·outH·outW]:
// single images gain nothing, but the panels of A are read once per group
// instead of once per image. Each column's sum is the one a single image
// gets, in the same order.
func convBatch(st *step, x, y []float32, n int, scratch []float32) {
	isz, osz := st.inShape.Size(), st.shape.Size()
	for b := 0; b < n; b += convGroup {
		g := min(convGroup, n-b)
		xs, ys := x[b*isz:(b+g)*isz], y[b*osz:(b+g)*osz]
		if st.wino != nil {
			st.wino.conv(xs, ys, g, st.inShape, st.shape, st.pad, st.bias, scratch)
		} else {
			conv(st, xs, ys, g, scratch)
		}
	}
}

// conv computes the convolution of g images as one matrix product; the
// product of several images is [out, g·hw] and is scattered into each
// image's [out, hw] afterwards.
func conv(st *step, x, y []float32, g int, scratch []float32) {
	in, out := st.inShape, st.shape
	hw := out.H * out.W
	k := in.C * st.kernel * st.kernel
	ld := g * hw
	direct := st.kernel == 1 && st.stride == 1 && st.pad == 0
	if g == 1 {
		cols := x
		if !direct {
			cols = scratch[:k*hw]
			im2col(x, cols, hw, in, out, st.kernel, st.stride, st.pad)
		}
		st.w.Mul(y, hw, cols, hw, hw, st.bias, scratch[k*hw:])
		return
	}
	cols := scratch[:k*ld]
	isz := in.Size()
	for b := range g {
		xb := x[b*isz : (b+1)*isz]
		if direct {
			for r := range k {
				copy(cols[r*ld+b*hw:r*ld+(b+1)*hw], xb[r*hw:(r+1)*hw])
			}
		} else {
			im2col(xb, cols[b*hw:], ld, in, out, st.kernel, st.stride, st.pad)
		}
	}
	c := scratch[k*ld : k*ld+out.C*ld]
	st.w.Mul(c, ld, cols, ld, ld, st.bias, scratch[k*ld+out.C*ld:])
	osz := out.Size()
	for b := range g {
		yb := y[b*osz : (b+1)*osz]
		for o := range out.C {
			copy(yb[o*hw:(o+1)*hw], c[o*ld+b*hw:o*ld+(b+1)*hw])
		}
	}
}

// im2col lays out every receptive field as a column: row (c, ky, kx),
// column (oy, ox), zero outside the padded input; rows are ld apart.
func im2col(x, cols []float32, ld int, in, out Shape, kernel, stride, pad int) {
	n := out.H * out.W
	row := 0
	for c := 0; c < in.C; c++ {
		plane := x[c*in.H*in.W : (c+1)*in.H*in.W]
		for ky := 0; ky < kernel; ky++ {
			for kx := 0; kx < kernel; kx++ {
				dst := cols[row*ld : row*ld+n]
				row++
				for oy := 0; oy < out.H; oy++ {
					iy := oy*stride + ky - pad
					d := dst[oy*out.W : (oy+1)*out.W]
					if iy < 0 || iy >= in.H {
						clear(d)
						continue
					}
					src := plane[iy*in.W : (iy+1)*in.W]
					for ox := range d {
						ix := ox*stride + kx - pad
						if ix < 0 || ix >= in.W {
							d[ox] = 0
						} else {
							d[ox] = src[ix]
						}
					}
				}
			}
		}
	}
}

func affine(x, y, scale, shift []float32, hw int) {
	for c := range scale {
		s, t := scale[c], shift[c]
		xs, ys := x[c*hw:(c+1)*hw], y[c*hw:(c+1)*hw]
		for i, v := range xs {
			ys[i] = v*s + t
		}
	}
}

func leakyReLU(x, y []float32, alpha float32) {
	for i, v := range x {
		if v < 0 {
			v *= alpha
		}
		y[i] = v
	}
}

func maxPool(x, y []float32, in, out Shape, kernel, stride int) {
	for c := 0; c < in.C; c++ {
		plane := x[c*in.H*in.W : (c+1)*in.H*in.W]
		dst := y[c*out.H*out.W : (c+1)*out.H*out.W]
		for oy := 0; oy < out.H; oy++ {
			ox := 0
			if kernel == 2 && stride == 2 {
				r0 := plane[2*oy*in.W : (2*oy+1)*in.W]
				ox = maxPool2Row(dst[oy*out.W:(oy+1)*out.W], r0, plane[(2*oy+1)*in.W:(2*oy+2)*in.W])
			}
			for ; ox < out.W; ox++ {
				best := float32(math.Inf(-1))
				for ky := 0; ky < kernel; ky++ {
					row := plane[(oy*stride+ky)*in.W+ox*stride:]
					for _, v := range row[:kernel] {
						// What max(best, v) gives, without the runtime
						// call the builtin is for floats in WebAssembly.
						if v > best || v != v {
							best = v
						}
					}
				}
				dst[oy*out.W+ox] = best
			}
		}
	}
}

// softmax turns scores into probabilities in place, stably.
func softmax(v []float32) {
	hi := v[0]
	for _, x := range v {
		hi = max(hi, x)
	}
	var sum float64
	for i, x := range v {
		e := math.Exp(float64(x - hi))
		v[i] = float32(e)
		sum += e
	}
	for i := range v {
		v[i] = float32(float64(v[i]) / sum)
	}
}
