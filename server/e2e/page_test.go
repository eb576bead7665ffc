package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/cifarnet-go/cifarnet/models"
)

func TestUploadClassifies(t *testing.T) {
	ctx := newPage(t)
	srv := startServer(t, nil)
	openReady(t, ctx, srv.URL)

	// The model panel describes the default model.
	facts, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]string](`Object.fromEntries(
		Array.from(document.querySelectorAll('[data-fact]')).map((d) => [d.dataset.fact, d.textContent]))`))
	if err != nil {
		t.Fatal(err)
	}
	params, _ := models.CifarNetFast().TrainableParams()
	if !strings.Contains(facts["arch"], "cifarnet-fast") || facts["params"] != commas(params) ||
		facts["dtype"] != "float32" || !strings.HasSuffix(facts["size"], "MB") {
		t.Errorf("model panel shows %v", facts)
	}

	// Every control has a name, and the file picker takes keyboard focus
	// (it is visually hidden behind its label, the drop zone).
	unnamed, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('button, select, input')).filter((el) => {
		const img = el.querySelector('img');
		const name = (el.labels && el.labels.length ? el.labels[0].textContent : '') ||
			el.getAttribute('aria-label') || el.textContent.trim() || (img ? img.alt : '');
		return !name.trim();
	}).map((el) => el.outerHTML.slice(0, 80))`))
	if err != nil {
		t.Fatal(err)
	}
	if len(unnamed) > 0 {
		t.Errorf("controls without an accessible name: %q", unnamed)
	}
	focused, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('file').focus(), document.activeElement.id`))
	if err != nil || focused != "file" {
		t.Errorf("the file input cannot take focus (active element %q, %v)", focused, err)
	}

	cat, catData := sample(t, "cat")
	frog, frogData := sample(t, "frog")
	ship := filepath.Join(site.repo, "wasm", "testdata", "ship-50x37.jpg")
	shipData, err := os.ReadFile(ship)
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{cat, ship, frog})); err != nil {
		t.Fatal(err)
	}
	cards := waitCards(t, ctx, 3)
	if len(cards) != 3 {
		t.Fatalf("%d cards, want 3", len(cards))
	}
	for i, image := range [][]byte{catData, shipData, frogData} {
		checkCard(t, cards[i], defaultID, image)
	}
	noCSPViolations(t, ctx)

	screenshot(t, ctx, "")

	// At phone width nothing may stick out sideways.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(360, 800)); err != nil {
		t.Fatal(err)
	}
	width, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
	if err != nil {
		t.Fatal(err)
	}
	if width > 360 {
		t.Errorf("at 360 px the page is %d px wide", width)
	}
	screenshot(t, ctx, "-360")
}

