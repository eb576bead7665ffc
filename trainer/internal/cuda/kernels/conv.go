package kernels

import (
	"fmt"

	"github.com/cifarnet-go/cifarnet/trainer/internal/cuda/device"
)

// Conv is a convolution geometry: an N×C×H×W input, F filters of C×K×K
// (PyTorch's F×C×K×K layout), stride and zero padding.
//
// The three conv functions work on groups of images: im2col writes the
// patch matrix of G images side by side ([C·K·K][G·plane], plane =
// OutH·OutW), one GEMM multiplies it with the filters, and swap01 moves
// between the GEMM's [F][G][plane] and the batch's [G][F][plane]. G is
// as large as keeps Workspace within maxConvWorkspace.
type Conv struct{ N, C, H, W, F, K, Stride, Pad int }

// OutH and OutW are the output's height and width.
func (g Conv) OutH() int { return (g.H+2*g.Pad-g.K)/g.Stride + 1 }
func (g Conv) OutW() int { return (g.W+2*g.Pad-g.K)/g.Stride + 1 }

// maxConvWorkspace bounds a conv's workspace (float32 elements, 128 MB)
// unless a single image needs more; tests lower it to force small groups.
var maxConvWorkspace = 32 << 20

func (g Conv) plane() int    { return g.OutH() * g.OutW() }
func (g Conv) colRows() int  { return g.C * g.K * g.K }
func (g Conv) inSize() int   { return g.C * g.H * g.W }
func (g Conv) outSize() int  { return g.F * g.plane() }
func (g Conv) perImage() int { return (g.colRows() + g.F) * g.plane() }

// group is the number of images per GEMM.
func (g Conv) group() int {
	return max(1, min(g.N, maxConvWorkspace/max(1, g.perImage())))
}

// Workspace is the scratch, in float32 elements, that ConvForward,
// ConvFilterGrad and ConvInputGrad need: a group's patch matrix and its
// GEMM output (or dY).
func (g Conv) Workspace() int { return g.group() * g.perImage() }

// direct reports whether an image's patch matrix is the image itself.
func (g Conv) direct() bool { return g.K == 1 && g.Stride == 1 && g.Pad == 0 }

func (g Conv) check() error {
	if g.N <= 0 || g.C <= 0 || g.H <= 0 || g.W <= 0 || g.F <= 0 || g.K <= 0 || g.Stride <= 0 || g.Pad < 0 ||
		g.H+2*g.Pad < g.K || g.W+2*g.Pad < g.K {
		return fmt.Errorf("conv: bad geometry %+v", g)
	}
	return checkSizes(fmt.Sprintf("conv %+v", g), g.N*g.inSize(), g.N*g.outSize(), g.Workspace(), g.F*g.colRows())
}

// im2col writes the patch matrix of the k images of the batch from image i
// into cols (leading dimension k·plane).
func (g Conv) im2col(d device.Device, cols, x device.Ptr, i, k int) error {
	return launch(d, kIm2col, g.colRows()*k*g.plane(), cols, x.Float(i*g.inSize()), int32(k), int32(g.C),
		int32(g.H), int32(g.W), int32(g.K), int32(g.Stride), int32(g.Pad), int32(g.OutH()), int32(g.OutW()))
}

// patches returns the patch matrix of images i..i+k, built in cols unless
// it is the image itself.
func (g Conv) patches(d device.Device, cols, x device.Ptr, i, k int) (device.Ptr, error) {
	if g.direct() && k == 1 {
		return x.Float(i * g.inSize()), nil
	}
	return cols, g.im2col(d, cols, x, i, k)
}

// groupDY returns dY of images i..i+k as [F][k·plane], gathered into buf
// unless k is 1.
func (g Conv) groupDY(d device.Device, buf, dy device.Ptr, i, k int) (device.Ptr, error) {
	src := dy.Float(i * g.outSize())
	if k == 1 {
		return src, nil
	}
	return buf, launch(d, kSwap01, k*g.outSize(), buf, src, device.Ptr(0), int32(k), int32(g.F), int32(g.plane()))
}

// ConvForward sets y (N×F×OutH×OutW) to the convolution of x with w plus
// bias (length F; 0 for none). ws holds g.Workspace() floats.
func ConvForward(d device.Device, g Conv, y, x, w, bias, ws device.Ptr) error {
	if err := g.check(); err != nil {
		return err
	}
	nb, plane, rows := g.group(), g.plane(), g.colRows()
	tmp := ws.Float(rows * nb * plane)
	for i := 0; i < g.N; i += nb {
		k := min(nb, g.N-i)
		ld := k * plane
		cols, err := g.patches(d, ws, x, i, k)
		if err != nil {
			return fmt.Errorf("conv forward: %w", err)
		}
		yi := y.Float(i * g.outSize())
		if k == 1 {
			// [F][1][plane] is the image's own layout.
			if err := d.Gemm(false, false, ld, g.F, rows, 1, cols, ld, w, rows, 0, yi, ld); err != nil {
				return fmt.Errorf("conv forward: gemm: %w", err)
			}
			if bias != 0 {
				if err := BiasAdd(d, yi, yi, bias, 1, g.F, plane); err != nil {
					return fmt.Errorf("conv forward: %w", err)
				}
			}
			continue
		}
		if err := d.Gemm(false, false, ld, g.F, rows, 1, cols, ld, w, rows, 0, tmp, ld); err != nil {
			return fmt.Errorf("conv forward: gemm: %w", err)
		}
		if err := launch(d, kSwap01, k*g.outSize(), yi, tmp, bias, int32(g.F), int32(k), int32(plane)); err != nil {
			return fmt.Errorf("conv forward: %w", err)
		}
	}
	return nil
}

