// Package backend is the seam between the training loop and the hardware
// it trains on: the loop (package training) sees only the Backend interface,
// and each device (the CPU's gorgonia graph, a CUDA GPU) implements it,
// opened from the network and the recipe's settings.
package backend

import (
	"errors"
	"fmt"
	"math"

	"github.com/cifarnet-go/cifarnet/trainer/internal/nn"
	"github.com/cifarnet-go/cifarnet/trainer/internal/optim"
)

// Config is what a backend is opened with: everything about a training
// step that the recipe fixes.
type Config struct {
	// Net gives the architecture and the initial value of every
	// parameter, running statistics included. A backend may keep its own
	// copy: Net is not updated by Step (use Params).
	Net *nn.Net
	// Batch is the largest batch Step is called with; Forward takes any
	// number of images.
	Batch             int
	Optimizer         optim.Config
	GradClip          float64 // largest global L2 norm of the gradients; 0: no clipping
	LabelSmoothing    float64 // ε of the cross-entropy's targets
	BatchNormMomentum float64 // PyTorch convention
	// BatchNormFrozen trains with the running statistics instead of the
	// batch's and leaves them unchanged (nn.Net.FreezeBatchNormStatistics).
	BatchNormFrozen bool
	Averaging       Averaging
}

// Averaging is the recipe's weight averaging (lookahead or EMA over all
// parameters); a zero Name turns it off. Every Every steps the slow
// weights move to d·slow + (1−d)·fast with d = Decay·(step/TotalSteps)^Power,
// and lookahead resets the trained weights to them.
type Averaging struct {
	Name         string // "lookahead", "ema" or ""
	Every        int64
	Decay, Power float64
	TotalSteps   int64
}

// On reports whether the recipe averages weights.
func (a Averaging) On() bool { return a.Name == "lookahead" || a.Name == "ema" }

// Lookahead reports whether the trained weights restart from the slow
// ones after each update.
func (a Averaging) Lookahead() bool { return a.Name == "lookahead" }

// Due reports whether the slow weights are updated after step (counted
// from 1).
func (a Averaging) Due(step int64) bool { return a.On() && step%a.Every == 0 }

// DecayAt is the slow weights' decay after step: Decay·(step/TotalSteps)^Power,
// airbench's alpha schedule (0.95⁵·(step/total)³), so the slow weights
// follow the trained ones closely early on and average more at the end.
// Every backend updates slow ← slow + float32(1−DecayAt(step))·(fast − slow)
// in float32, so that they agree.
func (a Averaging) DecayAt(step int64) float64 {
	f := min(float64(step)/float64(a.TotalSteps), 1)
	return a.Decay * math.Pow(f, a.Power)
}

// Validate checks what every backend relies on.
func (c Config) Validate() error {
	if c.Net == nil {
		return errors.New("backend: no network")
	}
	if c.Batch <= 0 {
		return fmt.Errorf("backend: batch size %d: must be positive", c.Batch)
	}
	if err := c.Optimizer.Validate(); err != nil {
		return fmt.Errorf("backend: %w", err)
	}
	if c.GradClip < 0 {
		return fmt.Errorf("backend: gradient clip %g: must not be negative", c.GradClip)
	}
	if c.LabelSmoothing < 0 || c.LabelSmoothing >= 1 {
		return fmt.Errorf("backend: label smoothing %g: must be in [0, 1)", c.LabelSmoothing)
	}
	if c.BatchNormMomentum < 0 || c.BatchNormMomentum > 1 {
		return fmt.Errorf("backend: batchnorm momentum %g: must be in [0, 1]", c.BatchNormMomentum)
	}
	switch a := c.Averaging; a.Name {
	case "", "none":
	case "lookahead", "ema":
		if a.Every < 1 || a.TotalSteps < 1 || a.Decay < 0 || a.Decay >= 1 || a.Power < 0 {
			return fmt.Errorf("backend: weight averaging %+v: needs every ≥ 1, total steps ≥ 1, decay in [0, 1) and power ≥ 0", a)
		}
	default:
		return fmt.Errorf("backend: weight averaging %q: want lookahead, ema or none", a.Name)
	}
	return nil
}

// Batch is one training batch: N normalised CHW images back to back in X
// and their labels.
type Batch struct {
	X      []float32
	Labels []uint8
	N      int
}

// StepResult is what comes back from the device after a step.
type StepResult struct {
	Loss    float64 // mean cross-entropy (with label smoothing) over the batch
	Correct int     // images whose largest logit is their label
}

// Backend trains one network on one device. Parameters, gradients,
// optimiser state and slow weights live on the device between calls; the
// methods that move them (Params, OptState, Averaged and their setters)
// copy, and are meant for checkpoints, validation and resuming, not for
// every step. A Backend is used from one goroutine at a time.
type Backend interface {
	// Device says where the backend computes.
	Device() Device
	// Step trains on one batch: forward, backward, gradient clipping,
	// the optimiser's update with learning rate lr and, when the recipe
	// averages, the slow weights' update. step is the global number of
	// this update, counted from 1 (weight averaging's schedule); dropout
	// masks are drawn from seed.
	Step(b Batch, lr float64, step int64, seed uint64) (StepResult, error)
	// Forward returns the logits (n×classes) of any n ≥ 1 normalised
	// images in evaluation mode (running statistics, no dropout), valid
	// until the next call.
	Forward(x []float32, n int) ([]float32, error)
	// Params returns a copy of every parameter in Net.Params() order (the
	// weight file's), running statistics included.
	Params() ([][]float32, error)
	// SetParams replaces every parameter from a Params-shaped copy.
	SetParams([][]float32) error
	// OptState and SetOptState save and restore the optimiser's state in
	// optim.State's layout, so that a run resumes on any backend.
	OptState() (optim.State, error)
	SetOptState(optim.State) error
	// SetScales sets the per-parameter learning-rate multipliers, aligned
	// with Net.Trainable(); nil makes them all 1.
	SetScales(optim.Scales) error
	// Averaged returns a copy of the slow weights (Params order), nil
	// without averaging; SetAveraged restores them.
	Averaged() ([][]float32, error)
	SetAveraged([][]float32) error
	// Close releases the device's memory.
	Close() error
}

// Device describes where a backend computes, for logs, config.json, the
// checkpoint, the weight file's provenance and the report.
type Device struct {
	Kind string // "cpu" or "cuda"
	// ID is what --device accepts to choose it again: "cpu", "cuda:0".
	ID string
	// Name is the processor's name, e.g. "AMD EPYC 9B45, 2 threads" or
	// "NVIDIA H200".
	Name string
}

// String is the device for people: "cuda:0 (NVIDIA H200)".
func (d Device) String() string {
	if d.Name == "" {
		return d.ID
	}
	return d.ID + " (" + d.Name + ")"
}
