//go:build js && wasm

package main

import (
	"image"
	"syscall/js"
)

// The teach-mode API (see README.md): the page's teach worker sets a base
// model, adds the user's images one by one (their features are computed
// as they come, so that Train only fits the head) and trains.
func (a *api) installTeach(obj js.Value) {
	obj.Set("teachBase", promise(a.teachBase))
	obj.Set("teachAdd", promise(a.teachAdd))
	obj.Set("teachAddRGBA", promise(a.teachAddRGBA))
	obj.Set("teachRemove", js.FuncOf(func(_ js.Value, args []js.Value) any {
		if len(args) < 1 || args[0].Type() != js.TypeNumber {
			return false
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.teacher != nil && a.teacher.Remove(args[0].Int())
	}))
	obj.Set("teachTrain", promise(a.teachTrain))
}

// teachBase(urlOrBytes, name?) sets the base model and forgets the images
// added for the previous one; it resolves to {name, count: 0}.
func (a *api) teachBase(args []js.Value) (job, error) {
	if len(args) < 1 {
		return nil, errorf(CodeBadArgument, "teachBase needs the URL or the bytes of a weight file")
	}
	name := "model.cnw"
	if len(args) > 1 && args[1].Type() == js.TypeString {
		name = args[1].String()
	}
	var data []byte
	var fetchURL string
	if args[0].Type() == js.TypeString {
		target, err := resolveURL(args[0].String())
		if err != nil {
			return nil, err
		}
		fetchURL = target.String()
	} else {
		var err error
		if data, err = bytesFromJS(args[0], "the weight file", maxModelBytes); err != nil {
			return nil, err
		}
	}
	return func() (js.Value, error) {
		if fetchURL != "" {
			var err error
			if data, err = download(fetchURL, name, -1, js.Undefined()); err != nil {
				return js.Value{}, err
			}
		}
		t, err := NewTeacher(name, data)
		if err != nil {
			return js.Value{}, err
		}
		a.mu.Lock()
		a.teacher = t
		a.mu.Unlock()
		return js.ValueOf(map[string]any{"name": name, "count": 0}), nil
	}, nil
}

// teachAdd(id, fileBytes) adds an image file; it resolves to {id, input,
// inputWidth, inputHeight}: the model input, for the thumbnail.
func (a *api) teachAdd(args []js.Value) (job, error) {
	if len(args) < 2 || args[0].Type() != js.TypeNumber {
		return nil, errorf(CodeBadArgument, "teachAdd needs an image id and the bytes of an image file")
	}
	id := args[0].Int()
	data, err := bytesFromJS(args[1], "the image file", maxImageBytes)
	if err != nil {
		return nil, err
	}
	return a.teachJob(id, func(t *Teacher) (*image.NRGBA, error) { return t.Add(id, data) }), nil
}

// teachAddRGBA(id, pixels, width, height) adds RGBA pixels the browser
// decoded.
func (a *api) teachAddRGBA(args []js.Value) (job, error) {
	if len(args) < 4 || args[0].Type() != js.TypeNumber || args[2].Type() != js.TypeNumber || args[3].Type() != js.TypeNumber {
		return nil, errorf(CodeBadArgument, "teachAddRGBA needs an image id, pixels, width and height")
	}
	id := args[0].Int()
	w, h := args[2].Float(), args[3].Float()
	if w < 1 || h < 1 || w != float64(int(w)) || h != float64(int(h)) || w*h > maxImageBytes/4 {
		return nil, errorf(CodeBadArgument, "teachAddRGBA: width and height must be positive integers with width×height ≤ %d, got %g×%g", maxImageBytes/4, w, h)
	}
	pix, err := bytesFromJS(args[1], "the pixels", maxImageBytes)
	if err != nil {
		return nil, err
	}
	return a.teachJob(id, func(t *Teacher) (*image.NRGBA, error) { return t.AddRGBA(id, pix, int(w), int(h)) }), nil
}

func (a *api) teachJob(id int, add func(*Teacher) (*image.NRGBA, error)) job {
	return func() (js.Value, error) {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.teacher == nil {
			return js.Value{}, errorf(CodeNoModel, "no base model to teach is loaded yet")
		}
		input, err := add(a.teacher)
		if err != nil {
			return js.Value{}, err
		}
		b := input.Bounds()
		pix := make([]byte, 0, 4*b.Dx()*b.Dy())
		for y := b.Min.Y; y < b.Max.Y; y++ {
			i := input.PixOffset(b.Min.X, y)
			pix = append(pix, input.Pix[i:i+4*b.Dx()]...)
		}
		arr := jsUint8ClampedArray.New(len(pix))
		js.CopyBytesToJS(arr, pix)
		o := js.Global().Get("Object").New()
		o.Set("id", id)
		o.Set("count", a.teacher.Len())
		o.Set("input", arr)
		o.Set("inputWidth", b.Dx())
		o.Set("inputHeight", b.Dy())
		return o, nil
	}
}

// teachTrain(classes, ids, labels, onProgress?) trains on the added images
// ids[i] of class labels[i]; onProgress(done, total) is called after each
// epoch. It resolves to {file: Uint8Array, name, classes, accuracy, folds,
// images, seconds}.
func (a *api) teachTrain(args []js.Value) (job, error) {
	if len(args) < 3 {
		return nil, errorf(CodeBadArgument, "teachTrain needs class names, image ids and their class indices")
	}
	classes, err := stringsFromJS(args[0], "the class names")
	if err != nil {
		return nil, err
	}
	ids, err := intsFromJS(args[1], "the image ids")
	if err != nil {
		return nil, err
	}
	labels, err := intsFromJS(args[2], "the class indices")
	if err != nil {
		return nil, err
	}
	progress := js.Undefined()
	if len(args) > 3 && args[3].Type() == js.TypeFunction {
		progress = args[3]
	}
	return func() (js.Value, error) {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.teacher == nil {
			return js.Value{}, errorf(CodeNoModel, "no base model to teach is loaded yet")
		}
		last := -1
		r, err := a.teacher.Train(classes, ids, labels, func(done, total int) {
			// About every 2 %: each call crosses into JavaScript.
			if pct := 50 * done / total; pct != last && progress.Type() == js.TypeFunction {
				last = pct
				progress.Invoke(done, total)
			}
		})
		if err != nil {
			return js.Value{}, err
		}
		file := jsUint8Array.New(len(r.File))
		js.CopyBytesToJS(file, r.File)
		names := make([]any, len(r.Classes))
		for i, c := range r.Classes {
			names[i] = c
		}
		o := js.Global().Get("Object").New()
		o.Set("file", file)
		o.Set("name", r.Name)
		o.Set("base", a.teacher.Base())
		o.Set("classes", names)
		o.Set("accuracy", r.Accuracy)
		o.Set("folds", r.Folds)
		o.Set("images", r.Images)
		o.Set("seconds", r.Seconds)
		return o, nil
	}, nil
}

const maxTeachArray = MaxTeachImages + 1 // a longer array is refused before it is read

func stringsFromJS(v js.Value, what string) ([]string, error) {
	if !js.Global().Get("Array").Call("isArray", v).Bool() {
		return nil, errorf(CodeBadArgument, "%s must be an array", what)
	}
	n := v.Length()
	if n > maxTeachArray {
		return nil, errorf(CodeBadArgument, "%s: %d entries are too many", what, n)
	}
	out := make([]string, n)
	for i := range out {
		e := v.Index(i)
		if e.Type() != js.TypeString {
			return nil, errorf(CodeBadArgument, "%s must be strings", what)
		}
		out[i] = e.String()
	}
	return out, nil
}

func intsFromJS(v js.Value, what string) ([]int, error) {
	if !js.Global().Get("Array").Call("isArray", v).Bool() {
		return nil, errorf(CodeBadArgument, "%s must be an array", what)
	}
	n := v.Length()
	if n > maxTeachArray {
		return nil, errorf(CodeBadArgument, "%s: %d entries are too many", what, n)
	}
	out := make([]int, n)
	for i := range out {
		e := v.Index(i)
		if e.Type() != js.TypeNumber || e.Float() != float64(int(e.Float())) {
			return nil, errorf(CodeBadArgument, "%s must be whole numbers", what)
		}
		out[i] = e.Int()
	}
	return out, nil
}
