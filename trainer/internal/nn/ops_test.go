package nn

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cifarnet-go/cifarnet/trainer/internal/opbase"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// awayFromKinks returns n values in ±[0.1, 2] whose pairwise differences
// exceed the finite-difference step, so that neither ReLU's kink at 0 nor
// a change of max-pool winner lies within reach.
func awayFromKinks(n int, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 2))
	out := make([]float32, n)
	for i := range out {
		v := float32(0.1 + 0.01*float64(i) + 0.001*rng.Float64()) // distinct, spaced 0.01 apart
		if rng.IntN(2) == 0 {
			v = -v
		}
		out[i] = v
	}
	rng.Shuffle(n, func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// checkOpGradients builds cost = Σ op(inputs)·c for a fixed random c (or
// the op's value when it is a scalar), and compares the gradient with
// respect to every element of every input marked in diff against central
// differences.
func checkOpGradients(t *testing.T, build func(in []*G.Node) (*G.Node, error), shapes []tensor.Shape, values [][]float32, diff []bool) {
	t.Helper()
	g := G.NewGraph()
	in := make([]*G.Node, len(shapes))
	for i, s := range shapes {
		d := tensor.New(tensor.WithShape(s...), tensor.WithBacking(values[i]))
		in[i] = G.NewTensor(g, tensor.Float32, len(s), G.WithShape(s...), G.WithValue(d), G.WithName(string(rune('a'+i))))
	}
	y, err := build(in)
	if err != nil {
		t.Fatal(err)
	}
	cost := y
	if !y.IsScalar() {
		rng := rand.New(rand.NewPCG(1, 1))
		c := make([]float32, y.Shape().TotalSize())
		for i := range c {
			c[i] = float32(rng.NormFloat64())
		}
		cn := G.NewTensor(g, tensor.Float32, y.Dims(), G.WithShape(y.Shape()...), G.WithName("c"),
			G.WithValue(tensor.New(tensor.WithShape(y.Shape()...), tensor.WithBacking(c))))
		cost = G.Must(G.Sum(G.Must(G.HadamardProd(y, cn))))
	}
	var wrt G.Nodes
	for i, d := range diff {
		if d {
			wrt = append(wrt, in[i])
		}
	}
	grads, err := G.Grad(cost, wrt...)
	if err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	run := func() float64 {
		vm.Reset()
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		v, err := opbase.Floats(cost.Value())
		if err != nil {
			t.Fatal(err)
		}
		return float64(v[0])
	}
	run()
	k := 0
	for i, d := range diff {
		if !d {
			continue
		}
		a, err := opbase.Floats(grads[k].Value())
		if err != nil {
			t.Fatal(err)
		}
		analytic := append([]float32(nil), a...)
		k++
		for j := range values[i] {
			orig := values[i][j]
			const h = 1e-3
			values[i][j] = orig + h
			up := run()
			values[i][j] = orig - h
			down := run()
			values[i][j] = orig
			num := (up - down) / (2 * h)
			if math.Abs(num-float64(analytic[j])) > 5e-3+0.01*math.Abs(num) {
				t.Errorf("input %d element %d: gradient %g, finite difference %g", i, j, analytic[j], num)
			}
		}
	}
}

func TestActivationGradients(t *testing.T) {
	for name, act := range map[string]activation{
		"relu": reluAct(), "leaky_relu": leakyReLUAct(0.1), "gelu": geluAct(),
	} {
		t.Run(name, func(t *testing.T) {
			checkOpGradients(t, func(in []*G.Node) (*G.Node, error) {
				return G.ApplyOp(newActOp(name, act, 4), in[0])
			}, []tensor.Shape{{2, 3, 2, 2}}, [][]float32{awayFromKinks(24, 1)}, []bool{true})
		})
	}
}

// The slice forms agree with f and df everywhere, signed zeros,
// infinities and subnormals included.
func TestActivationSlicesMatchScalar(t *testing.T) {
	x := []float32{-3, -1e-40, float32(math.Copysign(0, -1)), 0, 1e-40, 0.5, 2, float32(math.Inf(1)), float32(math.Inf(-1)), -1e30, 1e30}
	dy := make([]float32, len(x))
	for i := range dy {
		dy[i] = float32(i) - 4.5
	}
	for name, act := range map[string]activation{"relu": reluAct(), "gelu": geluAct()} {
		y, dx := make([]float32, len(x)), make([]float32, len(x))
		act.slice(y, x)
		act.gradSlice(dx, dy, x)
		for i, v := range x {
			same := func(got, want float32) bool {
				return got == want || got != got && want != want || name == "gelu" && math.Abs(float64(got-want)) < 1e-6
			}
			if want := act.f(v); !same(y[i], want) {
				t.Errorf("%s slice(%g) = %g, want %g", name, v, y[i], want)
			}
			if want := dy[i] * act.df(v); !same(dx[i], want) {
				t.Errorf("%s gradSlice(%g) = %g, want %g", name, v, dx[i], want)
			}
		}
	}
}

func TestGELUValues(t *testing.T) {
	// Reference values of 0.5·x·(1+erf(x/√2)).
	for _, c := range []struct{ x, want float64 }{
		{-3, -0.0040496}, {-1, -0.15865525}, {0, 0}, {0.5, 0.34573123}, {2, 1.95449974},
	} {
		if got := geluAct().f(float32(c.x)); math.Abs(float64(got)-c.want) > 1e-6 {
			t.Errorf("gelu(%g) = %g, want %g", c.x, got, c.want)
		}
	}
}

func TestBatchNormGradients(t *testing.T) {
	for _, shape := range []tensor.Shape{{3, 2, 2, 2}, {4, 3}} {
		n, c, _ := channelGeometry(shape)
		_ = n
		rm, rv := make([]float32, c), make([]float32, c)
		fill(rv, 1)
		x := awayFromKinks(shape.TotalSize(), 3)
		gamma := []float32{0.5, 1.5, -0.7}[:c]
		beta := []float32{0.1, -0.2, 0.3}[:c]
		checkOpGradients(t, func(in []*G.Node) (*G.Node, error) {
			return G.ApplyOp(newBNOp("bn", len(shape), true, 1e-5, 0.1, rm, rv), in[0], in[1], in[2])
		}, []tensor.Shape{shape, {c}, {c}}, [][]float32{x, gamma, beta}, []bool{true, true, true})
	}
}

// With frozen statistics the op is affine in x: its gradients are checked
// numerically like the batch-statistics op's, and a forward pass in
// training uses and keeps the running statistics.
func TestBatchNormFrozenStatistics(t *testing.T) {
	shape := tensor.Shape{3, 2, 2, 2}
	rm, rv := []float32{0.3, -0.2}, []float32{2, 0.5}
	frozen := func() *bnOp {
		op := newBNOp("bn", len(shape), true, 1e-5, 0.1, rm, rv)
		op.frozen = true
		return op
	}
	x := awayFromKinks(shape.TotalSize(), 5)
	checkOpGradients(t, func(in []*G.Node) (*G.Node, error) {
		return G.ApplyOp(frozen(), in[0], in[1], in[2])
	}, []tensor.Shape{shape, {2}, {2}}, [][]float32{x, {0.5, 1.5}, {0.1, -0.2}}, []bool{true, true, true})

	op := frozen()
	in := tensor.New(tensor.WithShape(shape...), tensor.WithBacking(slices.Clone(x)))
	g := tensor.New(tensor.WithShape(2), tensor.WithBacking([]float32{1, 1}))
	b := tensor.New(tensor.WithShape(2), tensor.WithBacking([]float32{0, 0}))
	out, err := op.Do(in, g, b)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rm, []float32{0.3, -0.2}) || !slices.Equal(rv, []float32{2, 0.5}) {
		t.Errorf("running statistics moved to %v, %v", rm, rv)
	}
	y := out.(*tensor.Dense).Data().([]float32)
	if want := float32(float64(x[0]-0.3) / math.Sqrt(2+1e-5)); math.Abs(float64(y[0]-want)) > 1e-5 {
		t.Errorf("y[0] = %g, want %g (the running statistics')", y[0], want)
	}
}

