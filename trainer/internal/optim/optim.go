// Package optim holds the optimisers (Adam, AdamW, SGD with Nesterov
// momentum), learning-rate schedules, gradient clipping and early stopping
// used by the trainer. Optimisers work on flat float32 slices and follow
// PyTorch's update formulas; their state can be saved and restored for
// resuming.
package optim

import (
	"fmt"
	"math"
)

// Config selects and parameterises an optimiser. Zero betas and eps take
// PyTorch's defaults.
type Config struct {
	Name        string  `json:"name"` // "adam", "adamw" or "sgd"
	LR          float64 `json:"lr"`
	WeightDecay float64 `json:"weight_decay"`
	Beta1       float64 `json:"beta1,omitempty"`    // adam, adamw; default 0.9
	Beta2       float64 `json:"beta2,omitempty"`    // adam, adamw; default 0.999
	Eps         float64 `json:"eps,omitempty"`      // adam, adamw; default 1e-8
	Momentum    float64 `json:"momentum,omitempty"` // sgd
	Nesterov    bool    `json:"nesterov,omitempty"` // sgd
}

// Validate checks the configuration.
func (c Config) Validate() error {
	switch c.Name {
	case "adam", "adamw", "sgd":
	default:
		return fmt.Errorf("optimizer %q: want adam, adamw or sgd", c.Name)
	}
	if !(c.LR > 0) {
		return fmt.Errorf("optimizer lr %g: must be positive", c.LR)
	}
	if c.WeightDecay < 0 {
		return fmt.Errorf("optimizer weight_decay %g: must not be negative", c.WeightDecay)
	}
	if c.Beta1 < 0 || c.Beta1 >= 1 || c.Beta2 < 0 || c.Beta2 >= 1 || c.Eps < 0 {
		return fmt.Errorf("optimizer betas (%g, %g) must be in [0, 1) and eps %g non-negative", c.Beta1, c.Beta2, c.Eps)
	}
	if c.Momentum < 0 || c.Momentum >= 1 {
		return fmt.Errorf("optimizer momentum %g: must be in [0, 1)", c.Momentum)
	}
	if c.Nesterov && (c.Name != "sgd" || c.Momentum == 0) {
		return fmt.Errorf("optimizer nesterov needs sgd with momentum > 0")
	}
	return nil
}

// Optimizer updates parameters in place from their gradients.
type Optimizer interface {
	// Step applies one update with learning rate lr. params and grads
	// are aligned and have the sizes the optimiser was made for.
	Step(params, grads [][]float32, lr float64) error
	// State returns a copy of the optimiser's state.
	State() State
	// SetState restores a State from an optimiser of the same kind and
	// sizes.
	SetState(State) error
	// SetScales sets per-parameter learning-rate multipliers, aligned
	// with the parameters; nil makes them all 1. See Scales.
	SetScales(Scales) error
}

// Scales are per-parameter learning-rate multipliers, airbench's parameter
// groups. A multiplier s scales the step of its parameter but not its
// weight decay: the parameter still shrinks by lr·wd per step (for SGD
// the L2 term added to the gradient is wd/s, for AdamW the decoupled decay
// ignores s; for Adam the L2 term goes through the adaptive
// normalisation, so it is left at wd). A multiplier of 0 freezes the
// parameter: no update, no decay, its moment buffers untouched.
type Scales []float64

func (sc Scales) check(n int) error {
	if sc == nil {
		return nil
	}
	if len(sc) != n {
		return fmt.Errorf("optimizer: %d learning-rate scales for %d parameters", len(sc), n)
	}
	for i, s := range sc {
		if !(s >= 0) || math.IsInf(s, 0) {
			return fmt.Errorf("optimizer: learning-rate scale %g of parameter %d must be finite and non-negative", s, i)
		}
	}
	return nil
}

// of returns the multiplier of parameter i.
func (sc Scales) of(i int) float64 {
	if sc == nil {
		return 1
	}
	return sc[i]
}

// State is an optimiser's resumable state: its step count and per-
// parameter moment buffers (Adam: m then v; SGD: momentum).
type State struct {
	Kind  string
	Steps int64
	Slots [][][]float32
}

// New returns the configured optimiser for parameters of the given sizes.
func New(c Config, sizes []int) (Optimizer, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	switch c.Name {
	case "sgd":
		return &SGD{Momentum: c.Momentum, Nesterov: c.Nesterov, WeightDecay: c.WeightDecay, buf: alloc(sizes)}, nil
	default:
		a := &Adam{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: c.WeightDecay, Decoupled: c.Name == "adamw",
			m: alloc(sizes), v: alloc(sizes)}
		if c.Beta1 > 0 {
			a.Beta1 = c.Beta1
		}
		if c.Beta2 > 0 {
			a.Beta2 = c.Beta2
		}
		if c.Eps > 0 {
			a.Eps = c.Eps
		}
		return a, nil
	}
}

func alloc(sizes []int) [][]float32 {
	out := make([][]float32, len(sizes))
	for i, n := range sizes {
		out[i] = make([]float32, n)
	}
	return out
}

func checkShapes(params, grads, slot [][]float32) error {
	if len(params) != len(slot) || len(grads) != len(slot) {
		return fmt.Errorf("optimizer: %d parameters and %d gradients, made for %d", len(params), len(grads), len(slot))
	}
	for i := range slot {
		if len(params[i]) != len(slot[i]) || len(grads[i]) != len(slot[i]) {
			return fmt.Errorf("optimizer: parameter %d has %d values and gradient %d, made for %d", i, len(params[i]), len(grads[i]), len(slot[i]))
		}
	}
	return nil
}

