package run

import (
	"fmt"
	"math"

	"github.com/cifarnet-go/cifarnet/trainer/internal/nn"
)

// averager keeps the slow weights of the recipe's weight averaging
// (lookahead or EMA) for every parameter of the network, batchnorm running
// statistics included, as airbench's lookahead does over the state_dict.
// The slow weights live in the checkpoint state, so resuming continues
// them exactly.
type averager struct {
	lookahead    bool
	every        int64
	decay, power float64
	total        int64 // training steps of the whole run
	net          *nn.Net
}

func newAverager(a Averaging, net *nn.Net, totalSteps int64) *averager {
	if a.Name != "lookahead" && a.Name != "ema" {
		return nil
	}
	return &averager{lookahead: a.Name == "lookahead", every: int64(a.Every), decay: a.Decay, power: a.Power, total: totalSteps, net: net}
}

// decayAt is the slow weights' decay at a step: Decay·(step/total)^Power,
// airbench's alpha schedule (0.95⁵·(step/total)³), so the slow weights
// follow the trained ones closely early on and average more at the end.
func (a *averager) decayAt(step int64) float64 {
	f := min(float64(step)/float64(a.total), 1)
	return a.decay * math.Pow(f, a.power)
}

// update is called after each step (counted from 1): every Every steps the
// slow weights move to d·slow + (1−d)·fast and, for lookahead, the trained
// weights restart from them.
func (a *averager) update(step int64, slow [][]float32) {
	if step%a.every != 0 {
		return
	}
	w := float32(1 - a.decayAt(step))
	for i, p := range a.net.Params() {
		s := slow[i]
		for j, v := range p.Data {
			s[j] += w * (v - s[j])
		}
		if a.lookahead {
			copy(p.Data, s)
		}
	}
}

// swapIn puts the slow weights into the network and returns a function
// that puts the trained ones back.
func (a *averager) swapIn(slow [][]float32) (restore func() error, err error) {
	fast := a.net.Snapshot()
	if err := a.net.Restore(slow); err != nil {
		return nil, fmt.Errorf("weight averaging: %w", err)
	}
	return func() error { return a.net.Restore(fast) }, nil
}
