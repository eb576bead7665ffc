package e2e

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The Camera button shows the live preview of the (fake) camera and a
// capture is classified like an upload; refused permission, no camera and
// an insecure page each get their own message.
func TestCameraCapture(t *testing.T) {
	ctx := newPage(t)
	srv := startServer(t, nil)
	openReady(t, ctx, srv.URL)

	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#camera-open"))); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](`!document.getElementById('camera').hidden &&
		document.getElementById('camera-video').videoWidth > 0`, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		msg, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('camera-message').textContent`))
		t.Fatalf("no camera preview: %v (message %q)", err, msg)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#camera-capture"))); err != nil {
		t.Fatal(err)
	}
	c := waitCards(t, ctx, 1)[0]
	if c.State != "done" || !strings.HasPrefix(c.File, "camera-") || !strings.HasSuffix(c.File, ".png") || len(c.Probs) != 10 {
		t.Errorf("captured frame: %+v", c)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#camera-close"))); err != nil {
		t.Fatal(err)
	}
	live, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById('camera-video').srcObject !== null ||
		!document.getElementById('camera').hidden`))
	if err != nil || live {
		t.Errorf("the camera is still on after Close camera (%v)", err)
	}

	for _, c := range []struct{ setup, says string }{
		{`navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException('denied', 'NotAllowedError'))`, "permission was refused"},
		{`navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException('none', 'NotFoundError'))`, "No camera was found"},
		{`Object.defineProperty(window, 'isSecureContext', {value: false, configurable: true})`, "secure page"},
	} {
		msg, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(async () => {
			`+c.setup+`;
			document.getElementById('camera-open').click();
			const m = document.getElementById('camera-message');
			for (let i = 0; i < 100 && (m.textContent === '' || m.textContent.startsWith('Asking')); i++) {
				await new Promise((r) => setTimeout(r, 50));
			}
			return m.textContent;
		})()`, chromedp.EvalAwaitPromise))
		if err != nil || !strings.Contains(msg, c.says) {
			t.Errorf("after %s the camera message is %q (%v), want it to say %q", c.setup, msg, err, c.says)
		}
	}
	noCSPViolations(t, ctx)
}

// exported is what the page's download buttons produced.
type exported struct {
	Name string `json:"name"`
	Text string `json:"text"`
}

// captureDownloadsJS makes the page's download links record their file
// name and contents instead of saving them, so the test can read them.
const captureDownloadsJS = `(() => {
	window.cifarnetDownloads = [];
	const blobs = new Map();
	const createObjectURL = URL.createObjectURL;
	URL.createObjectURL = (blob) => {
		const url = createObjectURL(blob);
		blobs.set(url, blob);
		return url;
	};
	HTMLAnchorElement.prototype.click = function () {
		const name = this.download;
		window.cifarnetDownloads.push(blobs.get(this.href).text().then((text) => ({name, text})));
	};
})()`

