// Package cuda trains on an NVIDIA GPU: it runs the same gorgonia graph as
// the CPU backend (the forward pass and the symbolic gradient from
// G.Grad), launching a CUDA kernel per op, and keeps weights, gradients,
// optimiser state, slow weights and activations on the device for the
// whole run. Per step only the batch goes up and the loss and logits come
// down.
//
// It works on any device.Device: the real GPU (package driver, build tag
// cuda) or the host emulator (package emu) that runs the same kernel
// sources on the CPU, which is how the backend is tested without a GPU.
package cuda

import (
	"errors"
	"fmt"

	"github.com/cifarnet-go/cifarnet/trainer/internal/backend"
	"github.com/cifarnet-go/cifarnet/trainer/internal/cuda/device"
	"github.com/cifarnet-go/cifarnet/trainer/internal/cuda/kernels"
	"github.com/cifarnet-go/cifarnet/trainer/internal/evaluate"
	"github.com/cifarnet-go/cifarnet/trainer/internal/optim"
)

// Backend is a training backend on one GPU.
type Backend struct {
	dev  device.Device
	id   string
	cfg  backend.Config
	host optim.Optimizer // the optimiser's hyper-parameters and checks; its state stays empty

	params    []device.Ptr // Net.Params() order
	sizes     []int
	index     map[string]int // parameter name → index in params
	trainable []int          // Net.Trainable() → index in params
	slots     [][]device.Ptr // optimiser state: slot, trainable parameter
	steps     int64
	scales    optim.Scales
	slow      []device.Ptr // weight averaging; nil without

	ws     device.Ptr // scratch shared by all launches
	wsSize int        // float32 values

	train   map[int]*program // training programs by batch size
	eval    *program
	classes int
	per     int       // values per image
	x       []float32 // padded evaluation input
	target  []float32
	logits  []float32
	loss    []float32
}

var _ backend.Backend = (*Backend)(nil)

// New opens a training backend on dev, the GPU that --device calls id
// ("cuda:0"), with cfg's network and settings. The backend owns dev and
// closes it.
func New(dev device.Device, id string, cfg backend.Config) (*Backend, error) {
	b, err := open(dev, id, cfg)
	if err != nil {
		b.release()
		dev.Close()
		return nil, err
	}
	return b, nil
}

// open allocates the backend's device state; on an error the caller
// releases what it got.
func open(dev device.Device, id string, cfg backend.Config) (*Backend, error) {
	b := &Backend{dev: dev, id: id, cfg: cfg, index: map[string]int{}, train: map[int]*program{}}
	if err := cfg.Validate(); err != nil {
		return b, fmt.Errorf("cuda: %w", err)
	}
	if cfg.BatchNormFrozen {
		return b, errors.New("cuda: frozen batchnorm statistics (recipe batchnorm_frozen) train on the CPU only: use --device cpu")
	}
	net := cfg.Net
	in := net.Spec().Input
	b.per = in.Size()
	for i, p := range net.Params() {
		ptr, err := dev.Alloc(4 * len(p.Data))
		if err != nil {
			return b, fmt.Errorf("cuda: parameter %q: %w", p.Name, err)
		}
		b.params = append(b.params, ptr)
		b.sizes = append(b.sizes, len(p.Data))
		b.index[p.Name] = i
		if err := dev.Upload(ptr, p.Data); err != nil {
			return b, fmt.Errorf("cuda: upload %q: %w", p.Name, err)
		}
	}
	var trainSizes []int
	for _, p := range net.Trainable() {
		b.trainable = append(b.trainable, b.index[p.Name])
		trainSizes = append(trainSizes, len(p.Data))
	}
	host, err := optim.New(cfg.Optimizer, trainSizes)
	if err != nil {
		return b, err
	}
	b.host = host
	nslots := len(host.State().Slots)
	b.slots = make([][]device.Ptr, nslots)
	for s := range b.slots {
		for _, n := range trainSizes {
			ptr, err := dev.Alloc(4 * n)
			if err != nil {
				return b, fmt.Errorf("cuda: optimiser state: %w", err)
			}
			b.slots[s] = append(b.slots[s], ptr)
		}
	}
	if cfg.Averaging.On() {
		for i, p := range b.params {
			ptr, err := dev.Alloc(4 * b.sizes[i])
			if err == nil {
				err = dev.Copy(ptr, p, b.sizes[i])
			}
			if err != nil {
				return b, fmt.Errorf("cuda: slow weights: %w", err)
			}
			b.slow = append(b.slow, ptr)
		}
	}
	if cfg.GradClip > 0 {
		if err := b.reserve(kernels.ClipWorkspace(trainSizes)); err != nil {
			return b, err
		}
	}
	return b, nil
}