func TestBatchNormRunningStatistics(t *testing.T) {
	// Two channels of 2×1×2 values each; PyTorch's update with momentum
	// 0.1 from (0, 1): mean 0.1·batch mean, var 0.9 + 0.1·unbiased var.
	x := []float32{1, 3 /* ch0 */, 10, 20 /* ch1 */, 5, 7 /* ch0 */, 30, 40 /* ch1 */}
	rm, rv := []float32{0, 0}, []float32{1, 1}
	op := newBNOp("bn", 4, true, 1e-5, 0.1, rm, rv)
	in := tensor.New(tensor.WithShape(2, 2, 1, 2), tensor.WithBacking(x))
	g := tensor.New(tensor.WithShape(2), tensor.WithBacking([]float32{1, 1}))
	b := tensor.New(tensor.WithShape(2), tensor.WithBacking([]float32{0, 0}))
	out, err := op.Do(in, g, b)
	if err != nil {
		t.Fatal(err)
	}
	// ch0: 1,3,5,7 mean 4, biased var 5, unbiased 20/3.
	// ch1: 10,20,30,40 mean 25, biased var 125, unbiased 500/3.
	want := []struct{ mean, v float64 }{{4, 20.0 / 3}, {25, 500.0 / 3}}
	for ch, w := range want {
		if math.Abs(float64(rm[ch])-0.1*w.mean) > 1e-5 || math.Abs(float64(rv[ch])-(0.9+0.1*w.v)) > 1e-4 {
			t.Errorf("channel %d: running (%g, %g), want (%g, %g)", ch, rm[ch], rv[ch], 0.1*w.mean, 0.9+0.1*w.v)
		}
	}
	y := out.(*tensor.Dense).Data().([]float32)
	if wantY := float32((1 - 4) / math.Sqrt(5+1e-5)); math.Abs(float64(y[0]-wantY)) > 1e-5 {
		t.Errorf("y[0] = %g, want %g", y[0], wantY)
	}
}

