package kernels

import (
	"fmt"
	"testing"

	"github.com/cifarnet-go/cifarnet/trainer/internal/cuda/device"
	"github.com/cifarnet-go/cifarnet/trainer/internal/optim"
)

// optimCase runs three steps of an optim.Optimizer and of the kernel on
// the same parameters and gradients, with per-parameter scales (0
// freezes), and compares the parameters and state.
func optimCase(t *testing.T, e *env, cfg optim.Config, step func(i int, p, g device.Ptr, slots []device.Ptr, n int, lr, scale float64, k int64) error) {
	t.Helper()
	sizes := []int{1, 37, 300}
	scales := optim.Scales{1, 0, 0.5}
	o, err := optim.New(cfg, sizes)
	e.ok(err)
	e.ok(o.SetScales(scales))
	nSlots := len(o.State().Slots)
	params := make([][]float32, len(sizes))
	dp := make([]device.Ptr, len(sizes))
	slots := make([][]device.Ptr, len(sizes))
	for i, n := range sizes {
		params[i] = e.randn(n, 1, 0)
		dp[i] = e.up(params[i])
		for range nSlots {
			slots[i] = append(slots[i], e.up(make([]float32, n)))
		}
	}
	for k := int64(1); k <= 3; k++ {
		lr := 0.01 * float64(k)
		grads := make([][]float32, len(sizes))
		for i, n := range sizes {
			grads[i] = e.randn(n, 1, 0)
			e.ok(step(i, dp[i], e.up(grads[i]), slots[i], n, lr, scales[i], k))
		}
		e.ok(o.Step(params, grads, lr))
		st := o.State()
		for i, n := range sizes {
			name := fmt.Sprintf("%s step %d param %d", cfg.Name, k, i)
			near(t, name, e.down(dp[i], n), f64s(params[i]), 1e-6, 1e-7)
			for s := range nSlots {
				near(t, fmt.Sprintf("%s slot %d", name, s), e.down(slots[i][s], n), f64s(st.Slots[s][i]), 1e-6, 1e-7)
			}
		}
	}
}

func TestAdam(t *testing.T) {
	e := newEnv(t)
	for _, cfg := range []optim.Config{
		{Name: "adam", LR: 1, WeightDecay: 0.01},
		{Name: "adam", LR: 1, Beta1: 0.8, Beta2: 0.99, Eps: 1e-6},
		{Name: "adamw", LR: 1, WeightDecay: 0.05},
	} {
		a, _ := optim.New(cfg, nil)
		ad := a.(*optim.Adam)
		optimCase(t, e, cfg, func(i int, p, g device.Ptr, s []device.Ptr, n int, lr, scale float64, k int64) error {
			return Adam(e.d, p, g, s[0], s[1], n, AdamArgs{LR: lr, Scale: scale, Beta1: ad.Beta1, Beta2: ad.Beta2,
				Eps: ad.Eps, WeightDecay: ad.WeightDecay, Decoupled: ad.Decoupled, Step: k})
		})
	}
}

func TestSGD(t *testing.T) {
	e := newEnv(t)
	for _, cfg := range []optim.Config{
		{Name: "sgd", LR: 1, WeightDecay: 5e-4},
		{Name: "sgd", LR: 1, Momentum: 0.9, WeightDecay: 5e-4},
		{Name: "sgd", LR: 1, Momentum: 0.85, Nesterov: true, WeightDecay: 5e-4},
	} {
		optimCase(t, e, cfg, func(i int, p, g device.Ptr, s []device.Ptr, n int, lr, scale float64, k int64) error {
			buf := device.Ptr(0)
			if len(s) > 0 {
				buf = s[0]
			}
			return SGD(e.d, p, g, buf, n, SGDArgs{LR: lr, Scale: scale, Momentum: cfg.Momentum,
				WeightDecay: cfg.WeightDecay, Nesterov: cfg.Nesterov, First: k == 1})
		})
	}
}
