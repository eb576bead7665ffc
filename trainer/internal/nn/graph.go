package nn

import (
	"fmt"

	"github.com/cifarnet-go/cifarnet/trainer/internal/opbase"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/trainer/internal/layerops"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// DefaultBatchNormMomentum is PyTorch's batchnorm momentum (Keras's 0.99
// is 0.01 in this convention).
const DefaultBatchNormMomentum = 0.1

// Graph is a compiled gorgonia graph over a network's parameters for a fixed
// batch size: a training graph (batch statistics, dropout, loss and
// gradients) or an evaluation graph (running statistics, logits only). It
// is not safe for concurrent use; graphs of one network share its
// parameters, so use them one at a time.
type Graph struct {
	net     *Net
	batch   int
	train   bool
	classes int

	g        *G.ExprGraph
	vm       G.VM
	x        []float32 // backing of the input node
	target   []float32 // backing of the target node (training)
	logits   *G.Node
	loss     *G.Node
	grads    G.Nodes // aligned with net.Trainable()
	dropouts []*dropoutOp
	// ownOps builds every layer from the trainer's own ops, which
	// describe themselves (opbase.Describer), whatever this CPU has.
	ownOps bool
}

// NewTrainGraph builds a training graph for batches of batch images.
// bnMomentum is the batchnorm running-statistics momentum in PyTorch's
// convention.
func (n *Net) NewTrainGraph(batch int, bnMomentum float64) (*Graph, error) {
	if bnMomentum < 0 || bnMomentum > 1 {
		return nil, fmt.Errorf("batchnorm momentum %g: must be in [0, 1]", bnMomentum)
	}
	return n.newGraph(batch, true, bnMomentum)
}

// NewEvalGraph builds an evaluation graph for batches of up to batch
// images.
func (n *Net) NewEvalGraph(batch int) (*Graph, error) { return n.newGraph(batch, false, 0) }

func (n *Net) newGraph(batch int, train bool, bnMomentum float64) (*Graph, error) {
	gr, err := n.defineGraph(batch, train, bnMomentum, false)
	if err != nil {
		return nil, err
	}
	gr.vm = G.NewTapeMachine(gr.g)
	return gr, nil
}

// defineGraph builds the graph (and, for training, its gradients) without
// a machine to run it.
func (n *Net) defineGraph(batch int, train bool, bnMomentum float64, ownOps bool) (*Graph, error) {
	if batch <= 0 {
		return nil, fmt.Errorf("batch size %d: must be positive", batch)
	}
	gr := &Graph{net: n, batch: batch, train: train, g: G.NewGraph(), ownOps: ownOps}
	if err := gr.build(bnMomentum); err != nil {
		return nil, fmt.Errorf("build graph for %q: %w", n.spec.Name, err)
	}
	if train {
		ps := n.Trainable()
		wrt := make(G.Nodes, len(ps))
		for i, p := range ps {
			wrt[i] = gr.g.ByName(p.Name)[0]
		}
		grads, err := G.Grad(gr.loss, wrt...)
		if err != nil {
			return nil, fmt.Errorf("differentiate %q: %w", n.spec.Name, err)
		}
		gr.grads = grads
	}
	return gr, nil
}

// build adds the layers to the graph.
func (gr *Graph) build(bnMomentum float64) error {
	n := gr.net
	in := n.spec.Input
	gr.x = make([]float32, gr.batch*in.Size())
	xd := tensor.New(tensor.WithShape(gr.batch, in.C, in.H, in.W), tensor.WithBacking(gr.x))
	x := G.NewTensor(gr.g, tensor.Float32, 4, G.WithShape(xd.Shape()...), G.WithName("input"), G.WithValue(xd))

	params := make(map[string]*G.Node)
	param := func(name string) *G.Node {
		if nd, ok := params[name]; ok {
			return nd
		}
		p := n.byName[name]
		nd := G.NewTensor(gr.g, tensor.Float32, len(p.Shape), G.WithShape(p.Shape...), G.WithName(name), G.WithValue(p.dense))
		params[name] = nd
		return nd
	}
	batchnorm := func(name string, cur *G.Node, eps float64) (*G.Node, error) {
		op := newBNOp(name, cur.Dims(), gr.train, eps, bnMomentum, n.byName[name+".running_mean"].Data, n.byName[name+".running_var"].Data)
		op.frozen = gr.train && n.frozenBN
		return G.ApplyOp(op, cur, param(name+".weight"), param(name+".bias"))
	}
	// conv adds a convolution, with its bias when hasBias. The fast ops
	// (AVX2 or AVX-512 GEMM) replace gorgonia's im2col convolution when
	// this CPU has a vector kernel; without one gorgonia's, on gonum's
	// assembly, is faster.
	fast := gr.ownOps || layerops.Accelerated()
	conv := func(name string, cur *G.Node, kernel, stride, pad int, hasBias bool) (*G.Node, error) {
		cur, err := as4D(cur)
		if err != nil {
			return nil, err
		}
		if fast {
			var b *G.Node
			if hasBias {
				b = param(name + ".bias")
			}
			return layerops.Conv2D(cur, param(name+".weight"), b, stride, pad)
		}
		out, err := G.Conv2d(cur, param(name+".weight"), tensor.Shape{kernel, kernel}, []int{pad, pad}, []int{stride, stride}, nil)
		if err == nil && hasBias {
			out, err = G.ApplyOp(&biasOp{opbase.Base{Name: "bias:" + name}, out.Dims()}, out, param(name+".bias"))
		}
		return out, err
	}
	bias := func(name string, cur *G.Node) (*G.Node, error) {
		return G.ApplyOp(&biasOp{opbase.Base{Name: "bias:" + name}, cur.Dims()}, cur, param(name+".bias"))
	}

	outs := make([]*G.Node, len(n.spec.Layers))
	cur := x
	for i, l := range n.spec.Layers {
		var err error
		switch l.Type {
		case models.Conv2D:
			cur, err = conv(l.Name, cur, l.Kernel, l.EffectiveStride(), l.Padding, l.Bias)
		case models.BatchNorm:
			cur, err = batchnorm(l.Name, cur, l.EffectiveEps())
		case models.ReLU:
			cur, err = G.ApplyOp(newActOp(l.Name, reluAct(), cur.Dims()), cur)
		case models.LeakyReLU:
			cur, err = G.ApplyOp(newActOp(l.Name, leakyReLUAct(float32(l.Alpha)), cur.Dims()), cur)
		case models.GELU:
			cur, err = G.ApplyOp(newActOp(l.Name, geluAct(), cur.Dims()), cur)
		case models.MaxPool:
			if cur, err = as4D(cur); err == nil {
				st := l.EffectiveStride()
				if fast {
					cur, err = layerops.MaxPool2D(cur, l.Kernel, st, 0)
				} else {
					cur, err = G.MaxPool2D(cur, tensor.Shape{l.Kernel, l.Kernel}, []int{0, 0}, []int{st, st})
				}
			}
		case models.GlobalAvgPool:
			if cur, err = as4D(cur); err == nil {
				cur, err = G.ApplyOp(&gapOp{opbase.Base{Name: "gap:" + l.Name}}, cur)
			}
		case models.Flatten:
			cur, err = G.Reshape(cur, tensor.Shape{gr.batch, n.shapes[i].C})
		case models.Linear:
			if cur, err = asVector(cur); err == nil {
				if fast {
					cur, err = layerops.Linear(cur, param(l.Name+".weight"))
				} else {
					cur, err = G.Mul(cur, G.Must(G.Transpose(param(l.Name+".weight"))))
				}
			}
			if err == nil && l.Bias {
				cur, err = bias(l.Name, cur)
			}
		case models.Dropout:
			if gr.train && l.Rate > 0 {
				op := &dropoutOp{Base: opbase.Base{Name: "dropout:" + l.Name}, dims: cur.Dims(), rate: l.Rate, stream: uint64(i)}
				gr.dropouts = append(gr.dropouts, op)
				cur, err = G.ApplyOp(op, cur)
			}
		case models.Add:
			cur, err = gr.add(i, l, cur, x, outs, conv, batchnorm)
		case models.Softmax:
			if i != len(n.spec.Layers)-1 {
				err = fmt.Errorf("softmax is supported only as the last layer")
			}
			// The graph ends at the logits; the loss applies the softmax.
		default:
			err = fmt.Errorf("unsupported layer type %q", l.Type)
		}
		if err != nil {
			return &models.LayerError{Index: i, Name: l.Name, Err: err}
		}
		outs[i] = cur
	}
	var err error
	if gr.logits, err = asVector(cur); err != nil {
		return err
	}
	gr.classes = gr.logits.Shape()[1]
	if !gr.train {
		return nil
	}
	gr.target = make([]float32, gr.batch*gr.classes)
	td := tensor.New(tensor.WithShape(gr.batch, gr.classes), tensor.WithBacking(gr.target))
	target := G.NewTensor(gr.g, tensor.Float32, 2, G.WithShape(gr.batch, gr.classes), G.WithName("target"), G.WithValue(td))
	gr.loss, err = G.ApplyOp(&xentOp{opbase.Base{Name: "xent:loss"}}, gr.logits, target)
	return err
}

// add builds an add layer: cur plus the output of l.From, projected by a
// 1×1 convolution and batchnorm when l.Project is set.
func (gr *Graph) add(i int, l models.Layer, cur, x *G.Node, outs []*G.Node,
	conv func(string, *G.Node, int, int, int, bool) (*G.Node, error),
	batchnorm func(string, *G.Node, float64) (*G.Node, error)) (*G.Node, error) {
	spec := &gr.net.spec
	from, err := spec.FromIndex(i)
	if err != nil {
		return nil, err
	}
	skip := x
	if from >= 0 {
		skip = outs[from]
	}
	if l.Project {
		st, err := spec.ProjectStride(i, gr.net.shapes)
		if err != nil {
			return nil, err
		}
		if skip, err = conv(l.Name+".proj", skip, 1, st, 0, false); err != nil {
			return nil, err
		}
		if skip, err = batchnorm(l.Name+".proj_bn", skip, models.DefaultBatchNormEps); err != nil {
			return nil, err
		}
	}
	if skip.Dims() != cur.Dims() {
		if skip, err = G.Reshape(skip, cur.Shape().Clone()); err != nil {
			return nil, err
		}
	}
	return G.Add(cur, skip)
}

// as4D views an N×C vector batch as N×C×1×1.
func as4D(nd *G.Node) (*G.Node, error) {
	if nd.Dims() == 4 {
		return nd, nil
	}
	s := nd.Shape()
	return G.Reshape(nd, tensor.Shape{s[0], s[1], 1, 1})
}

// asVector views an N×C×1×1 batch as N×C.
func asVector(nd *G.Node) (*G.Node, error) {
	if nd.Dims() == 2 {
		return nd, nil
	}
	s := nd.Shape()
	if nd.Dims() != 4 || s[2] != 1 || s[3] != 1 {
		return nil, fmt.Errorf("expected a vector per image, got shape %v", s)
	}
	return G.Reshape(nd, tensor.Shape{s[0], s[1]})
}

// Batch is the number of images the graph processes per run.
func (gr *Graph) Batch() int { return gr.batch }

// Classes is the number of logits per image.
func (gr *Graph) Classes() int { return gr.classes }

// Forward runs an evaluation graph on n ≤ Batch() normalised CHW images
// stored back to back and returns their n×Classes() logits, valid until
// the next run.
func (gr *Graph) Forward(x []float32, n int) ([]float32, error) {
	if gr.train {
		return nil, fmt.Errorf("forward: graph is a training graph")
	}
	if err := gr.setInput(x, n); err != nil {
		return nil, err
	}
	if err := gr.run(); err != nil {
		return nil, err
	}
	logits, err := opbase.Floats(gr.logits.Value())
	if err != nil {
		return nil, fmt.Errorf("forward: logits: %w", err)
	}
	return logits[:n*gr.classes], nil
}

// setInput copies n images into the input and zeroes the padding rows.
func (gr *Graph) setInput(x []float32, n int) error {
	per := gr.net.spec.Input.Size()
	if n <= 0 || n > gr.batch {
		return fmt.Errorf("batch of %d images: graph takes 1..%d", n, gr.batch)
	}
	if len(x) != n*per {
		return fmt.Errorf("batch of %d images needs %d values, got %d", n, n*per, len(x))
	}
	copy(gr.x, x)
	clear(gr.x[len(x):])
	return nil
}

func (gr *Graph) run() error {
	gr.vm.Reset()
	if err := gr.vm.RunAll(); err != nil {
		return fmt.Errorf("run graph: %w", err)
	}
	return nil
}

// Step runs a training graph forward and backward on exactly Batch()
// images with their labels; label smoothing ε trains against
// (1−ε)·one-hot + ε/K. Dropout masks are drawn from seed, so a step is
// reproducible. It returns the mean loss and the logits (valid until the
// next run); Grads then holds the gradients.
func (gr *Graph) Step(x []float32, labels []uint8, smoothing float64, seed uint64) (loss float64, logits []float32, err error) {
	if !gr.train {
		return 0, nil, fmt.Errorf("step: graph is an evaluation graph")
	}
	if len(labels) != gr.batch {
		return 0, nil, fmt.Errorf("step: %d labels for a batch of %d", len(labels), gr.batch)
	}
	if smoothing < 0 || smoothing >= 1 {
		return 0, nil, fmt.Errorf("step: label smoothing %g must be in [0, 1)", smoothing)
	}
	if err := gr.setInput(x, gr.batch); err != nil {
		return 0, nil, fmt.Errorf("step: %w", err)
	}
	k := gr.classes
	off := float32(smoothing / float64(k))
	for i, y := range labels {
		if int(y) >= k {
			return 0, nil, fmt.Errorf("step: label %d out of range for %d classes", y, k)
		}
		row := gr.target[i*k : (i+1)*k]
		fill(row, off)
		row[y] += float32(1 - smoothing)
	}
	for _, d := range gr.dropouts {
		d.seed = seed
	}
	if err := gr.run(); err != nil {
		return 0, nil, fmt.Errorf("step: %w", err)
	}
	lv, err := opbase.Floats(gr.loss.Value())
	if err != nil {
		return 0, nil, fmt.Errorf("step: loss: %w", err)
	}
	if logits, err = opbase.Floats(gr.logits.Value()); err != nil {
		return 0, nil, fmt.Errorf("step: logits: %w", err)
	}
	return float64(lv[0]), logits, nil
}

// Grads returns the gradients of the last Step, aligned with
// Net.Trainable(). The slices are reused by the next run.
func (gr *Graph) Grads() ([][]float32, error) {
	out := make([][]float32, len(gr.grads))
	for i, g := range gr.grads {
		if g.Value() == nil {
			return nil, fmt.Errorf("gradient %d not computed: run Step first", i)
		}
		d, err := opbase.Floats(g.Value())
		if err != nil {
			return nil, fmt.Errorf("gradient of %q: %w", gr.net.Trainable()[i].Name, err)
		}
		out[i] = d
	}
	return out, nil
}

// Close releases the graph's machine.
func (gr *Graph) Close() error { return gr.vm.Close() }
