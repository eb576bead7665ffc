package layerops

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

type convCase struct{ n, c, h, w, f, k, stride, pad int }

func (c convCase) String() string {
	return fmt.Sprintf("n%d_c%d_%dx%d_f%d_k%d_s%d_p%d", c.n, c.c, c.h, c.w, c.f, c.k, c.stride, c.pad)
}

var convCases = []convCase{
	{1, 3, 7, 9, 4, 3, 1, 1},     // batch 1, odd sizes, 'same' padding
	{5, 2, 8, 8, 3, 3, 2, 1},     // batch 5, stride 2
	{5, 4, 9, 7, 6, 1, 1, 0},     // 1×1: the image is its own im2col matrix
	{2, 3, 6, 7, 5, 1, 2, 0},     // strided 1×1 projection
	{3, 3, 5, 5, 8, 3, 1, 0},     // no padding
	{2, 5, 11, 10, 7, 3, 2, 0},   // odd sizes, stride 2, no padding
	{1, 2, 6, 6, 33, 5, 1, 2},    // 5×5, filters not a multiple of the panel height
	{2, 32, 16, 16, 64, 3, 1, 1}, // a keras-cnn layer
	{2, 3, 18, 17, 6, 3, 1, 1},   // planes of 306 positions: GEMMs deeper than one kc block
	{1, 2, 40, 36, 5, 3, 2, 1},   // the same, strided
	{5, 128, 7, 7, 128, 3, 1, 1}, // Winograd (forward and input gradient), odd sizes, several images per GEMM
	{3, 130, 9, 8, 129, 3, 1, 0}, // Winograd forward without padding; input gradient padded by 2
}

// Some cases must take the Winograd path, forward and backward.
func TestConvCasesCoverWinograd(t *testing.T) {
	defer func(saved bool) { winogradOn = saved }(winogradOn)
	winogradOn = true
	var fwd, back int
	for _, c := range convCases {
		g := newConvGeom(c.n, c.c, c.h, c.w, c.f, c.k, c.k, c.stride, c.pad)
		if g.winograd() {
			fwd++
		}
		if fg := newConvInputGradOp("", g).flipped; fg != nil && fg.winograd() {
			back++
		}
	}
	if fwd < 2 || back < 2 {
		t.Fatalf("%d cases take Winograd forward and %d backward, want at least 2 each", fwd, back)
	}
}

// convGrads runs y = conv(−x, w [+ b]) and the gradients of Σ y⊙r with
// either gorgonia's Conv2d or ours. The negation makes x an inner node, so
// that our op computes its gradient.
func convGrads(t *testing.T, c convCase, stock bool, x, w, b, r []float32) (y, dx, dw, db []float32) {
	t.Helper()
	g := G.NewGraph()
	xin := param(g, "x", x, c.n, c.c, c.h, c.w)
	wn := param(g, "w", w, c.f, c.c, c.k, c.k)
	neg := G.Must(G.Neg(xin))
	var yn *G.Node
	var err error
	wrt := G.Nodes{xin, wn}
	switch {
	case stock:
		yn, err = G.Conv2d(neg, wn, tensor.Shape{c.k, c.k}, []int{c.pad, c.pad}, []int{c.stride, c.stride}, nil)
	case b != nil:
		bn := param(g, "b", b, c.f)
		wrt = append(wrt, bn)
		yn, err = Conv2D(neg, wn, bn, c.stride, c.pad)
	default:
		yn, err = Conv2D(neg, wn, nil, c.stride, c.pad)
	}
	if err != nil {
		t.Fatal(err)
	}
	grads, err := G.Grad(weightedSum(t, yn, r), wrt...)
	if err != nil {
		t.Fatal(err)
	}
	defer run(t, g).Close()
	vs := values(t, append(G.Nodes{yn}, grads...)...)
	if len(vs) == 4 {
		db = vs[3]
	}
	return vs[0], vs[1], vs[2], db
}

// TestConv2DMatchesGorgonia runs every case one image per GEMM and with
// the planes of several images side by side (the test cases' planes are
// small, so the default threshold groups most of them, with a short last
// group when the batch does not divide), with Winograd where it applies
// and without.
func TestConv2DMatchesGorgonia(t *testing.T) {
	defer func(old int, on bool) { groupCols, winogradOn = old, on }(groupCols, winogradOn)
	colsCases := []int{1, groupCols, 20}
	for _, wino := range []bool{false, true} {
		for _, cols := range colsCases {
			t.Run(fmt.Sprintf("winograd=%v/groupCols=%d", wino, cols), func(t *testing.T) {
				groupCols, winogradOn = cols, wino
				testConv2DMatchesGorgonia(t)
			})
		}
	}
}

func testConv2DMatchesGorgonia(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range convCases {
		t.Run(c.String(), func(t *testing.T) {
			oh, ow := (c.h+2*c.pad-c.k)/c.stride+1, (c.w+2*c.pad-c.k)/c.stride+1
			x, w := randn(rng, c.n*c.c*c.h*c.w), randn(rng, c.f*c.c*c.k*c.k)
			r := randn(rng, c.n*c.f*oh*ow)
			y0, dx0, dw0, _ := convGrads(t, c, true, x, w, nil, r)
			y, dx, dw, _ := convGrads(t, c, false, x, w, nil, r)
			assertClose(t, "output", y, y0, 1e-4)
			assertClose(t, "input gradient", dx, dx0, 1e-4)
			assertClose(t, "filter gradient", dw, dw0, 1e-4)
		})
	}
}

