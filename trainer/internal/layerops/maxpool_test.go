package layerops

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

type poolCase struct{ n, c, h, w, k, stride, pad int }

func (c poolCase) outSize() (int, int) {
	return (c.h+2*c.pad-c.k)/c.stride + 1, (c.w+2*c.pad-c.k)/c.stride + 1
}

// poolGrads runs y = maxpool(−x) and the gradient of Σ y⊙r with respect to
// x, with either gorgonia's MaxPool2D or ours.
func poolGrads(t *testing.T, c poolCase, stock bool, x, r []float32) (y, dx []float32) {
	t.Helper()
	g := G.NewGraph()
	xin := param(g, "x", x, c.n, c.c, c.h, c.w)
	neg := G.Must(G.Neg(xin))
	var yn *G.Node
	var err error
	if stock {
		yn, err = G.MaxPool2D(neg, tensor.Shape{c.k, c.k}, []int{c.pad, c.pad}, []int{c.stride, c.stride})
	} else {
		yn, err = MaxPool2D(neg, c.k, c.stride, c.pad)
	}
	if err != nil {
		t.Fatal(err)
	}
	grads, err := G.Grad(weightedSum(t, yn, r), xin)
	if err != nil {
		t.Fatal(err)
	}
	defer run(t, g).Close()
	vs := values(t, yn, grads[0])
	return vs[0], vs[1]
}

func TestMaxPool2DMatchesGorgonia(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, c := range []poolCase{
		{1, 3, 8, 8, 2, 2, 0},   // keras-cnn's pool, batch 1
		{4, 3, 6, 10, 2, 2, 0},  // windows tiling a non-square plane, several images
		{5, 2, 7, 9, 2, 2, 0},   // odd sizes drop the last row and column
		{2, 3, 9, 8, 3, 2, 1},   // overlapping windows with padding
		{5, 4, 6, 5, 3, 1, 1},   // stride 1
		{2, 2, 10, 10, 3, 3, 0}, // window equal to stride
	} {
		t.Run(fmt.Sprintf("n%d_c%d_%dx%d_k%d_s%d_p%d", c.n, c.c, c.h, c.w, c.k, c.stride, c.pad), func(t *testing.T) {
			oh, ow := c.outSize()
			x, r := randn(rng, c.n*c.c*c.h*c.w), randn(rng, c.n*c.c*oh*ow)
			y0, dx0 := poolGrads(t, c, true, x, r)
			y, dx := poolGrads(t, c, false, x, r)
			assertClose(t, "output", y, y0, 0)
			assertClose(t, "input gradient", dx, dx0, 1e-6)
		})
	}
}

// TestMaxPool2DFiniteDifferences checks the gradient against central
// differences.
func TestMaxPool2DFiniteDifferences(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	c := poolCase{2, 2, 5, 6, 3, 2, 1}
	oh, ow := c.outSize()
	// Distinct inputs 0.01 apart, so that no perturbation by eps changes
	// which value wins a window.
	x, r := make([]float32, c.n*c.c*c.h*c.w), randn(rng, c.n*c.c*oh*ow)
	for i, p := range rng.Perm(len(x)) {
		x[i] = float32(p-len(x)/2) * 0.01
	}
	g := G.NewGraph()
	xin := param(g, "x", x, c.n, c.c, c.h, c.w)
	y, err := MaxPool2D(xin, c.k, c.stride, c.pad)
	if err != nil {
		t.Fatal(err)
	}
	loss := weightedSum(t, y, r)
	grads, err := G.Grad(loss, xin)
	if err != nil {
		t.Fatal(err)
	}
	vm := run(t, g)
	defer vm.Close()
	analytic := values(t, grads[0])[0]
	const eps = 1e-3
	numeric := make([]float32, len(x))
	for i := range x {
		v := x[i]
		var l [2]float64
		for j, d := range []float32{eps, -eps} {
			x[i] = v + d
			vm.Reset()
			if err := vm.RunAll(); err != nil {
				t.Fatal(err)
			}
			l[j] = float64(loss.Value().Data().(float32))
		}
		x[i] = v
		numeric[i] = float32((l[0] - l[1]) / (2 * eps))
	}
	assertClose(t, "dx", analytic, numeric, 1e-2)
}

func TestMaxPool2DRejectsBadArguments(t *testing.T) {
	g := G.NewGraph()
	x := G.NewTensor(g, tensor.Float32, 4, G.WithShape(2, 3, 5, 5), G.WithName("x"))
	vec := G.NewTensor(g, tensor.Float32, 2, G.WithShape(2, 75), G.WithName("v"))
	for _, tc := range []struct {
		name      string
		x         *G.Node
		k, s, pad int
		want      string
	}{
		{"rank", vec, 2, 2, 0, "4 dimensions"},
		{"kernel", x, 0, 2, 0, "must be positive"},
		{"padding", x, 2, 2, 2, "padding"},
		{"too big", x, 9, 1, 1, "does not fit"},
	} {
		if _, err := MaxPool2D(tc.x, tc.k, tc.s, tc.pad); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one mentioning %q", tc.name, err, tc.want)
		}
	}
}