// reserve makes the shared scratch hold at least n float32 values.
func (b *Backend) reserve(n int) error {
	if n <= b.wsSize {
		return nil
	}
	if b.ws != 0 {
		if err := b.dev.Free(b.ws); err != nil {
			return fmt.Errorf("cuda: workspace: %w", err)
		}
		b.ws, b.wsSize = 0, 0
	}
	ptr, err := b.dev.Alloc(4 * n)
	if err != nil {
		return fmt.Errorf("cuda: workspace of %d MiB: %w", 4*n>>20, err)
	}
	b.ws, b.wsSize = ptr, n
	return nil
}

// Device implements backend.Backend.
func (b *Backend) Device() backend.Device {
	return backend.Device{Kind: "cuda", ID: b.id, Name: b.dev.Name()}
}

// program returns the training program for batches of n images, compiling
// it the first time (an epoch's last batch may be short).
func (b *Backend) program(n int) (*program, error) {
	if p, ok := b.train[n]; ok {
		return p, nil
	}
	dg, err := b.cfg.Net.NewDeviceGraph(n, true, b.cfg.BatchNormMomentum)
	if err != nil {
		return nil, err
	}
	p, err := b.compile(dg)
	if err != nil {
		return nil, err
	}
	b.classes = dg.Logits.Shape()[1]
	b.train[n] = p
	return p, nil
}

// Step implements backend.Backend.
func (b *Backend) Step(batch backend.Batch, lr float64, step int64, seed uint64) (backend.StepResult, error) {
	n := batch.N
	if n <= 0 || n > b.cfg.Batch || len(batch.Labels) < n || len(batch.X) < n*b.per {
		return backend.StepResult{}, fmt.Errorf("cuda: step: batch of %d images (%d labels, %d values), backend takes 1..%d",
			n, len(batch.Labels), len(batch.X), b.cfg.Batch)
	}
	p, err := b.program(n)
	if err != nil {
		return backend.StepResult{}, err
	}
	k := b.classes
	smoothing := b.cfg.LabelSmoothing
	b.target = grow(b.target, n*k)
	off := float32(smoothing / float64(k))
	for i, y := range batch.Labels[:n] {
		if int(y) >= k {
			return backend.StepResult{}, fmt.Errorf("cuda: step: label %d out of range for %d classes", y, k)
		}
		row := b.target[i*k : (i+1)*k]
		for j := range row {
			row[j] = off
		}
		row[y] += float32(1 - smoothing)
	}
	if err := b.dev.Upload(p.input, batch.X[:n*b.per]); err != nil {
		return backend.StepResult{}, fmt.Errorf("cuda: upload batch: %w", err)
	}
	if err := b.dev.Upload(p.target, b.target); err != nil {
		return backend.StepResult{}, fmt.Errorf("cuda: upload targets: %w", err)
	}
	p.seed = seed
	if err := p.exec(); err != nil {
		return backend.StepResult{}, fmt.Errorf("cuda: step: %w", err)
	}
	if err := b.update(p, lr, step); err != nil {
		return backend.StepResult{}, err
	}
	b.loss = grow(b.loss, 1)
	if err := b.dev.Download(b.loss, p.loss); err != nil {
		return backend.StepResult{}, fmt.Errorf("cuda: step: %w", err)
	}
	b.logits = grow(b.logits, n*k)
	if err := b.dev.Download(b.logits, p.logits); err != nil {
		return backend.StepResult{}, fmt.Errorf("cuda: step: %w", err)
	}
	return backend.StepResult{Loss: float64(b.loss[0]), Correct: evaluate.Correct(b.logits, batch.Labels[:n], k)}, nil
}

