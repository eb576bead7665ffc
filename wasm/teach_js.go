//go:build js && wasm

package main

import (
	"encoding/binary"
	"image"
	"math"
	"syscall/js"
)

// The teach-mode API (see README.md): the page's teach workers set a base
// model and compute the features of the user's images (several workers
// share that work); the page keeps the rows and one worker trains.
func (a *api) installTeach(obj js.Value) {
	obj.Set("teachBase", promise(a.teachBase))
	obj.Set("teachFeatures", promise(a.teachFeatures))
	obj.Set("teachFeaturesRGBA", promise(a.teachFeaturesRGBA))
	obj.Set("teachTrain", promise(a.teachTrain))
}

// teachBase(urlOrBytes, name?) sets the base model; it resolves to
// {name, dim, classes}, dim the length of a feature row and classes the
// base model's.
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
		var t *Teacher
		use := func(data []byte) (err error) {
			t, err = NewTeacher(name, data)
			return err
		}
		var err error
		if fetchURL != "" {
			_, err = downloadModel(fetchURL, name, -1, js.Undefined(), use)
		} else {
			err = use(data)
		}
		if err != nil {
			return js.Value{}, err
		}
		a.mu.Lock()
		a.teacher = t
		a.mu.Unlock()
		return js.ValueOf(map[string]any{"name": name, "dim": t.Dim(), "classes": stringsToJS(t.Classes())}), nil
	}, nil
}

// teachFeatures(fileBytes) decodes an image; it resolves to {row, input,
// inputWidth, inputHeight}: the base model's features (Float32Array) and
// the model input (RGBA), for the thumbnail.
func (a *api) teachFeatures(args []js.Value) (job, error) {
	if len(args) < 1 {
		return nil, errorf(CodeBadArgument, "teachFeatures needs the bytes of an image file")
	}
	data, err := bytesFromJS(args[0], "the image file", maxImageBytes)
	if err != nil {
		return nil, err
	}
	return a.teachJob(func(t *Teacher) ([]float32, *image.NRGBA, error) { return t.Features(data) }), nil
}

// teachFeaturesRGBA(pixels, width, height) is teachFeatures for RGBA
// pixels the browser decoded.
func (a *api) teachFeaturesRGBA(args []js.Value) (job, error) {
	if len(args) < 3 || args[1].Type() != js.TypeNumber || args[2].Type() != js.TypeNumber {
		return nil, errorf(CodeBadArgument, "teachFeaturesRGBA needs pixels, width and height")
	}
	w, h := args[1].Float(), args[2].Float()
	if w < 1 || h < 1 || w != float64(int(w)) || h != float64(int(h)) || w*h > maxImageBytes/4 {
		return nil, errorf(CodeBadArgument, "teachFeaturesRGBA: width and height must be positive integers with width×height ≤ %d, got %g×%g", maxImageBytes/4, w, h)
	}
	pix, err := bytesFromJS(args[0], "the pixels", maxImageBytes)
	if err != nil {
		return nil, err
	}
	return a.teachJob(func(t *Teacher) ([]float32, *image.NRGBA, error) { return t.FeaturesRGBA(pix, int(w), int(h)) }), nil
}

func (a *api) teachJob(features func(*Teacher) ([]float32, *image.NRGBA, error)) job {
	return func() (js.Value, error) {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.teacher == nil {
			return js.Value{}, errorf(CodeNoModel, "no base model to teach is loaded yet")
		}
		row, input, err := features(a.teacher)
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
		o.Set("row", float32sToJS(row))
		o.Set("input", arr)
		o.Set("inputWidth", b.Dx())
		o.Set("inputHeight", b.Dy())
		return o, nil
	}
}

// teachTrain(classes, rows, labels, onProgress?) trains on the feature
// rows (a Float32Array of labels.length rows) of images of class
// labels[i]; onProgress(done, total) is called as epochs finish. It
// resolves to {file: Uint8Array, name, base, classes, accuracy, folds,
// images, seconds, known}, known the classes that started from the base
// model's own rows (their names are the base's).
func (a *api) teachTrain(args []js.Value) (job, error) {
	if len(args) < 3 {
		return nil, errorf(CodeBadArgument, "teachTrain needs class names, feature rows and class indices")
	}
	classes, err := stringsFromJS(args[0], "the class names")
	if err != nil {
		return nil, err
	}
	rows, err := float32sFromJS(args[1], "the feature rows")
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
		r, err := a.teacher.Train(classes, rows, labels, func(done, total int) {
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
		o := js.Global().Get("Object").New()
		o.Set("file", file)
		o.Set("name", r.Name)
		o.Set("base", a.teacher.Base())
		o.Set("classes", stringsToJS(r.Classes))
		o.Set("accuracy", r.Accuracy)
		o.Set("folds", r.Folds)
		o.Set("images", r.Images)
		o.Set("seconds", r.Seconds)
		o.Set("known", stringsToJS(r.Known))
		return o, nil
	}, nil
}

var jsFloat32Array = js.Global().Get("Float32Array")

// float32sToJS copies v into a new Float32Array.
func float32sToJS(v []float32) js.Value {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	arr := jsFloat32Array.New(len(v))
	js.CopyBytesToJS(jsUint8Array.New(arr.Get("buffer"), arr.Get("byteOffset"), arr.Get("byteLength")), b)
	return arr
}

// float32sFromJS copies a Float32Array (WebAssembly and every browser are
// little-endian).
func float32sFromJS(v js.Value, what string) ([]float32, error) {
	if !v.InstanceOf(jsFloat32Array) {
		return nil, errorf(CodeBadArgument, "%s must be a Float32Array", what)
	}
	n := v.Get("length").Int()
	if n > MaxTeachImages*(1<<16) {
		return nil, errorf(CodeTooLarge, "%s: %d values are too many", what, n)
	}
	b := make([]byte, 4*n)
	js.CopyBytesToGo(b, jsUint8Array.New(v.Get("buffer"), v.Get("byteOffset"), v.Get("byteLength")))
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out, nil
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