// The batch statistics and the batchnorm reductions use float32 partial
// sums: check them against float64 on planes of a realistic size whose
// mean is large against their spread, where a naive E[x²] − E[x]² in
// float32 would lose the variance.
func TestBatchNormStatisticsPrecision(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const n, c, hw = 5, 2, 1023
	x, dy := make([]float32, n*c*hw), make([]float32, n*c*hw)
	for i := range x {
		x[i] = float32(300 + 0.5*r.NormFloat64())
		dy[i] = float32(r.NormFloat64())
	}
	op := newBNOp("bn", 4, true, 0, 0.1, make([]float32, c), make([]float32, c))
	for ch := range c {
		op.batchStats(x, ch, n, c, hw)
		var sum, sumDy float64
		for b := range n {
			for _, v := range x[(b*c+ch)*hw : (b*c+ch+1)*hw] {
				sum += float64(v)
			}
		}
		mean := sum / (n * hw)
		var ss, dot float64
		var dots float64
		for b := range n {
			off := (b*c + ch) * hw
			for i, v := range x[off : off+hw] {
				ss += (float64(v) - mean) * (float64(v) - mean)
				dot += float64(dy[off+i]) * (float64(v) - mean)
				sumDy += float64(dy[off+i])
			}
			dots += centredDot(dy[off:off+hw], x[off:off+hw], float32(mean))
		}
		std := math.Sqrt(ss / (n * hw))
		if got := float64(op.mean[ch]); math.Abs(got-mean) > 1e-4 {
			t.Errorf("channel %d: mean %.6f, want %.6f", ch, got, mean)
		}
		if got := 1 / float64(op.invStd[ch]); math.Abs(got-std)/std > 1e-4 {
			t.Errorf("channel %d: std %.6f, want %.6f", ch, got, std)
		}
		if math.Abs(dots-dot) > 1e-3*math.Sqrt(n*hw) {
			t.Errorf("channel %d: Σdy·(x−mean) %.5f, want %.5f", ch, dots, dot)
		}
		var planes float64
		for b := range n {
			planes += planeSum(dy[(b*c+ch)*hw : (b*c+ch+1)*hw])
		}
		if math.Abs(planes-sumDy) > 1e-3 {
			t.Errorf("channel %d: Σdy %.5f, want %.5f", ch, planes, sumDy)
		}
	}
}