// update clips the gradients, applies the optimiser and moves the slow
// weights, all on the device.
func (b *Backend) update(p *program, lr float64, step int64) error {
	d := b.dev
	sizes := make([]int, len(b.trainable))
	for i, pi := range b.trainable {
		sizes[i] = b.sizes[pi]
	}
	if c := b.cfg.GradClip; c > 0 {
		if err := kernels.ClipGlobalNorm(d, p.grads, sizes, c, b.ws); err != nil {
			return fmt.Errorf("cuda: clip gradients: %w", err)
		}
	}
	first := b.steps == 0
	b.steps++
	for i, pi := range b.trainable {
		scale := 1.0
		if b.scales != nil {
			scale = b.scales[i]
		}
		if scale == 0 {
			continue
		}
		var err error
		switch o := b.host.(type) {
		case *optim.Adam:
			err = kernels.Adam(d, b.params[pi], p.grads[i], b.slots[0][i], b.slots[1][i], sizes[i], kernels.AdamArgs{
				LR: lr, Scale: scale, Beta1: o.Beta1, Beta2: o.Beta2, Eps: o.Eps,
				WeightDecay: o.WeightDecay, Decoupled: o.Decoupled, Step: b.steps,
			})
		case *optim.SGD:
			err = kernels.SGD(d, b.params[pi], p.grads[i], b.slots[0][i], sizes[i], kernels.SGDArgs{
				LR: lr, Scale: scale, Momentum: o.Momentum, WeightDecay: o.WeightDecay, Nesterov: o.Nesterov, First: first,
			})
		default:
			err = fmt.Errorf("optimiser %T has no CUDA kernel", o)
		}
		if err != nil {
			return fmt.Errorf("cuda: update %q: %w", b.cfg.Net.Params()[pi].Name, err)
		}
	}
	a := b.cfg.Averaging
	if !a.Due(step) {
		return nil
	}
	w := float32(1 - a.DecayAt(step)) // as the CPU backend rounds it
	for i, ptr := range b.params {
		if err := kernels.Lerp(d, b.slow[i], ptr, w, b.sizes[i]); err != nil {
			return fmt.Errorf("cuda: weight averaging: %w", err)
		}
		if a.Lookahead() {
			if err := d.Copy(ptr, b.slow[i], b.sizes[i]); err != nil {
				return fmt.Errorf("cuda: weight averaging: %w", err)
			}
		}
	}
	return nil
}

// Forward implements backend.Backend. Any n works: the evaluation graph
// runs on chunks of the configured batch size.
func (b *Backend) Forward(x []float32, n int) ([]float32, error) {
	if n <= 0 || len(x) != n*b.per {
		return nil, fmt.Errorf("cuda: forward: %d values for %d images of %d values", len(x), n, b.per)
	}
	if b.eval == nil {
		dg, err := b.cfg.Net.NewDeviceGraph(b.cfg.Batch, false, 0)
		if err != nil {
			return nil, err
		}
		if b.eval, err = b.compile(dg); err != nil {
			return nil, err
		}
		b.classes = dg.Logits.Shape()[1]
		b.x = make([]float32, b.cfg.Batch*b.per)
	}
	k, batch := b.classes, b.cfg.Batch
	b.logits = grow(b.logits, (n+batch)*k)
	for at := 0; at < n; at += batch {
		m := min(batch, n-at)
		// The graph's batch is fixed: pad with zero images, whose logits
		// are dropped (evaluation mode treats images independently).
		copy(b.x, x[at*b.per:(at+m)*b.per])
		clear(b.x[m*b.per:])
		if err := b.dev.Upload(b.eval.input, b.x); err != nil {
			return nil, fmt.Errorf("cuda: forward: %w", err)
		}
		if err := b.eval.exec(); err != nil {
			return nil, fmt.Errorf("cuda: forward: %w", err)
		}
		if err := b.dev.Download(b.logits[at*k:(at+batch)*k], b.eval.logits); err != nil {
			return nil, fmt.Errorf("cuda: forward: %w", err)
		}
	}
	return b.logits[:n*k], nil
}

