//go:build js && wasm

package main

import (
	"slices"
	"strings"
	"syscall/js"
	"testing"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/models/modeltest"
)

// TestTeachAPI drives teach mode as the page's teach workers do.
func TestTeachAPI(t *testing.T) {
	model := mustRead(t, modelPath)
	square := modeltest.NoisySquarePNG(t, red, 32, 32, 1)
	noRows := js.Global().Get("Float32Array").New(0)
	t.Run("before teachBase", func(t *testing.T) {
		mustReject(t, jsAPI().Call("teachFeatures", toU8(square)), CodeNoModel)
		mustReject(t, jsAPI().Call("teachTrain", js.ValueOf([]any{"a", "b"}), noRows, js.ValueOf([]any{})), CodeNoModel)
	})
	t.Run("bad arguments", func(t *testing.T) {
		mustReject(t, jsAPI().Call("teachBase"), CodeBadArgument)
		mustReject(t, jsAPI().Call("teachBase", toU8(square), "x.png"), CodeBadModel)
		mustReject(t, jsAPI().Call("teachFeatures", "one"), CodeBadArgument)
		mustReject(t, jsAPI().Call("teachFeaturesRGBA", toU8(square), 0, 3), CodeBadArgument)
		mustReject(t, jsAPI().Call("teachTrain", "a,b", noRows, js.ValueOf([]any{})), CodeBadArgument)
		mustReject(t, jsAPI().Call("teachTrain", js.ValueOf([]any{"a", 2}), noRows, js.ValueOf([]any{})), CodeBadArgument)
		mustReject(t, jsAPI().Call("teachTrain", js.ValueOf([]any{"a", "b"}), js.ValueOf([]any{1, 2}), js.ValueOf([]any{0})), CodeBadArgument)
		mustReject(t, jsAPI().Call("teachTrain", js.ValueOf([]any{"a", "b"}), noRows, js.ValueOf([]any{1.5})), CodeBadArgument)
	})
	base := mustResolve(t, jsAPI().Call("teachBase", toU8(model), "small.cnw"))
	dim := base.Get("dim").Int()
	if base.Get("name").String() != "small.cnw" || dim <= 0 || base.Get("classes").Length() != 10 || base.Get("classes").Index(3).String() != "cat" {
		t.Fatalf("teachBase resolved to %s", js.Global().Get("JSON").Call("stringify", base))
	}
	rows := js.Global().Get("Float32Array").New(8 * dim)
	var labels []any
	var first []float32
	for i := range 8 {
		c := red
		if i%2 == 1 {
			c = blue
		}
		r := mustResolve(t, jsAPI().Call("teachFeatures", toU8(modeltest.NoisySquarePNG(t, c, 32, 32, uint64(i)))))
		if r.Get("row").Length() != dim || r.Get("input").Length() != 32*32*4 || r.Get("inputWidth").Int() != 32 {
			t.Fatalf("teachFeatures = %s", js.Global().Get("JSON").Call("stringify", r))
		}
		rows.Call("set", r.Get("row"), i*dim)
		labels = append(labels, i%2)
		if i == 0 {
			first, _ = float32sFromJS(r.Get("row"), "row")
		}
	}
	// The rows are the Go Teacher's, bit for bit, through the Float32Array.
	tc, err := NewTeacher("small.cnw", model)
	if err != nil {
		t.Fatal(err)
	}
	want, _, err := tc.Features(modeltest.NoisySquarePNG(t, red, 32, 32, 0))
	if err != nil || !slices.Equal(first, want) {
		t.Errorf("row 0 from JavaScript differs from Go's (%v)", err)
	}
	mustReject(t, jsAPI().Call("teachFeatures", toU8([]byte("not an image"))), CodeUnsupported)
	pix := js.Global().Get("Uint8ClampedArray").New(4 * 6)
	if r := mustResolve(t, jsAPI().Call("teachFeaturesRGBA", pix, 3, 2)); r.Get("row").Length() != dim {
		t.Errorf("teachFeaturesRGBA row of %d", r.Get("row").Length())
	}
	mustReject(t, jsAPI().Call("teachTrain", js.ValueOf([]any{"red", "red"}), rows, js.ValueOf(labels)), CodeBadArgument)

	calls := 0
	progress := js.FuncOf(func(_ js.Value, a []js.Value) any {
		calls++
		return nil
	})
	defer progress.Release()
	r := mustResolve(t, jsAPI().Call("teachTrain", js.ValueOf([]any{"red", "blue"}), rows, js.ValueOf(labels), progress))
	if calls == 0 || r.Get("accuracy").Float() < 0.9 || r.Get("folds").Int() != 4 || r.Get("images").Int() != 8 ||
		r.Get("name").String() != "taught-red-blue.cnw" || r.Get("base").String() != "small.cnw" || r.Get("known").Length() != 0 {
		t.Errorf("teachTrain = %s after %d progress calls", js.Global().Get("JSON").Call("stringify", r), calls)
	}
	file := make([]byte, r.Get("file").Length())
	js.CopyBytesToGo(file, r.Get("file"))
	f, err := models.Decode(file)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f.Meta.Classes, []string{"red", "blue"}) || !strings.HasPrefix(f.Meta.Provenance.BaseModel, "small.cnw sha256:") {
		t.Errorf("classes %v, base %q", f.Meta.Classes, f.Meta.Provenance.BaseModel)
	}
	// The page makes it the current model with loadBytes.
	info := mustResolve(t, jsAPI().Call("loadBytes", r.Get("file"), r.Get("name")))
	if info.Get("classes").Length() != 2 || info.Get("provenance").Get("base_model").String() != f.Meta.Provenance.BaseModel {
		t.Errorf("info = %s", js.Global().Get("JSON").Call("stringify", info))
	}
}
