//go:build js && wasm

package main

import (
	"slices"
	"strings"
	"syscall/js"
	"testing"

	"github.com/cifarnet-go/cifarnet/models"
)

// TestTeachAPI drives teach mode as the page's teach worker does.
func TestTeachAPI(t *testing.T) {
	model := mustRead(t, modelPath)
	square := squarePNG(t, red, 32, 32, 1)
	t.Run("before teachBase", func(t *testing.T) {
		mustReject(t, jsAPI().Call("teachAdd", 1, toU8(square)), CodeNoModel)
		mustReject(t, jsAPI().Call("teachTrain", js.ValueOf([]any{"a", "b"}), js.ValueOf([]any{}), js.ValueOf([]any{})), CodeNoModel)
		if jsAPI().Call("teachRemove", 1).Bool() {
			t.Error("teachRemove without a base said it removed something")
		}
	})
	t.Run("bad arguments", func(t *testing.T) {
		mustReject(t, jsAPI().Call("teachBase"), CodeBadArgument)
		mustReject(t, jsAPI().Call("teachBase", toU8(square), "x.png"), CodeBadModel)
		mustReject(t, jsAPI().Call("teachAdd", "one", toU8(square)), CodeBadArgument)
		mustReject(t, jsAPI().Call("teachAddRGBA", 1, toU8(square), 0, 3), CodeBadArgument)
		mustReject(t, jsAPI().Call("teachTrain", "a,b", js.ValueOf([]any{}), js.ValueOf([]any{})), CodeBadArgument)
		mustReject(t, jsAPI().Call("teachTrain", js.ValueOf([]any{"a", 2}), js.ValueOf([]any{}), js.ValueOf([]any{})), CodeBadArgument)
		mustReject(t, jsAPI().Call("teachTrain", js.ValueOf([]any{"a", "b"}), js.ValueOf([]any{1.5}), js.ValueOf([]any{0})), CodeBadArgument)
	})
	base := mustResolve(t, jsAPI().Call("teachBase", toU8(model), "small.cnw"))
	if base.Get("name").String() != "small.cnw" {
		t.Errorf("teachBase resolved to name %q", base.Get("name").String())
	}
	var ids, labels []any
	for i := range 8 {
		c := red
		if i%2 == 1 {
			c = blue
		}
		r := mustResolve(t, jsAPI().Call("teachAdd", i, toU8(squarePNG(t, c, 32, 32, uint64(i)))))
		if r.Get("id").Int() != i || r.Get("count").Int() != i+1 || r.Get("input").Length() != 32*32*4 || r.Get("inputWidth").Int() != 32 {
			t.Fatalf("teachAdd(%d) = %s", i, js.Global().Get("JSON").Call("stringify", r))
		}
		ids, labels = append(ids, i), append(labels, i%2)
	}
	// A bad image is refused with its code and changes nothing.
	mustReject(t, jsAPI().Call("teachAdd", 100, toU8([]byte("not an image"))), CodeUnsupported)
	pix := js.Global().Get("Uint8ClampedArray").New(4 * 6)
	mustResolve(t, jsAPI().Call("teachAddRGBA", 100, pix, 3, 2))
	if !jsAPI().Call("teachRemove", 100).Bool() {
		t.Error("teachRemove(100) found nothing")
	}
	mustReject(t, jsAPI().Call("teachTrain", js.ValueOf([]any{"red", "red"}), js.ValueOf(ids), js.ValueOf(labels)), CodeBadArgument)

	calls := 0
	progress := js.FuncOf(func(_ js.Value, a []js.Value) any {
		calls++
		return nil
	})
	defer progress.Release()
	r := mustResolve(t, jsAPI().Call("teachTrain", js.ValueOf([]any{"red", "blue"}), js.ValueOf(ids), js.ValueOf(labels), progress))
	if calls == 0 || r.Get("accuracy").Float() < 0.9 || r.Get("folds").Int() != 4 || r.Get("images").Int() != 8 ||
		r.Get("name").String() != "taught-red-blue.cnw" || r.Get("base").String() != "small.cnw" {
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
