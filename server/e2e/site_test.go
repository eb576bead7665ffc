// Package e2e drives the real page in headless Chromium against the real
// server (and a plain static host): upload, paste, drag and drop, errors,
// the model selector, offline use through the service worker. Every shown
// probability must equal what native Go computes for the same file.
//
// TestMain builds everything it needs into a temporary directory: the
// WebAssembly module, a model zoo of random-weight models, and the site
// (static/assemble.sh). Without Chromium the tests skip, unless
// CIFARNET_E2E=1, when they fail. CIFARNET_CHROMIUM overrides the browser
// path; CIFARNET_SCREENSHOT=path.png saves a screenshot of a page with
// results.
package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/models/modeltest"
	"github.com/cifarnet-go/cifarnet/server/app"
)

// Native Go and the browser's WebAssembly may round sums differently.
const tolerance = 1e-5

// The zoo the site is built from: the default model and a second one for
// the selector.
const (
	defaultID = "cifarnet-fast"
	tinyID    = "tiny"
)

// site is what TestMain built; skip is set when there is no browser.
var site struct {
	dist    string // assembled site
	repo    string // repository root
	models  map[string]string
	chrome  string
	skip    string
	wasmRaw int64
	// inputs of assemble.sh, for tests that assemble another site
	wasm, wasmExec string
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	chrome, err := findChromium()
	if err != nil {
		if os.Getenv("CIFARNET_E2E") == "1" {
			fmt.Fprintf(os.Stderr, "e2e: CIFARNET_E2E=1 but %v\n", err)
			return 1
		}
		site.skip = fmt.Sprintf("%v (set CIFARNET_CHROMIUM, or install chromium: apt-get install chromium)", err)
		return m.Run()
	}
	site.chrome = chrome
	tmp, err := os.MkdirTemp("", "cifarnet-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	if err := buildSite(tmp); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build the site:", err)
		return 1
	}
	code := m.Run()
	closeBrowser()
	return code
}

func findChromium() (string, error) {
	if p := os.Getenv("CIFARNET_CHROMIUM"); p != "" {
		return p, nil
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no Chromium found")
}

// buildSite compiles the module, writes random-weight models into a zoo
// and assembles the site, as build.sh does.
func buildSite(tmp string) error {
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	site.repo = filepath.Clean(filepath.Join(wd, "..", ".."))

	wasm := filepath.Join(tmp, "cifarnet.wasm")
	build := exec.Command("./build.sh", "wasm", wasm)
	build.Dir = site.repo
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("./build.sh wasm: %v\n%s", err, out)
	}
	fi, err := os.Stat(wasm)
	if err != nil {
		return err
	}
	site.wasmRaw = fi.Size()
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		return fmt.Errorf("go env GOROOT: %w", err)
	}
	wasmExec := filepath.Join(strings.TrimSpace(string(goroot)), "lib", "wasm", "wasm_exec.js")

	zoo := filepath.Join(tmp, "zoo")
	site.models = map[string]string{}
	// The server marks the newest model (by provenance.created) as the
	// default; assemble.sh marks the one zoo/DEFAULT names. Both agree
	// here.
	for id, m := range map[string]struct {
		spec    *models.Spec
		created string
	}{
		defaultID: {models.CifarNetFast(), "2025-06-02T00:00:00Z"},
		tinyID:    {modeltest.TinySpec(), "2025-06-01T00:00:00Z"},
	} {
		f := modeltest.RandomFile(m.spec, 42)
		f.Meta.Provenance.Recipe = "random weights for the e2e tests"
		f.Meta.Provenance.Created = m.created
		if id == defaultID {
			// Made-up training figures, for the model card.
			p := &f.Meta.Provenance
			p.Dataset, p.Epochs, p.Device, p.Trainer = "CIFAR-10", 12, "cuda:0 (NVIDIA H200)", "e2e"
			p.TestAccuracy, p.TestAccuracyTT, p.TrainSeconds = 0.1234, 0.1301, 3725
		}
		path := filepath.Join(zoo, id, id+models.FileExt)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := models.WriteFile(path, f); err != nil {
			return err
		}
		site.models[id] = path
	}
	// A test report for the default model only: the tiny one's card says
	// "not measured".
	if err := os.WriteFile(filepath.Join(zoo, defaultID, "report.json"), e2eReport(defaultID+models.FileExt), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(zoo, "DEFAULT"), []byte(defaultID+"\n"), 0o644); err != nil {
		return err
	}

	site.wasm, site.wasmExec = wasm, wasmExec
	site.dist = filepath.Join(tmp, "dist")
	return assemble(site.dist, zoo)
}

