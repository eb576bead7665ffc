package kernels

import (
	"fmt"
	"math"

	"github.com/cifarnet-go/cifarnet/trainer/internal/cuda/device"
)

// ChannelSumWorkspace is the float32 workspace ChannelSum needs.
func ChannelSumWorkspace(n, c, hw int) int { return reduceWorkspace(c, partsFor(n*hw)) }

// ChannelSum sets out[c] to the sum of the N×C×HW tensor x over all axes
// but the channel one: the gradient of a bias or of batchnorm's β.
func ChannelSum(d device.Device, out, x device.Ptr, n, c, hw int, ws device.Ptr) error {
	if err := checkChannels("channel sum", n, c, hw); err != nil {
		return err
	}
	parts := partsFor(n * hw)
	if err := launch(d, kChanSum, c*parts, ws, x, int32(n), int32(c), int32(hw), int32(parts)); err != nil {
		return fmt.Errorf("channel sum: %w", err)
	}
	p, parts, err := reduce(d, ws, c, parts)
	if err != nil {
		return fmt.Errorf("channel sum: %w", err)
	}
	if err := launch(d, kDSumFinal, c, out, p, int32(c), int32(parts), int32(1)); err != nil {
		return fmt.Errorf("channel sum: %w", err)
	}
	return nil
}

func checkChannels(op string, n, c, hw int) error {
	if n <= 0 || c <= 0 || hw <= 0 {
		return fmt.Errorf("%s: sizes n=%d c=%d hw=%d must be positive", op, n, c, hw)
	}
	return checkSizes(op, n*c*hw, BatchNormWorkspace(n, c, hw))
}

// BatchNormWorkspace is the float32 workspace BatchNormTrain and
// BatchNormGammaGrad need.
func BatchNormWorkspace(n, c, hw int) int { return reduceWorkspace(2*c, partsFor(n*hw)) }

// BatchNormTrain normalises the N×C×HW tensor x with its batch statistics
// into y (y may be x): y = (x − mean)·invStd·γ + β. It saves the batch
// mean and 1/√(var+eps) in mean and invStd (length C) for the backward
// pass and moves runMean and runVar towards them by momentum (the variance
// unbiased), as nn's batchnorm op.
func BatchNormTrain(d device.Device, y, x, gamma, beta, runMean, runVar, mean, invStd device.Ptr, n, c, hw int, eps, momentum float64, ws device.Ptr) error {
	if err := checkChannels("batchnorm", n, c, hw); err != nil {
		return err
	}
	parts := partsFor(n * hw)
	if err := launch(d, kBNStats, c*parts, ws, x, int32(n), int32(c), int32(hw), int32(parts)); err != nil {
		return fmt.Errorf("batchnorm: %w", err)
	}
	p, parts, err := reduce(d, ws, 2*c, parts)
	if err != nil {
		return fmt.Errorf("batchnorm: %w", err)
	}
	err = launch(d, kBNStatsFinal, c, mean, invStd, runMean, runVar, p, x, int32(n), int32(c), int32(hw), int32(parts), f64(eps), f64(momentum))
	if err != nil {
		return fmt.Errorf("batchnorm: %w", err)
	}
	total := n * c * hw
	if err := launch(d, kBNApply, total, y, x, gamma, beta, mean, invStd, int32(c), int32(hw), int32(total)); err != nil {
		return fmt.Errorf("batchnorm: %w", err)
	}
	return nil
}

// BatchNormEval normalises x with the running statistics into y (y may be
// x).
func BatchNormEval(d device.Device, y, x, gamma, beta, runMean, runVar device.Ptr, n, c, hw int, eps float64) error {
	if err := checkChannels("batchnorm eval", n, c, hw); err != nil {
		return err
	}
	total := n * c * hw
	if err := launch(d, kBNEval, total, y, x, gamma, beta, runMean, runVar, int32(c), int32(hw), int32(total), f64(eps)); err != nil {
		return fmt.Errorf("batchnorm eval: %w", err)
	}
	return nil
}

// BatchNormGammaGrad sets dgamma[c] = Σ dy·(x − mean)·invStd, from the
// statistics BatchNormTrain saved. ws holds BatchNormWorkspace floats.
func BatchNormGammaGrad(d device.Device, dgamma, x, dy, mean, invStd device.Ptr, n, c, hw int, ws device.Ptr) error {
	if err := checkChannels("batchnorm dgamma", n, c, hw); err != nil {
		return err
	}
	parts := partsFor(n * hw)
	if err := launch(d, kBNDGamma, c*parts, ws, x, dy, mean, int32(n), int32(c), int32(hw), int32(parts)); err != nil {
		return fmt.Errorf("batchnorm dgamma: %w", err)
	}
	p, parts, err := reduce(d, ws, c, parts)
	if err != nil {
		return fmt.Errorf("batchnorm dgamma: %w", err)
	}
	if err := launch(d, kBNDGammaFinal, c, dgamma, p, invStd, int32(c), int32(parts)); err != nil {
		return fmt.Errorf("batchnorm dgamma: %w", err)
	}
	return nil
}

// BatchNormInputGrad sets dx = γ·invStd/M·(M·dy − dβ − x̂·dγ), M = N·HW,
// from dgamma (BatchNormGammaGrad) and dbeta (ChannelSum of dy). dx may be
// x or dy.
func BatchNormInputGrad(d device.Device, dx, x, gamma, dy, dgamma, dbeta, mean, invStd device.Ptr, n, c, hw int) error {
	if err := checkChannels("batchnorm dx", n, c, hw); err != nil {
		return err
	}
	total := n * c * hw
	err := launch(d, kBNDx, total, dx, x, gamma, dy, dgamma, dbeta, mean, invStd, int32(c), int32(hw), int32(total), int32(n*hw))
	if err != nil {
		return fmt.Errorf("batchnorm dx: %w", err)
	}
	return nil
}

