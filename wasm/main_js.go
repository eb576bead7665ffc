//go:build js && wasm

package main

import (
	"encoding/json"
	"errors"
	"net/url"
	"path"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"syscall/js"
)

// Size limits checked before any bytes are copied into Go memory.
const (
	maxModelBytes = 512 << 20 // the largest preset is ~15 MB as float32
	maxImageBytes = 100 << 20 // the page refuses larger files too
)

// Version is the API version reported as cifarnet.version.
const Version = "1"

func main() {
	install(js.Global())
	// The host (worker.js) may wait for this instead of polling.
	if ready := js.Global().Get("cifarnetReady"); ready.Type() == js.TypeFunction {
		ready.Invoke()
	}
	select {} // keep the callbacks alive
}

// api is the state behind globalThis.cifarnet: the current classifier.
// JavaScript is single-threaded, but calls run in goroutines that interleave
// where a download waits, so the classifier is guarded. The lock is never
// held across a wait for JavaScript, so a synchronous call (info) cannot
// block on it.
type api struct {
	mu      sync.Mutex
	cur     *Classifier
	teacher *Teacher // teach mode (teach_js.go)
}

// install puts the API object on global as "cifarnet".
func install(global js.Value) {
	a := &api{}
	obj := js.Global().Get("Object").New()
	obj.Set("version", Version)
	obj.Set("load", promise(a.load))
	obj.Set("loadBytes", promise(a.loadBytes))
	obj.Set("loadSnapshot", promise(a.loadSnapshot))
	obj.Set("snapshot", promise(a.snapshot))
	obj.Set("classify", promise(a.classify))
	obj.Set("classifyRGBA", promise(a.classifyRGBA))
	obj.Set("classifyPart", promise(a.classifyPart))
	obj.Set("classifyPartRGBA", promise(a.classifyPartRGBA))
	obj.Set("info", js.FuncOf(func(js.Value, []js.Value) any {
		c := a.current()
		if c == nil {
			return js.Null()
		}
		v, err := toJSON(c.Info())
		if err != nil {
			return jsError(err)
		}
		return v
	}))
	obj.Set("setTTA", promise(a.setTTA))
	a.installTeach(obj)
	global.Set("cifarnet", obj)
}

func (a *api) current() *Classifier {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cur
}

// use makes c the current classifier and returns its info. built says c
// came from a snapshot, which leaves no garbage of its own.
func (a *api) use(c *Classifier, built bool) (js.Value, error) {
	a.mu.Lock()
	prev := a.cur
	a.cur = c
	a.mu.Unlock()
	// Loading a weight file leaves garbage several times the model's size
	// (the file, its decoded tensors, transform buffers), and any load
	// the model before it. Collecting it now sets the heap's next goal
	// from what stays, so that the first images do not grow the module's
	// memory, which never shrinks, towards twice the load's peak.
	if !built || prev != nil {
		runtime.GC()
	}
	return toJSON(c.Info())
}

// job is the asynchronous part of a call; method parses the arguments
// synchronously (so the caller may reuse its buffers at once) and returns
// the job.
type (
	job    func() (js.Value, error)
	method func(args []js.Value) (job, error)
)

// load(url, onProgress?, expectedSize?) downloads a weight file and makes it
// the current model. onProgress(loaded, total) is called as bytes arrive;
// total is expectedSize when given (the manifest knows it even when the
// response is compressed), else the Content-Length, else -1.
func (a *api) load(args []js.Value) (job, error) {
	if len(args) < 1 || args[0].Type() != js.TypeString {
		return nil, errorf(CodeBadArgument, "load needs the URL of a weight file")
	}
	target, err := resolveURL(args[0].String())
	if err != nil {
		return nil, err
	}
	progress := js.Undefined()
	if len(args) > 1 && args[1].Type() == js.TypeFunction {
		progress = args[1]
	}
	expected := int64(-1)
	if len(args) > 2 && args[2].Type() == js.TypeNumber && args[2].Float() > 0 {
		expected = int64(args[2].Float())
	}
	return func() (js.Value, error) {
		name := path.Base(target.Path)
		var c *Classifier
		refetched, err := downloadModel(target.String(), name, expected, progress, func(data []byte) (err error) {
			c, err = NewClassifier(name, data)
			return err
		})
		if err != nil {
			return js.Value{}, err
		}
		c.info.Refetched = refetched
		return a.use(c, false)
	}, nil
}

