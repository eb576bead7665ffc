package kernels

import (
	"fmt"

	"github.com/cifarnet-go/cifarnet/trainer/internal/cuda/device"
)

// Fill sets n values at p to v.
func Fill(d device.Device, p device.Ptr, v float32, n int) error {
	if err := checkSizes("fill", n); err != nil {
		return err
	}
	return launch(d, kFill, n, p, v, int32(n))
}

// Add sets y = a + b elementwise; y may be a or b.
func Add(d device.Device, y, a, b device.Ptr, n int) error {
	if err := checkSizes("add", n); err != nil {
		return err
	}
	return launch(d, kAdd, n, y, a, b, int32(n))
}

// Mul sets y = a·b elementwise; y may be a or b.
func Mul(d device.Device, y, a, b device.Ptr, n int) error {
	if err := checkSizes("mul", n); err != nil {
		return err
	}
	return launch(d, kMul, n, y, a, b, int32(n))
}

// Lerp moves slow towards p: slow += w·(p − slow), weight averaging's
// update.
func Lerp(d device.Device, slow, p device.Ptr, w float32, n int) error {
	if err := checkSizes("lerp", n); err != nil {
		return err
	}
	return launch(d, kLerp, n, slow, p, w, int32(n))
}

// BiasAdd sets y = x + b[channel] for an N×C×HW tensor (HW = 1 for N×C);
// y may be x.
func BiasAdd(d device.Device, y, x, b device.Ptr, n, c, hw int) error {
	total := n * c * hw
	if err := checkSizes("bias add", n, c, hw, total); err != nil {
		return err
	}
	return launch(d, kBiasAdd, total, y, x, b, int32(c), int32(hw), int32(total))
}

// Activation selects an elementwise nonlinearity.
type Activation int

const (
	ReLU      Activation = iota
	LeakyReLU            // x for x > 0, else alpha·x
	GELU                 // exact: 0.5·x·(1 + erf(x/√2))
)

func (a Activation) String() string {
	switch a {
	case ReLU:
		return "relu"
	case LeakyReLU:
		return "leaky_relu"
	case GELU:
		return "gelu"
	}
	return fmt.Sprintf("Activation(%d)", int(a))
}

// Act sets y = f(x) for n values; alpha is LeakyReLU's slope; y may be x.
func Act(d device.Device, a Activation, alpha float32, y, x device.Ptr, n int) error {
	if err := checkSizes("activation", n); err != nil {
		return err
	}
	switch a {
	case ReLU:
		return launch(d, kReLU, n, y, x, int32(n))
	case LeakyReLU:
		return launch(d, kLeakyReLU, n, y, x, alpha, int32(n))
	case GELU:
		return launch(d, kGELU, n, y, x, int32(n))
	}
	return fmt.Errorf("activation: unknown %v", a)
}

// ActGrad sets dx = dy·f'(x); dx may be dy.
func ActGrad(d device.Device, a Activation, alpha float32, dx, x, dy device.Ptr, n int) error {
	if err := checkSizes("activation gradient", n); err != nil {
		return err
	}
	switch a {
	case ReLU:
		return launch(d, kReLUGrad, n, dx, x, dy, int32(n))
	case LeakyReLU:
		return launch(d, kLeakyReLUGrad, n, dx, x, dy, alpha, int32(n))
	case GELU:
		return launch(d, kGELUGrad, n, dx, x, dy, int32(n))
	}
	return fmt.Errorf("activation gradient: unknown %v", a)
}

// DropBits is the 32 random bits dropout draws for element i under (seed,
// stream): the splitmix64 finaliser of a counter, which the CUDA kernel
// and the CPU op compute identically.
func DropBits(seed, stream uint64, i int) uint32 {
	z := seed + stream*0x9e3779b97f4a7c15 + (uint64(i)+1)*0xbf58476d1ce4e5b9
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	z ^= z >> 31
	return uint32(z >> 32)
}

// Dropout sets mask[i] to 0 (when DropBits(seed, stream, i) is below
// rate·(2³²−1)) or 1/(1−rate), and y = x·mask, for count values. The
// backward pass is Mul(dx, dy, mask).
func Dropout(d device.Device, y, mask, x device.Ptr, count int, rate float64, seed, stream uint64) error {
	if err := checkSizes("dropout", count); err != nil {
		return err
	}
	if !(rate >= 0 && rate < 1) {
		return fmt.Errorf("dropout: rate %g not in [0, 1)", rate)
	}
	threshold := uint32(rate * 4294967295)
	keep := float32(1 / (1 - rate))
	return launch(d, kDropout, count, y, mask, x, int32(count), seed, stream, threshold, keep)
}