// SoftmaxXentWorkspace is the float32 workspace SoftmaxXent needs.
func SoftmaxXentWorkspace(n, k int) int { return reduceWorkspace(1, xentParts(n)) }

// xentParts is the pass-1 threads of SoftmaxXent: one per row up to
// maxParts (a row is K exps and logs in double).
func xentParts(n int) int { return max(1, min(n, maxParts)) }

// SoftmaxXent sets loss (one float32) to the mean over the N rows of
// −Σ target·log softmax(logits), logits and target being N×K, as nn's
// xent op (in double).
func SoftmaxXent(d device.Device, loss, logits, target device.Ptr, n, k int, ws device.Ptr) error {
	if n <= 0 || k <= 0 {
		return fmt.Errorf("softmax cross-entropy: sizes n=%d k=%d must be positive", n, k)
	}
	if err := checkSizes("softmax cross-entropy", n*k); err != nil {
		return err
	}
	parts := xentParts(n)
	if err := launch(d, kXent, parts, ws, logits, target, int32(n), int32(k), int32(parts)); err != nil {
		return fmt.Errorf("softmax cross-entropy: %w", err)
	}
	p, parts, err := reduce(d, ws, 1, parts)
	if err != nil {
		return fmt.Errorf("softmax cross-entropy: %w", err)
	}
	if err := launch(d, kDSumFinal, 1, loss, p, int32(1), int32(parts), int32(n)); err != nil {
		return fmt.Errorf("softmax cross-entropy: %w", err)
	}
	return nil
}

// SoftmaxXentGrad sets dlogits = (softmax(logits) − target)·dloss/N,
// dloss being a device scalar.
func SoftmaxXentGrad(d device.Device, dlogits, logits, target, dloss device.Ptr, n, k int) error {
	if n <= 0 || k <= 0 {
		return fmt.Errorf("softmax cross-entropy gradient: sizes n=%d k=%d must be positive", n, k)
	}
	if err := checkSizes("softmax cross-entropy gradient", n*k); err != nil {
		return err
	}
	if err := launch(d, kXentGrad, n, dlogits, logits, target, dloss, int32(n), int32(k)); err != nil {
		return fmt.Errorf("softmax cross-entropy gradient: %w", err)
	}
	return nil
}

// clipHeader is the float32 elements at the start of the clipping
// workspace: the norm and the coefficient, as float64.
const clipHeader = 4

// ClipWorkspace is the float32 workspace ClipGlobalNorm needs for
// gradients of these sizes.
func ClipWorkspace(sizes []int) int {
	parts := 0
	for _, n := range sizes {
		if n > 0 {
			parts += partsFor(n)
		}
	}
	return clipHeader + reduceWorkspace(1, max(parts, 1))
}

// ClipGlobalNorm scales the gradients in place so that their joint L2 norm
// is at most maxNorm, as optim.ClipGlobalNorm, entirely on the device: a
// one-thread kernel computes the coefficient, which the scaling kernels
// read. ClipNorm reads the norm before clipping back from ws.
func ClipGlobalNorm(d device.Device, grads []device.Ptr, sizes []int, maxNorm float64, ws device.Ptr) error {
	if len(grads) != len(sizes) {
		return fmt.Errorf("clip: %d gradients, %d sizes", len(grads), len(sizes))
	}
	if err := checkSizes("clip", sizes...); err != nil {
		return err
	}
	if err := checkSizes("clip", ClipWorkspace(sizes)); err != nil {
		return err
	}
	part := ws.Float(clipHeader)
	off := 0
	for i, g := range grads {
		n := sizes[i]
		if n == 0 {
			continue
		}
		parts := partsFor(n)
		if err := launch(d, kSumSq, parts, part.Float(2*off), g, int32(n), int32(parts)); err != nil {
			return fmt.Errorf("clip: gradient %d: %w", i, err)
		}
		off += parts
	}
	if off == 0 {
		// No values: norm 0, nothing to scale; still leave the header set.
		if err := Fill(d, part, 0, 2); err != nil {
			return fmt.Errorf("clip: %w", err)
		}
		off = 1
	}
	p, parts, err := reduce(d, part, 1, off)
	if err != nil {
		return fmt.Errorf("clip: %w", err)
	}
	if err := launch(d, kClipCoef, 1, ws, p, int32(parts), f64(maxNorm)); err != nil {
		return fmt.Errorf("clip: %w", err)
	}
	for i, g := range grads {
		if err := launch(d, kClipScale, sizes[i], g, ws, int32(sizes[i])); err != nil {
			return fmt.Errorf("clip: gradient %d: %w", i, err)
		}
	}
	return nil
}

// ClipNorm downloads the global norm the last ClipGlobalNorm on ws
// measured (before clipping).
func ClipNorm(d device.Device, ws device.Ptr) (float64, error) {
	var h [2]float32
	if err := d.Download(h[:], ws); err != nil {
		return 0, fmt.Errorf("clip norm: %w", err)
	}
	return math.Float64frombits(uint64(math.Float32bits(h[0])) | uint64(math.Float32bits(h[1]))<<32), nil
}