// downloadModel downloads a weight file and hands it to use. A copy that
// use refuses may be a damaged cache entry (the service worker's, the HTTP
// cache): it is fetched once more past the caches, and refetched says the
// second copy was the one used.
func downloadModel(url, name string, expected int64, progress js.Value, use func([]byte) error) (refetched bool, err error) {
	data, err := download(url, name, expected, progress, false)
	if err != nil {
		return false, err
	}
	if err := use(data); err == nil {
		return false, nil
	}
	if data, err = download(url, name, expected, progress, true); err != nil {
		return false, err
	}
	return true, use(data)
}

// loadBytes(bytes, name?) makes a weight file already in memory (a file
// the user picked) the current model.
func (a *api) loadBytes(args []js.Value) (job, error) {
	if len(args) < 1 {
		return nil, errorf(CodeBadArgument, "loadBytes needs the bytes of a weight file")
	}
	data, err := bytesFromJS(args[0], "the weight file", maxModelBytes)
	if err != nil {
		return nil, err
	}
	name := "model.cnw"
	if len(args) > 1 && args[1].Type() == js.TypeString {
		name = args[1].String()
	}
	return func() (js.Value, error) {
		c, err := NewClassifier(name, data)
		if err != nil {
			return js.Value{}, err
		}
		return a.use(c, false)
	}, nil
}

// loadSnapshot(bytes, name, size) makes a model saved by snapshot() the
// current model: the page's cache of built models, which skips decoding
// and transforming the weights. size is the weight file's byte size.
func (a *api) loadSnapshot(args []js.Value) (job, error) {
	if len(args) < 3 || args[1].Type() != js.TypeString || args[2].Type() != js.TypeNumber {
		return nil, errorf(CodeBadArgument, "loadSnapshot needs the snapshot's bytes, the model's name and its weight file's size")
	}
	data, err := bytesFromJS(args[0], "the model snapshot", 2*maxModelBytes)
	if err != nil {
		return nil, err
	}
	name, size := args[1].String(), args[2].Int()
	return func() (js.Value, error) {
		c, err := NewClassifierFromSnapshot(name, data, size)
		if err != nil {
			return js.Value{}, err
		}
		return a.use(c, true)
	}, nil
}

// snapshot() resolves to the current model as a Uint8Array that
// loadSnapshot reads, in this build of the module only.
func (a *api) snapshot([]js.Value) (job, error) {
	return func() (js.Value, error) {
		c := a.current()
		if c == nil {
			return js.Value{}, errorf(CodeNoModel, "no model is loaded yet")
		}
		parts, err := c.Snapshot()
		if err != nil {
			return js.Value{}, errorf(CodeInternal, "%v", err)
		}
		n := 0
		for _, p := range parts {
			n += len(p)
		}
		// Copied part by part: no second copy of the model in Go's heap,
		// which would grow the module's memory for good.
		out := jsUint8Array.New(n)
		off := 0
		for _, p := range parts {
			js.CopyBytesToJS(out.Call("subarray", off, off+len(p)), p)
			off += len(p)
		}
		return out, nil
	}, nil
}

// classify(bytes, onFirst?) decodes and classifies an image file. With
// test-time augmentation on, onFirst(result) is called with the answer
// from the image alone before the other views run (ClassifyFirst).
func (a *api) classify(args []js.Value) (job, error) {
	if len(args) < 1 {
		return nil, errorf(CodeBadArgument, "classify needs the bytes of an image file")
	}
	data, err := bytesFromJS(args[0], "the image file", maxImageBytes)
	if err != nil {
		return nil, err
	}
	first := onFirstArg(args, 1)
	return a.run(func(c *Classifier) (*Result, error) { return c.ClassifyFirst(data, first(c)) }), nil
}

// onFirstArg reads the optional onFirst callback at args[at]: for a
// classifier, the function that hands it a Result (nil without one).
func onFirstArg(args []js.Value, at int) func(*Classifier) func(*Result) {
	if len(args) <= at || args[at].Type() != js.TypeFunction {
		return func(*Classifier) func(*Result) { return nil }
	}
	fn := args[at]
	return func(c *Classifier) func(*Result) {
		return func(r *Result) { fn.Invoke(resultToJS(r, c.info.Classes)) }
	}
}