// screenshot saves the whole page as PNG when CIFARNET_SCREENSHOT names a
// file; suffix goes before its extension.
func screenshot(t *testing.T, ctx context.Context, suffix string) {
	t.Helper()
	path := os.Getenv("CIFARNET_SCREENSHOT")
	if path == "" {
		return
	}
	path = strings.TrimSuffix(path, ".png") + suffix + ".png"
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err == nil {
		err = os.WriteFile(path, png, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

func TestPasteAndDrop(t *testing.T) {
	ctx := newPage(t)
	srv := startServer(t, nil)
	openReady(t, ctx, srv.URL)

	_, horse := sample(t, "horse")
	ship, err := os.ReadFile(filepath.Join(site.repo, "wasm", "testdata", "ship-50x37.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	giveFile(t, ctx, "paste", "pasted.png", "image/png", horse)
	checkCard(t, waitCards(t, ctx, 1)[0], defaultID, horse)
	giveFile(t, ctx, "drop", "dropped.jpg", "image/jpeg", ship)
	cards := waitCards(t, ctx, 2)
	if cards[1].File != "dropped.jpg" {
		t.Fatalf("second card is %q", cards[1].File)
	}
	checkCard(t, cards[1], defaultID, ship)
	noCSPViolations(t, ctx)
}

// Bad files give a plain-words error on their own card, and the page goes
// on working; formats only the browser reads go through its decoder.
func TestBadInputKeepsPageUsable(t *testing.T) {
	ctx := newPage(t)
	srv := startServer(t, nil)
	openReady(t, ctx, srv.URL)

	_, cat := sample(t, "cat")
	dir := t.TempDir()
	files := map[string][]byte{
		"truncated.png": cat[:len(cat)/2],
		"notes.txt":     []byte("these are notes, not a picture\n"),
		"huge.png":      pngHeader(30000, 30000),
	}
	var paths []string
	for _, name := range []string{"truncated.png", "notes.txt", "huge.png"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, files[name], 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	if err := chromedp.Do(ctx, chromedp.SetUploadFiles(chromedp.CSS("#file"), paths)); err != nil {
		t.Fatal(err)
	}
	cards := waitCards(t, ctx, 3)
	for i, want := range []struct{ code, says string }{
		{"corrupt_image", "damaged or incomplete"},
		{"unsupported_format", "not an image"},
		{"too_large", "too large"},
	} {
		c := cards[i]
		if c.State != "error" || c.Code != want.code || !strings.Contains(c.Message, want.says) {
			t.Errorf("%s: state %q code %q message %q; want error %q saying %q", c.File, c.State, c.Code, c.Message, want.code, want.says)
		}
	}

	// A good file after the bad ones.
	deer, deerData := sample(t, "deer")
	if err := chromedp.Do(ctx, chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{deer})); err != nil {
		t.Fatal(err)
	}
	checkCard(t, waitCards(t, ctx, 4)[3], defaultID, deerData)

	// An icon file: Go has no decoder for it, the browser has.
	_, dog := sample(t, "dog")
	giveFile(t, ctx, "drop", "dog.ico", "image/x-icon", icoWithPNG(dog))
	c := waitCards(t, ctx, 5)[4]
	checkCard(t, c, defaultID, dog)
	if c.DecodedBy != "browser" {
		t.Errorf("dog.ico decoded by %q, want browser", c.DecodedBy)
	}

	// A damaged weight file is refused in plain words; the model in use
	// stays.
	tiny, err := os.ReadFile(site.models[tinyID])
	if err != nil {
		t.Fatal(err)
	}
	tiny[len(tiny)-8] ^= 0x10
	giveFile(t, ctx, "drop", "broken.cnw", "application/octet-stream", tiny)
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](`document.getElementById('status').dataset.state === 'error'`)); err != nil {
		t.Fatalf("no error for a damaged weight file: %v", err)
	}
	st, err := chromedp.Run(ctx, chromedp.Evaluate[status](statusJS))
	if err != nil {
		t.Fatal(err)
	}
	if st.Code != "bad_model" || !strings.Contains(st.Text, "broken.cnw") || !strings.Contains(st.Text, "damaged") {
		t.Errorf("status after a damaged weight file: %+v", st)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`button[data-sample="cat"]`))); err != nil {
		t.Fatal(err)
	}
	checkCard(t, waitCards(t, ctx, 6)[5], defaultID, cat)
	noCSPViolations(t, ctx)
	screenshot(t, ctx, "-errors")
}

// An image over models.MaxImagePixels is decoded and scaled down by the
// browser. A plain colour survives any resampling, so the result must be
// that of a small image of the same colour.
func TestHugeImageScaledByBrowser(t *testing.T) {
	ctx := newPage(t)
	srv := startServer(t, nil)
	openReady(t, ctx, srv.URL)

	c := color.RGBA{R: 200, G: 120, B: 40, A: 255}
	huge, small := plainPNG(t, 8000, 5001, c), plainPNG(t, 32, 32, c)
	if 8000*5001 <= models.MaxImagePixels {
		t.Fatal("the test image is not over the limit")
	}
	path := filepath.Join(t.TempDir(), "huge.png")
	if err := os.WriteFile(path, huge, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{path})); err != nil {
		t.Fatal(err)
	}
	card := waitCards(t, ctx, 1)[0]
	checkCard(t, card, defaultID, small)
	if card.DecodedBy != "browser" {
		t.Errorf("decoded by %q, want browser", card.DecodedBy)
	}
}

