//go:build js && wasm

package main

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall/js"
	"testing"
)

// These tests call globalThis.cifarnet the way the page's worker does, under
// Node:
//
//	GOOS=js GOARCH=wasm go test -exec="$(go env GOROOT)/lib/wasm/go_js_wasm_exec" ./wasm/

func TestMain(m *testing.M) {
	install(js.Global())
	os.Exit(m.Run())
}

func jsAPI() js.Value { return js.Global().Get("cifarnet") }

// settle waits for a promise; a rejection comes back as the JS error object.
func settle(t *testing.T, p js.Value) (value, rejection js.Value) {
	t.Helper()
	if p.Type() != js.TypeObject || p.Get("then").Type() != js.TypeFunction {
		t.Fatalf("expected a promise, got %v", p.Type())
	}
	type outcome struct {
		v  js.Value
		ok bool
	}
	ch := make(chan outcome, 1)
	onOK := js.FuncOf(func(_ js.Value, a []js.Value) any { ch <- outcome{a[0], true}; return nil })
	onErr := js.FuncOf(func(_ js.Value, a []js.Value) any { ch <- outcome{a[0], false}; return nil })
	defer onOK.Release()
	defer onErr.Release()
	p.Call("then", onOK, onErr)
	o := <-ch
	if o.ok {
		return o.v, js.Undefined()
	}
	return js.Undefined(), o.v
}

func mustResolve(t *testing.T, p js.Value) js.Value {
	t.Helper()
	v, rej := settle(t, p)
	if !rej.IsUndefined() {
		t.Fatalf("rejected: %s (code %s)", rej.Get("message"), rej.Get("code"))
	}
	return v
}

func mustReject(t *testing.T, p js.Value, code string) js.Value {
	t.Helper()
	v, rej := settle(t, p)
	if rej.IsUndefined() {
		t.Fatalf("resolved with %v, want a rejection with code %q", v, code)
	}
	if !rej.InstanceOf(js.Global().Get("Error")) {
		t.Fatalf("rejected with %v, want an Error", rej)
	}
	if got := rej.Get("code").String(); got != code {
		t.Fatalf("rejected with code %q (%s), want %q", got, rej.Get("message"), code)
	}
	return rej
}

func toU8(b []byte) js.Value {
	u := js.Global().Get("Uint8Array").New(len(b))
	js.CopyBytesToJS(u, b)
	return u
}

func probsFromJS(v js.Value) []float32 {
	out := make([]float32, v.Length())
	for i := range out {
		out[i] = float32(v.Index(i).Float())
	}
	return out
}