func TestPoolAndBiasGradients(t *testing.T) {
	t.Run("maxpool", func(t *testing.T) {
		checkOpGradients(t, func(in []*G.Node) (*G.Node, error) {
			return G.MaxPool2D(in[0], tensor.Shape{2, 2}, []int{0, 0}, []int{2, 2})
		}, []tensor.Shape{{2, 2, 4, 4}}, [][]float32{awayFromKinks(64, 4)}, []bool{true})
	})
	t.Run("global_avg_pool", func(t *testing.T) {
		checkOpGradients(t, func(in []*G.Node) (*G.Node, error) {
			return G.ApplyOp(&gapOp{opbase.Base{Name: "gap:x"}}, in[0])
		}, []tensor.Shape{{2, 3, 2, 2}}, [][]float32{awayFromKinks(24, 5)}, []bool{true})
	})
	t.Run("bias", func(t *testing.T) {
		checkOpGradients(t, func(in []*G.Node) (*G.Node, error) {
			return G.ApplyOp(&biasOp{opbase.Base{Name: "bias:x"}, 4}, in[0], in[1])
		}, []tensor.Shape{{2, 3, 2, 2}, {3}}, [][]float32{awayFromKinks(24, 6), {0.1, 0.2, 0.3}}, []bool{true, true})
	})
}

func TestDropoutGradientAndRate(t *testing.T) {
	op := &dropoutOp{Base: opbase.Base{Name: "dropout:x"}, dims: 2, rate: 0.3, seed: 1, stream: 2}
	checkOpGradients(t, func(in []*G.Node) (*G.Node, error) {
		return G.ApplyOp(op, in[0])
	}, []tensor.Shape{{4, 5}}, [][]float32{awayFromKinks(20, 7)}, []bool{true})

	// Over many elements, the kept fraction is 1−rate and kept values are
	// scaled by 1/(1−rate), so the mean is preserved.
	const n = 100000
	x := make([]float32, n)
	fill(x, 1)
	op.seed = 3
	out, err := op.Do(tensor.New(tensor.WithShape(100, 1000), tensor.WithBacking(x)))
	if err != nil {
		t.Fatal(err)
	}
	var kept, sum float64
	for _, v := range out.(*tensor.Dense).Data().([]float32) {
		if v != 0 {
			kept++
			if math.Abs(float64(v)-1/0.7) > 1e-6 {
				t.Fatalf("kept value %g, want %g", v, 1/0.7)
			}
		}
		sum += float64(v)
	}
	if f := kept / n; math.Abs(f-0.7) > 0.01 {
		t.Errorf("kept fraction %g, want 0.7", f)
	}
	if m := sum / n; math.Abs(m-1) > 0.015 {
		t.Errorf("mean %g, want 1", m)
	}
}

func TestCrossEntropy(t *testing.T) {
	logits := []float32{1, 2, 0.5, -1, 0, 3}
	target := []float32{0, 1, 0, 0.05, 0.05, 0.9}
	checkOpGradients(t, func(in []*G.Node) (*G.Node, error) {
		return G.ApplyOp(&xentOp{opbase.Base{Name: "xent:x"}}, in[0], in[1])
	}, []tensor.Shape{{2, 3}, {2, 3}}, [][]float32{logits, target}, []bool{true, false})

	op := &xentOp{opbase.Base{Name: "xent:y"}}
	v, err := op.Do(tensor.New(tensor.WithShape(2, 3), tensor.WithBacking(logits)), tensor.New(tensor.WithShape(2, 3), tensor.WithBacking(target)))
	if err != nil {
		t.Fatal(err)
	}
	// Row 0: −log softmax(1,2,0.5)[1]; row 1: −Σ t·log softmax(−1,0,3).
	lse0 := math.Log(math.Exp(1) + math.Exp(2) + math.Exp(0.5))
	lse1 := math.Log(math.Exp(-1) + 1 + math.Exp(3))
	want := ((lse0 - 2) + 0.05*(lse1+1) + 0.05*lse1 + 0.9*(lse1-3)) / 2
	if got := float64(*v.(*G.F32)); math.Abs(got-want) > 1e-6 {
		t.Errorf("loss %g, want %g", got, want)
	}
}