// plainPNG encodes a w×h image of one colour (paletted, so that even a
// huge one is quick to make and small to store).
func plainPNG(t *testing.T, w, h int, c color.Color) []byte {
	t.Helper()
	img := image.NewPaletted(image.Rect(0, 0, w, h), color.Palette{c})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// chooseModel picks the model whose name starts with id in the page's
// model selector, as a user does.
func chooseModel(t testing.TB, ctx context.Context, id string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => {
		const sel = document.getElementById('model-select');
		sel.value = Array.from(sel.options).find((o) => o.textContent.startsWith(%q)).value;
		sel.dispatchEvent(new Event('change'));
	})()`, id))); err != nil {
		t.Fatal(err)
	}
}

func TestModelSelector(t *testing.T) {
	ctx := newPage(t)
	srv := startServer(t, nil)
	openReady(t, ctx, srv.URL)

	options, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`document.getElementById('model-choice').hidden ? [] :
		Array.from(document.querySelectorAll('#model-select option')).map((o) => o.textContent)`))
	if err != nil {
		t.Fatal(err)
	}
	if len(options) != 2 {
		t.Fatalf("model selector offers %q, want both models", options)
	}
	chooseModel(t, ctx, tinyID)
	if st := waitStatus(t, ctx, tinyID+models.FileExt); st.State != "ready" {
		t.Fatalf("after choosing tiny: %+v", st)
	}
	_, ship := sample(t, "ship")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`button[data-sample="ship"]`))); err != nil {
		t.Fatal(err)
	}
	checkCard(t, waitCards(t, ctx, 1)[0], tinyID, ship)
}

// After one visit the service worker has everything: with the server gone
// and the network off, a reload still classifies, with a shared first
// worker started afresh.
func TestOfflineReload(t *testing.T) {
	ctx := newPage(t)
	srv := startServer(t, nil)
	openReady(t, ctx, srv.URL)
	waitControlled(t, ctx)
	// Navigation preload: the page's request goes out while the service
	// worker starts; offline it fails and the cached page answers.
	preload, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`navigator.serviceWorker.ready.then((r) => r.navigationPreload.getState()).then((s) => s.enabled)`, chromedp.EvalAwaitPromise))
	if err != nil || !preload {
		t.Errorf("navigation preload enabled: %v (%v)", preload, err)
	}
	srv.Close()
	if err := chromedp.Do(ctx, goOffline); err != nil {
		t.Fatalf("emulate offline: %v", err)
	}
	// The shared first worker too starts afresh, from the caches.
	closeSharedWorkers(t, ctx)
	openReady(t, ctx, srv.URL)
	if _, ok := marksOf(t, ctx)["sharedWorker"]; !ok {
		t.Error("offline, the first worker is not a shared one")
	}
	_, cat := sample(t, "cat")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`button[data-sample="cat"]`))); err != nil {
		t.Fatal(err)
	}
	checkCard(t, waitCards(t, ctx, 1)[0], defaultID, cat)
}

// waitControlled waits until the service worker serves the page.
func waitControlled(t testing.TB, ctx context.Context) {
	t.Helper()
	controlled, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(async () => {
		await navigator.serviceWorker.ready;
		if (!navigator.serviceWorker.controller) {
			await new Promise((resolve) => navigator.serviceWorker.addEventListener('controllerchange', resolve, {once: true}));
		}
		return navigator.serviceWorker.controller !== null;
	})()`, chromedp.EvalAwaitPromise))
	if err != nil || !controlled {
		t.Fatalf("service worker not in control: %v", err)
	}
}

