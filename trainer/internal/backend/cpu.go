package backend

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/trainer/internal/evaluate"
	"github.com/cifarnet-go/cifarnet/trainer/internal/nn"
	"github.com/cifarnet-go/cifarnet/trainer/internal/optim"
)

// cpu trains with gorgonia graphs on the host: one training graph per
// batch size (the last batch of an epoch may be short) and one evaluation
// graph, all over the parameters of its own copy of the network.
type cpu struct {
	cfg    Config
	dev    Device
	net    *nn.Net
	params [][]float32 // the trainable parameters' storage, for the optimiser
	opt    optim.Optimizer
	graphs map[int]*nn.Graph
	eval   *nn.Graph
	logits []float32   // Forward's result when it runs in chunks
	slow   [][]float32 // weight averaging's slow weights; nil without
}

// NewCPU opens the CPU backend.
func NewCPU(cfg Config) (Backend, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// A copy, so that the caller's Net is never trained behind its back:
	// the loop then works the same way on every backend.
	net, err := nn.FromFile(cfg.Net.File(models.Meta{}))
	if err != nil {
		return nil, fmt.Errorf("cpu backend: %w", err)
	}
	if cfg.BatchNormFrozen {
		net.FreezeBatchNormStatistics()
	}
	c := &cpu{cfg: cfg, dev: CPUDevice(), net: net, graphs: map[int]*nn.Graph{}}
	var sizes []int
	for _, p := range net.Trainable() {
		c.params = append(c.params, p.Data)
		sizes = append(sizes, len(p.Data))
	}
	if c.opt, err = optim.New(cfg.Optimizer, sizes); err != nil {
		return nil, fmt.Errorf("cpu backend: %w", err)
	}
	if cfg.Averaging.On() {
		c.slow = net.Snapshot()
	}
	return c, nil
}

// CPUDevice describes the CPU backend: the processor's model and the
// threads Go runs on.
func CPUDevice() Device {
	return Device{Kind: CPUKind, ID: CPUKind, Name: fmt.Sprintf("%s, %d threads", cpuModel(), runtime.GOMAXPROCS(0))}
}

// cpuModel is the first "model name" of /proc/cpuinfo, or the
// architecture where that is not readable.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if ok && strings.TrimSpace(k) == "model name" {
				if v = strings.Join(strings.Fields(v), " "); v != "" {
					return v
				}
			}
		}
	}
	return runtime.GOARCH + " CPU"
}

func (c *cpu) Device() Device { return c.dev }

// graph returns the training graph for batches of n images, building it
// the first time.
func (c *cpu) graph(n int) (*nn.Graph, error) {
	if g, ok := c.graphs[n]; ok {
		return g, nil
	}
	g, err := c.net.NewTrainGraph(n, c.cfg.BatchNormMomentum)
	if err != nil {
		return nil, err
	}
	c.graphs[n] = g
	return g, nil
}

func (c *cpu) Step(b Batch, lr float64, step int64, seed uint64) (StepResult, error) {
	if b.N <= 0 || b.N > c.cfg.Batch || len(b.X) < b.N*c.net.Spec().Input.Size() || len(b.Labels) < b.N {
		return StepResult{}, fmt.Errorf("step: batch of %d images with %d values and %d labels (batch size %d)", b.N, len(b.X), len(b.Labels), c.cfg.Batch)
	}
	g, err := c.graph(b.N)
	if err != nil {
		return StepResult{}, err
	}
	labels := b.Labels[:b.N]
	loss, logits, err := g.Step(b.X[:b.N*c.net.Spec().Input.Size()], labels, c.cfg.LabelSmoothing, seed)
	if err != nil {
		return StepResult{}, err
	}
	// Counted before the update: the logits are the forward pass's.
	res := StepResult{Loss: loss, Correct: evaluate.Correct(logits, labels, g.Classes())}
	grads, err := g.Grads()
	if err != nil {
		return StepResult{}, err
	}
	if c.cfg.GradClip > 0 {
		optim.ClipGlobalNorm(grads, c.cfg.GradClip)
	}
	if err := c.opt.Step(c.params, grads, lr); err != nil {
		return StepResult{}, err
	}
	c.average(step)
	return res, nil
}