// The tests share globalThis.cifarnet, so they run in this order.
func TestAPI(t *testing.T) {
	g := readGolden(t)
	model := mustRead(t, filepath.Join("testdata", g.Model))
	cat := mustRead(t, filepath.Join("..", "static", "samples", "cat.png"))

	t.Run("before load", func(t *testing.T) {
		if !jsAPI().Call("info").IsNull() {
			t.Error("info() before load is not null")
		}
		mustReject(t, jsAPI().Call("classify", toU8(cat)), CodeNoModel)
		mustReject(t, jsAPI().Call("setTTA", false), CodeNoModel)
	})
	t.Run("bad arguments", func(t *testing.T) {
		mustReject(t, jsAPI().Call("classify"), CodeBadArgument)
		mustReject(t, jsAPI().Call("classify", "cat.png"), CodeBadArgument)
		mustReject(t, jsAPI().Call("classifyRGBA", toU8(cat), -1, 3), CodeBadArgument)
		mustReject(t, jsAPI().Call("classifyRGBA", toU8(cat), 1.5, 3), CodeBadArgument)
		mustReject(t, jsAPI().Call("loadBytes", 42), CodeBadArgument)
		mustReject(t, jsAPI().Call("load"), CodeBadArgument)
		mustReject(t, jsAPI().Call("setTTA"), CodeBadArgument)
		mustReject(t, jsAPI().Call("setTTA", "off"), CodeBadArgument)
		// Node has no page location to resolve a relative URL against.
		mustReject(t, jsAPI().Call("load", "models/x.cnw"), CodeBadArgument)
	})
	t.Run("bad model", func(t *testing.T) {
		damaged := append([]byte(nil), model...)
		damaged[len(damaged)-10] ^= 1
		err := mustReject(t, jsAPI().Call("loadBytes", toU8(damaged), "damaged.cnw"), CodeBadModel)
		if msg := err.Get("message").String(); !strings.Contains(msg, "damaged.cnw") {
			t.Errorf("message %q does not name the file", msg)
		}
		if !jsAPI().Call("info").IsNull() {
			t.Error("a failed load left a model behind")
		}
	})
	t.Run("info", func(t *testing.T) {
		info := mustResolve(t, jsAPI().Call("loadBytes", toU8(model), "small.cnw"))
		if info.Get("name").String() != "small.cnw" || info.Get("spec").String() != "wasm-test-small" ||
			info.Get("classes").Length() != 10 || info.Get("size").Int() != len(model) || info.Get("params").Int() <= 0 {
			t.Errorf("info = %s", js.Global().Get("JSON").Call("stringify", info))
		}
		if got := jsAPI().Call("info").Get("spec").String(); got != "wasm-test-small" {
			t.Errorf("info().spec = %q", got)
		}
	})
	for _, c := range g.Cases {
		t.Run(c.Name, func(t *testing.T) {
			mustResolve(t, jsAPI().Call("loadBytes", toU8(withTTA(t, model, c.TTA)), "small.cnw"))
			data := mustRead(t, c.Image)
			var p js.Value
			if c.RGBA {
				pix, w, h := decodeRGBA(t, data)
				clamped := js.Global().Get("Uint8ClampedArray").New(len(pix))
				js.CopyBytesToJS(clamped, pix)
				p = jsAPI().Call("classifyRGBA", clamped, w, h)
			} else {
				p = jsAPI().Call("classify", toU8(data))
			}
			r := mustResolve(t, p)
			if !r.Get("probs").InstanceOf(js.Global().Get("Float32Array")) {
				t.Error("probs is not a Float32Array")
			}
			checkProbs(t, probsFromJS(r.Get("probs")), c)
			top := r.Get("top")
			if top.Get("index").Int() != c.Top || top.Get("label").String() != r.Get("classes").Index(c.Top).String() ||
				float32(top.Get("p").Float()) != float32(r.Get("probs").Index(c.Top).Float()) {
				t.Errorf("top = %s, want index %d", js.Global().Get("JSON").Call("stringify", top), c.Top)
			}
			in := r.Get("input")
			if !in.InstanceOf(js.Global().Get("Uint8ClampedArray")) || in.Length() != 32*32*4 ||
				r.Get("inputWidth").Int() != 32 || r.Get("inputHeight").Int() != 32 {
				t.Errorf("input is %d bytes of %d×%d", in.Length(), r.Get("inputWidth").Int(), r.Get("inputHeight").Int())
			}
			if ms := r.Get("ms").Float(); !(ms >= 0) || r.Get("totalMs").Float() < ms {
				t.Errorf("ms %g, totalMs %g", ms, r.Get("totalMs").Float())
			}
		})
	}
	// setTTA switches a TTA model between PredictTTA and Predict.
	t.Run("setTTA", func(t *testing.T) {
		info := mustResolve(t, jsAPI().Call("loadBytes", toU8(withTTA(t, model, []string{"flip", "translate"})), "tta.cnw"))
		if !info.Get("ttaOn").Bool() || info.Get("tta").Length() != 2 {
			t.Fatalf("a TTA model loads with ttaOn %v, tta %v", info.Get("ttaOn"), info.Get("tta"))
		}
		with := mustResolve(t, jsAPI().Call("classify", toU8(cat)))
		if off := mustResolve(t, jsAPI().Call("setTTA", false)); off.Get("ttaOn").Bool() {
			t.Error("setTTA(false) resolved with ttaOn true")
		}
		without := mustResolve(t, jsAPI().Call("classify", toU8(cat)))
		if with.Get("tta").Bool() == without.Get("tta").Bool() || !with.Get("tta").Bool() {
			t.Errorf("result.tta %v with and %v without", with.Get("tta"), without.Get("tta"))
		}
		if slices.Equal(probsFromJS(with.Get("probs")), probsFromJS(without.Get("probs"))) {
			t.Error("the same probabilities with and without TTA")
		}
		mustReject(t, jsAPI().Call("classifyPart", toU8(cat), 0, 2), CodeBadArgument) // TTA is off
		mustResolve(t, jsAPI().Call("setTTA", true))
		again := mustResolve(t, jsAPI().Call("classify", toU8(cat)))
		if !slices.Equal(probsFromJS(again.Get("probs")), probsFromJS(with.Get("probs"))) {
			t.Error("TTA back on gives other probabilities")
		}
		// The six views in two parts, from the file and from pixels,
		// added as the page adds them, give the one-call probabilities.
		pix, w, h := decodeRGBA(t, cat)
		clamped := js.Global().Get("Uint8ClampedArray").New(len(pix))
		js.CopyBytesToJS(clamped, pix)
		for _, rgba := range []bool{false, true} {
			sum := make([]float32, 10)
			for part := range 2 {
				var r js.Value
				if rgba {
					r = mustResolve(t, jsAPI().Call("classifyPartRGBA", clamped, w, h, part, 2))
				} else {
					r = mustResolve(t, jsAPI().Call("classifyPart", toU8(cat), part, 2))
				}
				if r.Get("part").Int() != part || r.Get("parts").Int() != 2 || !r.Get("probs").IsUndefined() {
					t.Fatalf("part %d: %s", part, js.Global().Get("JSON").Call("stringify", r))
				}
				for j, v := range probsFromJS(r.Get("logits")) {
					sum[j] += v
				}
			}
			if r := mustResolve(t, jsAPI().Call("classifyPart", toU8(cat), 0, 2)); !r.Get("softmax").Bool() {
				t.Error("the parts do not say the model ends with a softmax")
			}
			softmax(sum)
			for j, want := range probsFromJS(with.Get("probs")) {
				if d := sum[j] - want; d > 1e-6 || d < -1e-6 {
					t.Errorf("rgba %v: class %d: %v from two parts, %v in one call", rgba, j, sum[j], want)
				}
			}
		}
		mustReject(t, jsAPI().Call("classifyPart", toU8(cat), 2, 2), CodeBadArgument)
		mustReject(t, jsAPI().Call("classifyPart", toU8(cat), 0, 7), CodeBadArgument)

		// onFirst gets the answer without TTA first, once, from the file
		// and from pixels; the final result is the one-call result exactly.
		for _, rgba := range []bool{false, true} {
			var firsts []js.Value
			onFirst := js.FuncOf(func(_ js.Value, args []js.Value) any {
				firsts = append(firsts, args[0])
				return nil
			})
			var r js.Value
			if rgba {
				r = mustResolve(t, jsAPI().Call("classifyRGBA", clamped, w, h, onFirst))
			} else {
				r = mustResolve(t, jsAPI().Call("classify", toU8(cat), onFirst))
			}
			onFirst.Release()
			if len(firsts) != 1 {
				t.Fatalf("rgba %v: onFirst called %d times, want once", rgba, len(firsts))
			}
			f := firsts[0]
			if f.Get("tta").Bool() || !slices.Equal(probsFromJS(f.Get("probs")), probsFromJS(without.Get("probs"))) ||
				f.Get("top").Get("label").String() != without.Get("top").Get("label").String() || f.Get("input").Length() != 32*32*4 {
				t.Errorf("rgba %v: first answer %s, want the answer without TTA %s", rgba,
					js.Global().Get("JSON").Call("stringify", f), js.Global().Get("JSON").Call("stringify", without))
			}
			if !r.Get("tta").Bool() || !slices.Equal(probsFromJS(r.Get("probs")), probsFromJS(with.Get("probs"))) {
				t.Errorf("rgba %v: final answer differs from classify without onFirst", rgba)
			}
		}
		// Without TTA there is nothing to wait for: onFirst is not called.
		mustResolve(t, jsAPI().Call("setTTA", false))
		called := false
		onFirst := js.FuncOf(func(js.Value, []js.Value) any { called = true; return nil })
		mustResolve(t, jsAPI().Call("classify", toU8(cat), onFirst))
		onFirst.Release()
		if called {
			t.Error("onFirst called with TTA off")
		}
		mustResolve(t, jsAPI().Call("setTTA", true))
	})
	// A model saved with snapshot() and loaded back with loadSnapshot()
	// describes itself and classifies exactly as the weight file does; a
	// damaged snapshot is refused and leaves the current model.
	t.Run("snapshot", func(t *testing.T) {
		fromFile := mustResolve(t, jsAPI().Call("loadBytes", toU8(withTTA(t, model, []string{"flip", "translate"})), "tta.cnw"))
		want := mustResolve(t, jsAPI().Call("classify", toU8(cat)))
		snap := mustResolve(t, jsAPI().Call("snapshot"))
		if !snap.InstanceOf(js.Global().Get("Uint8Array")) || snap.Length() <= len(model) {
			t.Fatalf("snapshot() gave %d bytes, want a Uint8Array larger than the %d-byte float32 file", snap.Length(), len(model))
		}
		mustReject(t, jsAPI().Call("loadSnapshot", snap), CodeBadArgument)
		damaged := js.Global().Get("Uint8Array").New(snap)
		damaged.SetIndex(20, damaged.Index(20).Int()^0x40)
		mustReject(t, jsAPI().Call("loadSnapshot", damaged.Call("subarray", 0, snap.Length()-4), "tta.cnw", len(model)), CodeBadModel)
		mustReject(t, jsAPI().Call("loadSnapshot", damaged, "tta.cnw", len(model)), CodeBadModel)
		if got := jsAPI().Call("info").Get("name").String(); got != "tta.cnw" {
			t.Errorf("after refused snapshots the model is %q", got)
		}

		info := mustResolve(t, jsAPI().Call("loadSnapshot", snap, "tta.cnw", len(model)))
		stringify := func(v js.Value) string { return js.Global().Get("JSON").Call("stringify", v).String() }
		if stringify(info) != stringify(fromFile) {
			t.Errorf("info from the snapshot %s, from the file %s", stringify(info), stringify(fromFile))
		}
		got := mustResolve(t, jsAPI().Call("classify", toU8(cat)))
		if !slices.Equal(probsFromJS(got.Get("probs")), probsFromJS(want.Get("probs"))) {
			t.Errorf("probabilities %v from the snapshot, %v from the file", probsFromJS(got.Get("probs")), probsFromJS(want.Get("probs")))
		}
	})
	t.Run("image errors keep the model", func(t *testing.T) {
		mustResolve(t, jsAPI().Call("loadBytes", toU8(model), "small.cnw"))
		mustReject(t, jsAPI().Call("classify", toU8([]byte("not an image"))), CodeUnsupported)
		mustReject(t, jsAPI().Call("classify", toU8(cat[:len(cat)/2])), CodeCorrupt)
		mustReject(t, jsAPI().Call("classify", toU8(hugePNGHeader(30000, 30000))), CodeTooLarge)
		// An ArrayBuffer works as well as a Uint8Array.
		r := mustResolve(t, jsAPI().Call("classify", toU8(cat).Get("buffer")))
		checkProbs(t, probsFromJS(r.Get("probs")), g.Cases[0])
	})
}

// softmax as the page applies it to the sum of the parts.
func softmax(v []float32) {
	hi := slices.Max(v)
	var sum float64
	for i, x := range v {
		e := math.Exp(float64(x - hi))
		v[i] = float32(e)
		sum += e
	}
	for i := range v {
		v[i] = float32(float64(v[i]) / sum)
	}
}
