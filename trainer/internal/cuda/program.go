package cuda

import (
	"fmt"
	"strings"

	"github.com/cifarnet-go/cifarnet/trainer/internal/cuda/device"
	"github.com/cifarnet-go/cifarnet/trainer/internal/cuda/kernels"
	"github.com/cifarnet-go/cifarnet/trainer/internal/nn"
	"github.com/cifarnet-go/cifarnet/trainer/internal/opbase"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// program is one gorgonia graph compiled for the device: a buffer per
// node and a launch sequence in the graph's order. The nodes are the
// trainer's ops; each is run by the kernel its opbase.Desc names, so a new
// op needs its kernel here and nowhere else.
type program struct {
	b     *Backend
	graph *nn.DeviceGraph
	bufs  map[*G.Node]device.Ptr
	// aux holds what a forward op saves for its backward ops (batchnorm
	// statistics, max-pool argmax, dropout mask), by the forward op.
	aux    map[G.Op][]device.Ptr
	run    []func() error
	seed   uint64 // the dropout seed of the current step
	owned  []device.Ptr
	logits device.Ptr
	loss   device.Ptr
	input  device.Ptr
	target device.Ptr
	grads  []device.Ptr // aligned with Net.Trainable()
}

// compile allocates a program's buffers and lays out its launches.
func (b *Backend) compile(dg *nn.DeviceGraph) (*program, error) {
	p := &program{b: b, graph: dg, bufs: map[*G.Node]device.Ptr{}, aux: map[G.Op][]device.Ptr{}}
	for _, nd := range dg.Order {
		if err := p.add(nd); err != nil {
			p.free()
			return nil, fmt.Errorf("cuda: node %q: %w", nd.Name(), err)
		}
	}
	p.input, p.logits = p.bufs[dg.Input], p.bufs[dg.Logits]
	if dg.Target != nil {
		p.target, p.loss = p.bufs[dg.Target], p.bufs[dg.Loss]
	}
	for _, g := range dg.Grads {
		ptr, ok := p.bufs[g]
		if !ok {
			p.free()
			return nil, fmt.Errorf("cuda: gradient node %q has no buffer", g.Name())
		}
		p.grads = append(p.grads, ptr)
	}
	return p, nil
}

// alloc returns a zeroed buffer of n float32 (or int32) values that the
// program frees.
func (p *program) alloc(n int) (device.Ptr, error) {
	ptr, err := p.b.dev.Alloc(4 * max(n, 1))
	if err != nil {
		return 0, err
	}
	p.owned = append(p.owned, ptr)
	return ptr, nil
}

func (p *program) free() {
	for _, ptr := range p.owned {
		p.b.dev.Free(ptr)
	}
	p.owned = nil
}

// exec runs the program's launches once.
func (p *program) exec() error {
	for _, f := range p.run {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

// workspace makes sure the backend's shared scratch holds n float32.
func (p *program) workspace(n int) error { return p.b.reserve(n) }

func size(s tensor.Shape) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

// channels splits an NC or NCHW shape into batch, channels and spatial
// size, as the CPU ops do.
func channels(s tensor.Shape) (n, c, hw int) {
	n, c, hw = s[0], s[1], 1
	for _, d := range s[2:] {
		hw *= d
	}
	return n, c, hw
}

// add compiles one node.
func (p *program) add(nd *G.Node) error {
	d := p.b.dev
	if nd.Op() == nil { // an input: the images, the targets or a parameter
		if prm := p.b.cfg.Net.Param(nd.Name()); prm != nil {
			p.bufs[nd] = p.b.params[p.b.index[nd.Name()]]
			return nil
		}
		if nd != p.graph.Input && nd != p.graph.Target {
			return fmt.Errorf("unknown input")
		}
		ptr, err := p.alloc(size(nd.Shape()))
		p.bufs[nd] = ptr
		return err
	}
	ch := p.graph.Inputs(nd)
	in := make([]device.Ptr, len(ch))
	for i, c := range ch {
		ptr, ok := p.bufs[c]
		if !ok {
			return fmt.Errorf("input %q not computed before it", c.Name())
		}
		in[i] = ptr
	}
	desc, ok := nd.Op().(opbase.Describer)
	if !ok {
		return p.addGorgonia(nd, ch, in)
	}
	out, err := p.alloc(size(nd.Shape()))
	if err != nil {
		return err
	}
	p.bufs[nd] = out
	op := desc.Describe()
	ws := func() device.Ptr { return p.b.ws }
	shape := func(i int) tensor.Shape { return ch[i].Shape() }
	switch op.Kind {
	case opbase.Conv:
		xs, wsh := shape(0), shape(1)
		g := kernels.Conv{N: xs[0], C: xs[1], H: xs[2], W: xs[3], F: wsh[0], K: wsh[2], Stride: op.Stride, Pad: op.Pad}
		var bias device.Ptr
		if len(in) == 3 {
			bias = in[2]
		}
		if err := p.workspace(g.Workspace()); err != nil {
			return err
		}
		p.run = append(p.run, func() error { return kernels.ConvForward(d, g, out, in[0], in[1], bias, ws()) })
	case opbase.ConvFilterGrad:
		xs, os := shape(0), nd.Shape()
		g := kernels.Conv{N: xs[0], C: xs[1], H: xs[2], W: xs[3], F: os[0], K: os[2], Stride: op.Stride, Pad: op.Pad}
		if err := p.workspace(g.Workspace()); err != nil {
			return err
		}
		p.run = append(p.run, func() error { return kernels.ConvFilterGrad(d, g, out, in[0], in[1], ws()) })
	case opbase.ConvInputGrad:
		xs, wsh := nd.Shape(), shape(0)
		g := kernels.Conv{N: xs[0], C: xs[1], H: xs[2], W: xs[3], F: wsh[0], K: wsh[2], Stride: op.Stride, Pad: op.Pad}
		if err := p.workspace(g.Workspace()); err != nil {
			return err
		}
		p.run = append(p.run, func() error { return kernels.ConvInputGrad(d, g, out, in[0], in[1], ws()) })
	case opbase.ConvBiasGrad, opbase.ChannelSum:
		n, c, hw := channels(shape(0))
		if err := p.workspace(kernels.ChannelSumWorkspace(n, c, hw)); err != nil {
			return err
		}
		p.run = append(p.run, func() error { return kernels.ChannelSum(d, out, in[0], n, c, hw, ws()) })
	case opbase.Bias:
		n, c, hw := channels(shape(0))
		p.run = append(p.run, func() error { return kernels.BiasAdd(d, out, in[0], in[1], n, c, hw) })
	case opbase.Linear:
		xs, wsh := shape(0), shape(1)
		n, k, f := xs[0], xs[1], wsh[0]
		p.run = append(p.run, func() error { return kernels.LinearForward(d, out, in[0], in[1], n, k, f) })
	case opbase.LinearInputGrad:
		wsh, dys := shape(0), shape(1)
		n, k, f := dys[0], wsh[1], wsh[0]
		p.run = append(p.run, func() error { return kernels.LinearInputGrad(d, out, in[1], in[0], n, k, f) })
	case opbase.LinearWeightGrad:
		xs, dys := shape(0), shape(1)
		n, k, f := xs[0], xs[1], dys[1]
		p.run = append(p.run, func() error { return kernels.LinearWeightGrad(d, out, in[1], in[0], n, k, f) })
	case opbase.MaxPool:
		xs := shape(0)
		g := kernels.Pool{N: xs[0], C: xs[1], H: xs[2], W: xs[3], K: op.Kernel, Stride: op.Stride, Pad: op.Pad}
		idx, err := p.alloc(size(nd.Shape()))
		if err != nil {
			return err
		}
		p.aux[nd.Op()] = []device.Ptr{idx}
		p.run = append(p.run, func() error { return kernels.MaxPool(d, g, out, idx, in[0]) })
	case opbase.MaxPoolGrad:
		xs := shape(0)
		g := kernels.Pool{N: xs[0], C: xs[1], H: xs[2], W: xs[3], K: op.Kernel, Stride: op.Stride, Pad: op.Pad}
		aux, err := p.auxOf(op.Forward, 1)
		if err != nil {
			return err
		}
		p.run = append(p.run, func() error { return kernels.MaxPoolGrad(d, g, out, in[1], aux[0]) })
	case opbase.Activation, opbase.ActivationGrad:
		act, err := activation(op.Act)
		if err != nil {
			return err
		}
		n := size(nd.Shape())
		if op.Kind == opbase.Activation {
			p.run = append(p.run, func() error { return kernels.Act(d, act, op.Alpha, out, in[0], n) })
		} else {
			p.run = append(p.run, func() error { return kernels.ActGrad(d, act, op.Alpha, out, in[0], in[1], n) })
		}
	case opbase.BatchNorm:
		n, c, hw := channels(shape(0))
		rm, ok1 := p.b.index[op.Layer+".running_mean"]
		rv, ok2 := p.b.index[op.Layer+".running_var"]
		if !ok1 || !ok2 {
			return fmt.Errorf("batchnorm %q: running statistics not among the parameters", op.Layer)
		}
		runMean, runVar := p.b.params[rm], p.b.params[rv]
		if !op.Training {
			p.run = append(p.run, func() error {
				return kernels.BatchNormEval(d, out, in[0], in[1], in[2], runMean, runVar, n, c, hw, op.Eps)
			})
			break
		}
		mean, err := p.alloc(c)
		if err != nil {
			return err
		}
		invStd, err := p.alloc(c)
		if err != nil {
			return err
		}
		p.aux[nd.Op()] = []device.Ptr{mean, invStd}
		if err := p.workspace(kernels.BatchNormWorkspace(n, c, hw)); err != nil {
			return err
		}
		p.run = append(p.run, func() error {
			return kernels.BatchNormTrain(d, out, in[0], in[1], in[2], runMean, runVar, mean, invStd, n, c, hw, op.Eps, op.Momentum, ws())
		})
	case opbase.BatchNormGammaGrad:
		n, c, hw := channels(shape(0))
		aux, err := p.auxOf(op.Forward, 2)
		if err != nil {
			return err
		}
		if err := p.workspace(kernels.BatchNormWorkspace(n, c, hw)); err != nil {
			return err
		}
		p.run = append(p.run, func() error {
			return kernels.BatchNormGammaGrad(d, out, in[0], in[1], aux[0], aux[1], n, c, hw, ws())
		})
	case opbase.BatchNormInputGrad:
		n, c, hw := channels(shape(0))
		aux, err := p.auxOf(op.Forward, 2)
		if err != nil {
			return err
		}
		p.run = append(p.run, func() error {
			return kernels.BatchNormInputGrad(d, out, in[0], in[1], in[2], in[3], in[4], aux[0], aux[1], n, c, hw)
		})
	case opbase.GlobalAvgPool:
		n, c, hw := channels(shape(0))
		p.run = append(p.run, func() error { return kernels.GlobalAvgPool(d, out, in[0], n, c, hw) })
	case opbase.GlobalAvgPoolGrad:
		n, c, hw := channels(shape(0))
		p.run = append(p.run, func() error { return kernels.GlobalAvgPoolGrad(d, out, in[1], n, c, hw) })
	case opbase.Dropout:
		n := size(nd.Shape())
		mask, err := p.alloc(n)
		if err != nil {
			return err
		}
		p.aux[nd.Op()] = []device.Ptr{mask}
		p.run = append(p.run, func() error {
			return kernels.Dropout(d, out, mask, in[0], n, op.Rate, p.seed, op.Stream)
		})
	case opbase.DropoutGrad:
		aux, err := p.auxOf(op.Forward, 1)
		if err != nil {
			return err
		}
		n := size(nd.Shape())
		p.run = append(p.run, func() error { return kernels.Mul(d, out, in[0], aux[0], n) })
	case opbase.SoftmaxCrossEntropy:
		s := shape(0)
		n, k := s[0], s[1]
		if err := p.workspace(kernels.SoftmaxXentWorkspace(n, k)); err != nil {
			return err
		}
		p.run = append(p.run, func() error { return kernels.SoftmaxXent(d, out, in[0], in[1], n, k, ws()) })
	case opbase.SoftmaxCrossEntropyGrad:
		s := shape(0)
		n, k := s[0], s[1]
		p.run = append(p.run, func() error { return kernels.SoftmaxXentGrad(d, out, in[0], in[1], in[2], n, k) })
	default:
		return fmt.Errorf("op %v (kind %d) has no CUDA kernel", nd.Op(), op.Kind)
	}
	return nil
}

// addGorgonia compiles the few gorgonia ops the graphs use: reshapes
// (flatten, and their gradients), the additions of residual layers and of
// gradients that meet, and the constant 1 that seeds the gradient.
func (p *program) addGorgonia(nd *G.Node, ch G.Nodes, in []device.Ptr) error {
	op := nd.Op()
	name := op.String()
	switch {
	case strings.HasPrefix(name, "Reshape"):
		if len(in) != 1 || size(ch[0].Shape()) != size(nd.Shape()) {
			return fmt.Errorf("reshape %v of %v", nd.Shape(), ch[0].Shape())
		}
		p.bufs[nd] = in[0] // a view: same values, same order
		return nil
	case strings.HasPrefix(name, "+ ") && len(in) == 2: // elemBinOp's String is "+ retSame"
		if !ch[0].Shape().Eq(ch[1].Shape()) || !ch[0].Shape().Eq(nd.Shape()) {
			return fmt.Errorf("addition of shapes %v and %v: broadcasting is not supported", ch[0].Shape(), ch[1].Shape())
		}
		out, err := p.alloc(size(nd.Shape()))
		if err != nil {
			return err
		}
		p.bufs[nd] = out
		n := size(nd.Shape())
		d := p.b.dev
		p.run = append(p.run, func() error { return kernels.Add(d, out, in[0], in[1], n) })
		return nil
	case len(in) == 0 && nd.IsScalar() && strings.HasPrefix(name, "const "):
		val, err := op.Do()
		if err != nil {
			return fmt.Errorf("constant %v: %w", name, err)
		}
		v, ok := val.(*G.F32)
		if !ok {
			return fmt.Errorf("constant %v: want a float32 scalar, got %T", name, val)
		}
		out, err := p.alloc(1)
		if err != nil {
			return err
		}
		p.bufs[nd] = out
		return p.b.dev.Upload(out, []float32{float32(*v)})
	}
	return fmt.Errorf("gorgonia op %q (%T) has no CUDA kernel", name, op)
}

// auxOf returns the saved state of a backward op's forward op.
func (p *program) auxOf(fwd G.Op, want int) ([]device.Ptr, error) {
	aux, ok := p.aux[fwd]
	if !ok || len(aux) != want {
		return nil, fmt.Errorf("forward op %v not compiled before its gradient", fwd)
	}
	return aux, nil
}

func activation(name string) (kernels.Activation, error) {
	switch name {
	case "relu":
		return kernels.ReLU, nil
	case "leaky_relu":
		return kernels.LeakyReLU, nil
	case "gelu":
		return kernels.GELU, nil
	}
	return 0, fmt.Errorf("activation %q has no CUDA kernel", name)
}