// average moves the slow weights to d·slow + (1−d)·fast every Every steps
// and, for lookahead, restarts the trained weights from them. It covers
// every parameter, batchnorm running statistics included, as airbench's
// lookahead does over the state_dict.
func (c *cpu) average(step int64) {
	a := c.cfg.Averaging
	if !a.Due(step) {
		return
	}
	w := float32(1 - a.DecayAt(step))
	for i, p := range c.net.Params() {
		s := c.slow[i]
		for j, v := range p.Data {
			s[j] += w * (v - s[j])
		}
		if a.Lookahead() {
			copy(p.Data, s)
		}
	}
}

func (c *cpu) Forward(x []float32, n int) ([]float32, error) {
	if c.eval == nil {
		g, err := c.net.NewEvalGraph(c.cfg.Batch)
		if err != nil {
			return nil, err
		}
		c.eval = g
	}
	per := c.net.Spec().Input.Size()
	if n <= 0 || len(x) != n*per {
		return nil, fmt.Errorf("cpu backend: forward: %d values for %d images of %d values", len(x), n, per)
	}
	batch := c.cfg.Batch
	if n <= batch {
		return c.eval.Forward(x, n)
	}
	// The graph's batch is fixed: run it on chunks.
	k := c.eval.Classes()
	if cap(c.logits) < n*k {
		c.logits = make([]float32, n*k)
	}
	for at := 0; at < n; at += batch {
		m := min(batch, n-at)
		l, err := c.eval.Forward(x[at*per:(at+m)*per], m)
		if err != nil {
			return nil, err
		}
		copy(c.logits[at*k:], l)
	}
	return c.logits[:n*k], nil
}

func (c *cpu) Params() ([][]float32, error) { return c.net.Snapshot(), nil }

func (c *cpu) SetParams(p [][]float32) error { return c.net.Restore(p) }

func (c *cpu) OptState() (optim.State, error) { return c.opt.State(), nil }

func (c *cpu) SetOptState(s optim.State) error { return c.opt.SetState(s) }

func (c *cpu) SetScales(s optim.Scales) error { return c.opt.SetScales(s) }

func (c *cpu) Averaged() ([][]float32, error) {
	if c.slow == nil {
		return nil, nil
	}
	return clone2(c.slow), nil
}

func (c *cpu) SetAveraged(s [][]float32) error {
	if c.slow == nil {
		if s != nil {
			return fmt.Errorf("set averaged weights: the recipe does not average")
		}
		return nil
	}
	if err := sameShapes(s, c.slow); err != nil {
		return fmt.Errorf("set averaged weights: %w", err)
	}
	c.slow = clone2(s)
	return nil
}

func (c *cpu) Close() error {
	var first error
	for n, g := range c.graphs {
		if err := g.Close(); err != nil && first == nil {
			first = err
		}
		delete(c.graphs, n)
	}
	if c.eval != nil {
		if err := c.eval.Close(); err != nil && first == nil {
			first = err
		}
		c.eval = nil
	}
	return first
}

func clone2(s [][]float32) [][]float32 {
	out := make([][]float32, len(s))
	for i, x := range s {
		out[i] = append([]float32(nil), x...)
	}
	return out
}

// sameShapes checks that got has the tensors and sizes of want.
func sameShapes(got, want [][]float32) error {
	if len(got) != len(want) {
		return fmt.Errorf("%d tensors, want %d", len(got), len(want))
	}
	for i := range want {
		if len(got[i]) != len(want[i]) {
			return fmt.Errorf("tensor %d has %d values, want %d", i, len(got[i]), len(want[i]))
		}
	}
	return nil
}
