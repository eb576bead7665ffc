package kernels

import (
	"fmt"

	"github.com/cifarnet-go/cifarnet/trainer/internal/cuda/device"
)

// Pool is a max-pooling geometry: N×C×H×W input, K×K windows.
type Pool struct{ N, C, H, W, K, Stride, Pad int }

// OutH and OutW are the output's height and width.
func (g Pool) OutH() int { return (g.H+2*g.Pad-g.K)/g.Stride + 1 }
func (g Pool) OutW() int { return (g.W+2*g.Pad-g.K)/g.Stride + 1 }

func (g Pool) check() error {
	if g.N <= 0 || g.C <= 0 || g.H <= 0 || g.W <= 0 || g.K <= 0 || g.Stride <= 0 || g.Pad < 0 || 2*g.Pad > g.K ||
		g.H+2*g.Pad < g.K || g.W+2*g.Pad < g.K {
		return fmt.Errorf("maxpool: bad geometry %+v", g)
	}
	return checkSizes("maxpool", g.N*g.C*g.H*g.W, g.N*g.C*g.OutH()*g.OutW())
}

func (g Pool) args() []any {
	return []any{int32(g.N * g.C), int32(g.H), int32(g.W), int32(g.K), int32(g.Stride), int32(g.Pad), int32(g.OutH()), int32(g.OutW())}
}

// MaxPool sets y (N×C×OutH×OutW) to the window maxima of x, padding
// counting as −∞, and idx (int32, like y) to each maximum's index within
// its H×W input plane, the first on ties as layerops' op.
func MaxPool(d device.Device, g Pool, y, idx, x device.Ptr) error {
	if err := g.check(); err != nil {
		return err
	}
	return launch(d, kMaxPool, g.N*g.C*g.OutH()*g.OutW(), append([]any{y, idx, x}, g.args()...)...)
}

// MaxPoolGrad sets dx (overwritten, N×C×H×W) to dy routed to the maxima
// MaxPool recorded in idx.
func MaxPoolGrad(d device.Device, g Pool, dx, dy, idx device.Ptr) error {
	if err := g.check(); err != nil {
		return err
	}
	return launch(d, kMaxPoolGrad, g.N*g.C*g.H*g.W, append([]any{dx, dy, idx}, g.args()...)...)
}

// GlobalAvgPool sets y (N×C) to the means of x's H×W planes.
func GlobalAvgPool(d device.Device, y, x device.Ptr, n, c, hw int) error {
	if err := checkChannels("global average pool", n, c, hw); err != nil {
		return err
	}
	return launch(d, kGAP, n*c, y, x, int32(n*c), int32(hw))
}

// GlobalAvgPoolGrad spreads dy (N×C) evenly over dx's H×W planes.
func GlobalAvgPoolGrad(d device.Device, dx, dy device.Ptr, n, c, hw int) error {
	if err := checkChannels("global average pool gradient", n, c, hw); err != nil {
		return err
	}
	return launch(d, kGAPGrad, n*c*hw, dx, dy, int32(n*c), int32(hw))
}