// setTTA(on) turns the current model's test-time augmentations on or off
// and resolves to its Info.
func (a *api) setTTA(args []js.Value) (job, error) {
	if len(args) < 1 || args[0].Type() != js.TypeBoolean {
		return nil, errorf(CodeBadArgument, "setTTA takes true or false")
	}
	on := args[0].Bool()
	return func() (js.Value, error) {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.cur == nil {
			return js.Value{}, errorf(CodeNoModel, "no model is loaded yet")
		}
		return toJSON(a.cur.SetTTA(on))
	}, nil
}

// classifyRGBA(pixels, width, height, onFirst?) classifies RGBA pixels
// (ImageData.data); onFirst as for classify.
func (a *api) classifyRGBA(args []js.Value) (job, error) {
	pix, w, h, err := rgbaArgs(args, "classifyRGBA")
	if err != nil {
		return nil, err
	}
	first := onFirstArg(args, 3)
	return a.run(func(c *Classifier) (*Result, error) { return c.ClassifyRGBAFirst(pix, w, h, first(c)) }), nil
}

// rgbaArgs copies the pixels, width and height of classifyRGBA's arguments.
func rgbaArgs(args []js.Value, name string) (pix []byte, w, h int, err error) {
	if len(args) < 3 || args[1].Type() != js.TypeNumber || args[2].Type() != js.TypeNumber {
		return nil, 0, 0, errorf(CodeBadArgument, "%s needs pixels, width and height", name)
	}
	fw, fh := args[1].Float(), args[2].Float()
	if fw < 1 || fh < 1 || fw != float64(int(fw)) || fh != float64(int(fh)) || fw*fh > maxImageBytes/4 {
		return nil, 0, 0, errorf(CodeBadArgument, "%s: width and height must be positive integers with width×height ≤ %d, got %g×%g", name, maxImageBytes/4, fw, fh)
	}
	pix, err = bytesFromJS(args[0], "the pixels", maxImageBytes)
	return pix, int(fw), int(fh), err
}

// classifyPart(bytes, part, parts) is classify for one part of the
// test-time views: the page splits one image's views across its workers.
func (a *api) classifyPart(args []js.Value) (job, error) {
	part, parts, err := partArgs(args, 1, "classifyPart(bytes, part, parts)")
	if err != nil {
		return nil, err
	}
	data, err := bytesFromJS(args[0], "the image file", maxImageBytes)
	if err != nil {
		return nil, err
	}
	return a.run(func(c *Classifier) (*Result, error) { return c.ClassifyPart(data, part, parts) }), nil
}

// classifyPartRGBA(pixels, width, height, part, parts) is classifyRGBA
// for one part of the test-time views.
func (a *api) classifyPartRGBA(args []js.Value) (job, error) {
	part, parts, err := partArgs(args, 3, "classifyPartRGBA(pixels, width, height, part, parts)")
	if err != nil {
		return nil, err
	}
	pix, w, h, err := rgbaArgs(args, "classifyPartRGBA")
	if err != nil {
		return nil, err
	}
	return a.run(func(c *Classifier) (*Result, error) { return c.ClassifyPartRGBA(pix, w, h, part, parts) }), nil
}

// partArgs reads the integers part and parts at args[at:].
func partArgs(args []js.Value, at int, usage string) (part, parts int, err error) {
	if len(args) < at+2 || args[at].Type() != js.TypeNumber || args[at+1].Type() != js.TypeNumber {
		return 0, 0, errorf(CodeBadArgument, "%s needs the part and the number of parts", usage)
	}
	p, n := args[at].Float(), args[at+1].Float()
	if p != float64(int(p)) || n != float64(int(n)) || n < 1 || p < 0 || p >= n {
		return 0, 0, errorf(CodeBadArgument, "%s: part %g of %g", usage, p, n)
	}
	return int(p), int(n), nil
}

// run classifies with the current model, holding the lock so that
// predictions never overlap.
func (a *api) run(classify func(*Classifier) (*Result, error)) job {
	return func() (js.Value, error) {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.cur == nil {
			return js.Value{}, errorf(CodeNoModel, "no model is loaded yet")
		}
		r, err := classify(a.cur)
		if err != nil {
			return js.Value{}, err
		}
		return resultToJS(r, a.cur.info.Classes), nil
	}
}