// Adam is Adam (Kingma & Ba) as torch.optim.Adam computes it, with L2
// weight decay added to the gradient, or AdamW (Loshchilov & Hutter) when
// Decoupled: weights shrink by lr·wd before the Adam update, as
// torch.optim.AdamW does.
type Adam struct {
	Beta1, Beta2, Eps float64
	WeightDecay       float64
	Decoupled         bool

	steps  int64
	m, v   [][]float32
	scales Scales
}

// Step implements Optimizer.
func (a *Adam) Step(params, grads [][]float32, lr float64) error {
	if err := checkShapes(params, grads, a.m); err != nil {
		return err
	}
	a.steps++
	t := float64(a.steps)
	bc1 := 1 - math.Pow(a.Beta1, t)
	bc2 := 1 - math.Pow(a.Beta2, t)
	b1, b2 := float32(a.Beta1), float32(a.Beta2)
	sqrtBC2 := math.Sqrt(bc2)
	decay := float32(1 - lr*a.WeightDecay)
	wd := float32(a.WeightDecay)
	for i, p := range params {
		scale := a.scales.of(i)
		if scale == 0 {
			continue
		}
		stepSize := lr * scale / bc1
		g, m, v := grads[i], a.m[i], a.v[i]
		for j := range p {
			gj := g[j]
			if a.Decoupled {
				p[j] *= decay
			} else if wd != 0 {
				gj += wd * p[j]
			}
			m[j] = b1*m[j] + (1-b1)*gj
			v[j] = b2*v[j] + (1-b2)*gj*gj
			denom := math.Sqrt(float64(v[j]))/sqrtBC2 + a.Eps
			p[j] -= float32(stepSize * float64(m[j]) / denom)
		}
	}
	return nil
}

func (a *Adam) kind() string {
	if a.Decoupled {
		return "adamw"
	}
	return "adam"
}

// SetScales implements Optimizer.
func (a *Adam) SetScales(sc Scales) error {
	if err := sc.check(len(a.m)); err != nil {
		return err
	}
	a.scales = sc
	return nil
}

// State implements Optimizer.
func (a *Adam) State() State {
	return State{Kind: a.kind(), Steps: a.steps, Slots: [][][]float32{clone2(a.m), clone2(a.v)}}
}

// SetState implements Optimizer.
func (a *Adam) SetState(s State) error {
	if err := checkState(s, a.kind(), 2, a.m); err != nil {
		return err
	}
	a.steps = s.Steps
	a.m, a.v = clone2(s.Slots[0]), clone2(s.Slots[1])
	return nil
}

// SGD is stochastic gradient descent with optional momentum, Nesterov
// momentum and L2 weight decay, as torch.optim.SGD computes it (no
// dampening).
type SGD struct {
	Momentum    float64
	Nesterov    bool
	WeightDecay float64

	steps  int64
	buf    [][]float32
	scales Scales
}

// Step implements Optimizer.
func (s *SGD) Step(params, grads [][]float32, lr float64) error {
	if err := checkShapes(params, grads, s.buf); err != nil {
		return err
	}
	mu := float32(s.Momentum)
	first := s.steps == 0
	s.steps++
	for i, p := range params {
		scale := s.scales.of(i)
		if scale == 0 {
			continue
		}
		wd, rate := float32(s.WeightDecay/scale), float32(lr*scale)
		g, b := grads[i], s.buf[i]
		for j := range p {
			d := g[j] + wd*p[j]
			if mu != 0 {
				if first {
					b[j] = d
				} else {
					b[j] = mu*b[j] + d
				}
				if s.Nesterov {
					d += mu * b[j]
				} else {
					d = b[j]
				}
			}
			p[j] -= rate * d
		}
	}
	return nil
}

// SetScales implements Optimizer.
func (s *SGD) SetScales(sc Scales) error {
	if err := sc.check(len(s.buf)); err != nil {
		return err
	}
	s.scales = sc
	return nil
}

// State implements Optimizer.
func (s *SGD) State() State {
	return State{Kind: "sgd", Steps: s.steps, Slots: [][][]float32{clone2(s.buf)}}
}

// SetState implements Optimizer.
func (s *SGD) SetState(st State) error {
	if err := checkState(st, "sgd", 1, s.buf); err != nil {
		return err
	}
	s.steps = st.Steps
	s.buf = clone2(st.Slots[0])
	return nil
}

func checkState(s State, kind string, slots int, like [][]float32) error {
	if s.Kind != kind {
		return fmt.Errorf("optimizer state is for %q, optimizer is %q", s.Kind, kind)
	}
	if len(s.Slots) != slots {
		return fmt.Errorf("optimizer state has %d slots, want %d", len(s.Slots), slots)
	}
	for _, slot := range s.Slots {
		if len(slot) != len(like) {
			return fmt.Errorf("optimizer state has %d parameters, want %d", len(slot), len(like))
		}
		for i := range slot {
			if len(slot[i]) != len(like[i]) {
				return fmt.Errorf("optimizer state parameter %d has %d values, want %d", i, len(slot[i]), len(like[i]))
			}
		}
	}
	return nil
}

func clone2(s [][]float32) [][]float32 {
	out := make([][]float32, len(s))
	for i, x := range s {
		out[i] = append([]float32(nil), x...)
	}
	return out
}

// ClipGlobalNorm scales grads in place so that their joint L2 norm is at
// most maxNorm, like torch.nn.utils.clip_grad_norm_, and returns the norm
// before clipping.
func ClipGlobalNorm(grads [][]float32, maxNorm float64) float64 {
	var ss float64
	for _, g := range grads {
		for _, v := range g {
			ss += float64(v) * float64(v)
		}
	}
	norm := math.Sqrt(ss)
	if coef := maxNorm / (norm + 1e-6); coef < 1 {
		c := float32(coef)
		for _, g := range grads {
			for j := range g {
				g[j] *= c
			}
		}
	}
	return norm
}
