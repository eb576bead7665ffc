package nn

import (
	"math"
	"strings"
	"testing"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/trainer/internal/opbase"
	"gorgonia.org/tensor"
)

// TestDeviceGraphOrderAndOps checks what a device backend relies on: every
// node of every preset's training and evaluation graph comes after its
// inputs, and is an input, one of the trainer's described ops, or one of
// the three gorgonia ops the CUDA program knows (reshape, addition, the
// gradient's constant seed).
func TestDeviceGraphOrderAndOps(t *testing.T) {
	for _, name := range models.PresetNames() {
		spec, err := models.Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		net, err := New(spec, 1)
		if err != nil {
			t.Fatal(err)
		}
		for _, train := range []bool{true, false} {
			dg, err := net.NewDeviceGraph(3, train, 0.1)
			if err != nil {
				t.Fatalf("%s train=%v: %v", name, train, err)
			}
			seen := map[int64]bool{}
			kinds := map[opbase.Kind]bool{}
			for _, nd := range dg.Order {
				for _, c := range dg.Inputs(nd) {
					if !seen[c.ID()] {
						t.Fatalf("%s train=%v: node %q comes before its input %q", name, train, nd.Name(), c.Name())
					}
				}
				seen[nd.ID()] = true
				switch op := nd.Op().(type) {
				case nil:
				case opbase.Describer:
					kinds[op.Describe().Kind] = true
				default:
					s := op.String()
					if !strings.HasPrefix(s, "Reshape") && !strings.HasPrefix(s, "+ ") && !strings.HasPrefix(s, "const ") {
						t.Errorf("%s train=%v: node %q has op %q (%T), which no device kernel runs", name, train, nd.Name(), s, op)
					}
				}
			}
			if len(dg.Order) != len(dg.Graph.AllNodes()) {
				t.Errorf("%s: order has %d nodes, graph %d", name, len(dg.Order), len(dg.Graph.AllNodes()))
			}
			if train && (dg.Loss == nil || dg.Target == nil || len(dg.Grads) != len(net.Trainable())) {
				t.Errorf("%s: training graph without loss, target or a gradient per trainable parameter", name)
			}
			if !kinds[opbase.Conv] {
				t.Errorf("%s train=%v: no described convolution: the graph did not use the trainer's own ops", name, train)
			}
		}
	}
}

// TestDropoutMaskFromCounterHash pins the dropout mask to opbase.DropBits, the
// draw the GPU kernel repeats per element.
func TestDropoutMaskFromCounterHash(t *testing.T) {
	op := &dropoutOp{Base: opbase.Base{Name: "dropout:test"}, dims: 2, rate: 0.3, seed: 42, stream: 7}
	x := make([]float32, 1000)
	for i := range x {
		x[i] = 1
	}
	if _, err := op.Do(tensor.New(tensor.WithShape(10, 100), tensor.WithBacking(x))); err != nil {
		t.Fatal(err)
	}
	rate := 0.3
	threshold := uint32(rate * math.MaxUint32)
	dropped := 0
	for i, m := range op.mask {
		want := float32(1 / (1 - 0.3))
		if opbase.DropBits(42, 7, i) < threshold {
			want = 0
			dropped++
		}
		if m != want {
			t.Fatalf("mask[%d] = %g, want %g", i, m, want)
		}
	}
	if dropped < 250 || dropped > 350 {
		t.Errorf("%d of 1000 dropped at rate 0.3", dropped)
	}
}
