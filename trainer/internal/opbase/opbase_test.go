package opbase

import (
	"slices"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func TestResultReusesItsTensor(t *testing.T) {
	var r Result
	a, da := r.Get(tensor.Shape{2, 3})
	if len(da) != 6 {
		t.Fatalf("got %d values, want 6", len(da))
	}
	da[0] = 7
	b, db := r.Get(tensor.Shape{2, 3})
	if a != b || db[0] != 7 {
		t.Error("a second Get of the same shape allocated a new tensor")
	}
	c, dc := r.Get(tensor.Shape{4})
	if c == a || len(dc) != 4 {
		t.Errorf("Get of a new shape returned %v", c.Shape())
	}
}

func TestBase(t *testing.T) {
	o := &Base{Name: "conv:a"}
	p := &Base{Name: "conv:b"}
	if o.Hashcode() == p.Hashcode() || o.String() != "conv:a" {
		t.Error("ops with different names must hash differently")
	}
	if err := o.Errorf("bad %d", 3); err.Error() != "conv:a: bad 3" {
		t.Errorf("Errorf = %q", err)
	}
}

func TestInputs(t *testing.T) {
	o := &Base{Name: "op"}
	x := tensor.New(tensor.WithShape(2, 2), tensor.WithBacking([]float32{1, 2, 3, 4}))
	f := G.F32(5)
	vs, err := o.Inputs(2, []G.Value{x, &f})
	if err != nil || len(vs[0]) != 4 || vs[1][0] != 5 {
		t.Fatalf("Inputs = %v, %v", vs, err)
	}
	if _, err := o.Inputs(3, []G.Value{x}); err == nil || !strings.Contains(err.Error(), "want 3") {
		t.Errorf("wrong input count: %v", err)
	}
	d := tensor.New(tensor.WithShape(2), tensor.WithBacking([]float64{1, 2}))
	if _, err := o.Inputs(1, []G.Value{d}); err == nil || !strings.Contains(err.Error(), "float32") {
		t.Errorf("float64 input: %v", err)
	}
	// A transposed view is read in logical order.
	tr := tensor.New(tensor.WithShape(2, 3), tensor.WithBacking([]float32{1, 2, 3, 4, 5, 6}))
	if err := tr.T(); err != nil {
		t.Fatal(err)
	}
	got, err := o.Shaped("x", tr, tensor.Shape{3, 2})
	if err != nil {
		t.Fatal(err)
	}
	if want := []float32{1, 4, 2, 5, 3, 6}; !slices.Equal(got, want) {
		t.Errorf("transposed view read as %v, want %v", got, want)
	}
	if _, err := o.Shaped("x", x, tensor.Shape{4}); err == nil || !strings.Contains(err.Error(), "x: shape") {
		t.Errorf("wrong shape: %v", err)
	}
}