// reportRecall is the per-class accuracy e2eReport states for class i.
func reportRecall(i int, tta bool) float64 {
	if tta {
		return 0.5 + float64(i)/40
	}
	return 0.4 + float64(i)/20
}

// e2eReport is a trainer eval report.json for file with made-up figures,
// in the fields static/manifest reads.
func e2eReport(file string) []byte {
	classes := []string{"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}
	metrics := func(tta bool) map[string]any {
		var pc []map[string]any
		for i, c := range classes {
			pc = append(pc, map[string]any{"class": c, "recall": reportRecall(i, tta), "support": 1000})
		}
		return map[string]any{"n": 10000, "accuracy": 0.6, "per_class": pc}
	}
	r := map[string]any{
		"created": "2025-06-03T00:00:00Z",
		"model":   map[string]any{"file": file, "sha256": "e2e", "dtype": "float32"},
		"data":    map[string]any{"jpeg_derived": false},
		"result": map[string]any{
			"metrics": metrics(false),
			"tta":     map[string]any{"augmentations": []string{"flip"}, "metrics": metrics(true)},
		},
	}
	data, err := json.Marshal(r)
	if err != nil {
		panic(err)
	}
	return data
}

// assemble runs static/assemble.sh.
func assemble(dist, zoo string) error {
	cmd := exec.Command(filepath.Join(site.repo, "static", "assemble.sh"), dist, site.wasm, site.wasmExec, zoo)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("assemble.sh: %v\n%s", err, out)
	}
	return nil
}

// ---------------------------------------------------------------- browser

var browser struct {
	once   sync.Once
	ctx    context.Context
	cancel context.CancelFunc
	err    error
}

// newPage opens a tab in a fresh browser context (its own cache, storage
// and service workers) of the one shared browser.
func newPage(t testing.TB) context.Context {
	t.Helper()
	if site.skip != "" {
		t.Skip(site.skip)
	}
	browser.once.Do(func() {
		browser.ctx, browser.cancel, browser.err = launch()
	})
	if browser.err != nil {
		t.Fatal(browser.err)
	}
	ctx, cancel := chromedp.NewContext(browser.ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	// A bound on the whole test, so that a stuck page fails rather than hangs.
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancelTimeout)
	return ctx
}

// closePage closes newPage's tab now rather than when the test or
// benchmark ends: a benchmark that opens a page per round would otherwise
// keep every earlier page and its workers alive beside the one it times
// (saving their built models, warming up), on a machine of two cores.
func closePage(ctx context.Context) {
	_ = chromedp.Cancel(ctx) // a tab that is gone already needs nothing
}

// launch starts Chromium with a fresh profile on disk, removed when the
// browser is cancelled; extra adds to its options.
func launch(extra ...chromedp.ExecAllocatorOption) (context.Context, context.CancelFunc, error) {
	profile, err := os.MkdirTemp("", "cifarnet-chromium-")
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel, err := launchIn(profile, extra...)
	if err != nil {
		os.RemoveAll(profile)
		return nil, nil, err
	}
	return ctx, func() {
		cancel()
		os.RemoveAll(profile)
	}, nil
}

// launchIn starts Chromium with the profile in folder profile, which
// cancelling leaves in place (the browser closes first, writing it out),
// so that a later launch can start from it as a user's next session does.
func launchIn(profile string, extra ...chromedp.ExecAllocatorOption) (context.Context, context.CancelFunc, error) {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(site.chrome),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		// chromedp's own two, and Chromium's omnibox popup WebUI, which a
		// headless browser renders unseen at launch and after navigations,
		// taking CPU from the page (bench/pagecheck/chromeflags.mjs).
		chromedp.Flag("disable-features", "Translate,BlinkGenPropertyTrees,WebUIOmniboxPopup,WebUIOmniboxAimPopup,WebUIOmniboxFullPopup"),
		// A fake camera that needs no permission prompt, for the Camera button.
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 900),
	)
	opts = append(opts, extra...)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	cancel := func() {
		// Cancelling the browser's first context closes it gracefully.
		if err := chromedp.Cancel(ctx); err != nil {
			cancelCtx()
		}
		cancelAlloc()
	}
	// The first Run starts the browser; it must not carry a timeout.
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		return nil, nil, fmt.Errorf("start %s: %w", site.chrome, err)
	}
	return ctx, cancel, nil
}

func closeBrowser() {
	if browser.cancel != nil {
		browser.cancel()
	}
}

// ---------------------------------------------------------------- servers

// startServer serves the site with the real server application.
func startServer(t testing.TB, h func(http.Handler) http.Handler) *httptest.Server {
	t.Helper()
	return serveDist(t, site.dist, h)
}