// download fetches url with the browser's fetch into memory; reload asks
// for a copy from the server, not from a cache. (Go's net/http would do
// the same through fetch, but it links in TLS, X.509 and HTTP/2 code that
// never runs here and would double the module.)
func download(url, name string, expected int64, progress js.Value, reload bool) ([]byte, error) {
	opts := map[string]any{}
	if reload {
		opts["cache"] = "reload"
	}
	resp, err := await(js.Global().Call("fetch", url, opts))
	if err != nil {
		return nil, errorf(CodeNetwork, "cannot download the model %s: %v", name, err)
	}
	if !resp.Get("ok").Bool() {
		return nil, errorf(CodeNetwork, "cannot download the model %s: the server answered %d %s",
			name, resp.Get("status").Int(), resp.Get("statusText").String())
	}
	total := expected
	if total <= 0 {
		if n, err := strconv.ParseInt(headerValue(resp, "Content-Length"), 10, 64); err == nil {
			total = n
		} else {
			total = -1
		}
	}
	if total > maxModelBytes {
		return nil, errorf(CodeBadModel, "the model %s is %d bytes; the limit is %d", name, total, maxModelBytes)
	}
	body := resp.Get("body")
	if body.IsNull() || body.IsUndefined() {
		return nil, errorf(CodeNetwork, "cannot download the model %s: the response has no body", name)
	}
	reader := body.Call("getReader")
	var buf []byte
	if total > 0 {
		buf = make([]byte, 0, total)
	}
	var reported int64
	for {
		chunk, err := await(reader.Call("read"))
		if err != nil {
			return nil, errorf(CodeNetwork, "the download of %s broke off after %d bytes: %v", name, len(buf), err)
		}
		if chunk.Get("done").Bool() {
			break
		}
		v := chunk.Get("value")
		n := v.Get("byteLength").Int()
		if len(buf)+n > maxModelBytes {
			reader.Call("cancel")
			return nil, errorf(CodeBadModel, "the model %s is larger than %d bytes", name, maxModelBytes)
		}
		buf = slices.Grow(buf, n)
		js.CopyBytesToGo(buf[len(buf):len(buf)+n], v)
		buf = buf[:len(buf)+n]
		// Report every 1% or so; each call crosses into JavaScript.
		if got := int64(len(buf)); got-reported >= max(total/100, 64<<10) {
			reportProgress(progress, got, total)
			reported = got
		}
	}
	reportProgress(progress, int64(len(buf)), total)
	return buf, nil
}

func reportProgress(progress js.Value, loaded, total int64) {
	if progress.Type() == js.TypeFunction {
		progress.Invoke(loaded, total)
	}
}

func headerValue(resp js.Value, name string) string {
	v := resp.Get("headers").Call("get", name)
	if v.Type() != js.TypeString {
		return ""
	}
	return v.String()
}

// await blocks the calling goroutine (never the browser) until p settles.
func await(p js.Value) (js.Value, error) {
	type outcome struct {
		v   js.Value
		err error
	}
	ch := make(chan outcome, 1)
	onOK := js.FuncOf(func(_ js.Value, args []js.Value) any {
		ch <- outcome{v: args[0]}
		return nil
	})
	onErr := js.FuncOf(func(_ js.Value, args []js.Value) any {
		msg := "unknown error"
		if e := args[0]; e.Type() == js.TypeObject && e.Get("message").Type() == js.TypeString {
			msg = e.Get("message").String()
		} else if e.Type() != js.TypeUndefined {
			msg = e.Call("toString").String()
		}
		ch <- outcome{err: errors.New(msg)}
		return nil
	})
	defer onOK.Release()
	defer onErr.Release()
	p.Call("then", onOK, onErr)
	o := <-ch
	return o.v, o.err
}

// resolveURL makes raw absolute against the page (or worker) location,
// because Go's HTTP client needs absolute URLs.
func resolveURL(raw string) (*url.URL, error) {
	ref, err := url.Parse(raw)
	if err != nil {
		return nil, errorf(CodeBadArgument, "bad model URL %q: %v", raw, err)
	}
	if ref.IsAbs() {
		return ref, nil
	}
	loc := js.Global().Get("location")
	if loc.Type() != js.TypeObject {
		return nil, errorf(CodeBadArgument, "relative model URL %q needs a page location to resolve against", raw)
	}
	base, err := url.Parse(loc.Get("href").String())
	if err != nil {
		return nil, errorf(CodeInternal, "page location: %v", err)
	}
	return base.ResolveReference(ref), nil
}

var (
	jsUint8Array        = js.Global().Get("Uint8Array")
	jsUint8ClampedArray = js.Global().Get("Uint8ClampedArray")
	jsArrayBuffer       = js.Global().Get("ArrayBuffer")
)

