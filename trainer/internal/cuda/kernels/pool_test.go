package kernels

import (
	"fmt"
	"math"
	"testing"
)

// refPool is layerops' poolPlane over every plane: the first maximum wins.
func refPool(g Pool, x []float32) ([]float32, []int32) {
	oh, ow := g.OutH(), g.OutW()
	y, idx := make([]float32, g.N*g.C*oh*ow), make([]int32, g.N*g.C*oh*ow)
	for p := range g.N * g.C {
		src := x[p*g.H*g.W:]
		for oy := range oh {
			y0 := oy*g.Stride - g.Pad
			for ox := range ow {
				x0 := ox*g.Stride - g.Pad
				best, at := float32(math.Inf(-1)), int32(-1)
				for iy := max(y0, 0); iy < min(y0+g.K, g.H); iy++ {
					for ix := max(x0, 0); ix < min(x0+g.K, g.W); ix++ {
						if v := src[iy*g.W+ix]; v > best || at < 0 {
							best, at = v, int32(iy*g.W+ix)
						}
					}
				}
				o := (p*oh+oy)*ow + ox
				y[o], idx[o] = best, at
			}
		}
	}
	return y, idx
}

// refPoolGrad scatters dy in output order, as layerops' maxPoolGradOp.
func refPoolGrad(g Pool, dy []float32, idx []int32) []float32 {
	plane := g.OutH() * g.OutW()
	dx := make([]float32, g.N*g.C*g.H*g.W)
	for j, v := range dy {
		p := j / plane
		dx[p*g.H*g.W+int(idx[j])] += v
	}
	return dx
}

func TestMaxPool(t *testing.T) {
	e := newEnv(t)
	for _, g := range []Pool{
		{N: 2, C: 3, H: 8, W: 6, K: 2, Stride: 2},
		{N: 2, C: 3, H: 7, W: 5, K: 2, Stride: 2},
		{N: 3, C: 2, H: 7, W: 9, K: 3, Stride: 2, Pad: 1},
		{N: 2, C: 2, H: 6, W: 5, K: 3, Stride: 1, Pad: 1},
		{N: 1, C: 3, H: 5, W: 5, K: 2, Stride: 1},
		{N: 2, C: 1, H: 4, W: 4, K: 4, Stride: 4, Pad: 2},
	} {
		n := g.N * g.C * g.H * g.W
		// Few distinct values, so windows hold ties; overlapping windows
		// send several gradients to one input.
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(e.r.IntN(4)) - 2
		}
		out := g.N * g.C * g.OutH() * g.OutW()
		dy := e.randn(out, 1, 0)
		wantY, wantIdx := refPool(g, x)
		px, pdy := e.up(x), e.up(dy)
		y, idx, dx := e.nan(out), e.nan(out), e.nan(n)
		e.ok(MaxPool(e.d, g, y, idx, px))
		e.ok(MaxPoolGrad(e.d, g, dx, pdy, idx))
		name := fmt.Sprintf("%+v", g)
		same(t, name+" y", e.down(y, out), wantY)
		for i, v := range e.downInt(idx, out) {
			if v != wantIdx[i] {
				t.Fatalf("%s: idx[%d] = %d, want %d", name, i, v, wantIdx[i])
			}
		}
		same(t, name+" dx", e.down(dx, n), refPoolGrad(g, dy, wantIdx))
	}
	if err := MaxPool(e.d, Pool{N: 1, C: 1, H: 4, W: 4, K: 2, Stride: 2, Pad: 2}, 0, 0, 0); err == nil {
		t.Error("padding over half the window: no error")
	}
}

func TestGlobalAvgPool(t *testing.T) {
	e := newEnv(t)
	for _, s := range []struct{ n, c, hw int }{{3, 5, 16}, {2, 3, 49}, {4, 2, 1}} {
		rows := s.n * s.c
		x, dy := e.randn(rows*s.hw, 1, 0), e.randn(rows, 1, 0)
		wantY, wantDX := make([]float32, rows), make([]float32, rows*s.hw)
		for r := range rows {
			var sum float32
			for _, v := range x[r*s.hw : (r+1)*s.hw] {
				sum += v
			}
			wantY[r] = sum / float32(s.hw)
			for j := range s.hw {
				wantDX[r*s.hw+j] = dy[r] / float32(s.hw)
			}
		}
		y, dx := e.nan(rows), e.nan(rows*s.hw)
		e.ok(GlobalAvgPool(e.d, y, e.up(x), s.n, s.c, s.hw))
		e.ok(GlobalAvgPoolGrad(e.d, dx, e.up(dy), s.n, s.c, s.hw))
		same(t, fmt.Sprintf("%+v gap", s), e.down(y, rows), wantY)
		same(t, fmt.Sprintf("%+v gap'", s), e.down(dx, rows*s.hw), wantDX)
	}
}