// One click gives every result as CSV and as JSON, read from the page:
// the classified image with its probabilities and the empty file with its
// error.
func TestExportAndEmptyFile(t *testing.T) {
	ctx := newPage(t)
	srv := startServer(t, nil)
	openReady(t, ctx, srv.URL)

	catPath, catData := sample(t, "cat")
	empty := filepath.Join(t.TempDir(), "empty.png")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{catPath, empty})); err != nil {
		t.Fatal(err)
	}
	cards := waitCards(t, ctx, 2)
	checkCard(t, cards[0], defaultID, catData)
	if e := cards[1]; e.State != "error" || e.Code != "empty_file" || !strings.Contains(e.Message, "empty") {
		t.Errorf("a 0-byte file: %+v, want the empty-file message", e)
	}

	// Side by side at 1280 px, an error card is as tall as its neighbour,
	// leaving no hole in the grid.
	boxes, err := chromedp.Run(ctx, chromedp.Evaluate[[][2]float64](`Array.from(document.querySelectorAll('#results .result')).map((li) => {
		const r = li.getBoundingClientRect();
		return [r.top, r.height];
	})`))
	if err != nil || len(boxes) != 2 {
		t.Fatalf("card boxes: %v, %v", boxes, err)
	}
	if boxes[0][0] == boxes[1][0] && math.Abs(boxes[0][1]-boxes[1][1]) > 0.5 {
		t.Errorf("cards in one row differ in height: %v", boxes)
	}

	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](captureDownloadsJS)); err != nil {
		t.Fatal(err)
	}
	// Clicked from script: a mouse click could land elsewhere while the
	// page still scrolls to the new result.
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.getElementById('export-csv').click(),
		document.getElementById('export-json').click()`)); err != nil {
		t.Fatal(err)
	}
	files, err := chromedp.Run(ctx, chromedp.Evaluate[[]exported](`Promise.all(window.cifarnetDownloads)`, chromedp.EvalAwaitPromise))
	if err != nil || len(files) != 2 {
		t.Fatalf("downloads: %+v, %v", files, err)
	}
	unsure := float64(cards[0].Probs[cards[0].TopIndex]) < unsureBelow(t, ctx)

	// CSV: a header, then one row per result, oldest first.
	if !strings.HasSuffix(files[0].Name, ".csv") {
		t.Errorf("CSV file named %q", files[0].Name)
	}
	rows, err := csv.NewReader(strings.NewReader(files[0].Text)).ReadAll()
	if err != nil || len(rows) != 3 {
		t.Fatalf("CSV: %d rows, %v:\n%s", len(rows), err, files[0].Text)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	for _, h := range []string{"file", "status", "error", "top_class", "top_probability", "unsure", "p_cat", "model", "model_version", "tta", "inference_ms", "time"} {
		if _, ok := col[h]; !ok {
			t.Errorf("CSV has no column %q: %q", h, rows[0])
		}
	}
	cat, bad := rows[1], rows[2]
	if cat[col["file"]] != "cat.png" || cat[col["status"]] != "classified" || cat[col["top_class"]] != cards[0].TopLabel ||
		cat[col["model"]] != defaultID+".cnw" || cat[col["unsure"]] != strconv.FormatBool(unsure) {
		t.Errorf("CSV row for cat.png: %q", cat)
	}
	for i, name := range []string{"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"} {
		p, err := strconv.ParseFloat(cat[col["p_"+name]], 64)
		if err != nil || math.Abs(p-float64(cards[0].Probs[i])) > 1e-6 {
			t.Errorf("CSV p_%s = %q, the card shows %v", name, cat[col["p_"+name]], cards[0].Probs[i])
		}
	}
	if bad[col["file"]] != "empty.png" || bad[col["status"]] != "error" || bad[col["error"]] != "empty_file" {
		t.Errorf("CSV row for empty.png: %q", bad)
	}

	// JSON: the same results.
	var doc struct {
		Classes     []string `json:"classes"`
		UnsureBelow float64  `json:"unsure_below"`
		Results     []record `json:"results"`
	}
	if err := json.Unmarshal([]byte(files[1].Text), &doc); err != nil || !strings.HasSuffix(files[1].Name, ".json") {
		t.Fatalf("JSON %q: %v", files[1].Name, err)
	}
	if len(doc.Results) != 2 || len(doc.Classes) != 10 {
		t.Fatalf("JSON: %+v", doc)
	}
	r := doc.Results[0]
	if r.File != "cat.png" || r.TopClass != cards[0].TopLabel || r.Unsure == nil || *r.Unsure != unsure ||
		r.TTA == nil || r.Time == "" || len(r.Probabilities) != 10 ||
		math.Abs(r.Probabilities["cat"]-float64(cards[0].Probs[3])) > 1e-6 {
		t.Errorf("JSON result for cat.png: %+v", r)
	}
	if e := doc.Results[1]; e.File != "empty.png" || e.Status != "error" || e.Error != "empty_file" {
		t.Errorf("JSON result for empty.png: %+v", e)
	}
}

type record struct {
	File          string             `json:"file"`
	Status        string             `json:"status"`
	Error         string             `json:"error"`
	TopClass      string             `json:"top_class"`
	Unsure        *bool              `json:"unsure"`
	Probabilities map[string]float64 `json:"probabilities"`
	Model         string             `json:"model"`
	TTA           *bool              `json:"tta"`
	Time          string             `json:"time"`
}

// unsureBelow is the page's threshold, as its JSON export states it.
func unsureBelow(t *testing.T, ctx context.Context) float64 {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`(() => {
		let got;
		const click = HTMLAnchorElement.prototype.click;
		const url = URL.createObjectURL;
		URL.createObjectURL = (blob) => { got = blob; return url(blob); };
		HTMLAnchorElement.prototype.click = function () {};
		document.getElementById('export-json').click();
		HTMLAnchorElement.prototype.click = click;
		URL.createObjectURL = url;
		return got.text().then((s) => JSON.parse(s).unsure_below);
	})()`, chromedp.EvalAwaitPromise))
	if err != nil || !(v > 0 && v < 1) {
		t.Fatalf("the page's unsure threshold: %v, %v", v, err)
	}
	return v
}

// With the shipped model, a flat grey picture (none of the ten classes) is
// called unsure in words and colour, and a sample the model is sure of is
// not.
func TestUnsureOnShippedModel(t *testing.T) {
	ctx := newPage(t)
	openShipped(t, ctx)
	giveFile(t, ctx, "drop", "grey.png", "image/png", plainPNG(t, 64, 64, color.Gray{Y: 128}))
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.querySelector('button[data-sample="horse"]').click()`)); err != nil {
		t.Fatal(err)
	}
	waitCards(t, ctx, 2)
	type look struct {
		File, Unsure, Words, Colour, Sure string
		P                                 float64
	}
	looks, err := chromedp.Run(ctx, chromedp.Evaluate[[]look](`Array.from(document.querySelectorAll('#results .result')).reverse().map((li) => ({
		File: li.querySelector('.file').textContent,
		Unsure: li.dataset.unsure,
		Words: li.querySelector('.sureness').textContent,
		Colour: getComputedStyle(li.querySelector('.confidence')).color,
		Sure: getComputedStyle(document.querySelector('.sureness')).color,
		P: JSON.parse(li.dataset.probs)[Number(li.dataset.topIndex)],
	}))`))
	if err != nil || len(looks) != 2 {
		t.Fatalf("cards: %+v, %v", looks, err)
	}
	threshold := unsureBelow(t, ctx)
	grey, horse := looks[0], looks[1]
	if grey.Unsure != "true" || !strings.Contains(grey.Words, "Unsure") || grey.P >= threshold {
		t.Errorf("flat grey: %+v; want it flagged unsure (threshold %v)", grey, threshold)
	}
	if horse.P >= threshold && (horse.Unsure != "false" || strings.Contains(horse.Words, "Unsure")) {
		t.Errorf("horse sample at %.3f: %+v; want it not flagged", horse.P, horse)
	}
	if horse.P >= threshold && grey.Colour == horse.Colour {
		t.Errorf("unsure and sure results share the colour %s", grey.Colour)
	}
	phoneScreenshot(t, ctx, "-phone")
}