// bytesFromJS copies a Uint8Array, Uint8ClampedArray or ArrayBuffer.
func bytesFromJS(v js.Value, what string, limit int) ([]byte, error) {
	switch {
	case v.InstanceOf(jsUint8Array), v.InstanceOf(jsUint8ClampedArray):
	case v.InstanceOf(jsArrayBuffer):
		v = jsUint8Array.New(v)
	default:
		return nil, errorf(CodeBadArgument, "%s must be a Uint8Array or an ArrayBuffer", what)
	}
	n := v.Get("byteLength").Int()
	if n > limit {
		return nil, errorf(CodeTooLarge, "%s is %.1f MB; the limit is %d MB", what, float64(n)/(1<<20), limit>>20)
	}
	b := make([]byte, n)
	js.CopyBytesToGo(b, v)
	return b, nil
}

// resultToJS builds {probs, top: {index, label, p}, classes, tta, ms,
// totalMs, input, inputWidth, inputHeight}.
//
// A part (classifyPart) has {logits, part, parts, softmax} instead of
// probs and top.
func resultToJS(r *Result, classes []string) js.Value {
	o := js.Global().Get("Object").New()
	if r.Parts > 0 {
		o.Set("logits", float32Array(r.Logits))
		o.Set("part", r.Part)
		o.Set("parts", r.Parts)
		o.Set("softmax", r.Softmax)
	} else {
		o.Set("probs", float32Array(r.Probs))
		label := ""
		if r.Top < len(classes) {
			label = classes[r.Top]
		}
		o.Set("top", map[string]any{"index": r.Top, "label": label, "p": r.Probs[r.Top]})
	}
	o.Set("classes", stringsToJS(classes))
	o.Set("tta", r.TTA)
	o.Set("ms", float64(r.Infer.Microseconds())/1e3)
	o.Set("totalMs", float64(r.Total.Microseconds())/1e3)

	b := r.Input.Bounds()
	pix := make([]byte, 0, 4*b.Dx()*b.Dy())
	for y := b.Min.Y; y < b.Max.Y; y++ {
		i := r.Input.PixOffset(b.Min.X, y)
		pix = append(pix, r.Input.Pix[i:i+4*b.Dx()]...)
	}
	input := jsUint8ClampedArray.New(len(pix))
	js.CopyBytesToJS(input, pix)
	o.Set("input", input)
	o.Set("inputWidth", b.Dx())
	o.Set("inputHeight", b.Dy())
	return o
}

// stringsToJS makes s a value js.ValueOf turns into an array of strings.
func stringsToJS(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func float32Array(v []float32) js.Value {
	a := js.Global().Get("Float32Array").New(len(v))
	for i, x := range v {
		a.SetIndex(i, x)
	}
	return a
}

// toJSON converts v to a plain JavaScript object through JSON.
func toJSON(v any) (js.Value, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return js.Value{}, errorf(CodeInternal, "encode: %v", err)
	}
	return js.Global().Get("JSON").Call("parse", string(b)), nil
}

// promise wraps m as a JavaScript function returning a Promise. Argument
// errors reject at once; the job runs in a goroutine so that the browser's
// event loop (and fetch) keep going. A panic, which would kill the module,
// is turned into a rejection.
func promise(m method) js.Func {
	return js.FuncOf(func(_ js.Value, args []js.Value) any {
		var run job
		err := protect(func() (err error) {
			run, err = m(args)
			return err
		})
		return newPromise(func(resolve, reject js.Value) {
			if err != nil {
				reject.Invoke(jsError(err))
				return
			}
			go func() {
				var v js.Value
				err := protect(func() (err error) {
					v, err = run()
					return err
				})
				if err != nil {
					reject.Invoke(jsError(err))
					return
				}
				resolve.Invoke(v)
			}()
		})
	})
}

func newPromise(body func(resolve, reject js.Value)) js.Value {
	executor := js.FuncOf(func(_ js.Value, args []js.Value) any {
		body(args[0], args[1])
		return nil
	})
	defer executor.Release() // the executor runs synchronously inside new Promise
	return js.Global().Get("Promise").New(executor)
}

// protect runs f, turning a panic into an internal error.
func protect(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errorf(CodeInternal, "internal error: %v", r)
		}
	}()
	return f()
}

// jsError makes a JavaScript Error with err's message and code.
func jsError(err error) js.Value {
	e := js.Global().Get("Error").New(err.Error())
	e.Set("code", ErrorCode(err))
	return e
}
