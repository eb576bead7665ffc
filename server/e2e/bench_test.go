package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/models/modeltest"
)

// BenchmarkBrowser measures the page as a user meets it, with the
// random-weight cifarnet-fast model:
//
//	cold-ms       navigation to the first prediction, empty cache
//	warm-ms       the same after a reload, served by the service worker
//	restart-ms    the same in a new browser process with the profile the
//	              first two visits left: a user's next session (the
//	              renderer no longer holds the compiled module)
//	warm-spawn-ms, warm-compile-ms, warm-model-ms, warm-image-ms
//	              the warm visit's steps: navigation to the page creating
//	              the worker, then to the module compiled, to the model
//	              loaded (Go started, weights downloaded and decoded) and
//	              to the first result shown
//	infer-ms      median in-browser inference time per image (data-ms)
//	cold-bytes    bytes the server sent for the first visit, service
//	              worker precache included (gzip where the server uses it)
//	warm-bytes    bytes the server sent for the reload
//	wasm-bytes    the WebAssembly module, raw and gzip -9
//
// Run it with:
//
//	go test -run '^$' -bench Browser -benchtime 3x ./server/e2e/
func BenchmarkBrowser(b *testing.B) {
	gz, err := os.Stat(wasmGzip(b))
	if err != nil {
		b.Fatal(err)
	}
	var coldMs, warmMs, restartMs, inferMs, coldBytes, warmBytes float64
	steps := map[string]float64{}
	for range b.N {
		c := measureVisit(b)
		coldMs += c.cold
		warmMs += c.warm
		restartMs += c.restart
		for k, v := range c.steps {
			steps[k] += v
		}
		inferMs += c.infer
		coldBytes += float64(c.coldBytes)
		warmBytes += float64(c.warmBytes)
	}
	n := float64(b.N)
	b.ReportMetric(coldMs/n, "cold-ms")
	b.ReportMetric(warmMs/n, "warm-ms")
	b.ReportMetric(restartMs/n, "restart-ms")
	for _, k := range []string{"spawn", "compile", "model", "image"} {
		b.ReportMetric(steps[k]/n, "warm-"+k+"-ms")
	}
	b.ReportMetric(inferMs/n, "infer-ms")
	b.ReportMetric(coldBytes/n, "cold-bytes")
	b.ReportMetric(warmBytes/n, "warm-bytes")
	b.ReportMetric(float64(site.wasmRaw), "wasm-bytes")
	b.ReportMetric(float64(gz.Size()), "wasm-gzip-bytes")
}

type visit struct {
	cold, warm, restart  float64
	infer                float64
	coldBytes, warmBytes int64
	steps                map[string]float64 // the warm visit's, as BenchmarkBrowser reports them
}

func measureVisit(b *testing.B) visit {
	b.Helper()
	var sent atomic.Int64
	srv := startServer(b, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.ServeHTTP(&countingWriter{ResponseWriter: w, n: &sent}, r)
		})
	})
	// A browser of its own, with a disk cache as users have (a fresh
	// context of the shared browser keeps its cache in memory, too small
	// for the weight file).
	profile := b.TempDir()
	ctx, cancel, err := launchIn(profile)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { cancel() }()
	var v visit

	// firstPrediction loads the page, asks for a sample at once, and
	// returns the page's own clock (ms since navigation) at its result.
	var marks map[string]float64
	firstPrediction := func() float64 {
		if err := chromedp.Do(ctx,
			chromedp.Navigate(srv.URL),
			chromedp.Click(chromedp.CSS(`button[data-sample="cat"]`)),
		); err != nil {
			b.Fatal(err)
		}
		waitCards(b, ctx, 1)
		var err error
		marks, err = chromedp.Run(ctx, chromedp.Evaluate[map[string]float64](`globalThis.cifarnetMarks`))
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("page clock at each step (ms): %v", marks)
		return marks["firstResult"]
	}

	v.cold = firstPrediction()
	// The first visit ends when the service worker has precached the site.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`navigator.serviceWorker.ready.then(() => true)`, chromedp.EvalAwaitPromise)); err != nil {
		b.Fatal(err)
	}
	// A user's second visit comes later than the first one's end: V8
	// hands Chromium optimised code to keep about 2 s after optimising it
	// (where it keeps any: see worker.js).
	time.Sleep(5 * time.Second)
	v.coldBytes = sent.Swap(0)

	v.warm = firstPrediction()
	v.warmBytes = sent.Swap(0)
	// A visit with the module stored compiles it in the page; the first
	// visit in the worker. A shared first worker still alive compiles
	// nothing and has the model already (worker.modelKept).
	compiled, loaded := marks["compiled"], marks["worker.modelLoaded"]
	if compiled == 0 {
		compiled = marks["worker.compiled"]
	}
	if kept, ok := marks["worker.modelKept"]; ok {
		compiled, loaded = marks["workerSpawned"], kept
	}
	v.steps = map[string]float64{
		"spawn":   marks["workerSpawned"],
		"compile": compiled - marks["workerSpawned"],
		"model":   loaded - compiled,
		"image":   marks["firstResult"] - loaded,
	}

	// Per-image inference once warmed up: every sample, median.
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](
		`document.querySelectorAll('.sample').forEach((s) => s.click())`)); err != nil {
		b.Fatal(err)
	}
	cards := waitCards(b, ctx, 11)
	var ms []float64
	for _, c := range cards[1:] {
		ms = append(ms, c.Ms)
	}
	slices.Sort(ms)
	v.infer = ms[len(ms)/2]

	// The next session: the browser closed and started again.
	cancel()
	if ctx, cancel, err = launchIn(profile); err != nil {
		b.Fatal(err)
	}
	v.restart = firstPrediction()
	controlled, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`navigator.serviceWorker.controller !== null`))
	if err != nil || !controlled {
		b.Fatalf("after the restart the service worker does not serve the page (%v): not a warm visit", err)
	}
	return v
}

