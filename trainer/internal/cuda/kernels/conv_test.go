package kernels

import (
	"fmt"
	"testing"
)

// Plain float64 references of the convolution and its gradients.
func refConv(g Conv, x, w, bias []float32) []float64 {
	oh, ow := g.OutH(), g.OutW()
	y := make([]float64, g.N*g.F*oh*ow)
	g.taps(func(n, f, c, oy, ox, ky, kx, xi, wi int) {
		y[((n*g.F+f)*oh+oy)*ow+ox] += float64(x[xi]) * float64(w[wi])
	})
	if bias != nil {
		for i := range y {
			y[i] += float64(bias[(i/(oh*ow))%g.F])
		}
	}
	return y
}

func refConvFilterGrad(g Conv, x, dy []float32) []float64 {
	oh, ow := g.OutH(), g.OutW()
	dw := make([]float64, g.F*g.colRows())
	g.taps(func(n, f, c, oy, ox, ky, kx, xi, wi int) {
		dw[wi] += float64(x[xi]) * float64(dy[((n*g.F+f)*oh+oy)*ow+ox])
	})
	return dw
}

func refConvInputGrad(g Conv, w, dy []float32) []float64 {
	oh, ow := g.OutH(), g.OutW()
	dx := make([]float64, g.N*g.inSize())
	g.taps(func(n, f, c, oy, ox, ky, kx, xi, wi int) {
		dx[xi] += float64(w[wi]) * float64(dy[((n*g.F+f)*oh+oy)*ow+ox])
	})
	return dx
}

// taps calls fn for every filter tap that meets an input value (not the
// padding), with the indices of that value and weight.
func (g Conv) taps(fn func(n, f, c, oy, ox, ky, kx, xi, wi int)) {
	for n := range g.N {
		for f := range g.F {
			for c := range g.C {
				for oy := range g.OutH() {
					for ox := range g.OutW() {
						for ky := range g.K {
							for kx := range g.K {
								iy, ix := oy*g.Stride+ky-g.Pad, ox*g.Stride+kx-g.Pad
								if iy < 0 || iy >= g.H || ix < 0 || ix >= g.W {
									continue
								}
								fn(n, f, c, oy, ox, ky, kx, ((n*g.C+c)*g.H+iy)*g.W+ix, ((f*g.C+c)*g.K+ky)*g.K+kx)
							}
						}
					}
				}
			}
		}
	}
}

var convCases = []Conv{
	{N: 3, C: 2, H: 5, W: 7, F: 3, K: 3, Stride: 1, Pad: 1},
	{N: 5, C: 3, H: 8, W: 6, F: 4, K: 3, Stride: 2, Pad: 1},
	{N: 4, C: 3, H: 7, W: 9, F: 2, K: 3, Stride: 2, Pad: 0},
	{N: 3, C: 2, H: 6, W: 5, F: 3, K: 3, Stride: 1, Pad: 0},
	{N: 5, C: 4, H: 3, W: 5, F: 3, K: 1, Stride: 1, Pad: 0}, // direct: the patch matrix is the image
	{N: 3, C: 3, H: 7, W: 6, F: 2, K: 1, Stride: 2, Pad: 0},
	{N: 2, C: 2, H: 4, W: 4, F: 3, K: 5, Stride: 3, Pad: 2},
	{N: 7, C: 1, H: 1, W: 1, F: 2, K: 1, Stride: 1, Pad: 0},
}

// groupSizes lists workspace limits that give one group of the whole
// batch, single images, and groups of two with a remainder.
func groupLimits(g Conv) []int {
	return []int{32 << 20, 1, 2 * g.perImage()}
}