func TestConv2DBias(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	c := convCase{3, 2, 6, 5, 5, 3, 2, 1}
	oh, ow := (c.h+2*c.pad-c.k)/c.stride+1, (c.w+2*c.pad-c.k)/c.stride+1
	x, w, b := randn(rng, c.n*c.c*c.h*c.w), randn(rng, c.f*c.c*c.k*c.k), randn(rng, c.f)
	r := randn(rng, c.n*c.f*oh*ow)
	y0, dx0, dw0, _ := convGrads(t, c, false, x, w, nil, r)
	y, dx, dw, db := convGrads(t, c, false, x, w, b, r)
	// The bias shifts each output channel and sums the output gradient.
	wantY := append([]float32(nil), y0...)
	wantDB := make([]float32, c.f)
	for i := range wantY {
		f := i / (oh * ow) % c.f
		wantY[i] += b[f]
		wantDB[f] += r[i]
	}
	assertClose(t, "output", y, wantY, 1e-5)
	assertClose(t, "bias gradient", db, wantDB, 1e-5)
	assertClose(t, "input gradient", dx, dx0, 0)
	assertClose(t, "filter gradient", dw, dw0, 0)
}

// TestConv2DFiniteDifferences checks the analytic gradients against
// central differences of the loss. The loss is linear in each of x, w and
// b separately, so the differences are exact up to rounding.
func TestConv2DFiniteDifferences(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	c := convCase{2, 2, 5, 4, 3, 3, 2, 1}
	oh, ow := (c.h+2*c.pad-c.k)/c.stride+1, (c.w+2*c.pad-c.k)/c.stride+1
	x, w, b := randn(rng, c.n*c.c*c.h*c.w), randn(rng, c.f*c.c*c.k*c.k), randn(rng, c.f)
	r := randn(rng, c.n*c.f*oh*ow)

	g := G.NewGraph()
	xin, wn, bn := param(g, "x", x, c.n, c.c, c.h, c.w), param(g, "w", w, c.f, c.c, c.k, c.k), param(g, "b", b, c.f)
	y, err := Conv2D(G.Must(G.Neg(xin)), wn, bn, c.stride, c.pad)
	if err != nil {
		t.Fatal(err)
	}
	loss := weightedSum(t, y, r)
	grads, err := G.Grad(loss, xin, wn, bn)
	if err != nil {
		t.Fatal(err)
	}
	vm := run(t, g)
	defer vm.Close()
	analytic := values(t, grads...)
	lossAt := func() float64 {
		vm.Reset()
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		return float64(loss.Value().Data().(float32))
	}
	const eps = 0.25
	for pi, p := range [][]float32{x, w, b} {
		numeric := make([]float32, len(p))
		for i := range p {
			v := p[i]
			p[i] = v + eps
			up := lossAt()
			p[i] = v - eps
			down := lossAt()
			p[i] = v
			numeric[i] = float32((up - down) / (2 * eps))
		}
		assertClose(t, []string{"dx", "dw", "db"}[pi], analytic[pi], numeric, 1e-3)
	}
}

func TestConv2DLeafInputGetsNoGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	g := G.NewGraph()
	x := param(g, "x", randn(rng, 2*3*5*5), 2, 3, 5, 5)
	w := param(g, "w", randn(rng, 4*3*3*3), 4, 3, 3, 3)
	y, err := Conv2D(x, w, nil, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	loss := weightedSum(t, y, randn(rng, 2*4*5*5))
	if _, err := G.Grad(loss, w); err != nil {
		t.Fatalf("gradient of the filters: %v", err)
	}
	if _, err := G.Grad(loss, x); err == nil {
		t.Fatal("gradient of a leaf input: no error")
	}
}

func TestConv2DRejectsBadArguments(t *testing.T) {
	g := G.NewGraph()
	x := G.NewTensor(g, tensor.Float32, 4, G.WithShape(2, 3, 5, 5), G.WithName("x"))
	w := G.NewTensor(g, tensor.Float32, 4, G.WithShape(4, 3, 3, 3), G.WithName("w"))
	wrongC := G.NewTensor(g, tensor.Float32, 4, G.WithShape(4, 2, 3, 3), G.WithName("w2"))
	big := G.NewTensor(g, tensor.Float32, 4, G.WithShape(4, 3, 9, 9), G.WithName("w3"))
	vec := G.NewTensor(g, tensor.Float32, 2, G.WithShape(2, 75), G.WithName("v"))
	bias := G.NewVector(g, tensor.Float32, G.WithShape(5), G.WithName("b"))
	for _, tc := range []struct {
		name    string
		x, w, b *G.Node
		s, p    int
		want    string
	}{
		{"channels", x, wrongC, nil, 1, 1, "channels"},
		{"rank", vec, w, nil, 1, 1, "4 dimensions"},
		{"stride", x, w, nil, 0, 1, "stride"},
		{"padding", x, w, nil, 1, -1, "padding"},
		{"too big", x, big, nil, 1, 1, "do not fit"},
		{"bias", x, w, bias, 1, 1, "bias shape"},
	} {
		if _, err := Conv2D(tc.x, tc.w, tc.b, tc.s, tc.p); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one mentioning %q", tc.name, err, tc.want)
		}
	}
}

func TestIm2colKernelsDoNotAllocate(t *testing.T) {
	g := newConvGeom(1, 3, 9, 8, 4, 3, 3, 2, 1)
	x := make([]float32, g.inSize())
	cols := make([]float32, g.colRows*g.plane)
	if a := testing.AllocsPerRun(10, func() { im2col(cols, g.plane, x, &g); col2im(x, cols, g.plane, &g) }); a != 0 {
		t.Fatalf("im2col+col2im allocate %v times per call", a)
	}
}