func serveDist(t testing.TB, dist string, h func(http.Handler) http.Handler) *httptest.Server {
	t.Helper()
	e, err := app.New(app.Config{Dist: dist, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	var handler http.Handler = e
	if h != nil {
		handler = h(e)
	}
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return srv
}

// ---------------------------------------------------------------- page

// card is one result card as the page shows it.
type card struct {
	State     string    `json:"state"`
	File      string    `json:"file"`
	TopIndex  int       `json:"topIndex"`
	TopLabel  string    `json:"topLabel"`
	Shown     string    `json:"shown"` // the label text on the card
	Probs     []float32 `json:"probs"`
	Ms        float64   `json:"ms"`
	Code      string    `json:"code"`
	Message   string    `json:"message"`
	DecodedBy string    `json:"decodedBy"`
	Bars      int       `json:"bars"`
	Cells     int       `json:"cells"`
	Compact   bool      `json:"compact"` // shown in the compact layout, without bars or heat strip
}

// cardsJS reads every card, oldest first.
const cardsJS = `Array.from(document.querySelectorAll('#results .result')).reverse().map((li) => ({
	state: li.dataset.state,
	file: li.querySelector('.file').textContent,
	topIndex: li.dataset.topIndex === undefined ? -1 : Number(li.dataset.topIndex),
	topLabel: li.dataset.topLabel || '',
	shown: li.querySelector('.answer .label').textContent,
	probs: li.dataset.probs ? JSON.parse(li.dataset.probs) : [],
	ms: li.dataset.ms ? Number(li.dataset.ms) : -1,
	code: li.dataset.errorCode || '',
	message: li.querySelector('.message').textContent,
	decodedBy: li.dataset.decodedBy || '',
	bars: li.querySelectorAll('.bars li').length,
	cells: li.querySelectorAll('.heat span').length,
	compact: li.parentElement.classList.contains('compact'),
}))`

// quietPoll polls on a timer: chromedp's default polls in a
// requestAnimationFrame callback, which asks the page for a frame 60 times
// a second and shows up in the main-thread tasks the tests watch.
var quietPoll = chromedp.WithPollingInterval(20 * time.Millisecond)

// waitCards waits until the page shows n finished cards and returns them.
func waitCards(t testing.TB, ctx context.Context, n int) []card {
	t.Helper()
	expr := fmt.Sprintf(`document.querySelectorAll('#results .result:not([data-state="pending"])').length >= %d &&
		document.querySelectorAll('#results .result[data-state="pending"]').length === 0`, n)
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(60*time.Second), quietPoll)); err != nil {
		cards, _ := chromedp.Run(ctx, chromedp.Evaluate[[]card](cardsJS))
		t.Fatalf("waiting for %d results: %v; the page shows %+v", n, err, cards)
	}
	cards, err := chromedp.Run(ctx, chromedp.Evaluate[[]card](cardsJS))
	if err != nil {
		t.Fatal(err)
	}
	return cards
}

// status is the model panel's status line.
type status struct {
	State string `json:"state"`
	Code  string `json:"code"`
	Text  string `json:"text"`
	Name  string `json:"name"`
}

const statusJS = `({state: document.getElementById('status').dataset.state,
	code: document.getElementById('status').dataset.code || '',
	text: document.getElementById('status').textContent,
	name: document.querySelector('[data-fact="name"]').textContent})`

// waitStatus waits until the status line leaves the loading state, or
// shows the model name, and returns it.
func waitStatus(t testing.TB, ctx context.Context, name string) status {
	t.Helper()
	expr := `document.getElementById('status').dataset.state !== 'loading'`
	if name != "" {
		expr = fmt.Sprintf(`document.getElementById('status').dataset.state !== 'loading' &&
			document.querySelector('[data-fact="name"]').textContent === %q`, name)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(60*time.Second))); err != nil {
		st, _ := chromedp.Run(ctx, chromedp.Evaluate[status](statusJS))
		t.Fatalf("waiting for the model: %v; status %+v", err, st)
	}
	st, err := chromedp.Run(ctx, chromedp.Evaluate[status](statusJS))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// openReady navigates to url and waits for the default model.
func openReady(t testing.TB, ctx context.Context, url string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	if st := waitStatus(t, ctx, defaultID+models.FileExt); st.State != "ready" {
		t.Fatalf("model not ready: %+v", st)
	}
}