func TestConv(t *testing.T) {
	e := newEnv(t)
	defer func(v int) { maxConvWorkspace = v }(maxConvWorkspace)
	for _, g := range convCases {
		x := e.randn(g.N*g.inSize(), 1, 0)
		w := e.randn(g.F*g.colRows(), 0.5, 0)
		bias := e.randn(g.F, 1, 0)
		dy := e.randn(g.N*g.outSize(), 1, 0)
		px, pw, pb, pdy := e.up(x), e.up(w), e.up(bias), e.up(dy)
		wantY, wantY0 := refConv(g, x, w, bias), refConv(g, x, w, nil)
		wantDW, wantDX := refConvFilterGrad(g, x, dy), refConvInputGrad(g, w, dy)
		var first [4][]float32
		for li, limit := range groupLimits(g) {
			maxConvWorkspace = limit
			name := fmt.Sprintf("%+v group %d", g, g.group())
			ws := e.nan(g.Workspace())
			y, y0 := e.nan(g.N*g.outSize()), e.nan(g.N*g.outSize())
			dw, dx := e.nan(len(w)), e.nan(len(x))
			e.ok(ConvForward(e.d, g, y, px, pw, pb, ws))
			e.ok(ConvForward(e.d, g, y0, px, pw, 0, ws))
			e.ok(ConvFilterGrad(e.d, g, dw, px, pdy, ws))
			e.ok(ConvInputGrad(e.d, g, dx, pw, pdy, ws))
			got := [4][]float32{e.down(y, len(wantY)), e.down(y0, len(wantY)), e.down(dw, len(w)), e.down(dx, len(x))}
			nearScaled(t, name+" y", got[0], wantY, 1e-4)
			nearScaled(t, name+" y without bias", got[1], wantY0, 1e-4)
			nearScaled(t, name+" dw", got[2], wantDW, 1e-4)
			nearScaled(t, name+" dx", got[3], wantDX, 1e-4)
			// The grouping must not change the results beyond rounding.
			if li == 0 {
				first = got
				continue
			}
			for i, what := range []string{"y", "y without bias", "dw", "dx"} {
				nearScaled(t, name+" "+what+" against one group", got[i], f64s(first[i]), 1e-5)
			}
		}
	}
}

func TestConvGroups(t *testing.T) {
	defer func(v int) { maxConvWorkspace = v }(maxConvWorkspace)
	g := Conv{N: 512, C: 64, H: 32, W: 32, F: 64, K: 3, Stride: 1, Pad: 1}
	if g.group() == g.N || g.Workspace() > maxConvWorkspace {
		t.Errorf("%+v: group %d, workspace %d: want several groups within %d", g, g.group(), g.Workspace(), maxConvWorkspace)
	}
	maxConvWorkspace = 1
	if g.group() != 1 {
		t.Errorf("group %d with no room, want 1", g.group())
	}
	maxConvWorkspace = 5*g.perImage() + 3
	if g.group() != 5 || g.Workspace() != 5*g.perImage() {
		t.Errorf("group %d, workspace %d, want 5 and %d", g.group(), g.Workspace(), 5*g.perImage())
	}
}

func TestConvRejectsBadGeometry(t *testing.T) {
	e := newEnv(t)
	for _, g := range []Conv{
		{N: 1, C: 1, H: 2, W: 2, F: 1, K: 3, Stride: 1, Pad: 0},
		{N: 1, C: 1, H: 4, W: 4, F: 1, K: 3, Stride: 0, Pad: 0},
		{N: 0, C: 1, H: 4, W: 4, F: 1, K: 3, Stride: 1, Pad: 0},
		{N: 1 << 20, C: 64, H: 64, W: 64, F: 1, K: 1, Stride: 1, Pad: 0},
	} {
		if err := ConvForward(e.d, g, 0, 0, 0, 0, 0); err == nil {
			t.Errorf("%+v: no error", g)
		}
	}
}

func TestLinear(t *testing.T) {
	e := newEnv(t)
	for _, s := range []struct{ n, k, f int }{{3, 5, 7}, {1, 1, 1}, {9, 17, 2}} {
		x, w, dy := e.randn(s.n*s.k, 1, 0), e.randn(s.f*s.k, 1, 0), e.randn(s.n*s.f, 1, 0)
		wantY, wantDX, wantDW := make([]float64, s.n*s.f), make([]float64, s.n*s.k), make([]float64, s.f*s.k)
		for i := range s.n {
			for j := range s.f {
				for l := range s.k {
					wantY[i*s.f+j] += float64(x[i*s.k+l]) * float64(w[j*s.k+l])
					wantDX[i*s.k+l] += float64(dy[i*s.f+j]) * float64(w[j*s.k+l])
					wantDW[j*s.k+l] += float64(dy[i*s.f+j]) * float64(x[i*s.k+l])
				}
			}
		}
		px, pw, pdy := e.up(x), e.up(w), e.up(dy)
		y, dx, dw := e.nan(s.n*s.f), e.nan(s.n*s.k), e.nan(s.f*s.k)
		e.ok(LinearForward(e.d, y, px, pw, s.n, s.k, s.f))
		e.ok(LinearInputGrad(e.d, dx, pdy, pw, s.n, s.k, s.f))
		e.ok(LinearWeightGrad(e.d, dw, pdy, px, s.n, s.k, s.f))
		name := fmt.Sprintf("%+v", s)
		nearScaled(t, name+" y", e.down(y, len(wantY)), wantY, 1e-4)
		nearScaled(t, name+" dx", e.down(dx, len(wantDX)), wantDX, 1e-4)
		nearScaled(t, name+" dw", e.down(dw, len(wantDW)), wantDW, 1e-4)
	}
}
