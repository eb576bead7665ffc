package kernels

import (
	"math"

	"github.com/cifarnet-go/cifarnet/trainer/internal/cuda/device"
)

// AdamArgs are one Adam step's settings for one parameter tensor: the
// optimiser's hyperparameters, the parameter's learning-rate Scale (0
// freezes it) and the step count from 1.
type AdamArgs struct {
	LR, Scale, Beta1, Beta2, Eps, WeightDecay float64
	Decoupled                                 bool // AdamW
	Step                                      int64
}

// Adam applies optim.Adam.Step's update to the n values of parameter p
// with gradient g and moments m and v; the scalars are computed here in
// float64 exactly as optim does.
func Adam(d device.Device, p, g, m, v device.Ptr, n int, a AdamArgs) error {
	if err := checkSizes("adam", n); err != nil {
		return err
	}
	if a.Scale == 0 {
		return nil
	}
	t := float64(a.Step)
	bc1 := 1 - math.Pow(a.Beta1, t)
	bc2 := 1 - math.Pow(a.Beta2, t)
	stepSize := a.LR * a.Scale / bc1
	decay := float32(1 - a.LR*a.WeightDecay)
	return launch(d, kAdam, n, p, g, m, v, int32(n), float32(a.Beta1), float32(a.Beta2),
		f64(stepSize), f64(math.Sqrt(bc2)), f64(a.Eps), decay, float32(a.WeightDecay), boolArg(a.Decoupled))
}

// SGDArgs are one SGD step's settings for one parameter tensor; First is
// set on the optimiser's first step (the momentum buffer starts as the
// gradient).
type SGDArgs struct {
	LR, Scale, Momentum, WeightDecay float64
	Nesterov, First                  bool
}

// SGD applies optim.SGD.Step's update to the n values of p with gradient g
// and momentum buffer buf.
func SGD(d device.Device, p, g, buf device.Ptr, n int, a SGDArgs) error {
	if err := checkSizes("sgd", n); err != nil {
		return err
	}
	if a.Scale == 0 {
		return nil
	}
	wd, rate := float32(a.WeightDecay/a.Scale), float32(a.LR*a.Scale)
	return launch(d, kSGD, n, p, g, buf, int32(n), float32(a.Momentum), wd, rate, boolArg(a.Nesterov), boolArg(a.First))
}