// A later visit compiles the module from the worker's stored copy: with a
// dedicated first worker the page does, while the worker starts, and hands
// it over; a shared first worker starting afresh compiles it itself. A
// stored copy that is damaged is not used: the worker downloads the
// module again, stores it, and the page classifies.
func TestStoredModule(t *testing.T) {
	for _, shared := range []bool{false, true} {
		t.Run(fmt.Sprintf("shared=%v", shared), func(t *testing.T) { testStoredModule(t, shared) })
	}
}

func testStoredModule(t *testing.T, shared bool) {
	ctx := newPage(t)
	if !shared {
		withoutSharedWorker(t, ctx)
	}
	srv := startServer(t, nil)
	openReady(t, ctx, srv.URL)
	waitControlled(t, ctx)
	const entry = `(async () => {
		const cache = await caches.open('cifarnet-wasm');
		const keys = await cache.keys();
		return {cache, keys};
	})()`
	waitStored := func(when string) {
		t.Helper()
		js := `(async () => {
			const {cache, keys} = await ` + entry + `;
			if (keys.length !== 1) return -keys.length;
			return (await (await cache.match(keys[0])).arrayBuffer()).byteLength;
		})()`
		var n int64
		var err error
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if n, err = chromedp.Run(ctx, chromedp.Evaluate[int64](js, chromedp.EvalAwaitPromise)); err == nil && n == site.wasmRaw {
				return
			}
		}
		t.Fatalf("%s: the stored module has %d bytes (%v), want %d", when, n, err, site.wasmRaw)
	}
	_, cat := sample(t, "cat")
	visit := func(when string, pageCompiled bool) {
		t.Helper()
		if shared {
			closeSharedWorkers(t, ctx) // a fresh start, as after the worker's lifetime
		}
		openReady(t, ctx, srv.URL)
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`button[data-sample="cat"]`))); err != nil {
			t.Fatal(err)
		}
		checkCard(t, waitCards(t, ctx, 1)[0], defaultID, cat)
		marks, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]float64](`globalThis.cifarnetMarks`))
		if err != nil {
			t.Fatal(err)
		}
		_, page := marks["compiled"]
		_, worker := marks["worker.compiled"]
		_, isShared := marks["sharedWorker"]
		switch {
		case isShared != shared:
			t.Errorf("%s: shared first worker %v, want %v", when, isShared, shared)
		case shared && !worker:
			t.Errorf("%s: the shared worker did not compile the module", when)
		case !shared && (page != pageCompiled || worker == pageCompiled):
			t.Errorf("%s: compiled by the page %v, by the worker %v; want the page %v", when, page, worker, pageCompiled)
		}
	}
	waitStored("first visit")
	visit("second visit", true)

	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(async () => {
		const {cache, keys} = await `+entry+`;
		await cache.put(keys[0], new Response(new Uint8Array(4096).fill(7), {headers: {'Content-Type': 'application/wasm'}}));
		return true;
	})()`, chromedp.EvalAwaitPromise)); err != nil {
		t.Fatalf("damaging the stored module: %v", err)
	}
	visit("with the stored module damaged", false)
	waitStored("after the damaged copy")
	visit("after the damaged copy was replaced", true)
}

// bin/server has a live model list besides the site's: on a later visit
// the page asks for both at once, not one after the other.
func TestLiveListAskedEarly(t *testing.T) {
	ctx := newPage(t)
	srv := startServer(t, nil)
	const overlap = `(() => {
		const at = (p) => performance.getEntriesByType('resource').find((e) => new URL(e.name).pathname.endsWith(p));
		const site = at('/models/manifest.json'), live = at('/api/models');
		return site && live ? live.startTime <= site.responseEnd : null;
	})()`
	for _, tc := range []struct {
		visit string
		want  bool
	}{{"first visit", false}, {"second visit", true}} {
		openReady(t, ctx, srv.URL)
		got, err := chromedp.Run(ctx, chromedp.Evaluate[*bool](overlap))
		if err != nil || got == nil || *got != tc.want {
			t.Errorf("%s: live list asked while the site's list was on its way: %v (%v), want %v", tc.visit, got, err, tc.want)
		}
	}
}

// A site built from an empty zoo says so, and takes a weight file dropped
// on it.
func TestNoModelBundled(t *testing.T) {
	ctx := newPage(t)
	dist := filepath.Join(t.TempDir(), "dist")
	if err := assemble(dist, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	srv := serveDist(t, dist, nil)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL)); err != nil {
		t.Fatal(err)
	}
	st := waitStatus(t, ctx, "")
	if st.State != "error" || st.Code != "no_model" || !strings.Contains(st.Text, "No model is bundled") {
		t.Fatalf("status with an empty zoo: %+v", st)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`button[data-sample="cat"]`))); err != nil {
		t.Fatal(err)
	}
	if c := waitCards(t, ctx, 1)[0]; c.State != "error" || c.Code != "no_model" {
		t.Errorf("classifying without a model: %+v", c)
	}

	tiny, err := os.ReadFile(site.models[tinyID])
	if err != nil {
		t.Fatal(err)
	}
	giveFile(t, ctx, "drop", "mine.cnw", "application/octet-stream", tiny)
	if st := waitStatus(t, ctx, "mine.cnw"); st.State != "ready" {
		t.Fatalf("after dropping a weight file: %+v", st)
	}
	_, cat := sample(t, "cat")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`button[data-sample="cat"]`))); err != nil {
		t.Fatal(err)
	}
	checkCard(t, waitCards(t, ctx, 2)[1], tinyID, cat)
}

// goOffline cuts the tab and its service worker off the network.
var goOffline = chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
	if _, err := cdp.Call(ctx, tg, network.Enable, network.EnableParams{}); err != nil {
		return err
	}
	yes := true
	if _, err := cdp.Call(ctx, tg, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
		EmulateOfflineServiceWorker: &yes,
		MatchedNetworkConditions:    []*network.Conditions{{Offline: true, DownloadThroughput: -1, UploadThroughput: -1}},
	}); err != nil {
		return err
	}
	_, err := cdp.Call(ctx, tg, network.OverrideNetworkState, network.OverrideNetworkStateParams{
		Offline: true, DownloadThroughput: -1, UploadThroughput: -1,
	})
	return err
})

// Any static file server will do: without /api/models the page reads
// models/manifest.json.
func TestStaticHost(t *testing.T) {
	ctx := newPage(t)
	python, err := exec.LookPath("/usr/bin/python3")
	if err != nil {
		t.Skip("no /usr/bin/python3 for a plain static host")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(python, "-m", "http.server", "--bind", "127.0.0.1", port, "--directory", site.dist)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	for deadline := time.Now().Add(15 * time.Second); ; {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("python http.server did not start: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	openReady(t, ctx, "http://"+addr+"/")
	// The page asks for /api/models only where the server says it has one,
	// so a static host shows no 404 in the console.
	asked, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`performance.getEntriesByType('resource').some((e) => new URL(e.name).pathname.endsWith('/api/models'))`))
	if err != nil || asked {
		t.Errorf("on a static host the page asked for api/models (%v)", err)
	}
	if live, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`localStorage.getItem('cifarnet.liveList') !== null`)); err != nil || live {
		t.Errorf("a static host left a live list to ask for on the next visit (%v)", err)
	}
	frog, frogData := sample(t, "frog")
	if err := chromedp.Do(ctx, chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{frog})); err != nil {
		t.Fatal(err)
	}
	checkCard(t, waitCards(t, ctx, 1)[0], defaultID, frogData)
}

// commas formats n as the page does (en-US grouping).
func commas(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// pngHeader is a PNG signature and an IHDR chunk declaring w×h pixels,
// with no pixel data.
func pngHeader(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	chunk := binary.BigEndian.AppendUint32([]byte("IHDR"), w)
	chunk = binary.BigEndian.AppendUint32(chunk, h)
	chunk = append(chunk, 8, 6, 0, 0, 0) // 8-bit RGBA
	b.Write(binary.BigEndian.AppendUint32(nil, uint32(len(chunk)-4)))
	b.Write(chunk)
	b.Write(binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(chunk)))
	return b.Bytes()
}

// icoWithPNG wraps a 32×32 PNG in a Windows icon file.
func icoWithPNG(png []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, []uint16{0, 1, 1}) // reserved, type icon, one image
	b.Write([]byte{32, 32, 0, 0})                            // width, height, palette, reserved
	binary.Write(&b, binary.LittleEndian, []uint16{1, 32})   // planes, bits per pixel
	binary.Write(&b, binary.LittleEndian, []uint32{uint32(len(png)), 6 + 16})
	b.Write(png)
	return b.Bytes()
}

// TestBrowserWithoutSIMD: where WebAssembly SIMD128 is missing (simulated
// by making the worker's feature test fail), the page says which
// browsers run the classifier instead of blaming the connection, and the
// model list (or the lack of one) arriving later does not cover that.
func TestBrowserWithoutSIMD(t *testing.T) {
	for _, tc := range []struct {
		name   string
		zoo    string
		stored bool // the module is in worker.js's cache: the page compiles it (dedicated first worker)
	}{
		{"shipped models", filepath.Join(site.repo, "models", "zoo"), false},
		{"no model", t.TempDir(), false},
		{"module stored", filepath.Join(site.repo, "models", "zoo"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := newPage(t)
			if tc.stored {
				// A shared first worker compiles the stored copy itself.
				withoutSharedWorker(t, ctx)
			}
			dist := filepath.Join(t.TempDir(), "dist")
			if err := assemble(dist, tc.zoo); err != nil {
				t.Fatal(err)
			}
			workers, err := filepath.Glob(filepath.Join(dist, "worker.*.js"))
			if err != nil || len(workers) != 1 {
				t.Fatalf("worker script in %s: %v, %v", dist, workers, err)
			}
			src, err := os.ReadFile(workers[0])
			if err != nil {
				t.Fatal(err)
			}
			const probe = "const hasSIMD = WebAssembly.validate("
			if !strings.Contains(string(src), probe) {
				t.Fatalf("%s has no %q", workers[0], probe)
			}
			src = []byte(strings.Replace(string(src), probe, "const hasSIMD = false && WebAssembly.validate(", 1))
			if err := os.WriteFile(workers[0], src, 0o644); err != nil {
				t.Fatal(err)
			}
			os.Remove(workers[0] + ".gz") // served in place of the edited file otherwise
			// The model list is held until the worker has failed, the
			// order a slow network gives.
			release := make(chan struct{})
			var listed atomic.Bool
			srv := serveDist(t, dist, func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if strings.HasSuffix(r.URL.Path, "/manifest.json") {
						select {
						case <-release:
						case <-r.Context().Done():
							return
						}
						listed.Store(true)
					}
					next.ServeHTTP(w, r)
				})
			})
			var once sync.Once
			open := func() { once.Do(func() { close(release) }) }
			defer open()
			if tc.stored {
				// As a visit with a browser that had SIMD left it.
				modules, err := filepath.Glob(filepath.Join(dist, "cifarnet.*.wasm"))
				if err != nil || len(modules) != 1 {
					t.Fatalf("module in %s: %v, %v", dist, modules, err)
				}
				store := fmt.Sprintf(`caches.open('cifarnet-wasm').then((c) => c.add(%q)).then(() => true)`, filepath.Base(modules[0]))
				if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/icon.svg")); err != nil {
					t.Fatal(err)
				}
				if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](store, chromedp.EvalAwaitPromise)); err != nil {
					t.Fatalf("storing the module: %v", err)
				}
			}
			if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL)); err != nil {
				t.Fatal(err)
			}
			check := func(when string) {
				st := waitStatus(t, ctx, "")
				if st.State != "error" || st.Code != "unsupported" || !strings.Contains(st.Text, "WebAssembly SIMD") || strings.Contains(st.Text, "connection") {
					t.Fatalf("status without SIMD, %s: %+v", when, st)
				}
			}
			check("before the model list")
			if tc.stored {
				compiled, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`'compiled' in globalThis.cifarnetMarks`))
				if err != nil || !compiled {
					t.Errorf("the page did not compile the stored module (%v)", err)
				}
			}
			open()
			if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](`'modelsListed' in globalThis.cifarnetMarks`, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
				t.Fatalf("model list never handled (served: %v): %v", listed.Load(), err)
			}
			check("after the model list")
		})
	}
}

// A weight file damaged in the service worker's cache fails its checksum
// on the next visit: the page fetches it again past the caches, says so,
// the cache holds the good copy again, and classifying works.
func TestDamagedCachedModelRefetched(t *testing.T) {
	ctx := newPage(t)
	srv := startServer(t, nil)
	openReady(t, ctx, srv.URL)
	waitControlled(t, ctx)
	// Without the model the page built and saved, so that the next visit
	// reads the weight file.
	waitBuilt(t, ctx, func(e []builtEntry) bool { return len(e) == 1 && e[0].Intact })
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(async () => {
		await (await navigator.storage.getDirectory()).removeEntry('cifarnet-built', {recursive: true});
		return true;
	})()`, chromedp.EvalAwaitPromise)); err != nil {
		t.Fatalf("delete the saved builds: %v", err)
	}
	good, err := os.ReadFile(site.models[defaultID])
	if err != nil {
		t.Fatal(err)
	}
	name := defaultID + models.FileExt
	// The cached copy's bytes, one flipped near the end (in the tensor
	// data, which only the checksum covers).
	cachedEntry := fmt.Sprintf(`(async () => {
		for (const key of await caches.keys()) {
			const cache = await caches.open(key);
			for (const req of await cache.keys()) {
				if (req.url.endsWith('/' + %q)) return {cache, req, resp: await cache.match(req)};
			}
		}
		return null;
	})()`, name)
	damaged, err := chromedp.Run(ctx, chromedp.Evaluate[int](`(async () => {
		const e = await `+cachedEntry+`;
		if (!e) return -1;
		const bytes = new Uint8Array(await e.resp.arrayBuffer());
		bytes[bytes.length - 100] ^= 0x40;
		await e.cache.put(e.req, new Response(bytes, {headers: e.resp.headers}));
		return bytes.length;
	})()`, chromedp.EvalAwaitPromise))
	if err != nil || damaged != len(good) {
		t.Fatalf("damaging the cached %s: %d bytes (%v), the file has %d", name, damaged, err, len(good))
	}

	closeSharedWorkers(t, ctx) // else the next visit finds the model loaded
	openReady(t, ctx, srv.URL)
	st, err := chromedp.Run(ctx, chromedp.Evaluate[status](statusJS))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(st.Text, "damaged and was downloaded again") {
		t.Errorf("status after a damaged cached model: %+v", st)
	}
	// The service worker stores the server's copy just after answering.
	var byteThere int
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		byteThere, err = chromedp.Run(ctx, chromedp.Evaluate[int](`(async () => {
			const e = await `+cachedEntry+`;
			if (!e) return -1;
			const bytes = new Uint8Array(await e.resp.arrayBuffer());
			return bytes.length === `+fmt.Sprint(len(good))+` ? bytes[bytes.length - 100] : -2;
		})()`, chromedp.EvalAwaitPromise))
		if err == nil && byteThere == int(good[len(good)-100]) || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || byteThere != int(good[len(good)-100]) {
		t.Errorf("the cache holds byte %d at the damaged place (%v), the file %d", byteThere, err, good[len(good)-100])
	}
	_, cat := sample(t, "cat")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`button[data-sample="cat"]`))); err != nil {
		t.Fatal(err)
	}
	checkCard(t, waitCards(t, ctx, 1)[0], defaultID, cat)
}