// giveFile hands bytes to the page as a File through a synthetic event:
// "paste" (a ClipboardEvent on the document) or "drop" (a DragEvent on the
// drop zone), the way a browser delivers them.
func giveFile(t testing.TB, ctx context.Context, how, name, mime string, data []byte) {
	t.Helper()
	var dispatch string
	switch how {
	case "paste":
		dispatch = `document.dispatchEvent(new ClipboardEvent('paste', {clipboardData: dt, bubbles: true, cancelable: true}))`
	case "drop":
		dispatch = `document.getElementById('drop').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}))`
	default:
		t.Fatalf("giveFile: unknown way %q", how)
	}
	js := fmt.Sprintf(`(() => {
		const bytes = Uint8Array.from(atob(%q), (c) => c.charCodeAt(0));
		const dt = new DataTransfer();
		dt.items.add(new File([bytes], %q, {type: %q}));
		%s;
		return dt.files.length;
	})()`, base64.StdEncoding.EncodeToString(data), name, mime, dispatch)
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](js))
	if err != nil || n != 1 {
		t.Fatalf("%s %s: %v (%d files)", how, name, err, n)
	}
}

// noCSPViolations fails if the page needed anything its CSP forbids.
func noCSPViolations(t testing.TB, ctx context.Context) {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`globalThis.cifarnetCSPViolations || ['page script did not run']`))
	if err != nil {
		t.Fatal(err)
	}
	if len(v) > 0 {
		t.Errorf("Content-Security-Policy violations: %v", v)
	}
}

// ---------------------------------------------------------------- native

var native struct {
	mu     sync.Mutex
	models map[string]*models.Model
}

// nativeProbs classifies an image file with the models package directly,
// and returns the model's class names too.
func nativeProbs(t testing.TB, modelID string, image []byte) ([]float32, []string) {
	t.Helper()
	return nativeProbsTTA(t, modelID, image, true)
}

// nativeProbsTTA is nativeProbs with the model's test-time augmentations
// on or off.
func nativeProbsTTA(t testing.TB, modelID string, image []byte, tta bool) ([]float32, []string) {
	t.Helper()
	native.mu.Lock()
	defer native.mu.Unlock()
	if native.models == nil {
		native.models = map[string]*models.Model{}
	}
	m := native.models[modelID]
	if m == nil {
		f, err := models.ReadFile(site.models[modelID])
		if err != nil {
			t.Fatal(err)
		}
		if m, err = models.NewModel(f); err != nil {
			t.Fatal(err)
		}
		native.models[modelID] = m
	}
	x, _, err := models.PreprocessImage(image, m.Meta.Spec.Input, m.Meta.Normalization)
	if err != nil {
		t.Fatal(err)
	}
	// With the model's test-time augmentations, as the page classifies
	// unless its TTA box is unticked.
	p := m.NewPredictor()
	predict := p.Predict
	if tta {
		predict = p.PredictTTA
	}
	probs, err := predict(x)
	if err != nil {
		t.Fatal(err)
	}
	return append([]float32(nil), probs...), m.Meta.Classes
}

// checkCard compares a finished card with what native Go computes for the
// same image file and model.
func checkCard(t testing.TB, c card, modelID string, image []byte) {
	t.Helper()
	want, classes := nativeProbs(t, modelID, image)
	if c.State != "done" {
		t.Errorf("%s: state %q (%s %s), want done", c.File, c.State, c.Code, c.Message)
		return
	}
	if len(c.Probs) != len(want) {
		t.Errorf("%s: %d probabilities shown, want %d", c.File, len(c.Probs), len(want))
		return
	}
	top := 0
	for i := range want {
		if want[i] > want[top] {
			top = i
		}
		if d := math.Abs(float64(c.Probs[i] - want[i])); !(d <= tolerance) {
			t.Errorf("%s: p[%d] = %.7f in the browser, %.7f natively", c.File, i, c.Probs[i], want[i])
		}
	}
	if c.TopIndex != top || c.TopLabel != classes[top] || c.Shown != c.TopLabel {
		t.Errorf("%s: top %d %q shown as %q, want %d %q", c.File, c.TopIndex, c.TopLabel, c.Shown, top, classes[top])
	}
	// A compact card's bars and heat strip are made when it is first
	// shown in full.
	wantBars, layout := len(want), "full"
	if c.Compact {
		wantBars, layout = 0, "compact"
	}
	if c.Bars != wantBars || c.Cells != wantBars {
		t.Errorf("%s: %d bars and %d heat cells in the %s layout, want %d of each", c.File, c.Bars, c.Cells, layout, wantBars)
	}
	if !(c.Ms > 0) {
		t.Errorf("%s: inference time %g ms", c.File, c.Ms)
	}
}

func sample(t testing.TB, class string) (path string, data []byte) {
	t.Helper()
	path = filepath.Join(site.repo, "static", "samples", class+".png")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, data
}