// ConvFilterGrad sets dw (F×C×K×K, overwritten) to the filter gradient
// Σ over the batch of dY·colsᵀ. ws holds g.Workspace() floats.
func ConvFilterGrad(d device.Device, g Conv, dw, x, dy, ws device.Ptr) error {
	if err := g.check(); err != nil {
		return err
	}
	nb, plane, rows := g.group(), g.plane(), g.colRows()
	dyBuf := ws.Float(rows * nb * plane)
	for i := 0; i < g.N; i += nb {
		k := min(nb, g.N-i)
		ld := k * plane
		cols, err := g.patches(d, ws, x, i, k)
		if err != nil {
			return fmt.Errorf("conv filter gradient: %w", err)
		}
		dyg, err := g.groupDY(d, dyBuf, dy, i, k)
		if err != nil {
			return fmt.Errorf("conv filter gradient: %w", err)
		}
		beta := float32(1)
		if i == 0 {
			beta = 0
		}
		// Column-major: dWᵀ (rows×F) = colsᵀ-stored-as-(ld×rows)ᵀ · dY (ld×F).
		if err := d.Gemm(true, false, rows, g.F, ld, 1, cols, ld, dyg, ld, beta, dw, rows); err != nil {
			return fmt.Errorf("conv filter gradient: gemm: %w", err)
		}
	}
	return nil
}

// ConvInputGrad sets dx (N×C×H×W, overwritten) to the input gradient
// col2im(Wᵀ·dY), col2im gathering into each input value the patch-matrix
// entries that read it. ws holds g.Workspace() floats.
func ConvInputGrad(d device.Device, g Conv, dx, w, dy, ws device.Ptr) error {
	if err := g.check(); err != nil {
		return err
	}
	nb, plane, rows := g.group(), g.plane(), g.colRows()
	dyBuf := ws.Float(rows * nb * plane)
	for i := 0; i < g.N; i += nb {
		k := min(nb, g.N-i)
		ld := k * plane
		dyg, err := g.groupDY(d, dyBuf, dy, i, k)
		if err != nil {
			return fmt.Errorf("conv input gradient: %w", err)
		}
		dxi := dx.Float(i * g.inSize())
		dcols := ws
		if g.direct() && k == 1 {
			dcols = dxi // the patch matrix is the image
		}
		// Column-major: dcols (ld×rows) = dY (ld×F) · W (F×rows, stored rows×F).
		if err := d.Gemm(false, true, ld, rows, g.F, 1, dyg, ld, w, rows, 0, dcols, ld); err != nil {
			return fmt.Errorf("conv input gradient: gemm: %w", err)
		}
		if dcols == dxi {
			continue
		}
		err = launch(d, kCol2im, k*g.inSize(), dxi, dcols, int32(k), int32(g.C), int32(g.H), int32(g.W),
			int32(g.K), int32(g.Stride), int32(g.Pad), int32(g.OutH()), int32(g.OutW()))
		if err != nil {
			return fmt.Errorf("conv input gradient: %w", err)
		}
	}
	return nil
}

// LinearForward sets y (N×F) = x (N×K) · wᵀ, w being F×K.
func LinearForward(d device.Device, y, x, w device.Ptr, n, k, f int) error {
	if err := checkLinear("linear", n, k, f); err != nil {
		return err
	}
	// Column-major: yᵀ (f×n) = W (stored k×f, transposed) · xᵀ (k×n).
	if err := d.Gemm(true, false, f, n, k, 1, w, k, x, k, 0, y, f); err != nil {
		return fmt.Errorf("linear: gemm: %w", err)
	}
	return nil
}

// LinearInputGrad sets dx (N×K) = dy (N×F) · w.
func LinearInputGrad(d device.Device, dx, dy, w device.Ptr, n, k, f int) error {
	if err := checkLinear("linear input gradient", n, k, f); err != nil {
		return err
	}
	// Column-major: dxᵀ (k×n) = wᵀ (k×f) · dyᵀ (f×n).
	if err := d.Gemm(false, false, k, n, f, 1, w, k, dy, f, 0, dx, k); err != nil {
		return fmt.Errorf("linear input gradient: gemm: %w", err)
	}
	return nil
}

// LinearWeightGrad sets dw (F×K) = dyᵀ (F×N) · x (N×K).
func LinearWeightGrad(d device.Device, dw, dy, x device.Ptr, n, k, f int) error {
	if err := checkLinear("linear weight gradient", n, k, f); err != nil {
		return err
	}
	// Column-major: dwᵀ (k×f) = xᵀ (k×n) · dy (n×f, stored f×n).
	if err := d.Gemm(false, true, k, f, n, 1, x, k, dy, f, 0, dw, k); err != nil {
		return fmt.Errorf("linear weight gradient: gemm: %w", err)
	}
	return nil
}

func checkLinear(op string, n, k, f int) error {
	if n <= 0 || k <= 0 || f <= 0 {
		return fmt.Errorf("%s: sizes n=%d k=%d f=%d must be positive", op, n, k, f)
	}
	return checkSizes(op, n*k, n*f, f*k)
}