// phoneScreenshot saves what a 390×844 phone screen shows from the top of
// the page, when CIFARNET_SCREENSHOT names a file (see screenshot).
func phoneScreenshot(t *testing.T, ctx context.Context, suffix string) {
	t.Helper()
	path := os.Getenv("CIFARNET_SCREENSHOT")
	if path == "" {
		return
	}
	path = strings.TrimSuffix(path, ".png") + suffix + ".png"
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile),
		chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`)); err != nil {
		t.Fatal(err)
	}
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err == nil {
		err = os.WriteFile(path, png, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// On a phone-sized screen the picker is on the first screen, and a new
// result is scrolled into view and focused.
func TestPhoneLayout(t *testing.T) {
	ctx := newPage(t)
	srv := startServer(t, nil)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile)); err != nil {
		t.Fatal(err)
	}
	openReady(t, ctx, srv.URL)
	bottom, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.getElementById('drop').getBoundingClientRect().bottom`))
	if err != nil || bottom > 844*0.75 {
		t.Errorf("at 390×844 the picker ends %v px down (%v); want it in the top three quarters", bottom, err)
	}
	// Samples scroll the page first, as a user reaching them would.
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.querySelector('button[data-sample="frog"]').scrollIntoView()`)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`button[data-sample="frog"]`))); err != nil {
		t.Fatal(err)
	}
	waitCards(t, ctx, 1)
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](`(() => {
		const card = document.querySelector('#results .result');
		const r = card.getBoundingClientRect();
		return document.activeElement === card && r.top >= -1 && r.top < window.innerHeight - 100;
	})()`, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		where, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => {
			const r = document.querySelector('#results .result').getBoundingClientRect();
			return document.activeElement.outerHTML.slice(0, 60) + ' top ' + r.top + ' bottom ' + r.bottom + ' of ' + window.innerHeight;
		})()`))
		t.Errorf("the new result is not focused and in view: %v (%s)", err, where)
	}
	width, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
	if err != nil || width > 390 {
		t.Errorf("at 390 px the page is %d px wide (%v)", width, err)
	}
}

