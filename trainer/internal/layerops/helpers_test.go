package layerops

import (
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func randn(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// param adds a named float32 tensor backed by data (not copied, so tests
// can perturb it between runs).
func param(g *G.ExprGraph, name string, data []float32, shape ...int) *G.Node {
	v := tensor.New(tensor.WithShape(shape...), tensor.WithBacking(data))
	return G.NewTensor(g, tensor.Float32, len(shape), G.WithShape(shape...), G.WithName(name), G.WithValue(v))
}

// weightedSum is Σ y⊙r, whose gradient with respect to y is r.
func weightedSum(t testing.TB, y *G.Node, r []float32) *G.Node {
	t.Helper()
	rn := param(y.Graph(), "r", r, y.Shape()...)
	prod, err := G.HadamardProd(y, rn)
	if err != nil {
		t.Fatal(err)
	}
	return G.Must(G.Sum(prod))
}

// values copies the float32 data of each node's value.
func values(t testing.TB, nodes ...*G.Node) [][]float32 {
	t.Helper()
	out := make([][]float32, len(nodes))
	for i, n := range nodes {
		d, ok := n.Value().Data().([]float32)
		if !ok {
			t.Fatalf("%v: value is %T, want float32 data", n, n.Value().Data())
		}
		out[i] = append([]float32(nil), d...)
	}
	return out
}

// run compiles g into a tape machine and runs it once.
func run(t testing.TB, g *G.ExprGraph) G.VM {
	t.Helper()
	vm := G.NewTapeMachine(g)
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	return vm
}

// assertClose fails unless got and want agree to tol relative to the
// largest magnitude in want (at least 1).
func assertClose(t testing.TB, what string, got, want []float32, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	scale := 1.0
	for _, w := range want {
		scale = max(scale, math.Abs(float64(w)))
	}
	worst, at := 0.0, 0
	for i := range got {
		if d := math.Abs(float64(got[i]) - float64(want[i])); d > worst || math.IsNaN(d) {
			worst, at = d, i
		}
	}
	if worst > tol*scale || math.IsNaN(worst) {
		t.Fatalf("%s: [%d] = %v, want %v (max error %.3g, allowed %.3g)", what, at, got[at], want[at], worst, tol*scale)
	}
}