func wasmGzip(b *testing.B) string {
	if site.skip != "" {
		b.Skip(site.skip)
	}
	m, err := filepath.Glob(filepath.Join(site.dist, "cifarnet.*.wasm.gz"))
	if err != nil || len(m) != 1 {
		b.Fatalf("no single gzipped module in %s: %v %v", site.dist, m, err)
	}
	return m[0]
}

// countingWriter counts the body bytes a handler writes.
type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (w *countingWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.n.Add(int64(n))
	return n, err
}

func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// BenchmarkBrowserTTA measures what test-time augmentation costs in the
// browser: the page's median inference time per image (data-ms, over the
// ten samples) for the same random-weight cifarnet-fast model without and
// with TTA (flip and translate: six views), measured side by side in each
// iteration, and their ratio.
//
//	go test -run '^$' -bench BrowserTTA -benchtime 3x ./server/e2e/
func BenchmarkBrowserTTA(b *testing.B) {
	if site.skip != "" {
		b.Skip(site.skip)
	}
	plainDist := singleModelSite(b, nil)
	ttaDist := singleModelSite(b, []string{models.TTAFlip, models.TTATranslate})
	var plain, tta float64
	for range b.N {
		plain += medianInference(b, plainDist)
		tta += medianInference(b, ttaDist)
	}
	n := float64(b.N)
	b.ReportMetric(plain/n, "plain-ms")
	b.ReportMetric(tta/n, "tta-ms")
	b.ReportMetric(tta/plain, "tta/plain")
}

// singleModelSite assembles a site whose only model is a random-weight
// cifarnet-fast with the given test-time augmentations.
func singleModelSite(b testing.TB, tta []string) string {
	b.Helper()
	zoo := filepath.Join(b.TempDir(), "zoo")
	f := modeltest.RandomFile(models.CifarNetFast(), 42)
	f.Meta.Inference.TTA = tta
	path := filepath.Join(zoo, defaultID, defaultID+models.FileExt)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := models.WriteFile(path, f); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(zoo, "DEFAULT"), []byte(defaultID+"\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	dist := filepath.Join(b.TempDir(), "dist")
	if err := assemble(dist, zoo); err != nil {
		b.Fatal(err)
	}
	return dist
}

// medianInference opens the site in dist, classifies every sample and
// returns the median of the page's inference times.
func medianInference(b *testing.B, dist string) float64 {
	b.Helper()
	ctx := newPage(b)
	defer closePage(ctx)
	srv := serveDist(b, dist, nil)
	openReady(b, ctx, srv.URL)
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](
		`document.querySelectorAll('.sample').forEach((s) => s.click())`)); err != nil {
		b.Fatal(err)
	}
	cards := waitCards(b, ctx, 10)
	ms := make([]float64, len(cards))
	for i, c := range cards {
		ms[i] = c.Ms
	}
	slices.Sort(ms)
	return ms[len(ms)/2]
}