// The desktop model selector shows each option's whole label.
func TestModelLabelsFit(t *testing.T) {
	ctx := newPage(t)
	srv := startServer(t, nil)
	openReady(t, ctx, srv.URL)
	over, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`(() => {
		const sel = document.getElementById('model-select');
		const g = document.createElement('canvas').getContext('2d');
		g.font = getComputedStyle(sel).font;
		const room = sel.clientWidth - 40; // padding and the arrow
		return Array.from(sel.options).filter((o) => g.measureText(o.textContent).width > room)
			.map((o) => o.textContent + ' (' + Math.round(g.measureText(o.textContent).width) + ' px of ' + room + ')');
	})()`))
	if err != nil || len(over) > 0 {
		t.Errorf("options cut in the selector: %q (%v)", over, err)
	}
}

// A result's saliency map is computed in a worker and drawn over both
// pictures with its cost; the model's settings are the same afterwards.
func TestSaliency(t *testing.T) {
	ctx := newPage(t)
	srv := startServer(t, nil)
	openReady(t, ctx, srv.URL)
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.querySelector('button[data-sample="deer"]').click()`)); err != nil {
		t.Fatal(err)
	}
	waitCards(t, ctx, 1)
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.querySelector('#results .result .explain').click()`)); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](`document.querySelector('#results .result').dataset.saliency === 'done'`,
		chromedp.WithPollingTimeout(60*time.Second))); err != nil {
		t.Fatalf("no saliency map: %v", err)
	}
	type shown struct {
		Drop     []float64 `json:"drop"`
		Overlays int       `json:"overlays"`
		Note     string    `json:"note"`
	}
	s, err := chromedp.Run(ctx, chromedp.Evaluate[shown](`(() => {
		const li = document.querySelector('#results .result');
		return {
			drop: JSON.parse(li.dataset.saliencyDrop),
			overlays: Array.from(li.querySelectorAll('canvas.overlay')).filter((c) => !c.hidden && c.width === 7 && c.height === 7).length,
			note: li.querySelector('.explain-note').textContent,
		};
	})()`))
	if err != nil || len(s.Drop) != 49 || s.Overlays != 2 || !strings.Contains(s.Note, "50 forward passes") {
		t.Errorf("saliency: %+v, %v; want 49 cells drawn over both pictures and the cost", s, err)
	}
	for _, d := range s.Drop {
		if math.IsNaN(d) || d < -1 || d > 1 {
			t.Errorf("saliency cell %v is not a change of probability", d)
		}
	}
	// The next image still gets the model's own settings (TTA restored).
	_, ship := sample(t, "ship")
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.querySelector('button[data-sample="ship"]').click()`)); err != nil {
		t.Fatal(err)
	}
	checkCard(t, waitCards(t, ctx, 2)[1], defaultID, ship)
}
