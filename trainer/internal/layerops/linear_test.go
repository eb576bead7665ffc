package layerops

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
)

// linearGrads runs y = (−x)·wᵀ and the gradients of Σ y⊙r with gorgonia's
// Mul and Transpose or with Linear, run twice so that reused buffers
// (outputs, packed operands) must not leak from one run into the next.
func linearGrads(t *testing.T, n, k, f int, stock bool, x, w, r []float32) (y, dx, dw []float32) {
	t.Helper()
	g := G.NewGraph()
	xin := param(g, "x", x, n, k)
	wn := param(g, "w", w, f, k)
	neg := G.Must(G.Neg(xin))
	var yn *G.Node
	var err error
	if stock {
		yn, err = G.Mul(neg, G.Must(G.Transpose(wn)))
	} else {
		yn, err = Linear(neg, wn)
	}
	if err != nil {
		t.Fatal(err)
	}
	grads, err := G.Grad(weightedSum(t, yn, r), xin, wn)
	if err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	for range 2 {
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		vm.Reset()
	}
	vs := values(t, yn, grads[0], grads[1])
	return vs[0], vs[1], vs[2]
}

func TestLinearMatchesGorgonia(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	// keras-cnn's two layers, odd sizes around the panel widths, and a
	// batch of one (one worker idle).
	for _, c := range [][3]int{{128, 2048, 128}, {128, 128, 10}, {7, 53, 49}, {1, 300, 5}, {33, 1, 97}} {
		n, k, f := c[0], c[1], c[2]
		t.Run(fmt.Sprintf("n%d_k%d_f%d", n, k, f), func(t *testing.T) {
			x, w, r := randn(rng, n*k), randn(rng, f*k), randn(rng, n*f)
			y0, dx0, dw0 := linearGrads(t, n, k, f, true, x, w, r)
			y, dx, dw := linearGrads(t, n, k, f, false, x, w, r)
			assertClose(t, "output", y, y0, 1e-4)
			assertClose(t, "input gradient", dx, dx0, 1e-4)
			assertClose(t, "weight gradient", dw, dw0, 1e-4)
		})
	}
}

func TestLinearRejectsBadShapes(t *testing.T) {
	for _, c := range []struct {
		x, w []int
		want string
	}{
		{[]int{4, 3}, []int{5, 2}, "features"},
		{[]int{4, 3, 1}, []int{5, 3}, "2 dimensions"},
		{[]int{4, 3}, []int{15}, "2 dimensions"},
	} {
		g := G.NewGraph()
		x := param(g, "x", make([]float32, prod(c.x)), c.x...)
		w := param(g, "w", make([]float32, prod(c.w)), c.w...)
		if _, err := Linear(x, w); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("x %v, w %v: error %v, want one mentioning %q", c.x, c.w, err, c.want)
		}
	}
}

func prod(s []int) int {
	p := 1
	for _, v := range s {
		p *= v
	}
	return p
}
