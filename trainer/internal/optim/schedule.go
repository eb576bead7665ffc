package optim

import (
	"fmt"
	"math"
	"strings"
)

// ModeFor returns "min" for metrics that improve downwards (losses) and
// "max" for the others (accuracies).
func ModeFor(metric string) string {
	if strings.HasSuffix(metric, "loss") {
		return "min"
	}
	return "max"
}

func checkMode(mode string) error {
	if mode != "min" && mode != "max" {
		return fmt.Errorf("mode %q: want min or max", mode)
	}
	return nil
}

// Plateau is ReduceLROnPlateau with PyTorch's semantics: after more than
// Patience epochs without a relative improvement of Threshold in the
// monitored metric, the learning rate is multiplied by Factor (not below
// MinLR), then Cooldown epochs pass before counting again. Its exported
// fields are its whole state, so it can be saved as JSON.
type Plateau struct {
	Mode      string  `json:"mode"`
	Factor    float64 `json:"factor"`
	Patience  int     `json:"patience"`
	MinLR     float64 `json:"min_lr"`
	Threshold float64 `json:"threshold"` // relative; PyTorch's default is 1e-4
	Cooldown  int     `json:"cooldown"`

	Best         float64 `json:"best"`
	NumBad       int     `json:"num_bad"`
	CooldownLeft int     `json:"cooldown_left"`
	Started      bool    `json:"started"`
}

// NewPlateau returns a plateau schedule with PyTorch's relative threshold
// of 1e-4 and no cooldown.
func NewPlateau(mode string, factor float64, patience int, minLR float64) (*Plateau, error) {
	if err := checkMode(mode); err != nil {
		return nil, fmt.Errorf("plateau: %w", err)
	}
	if !(factor > 0 && factor < 1) {
		return nil, fmt.Errorf("plateau: factor %g must be in (0, 1)", factor)
	}
	if patience < 0 || minLR < 0 {
		return nil, fmt.Errorf("plateau: patience %d and min_lr %g must not be negative", patience, minLR)
	}
	return &Plateau{Mode: mode, Factor: factor, Patience: patience, MinLR: minLR, Threshold: 1e-4}, nil
}

func (p *Plateau) better(v float64) bool {
	if !p.Started {
		return !math.IsNaN(v)
	}
	if p.Mode == "min" {
		return v < p.Best*(1-p.Threshold)
	}
	return v > p.Best*(1+p.Threshold)
}

// Step records the metric of an epoch and returns the learning rate for
// the next one.
func (p *Plateau) Step(metric, lr float64) float64 {
	if p.better(metric) {
		p.Best, p.Started, p.NumBad = metric, true, 0
	} else {
		p.NumBad++
	}
	if p.CooldownLeft > 0 {
		p.CooldownLeft--
		p.NumBad = 0
	}
	if p.NumBad > p.Patience {
		p.NumBad = 0
		p.CooldownLeft = p.Cooldown
		if next := max(lr*p.Factor, p.MinLR); lr-next > 1e-8*lr {
			return next
		}
	}
	return lr
}

// WarmupDecay is a per-step one-cycle schedule: the learning rate rises
// linearly from Peak·StartFactor to Peak over WarmupSteps, then falls to
// Peak·EndFactor at TotalSteps, linearly or along a half cosine. It has no
// state: the rate is a function of the step.
type WarmupDecay struct {
	Peak        float64 `json:"peak"`
	StartFactor float64 `json:"start_factor"`
	EndFactor   float64 `json:"end_factor"`
	WarmupSteps int64   `json:"warmup_steps"`
	TotalSteps  int64   `json:"total_steps"`
	Cosine      bool    `json:"cosine"`
}

// Validate checks the schedule.
func (w WarmupDecay) Validate() error {
	if !(w.Peak > 0) || w.StartFactor < 0 || w.EndFactor < 0 {
		return fmt.Errorf("warmup-decay: peak %g must be positive and factors (%g, %g) non-negative", w.Peak, w.StartFactor, w.EndFactor)
	}
	if w.WarmupSteps < 0 || w.TotalSteps <= 0 || w.WarmupSteps > w.TotalSteps {
		return fmt.Errorf("warmup-decay: need 0 ≤ warmup steps (%d) ≤ total steps (%d), total > 0", w.WarmupSteps, w.TotalSteps)
	}
	return nil
}

// LR returns the learning rate for step (counted from 0).
func (w WarmupDecay) LR(step int64) float64 {
	if step < w.WarmupSteps {
		f := float64(step) / float64(w.WarmupSteps)
		return w.Peak * (w.StartFactor + (1-w.StartFactor)*f)
	}
	decay := w.TotalSteps - w.WarmupSteps
	if decay == 0 {
		return w.Peak
	}
	f := min(float64(step-w.WarmupSteps)/float64(decay), 1)
	if w.Cosine {
		f = (1 - math.Cos(math.Pi*f)) / 2
	}
	return w.Peak * (1 + (w.EndFactor-1)*f)
}

// EarlyStopping stops training after Patience epochs without an
// improvement larger than MinDelta (absolute) in the monitored metric,
// like Keras's EarlyStopping. Its exported fields are its whole state.
type EarlyStopping struct {
	Mode     string  `json:"mode"`
	Patience int     `json:"patience"`
	MinDelta float64 `json:"min_delta"`

	Best      float64 `json:"best"`
	BestEpoch int     `json:"best_epoch"`
	Wait      int     `json:"wait"`
	Started   bool    `json:"started"`
}

// NewEarlyStopping returns early stopping on a metric with the given mode.
func NewEarlyStopping(mode string, patience int, minDelta float64) (*EarlyStopping, error) {
	if err := checkMode(mode); err != nil {
		return nil, fmt.Errorf("early stopping: %w", err)
	}
	if patience <= 0 || minDelta < 0 {
		return nil, fmt.Errorf("early stopping: patience %d must be positive and min_delta %g non-negative", patience, minDelta)
	}
	return &EarlyStopping{Mode: mode, Patience: patience, MinDelta: minDelta}, nil
}

// Update records the metric of an epoch (counted from 1). It reports
// whether this is the best epoch so far and whether training should stop.
func (e *EarlyStopping) Update(metric float64, epoch int) (improved, stop bool) {
	switch {
	case math.IsNaN(metric):
	case !e.Started:
		improved = true
	case e.Mode == "min":
		improved = metric < e.Best-e.MinDelta
	default:
		improved = metric > e.Best+e.MinDelta
	}
	if improved {
		e.Best, e.BestEpoch, e.Wait, e.Started = metric, epoch, 0, true
		return true, false
	}
	e.Wait++
	return false, e.Wait >= e.Patience
}