// download copies device tensors of the given sizes to the host.
func (b *Backend) download(ptrs []device.Ptr, sizes []int) ([][]float32, error) {
	out := make([][]float32, len(ptrs))
	for i, ptr := range ptrs {
		out[i] = make([]float32, sizes[i])
		if err := b.dev.Download(out[i], ptr); err != nil {
			return nil, fmt.Errorf("cuda: download: %w", err)
		}
	}
	return out, nil
}

// upload copies host tensors to device tensors of the given sizes.
func (b *Backend) upload(ptrs []device.Ptr, sizes []int, vals [][]float32, what string) error {
	if len(vals) != len(ptrs) {
		return fmt.Errorf("cuda: %s: %d tensors, want %d", what, len(vals), len(ptrs))
	}
	for i := range ptrs {
		if len(vals[i]) != sizes[i] {
			return fmt.Errorf("cuda: %s: tensor %d has %d values, want %d", what, i, len(vals[i]), sizes[i])
		}
	}
	for i, ptr := range ptrs {
		if err := b.dev.Upload(ptr, vals[i]); err != nil {
			return fmt.Errorf("cuda: %s: %w", what, err)
		}
	}
	return nil
}

// Params implements backend.Backend.
func (b *Backend) Params() ([][]float32, error) { return b.download(b.params, b.sizes) }

// SetParams implements backend.Backend.
func (b *Backend) SetParams(ps [][]float32) error {
	return b.upload(b.params, b.sizes, ps, "set parameters")
}

// trainSizes are the trainable parameters' sizes.
func (b *Backend) trainSizes() []int {
	s := make([]int, len(b.trainable))
	for i, pi := range b.trainable {
		s[i] = b.sizes[pi]
	}
	return s
}

// OptState implements backend.Backend.
func (b *Backend) OptState() (optim.State, error) {
	st := b.host.State()
	st.Steps = b.steps
	for s, ptrs := range b.slots {
		vals, err := b.download(ptrs, b.trainSizes())
		if err != nil {
			return optim.State{}, err
		}
		st.Slots[s] = vals
	}
	return st, nil
}

// SetOptState implements backend.Backend.
func (b *Backend) SetOptState(st optim.State) error {
	// The host optimiser checks kind and sizes; its copy is dropped.
	check, err := optim.New(b.cfg.Optimizer, b.trainSizes())
	if err != nil {
		return err
	}
	if err := check.SetState(st); err != nil {
		return fmt.Errorf("cuda: %w", err)
	}
	for s, ptrs := range b.slots {
		if err := b.upload(ptrs, b.trainSizes(), st.Slots[s], "optimiser state"); err != nil {
			return err
		}
	}
	b.steps = st.Steps
	return nil
}

// SetScales implements backend.Backend.
func (b *Backend) SetScales(sc optim.Scales) error {
	if err := b.host.SetScales(sc); err != nil {
		return err
	}
	b.scales = sc
	return nil
}

// Averaged implements backend.Backend.
func (b *Backend) Averaged() ([][]float32, error) {
	if b.slow == nil {
		return nil, nil
	}
	return b.download(b.slow, b.sizes)
}

// SetAveraged implements backend.Backend.
func (b *Backend) SetAveraged(s [][]float32) error {
	if b.slow == nil {
		return errors.New("cuda: the recipe has no weight averaging")
	}
	return b.upload(b.slow, b.sizes, s, "set slow weights")
}

// Close implements backend.Backend.
func (b *Backend) Close() error {
	b.release()
	return b.dev.Close()
}

// release frees the backend's device memory.
func (b *Backend) release() {
	for _, p := range b.train {
		p.free()
	}
	if b.eval != nil {
		b.eval.free()
	}
	var all []device.Ptr
	all = append(all, b.params...)
	all = append(all, b.slow...)
	for _, s := range b.slots {
		all = append(all, s...)
	}
	if b.ws != 0 {
		all = append(all, b.ws)
	}
	for _, ptr := range all {
		b.dev.Free(ptr)
	}
	b.params, b.slow, b.slots, b.ws, b.train, b.eval = nil, nil, nil, 0, nil, nil
}

func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}
