package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/models/modeltest"
)

// namedFile is an image handed to a teach-mode class.
type namedFile struct {
	name string
	data []byte
}

// teachState is the teach panel as the page shows it.
type teachState struct {
	State    string   `json:"state"`
	Status   string   `json:"status"`
	Accuracy float64  `json:"accuracy"`
	Seconds  float64  `json:"seconds"`
	Images   int      `json:"images"`
	Pending  int      `json:"pending"`
	Saved    int      `json:"saved"`
	Options  []string `json:"options"`
	Known    string   `json:"known"` // classes that started from the base model's rows, comma-separated
}

const teachStateJS = `(() => {
	const s = document.querySelector('section.teach');
	return {
		state: s.dataset.state || '',
		status: document.getElementById('teach-status').textContent,
		accuracy: Number(s.dataset.accuracy || -1),
		seconds: Number(s.dataset.seconds || -1),
		images: Number(s.dataset.images || 0),
		pending: s.querySelectorAll('.teach-thumbs li[data-state="pending"]').length,
		saved: Number(s.dataset.saved || 0),
		known: s.dataset.known || '',
		options: Array.from(document.querySelectorAll('#teach-saved option')).map((o) => o.textContent),
	};
})()`

// waitTeach waits until expr (JavaScript, with s the teach state) holds.
func waitTeach(t testing.TB, ctx context.Context, what, expr string) teachState {
	t.Helper()
	poll := fmt.Sprintf(`(() => { const s = %s; return %s; })()`, teachStateJS, expr)
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](poll, chromedp.WithPollingTimeout(60*time.Second), quietPoll)); err != nil {
		st, _ := chromedp.Run(ctx, chromedp.Evaluate[teachState](teachStateJS))
		t.Fatalf("waiting for %s: %v; teach panel %+v", what, err, st)
	}
	st, err := chromedp.Run(ctx, chromedp.Evaluate[teachState](teachStateJS))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// teachFiles drops files on class row (0-based) of the teach panel, the
// way a browser delivers a drop.
func teachFiles(t testing.TB, ctx context.Context, row int, files []namedFile) {
	t.Helper()
	stageFiles(t, ctx, "drop", files)
	dropStaged(t, ctx, row, "drop")
}

// stageFiles makes files into File objects in the page, kept under key
// for dropStaged: building them (base64 in a script) is the test's work,
// not the page's, and stays out of a drop whose tasks are timed.
func stageFiles(t testing.TB, ctx context.Context, key string, files []namedFile) {
	t.Helper()
	var list []string
	for _, f := range files {
		list = append(list, fmt.Sprintf(`[%q, %q]`, f.name, base64.StdEncoding.EncodeToString(f.data)))
	}
	js := fmt.Sprintf(`(() => {
		const files = [];
		for (const [name, b64] of [%s]) {
			files.push(new File([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], name, {type: 'image/png'}));
		}
		(globalThis.stagedFiles ||= {})[%q] = files;
		return files.length;
	})()`, strings.Join(list, ","), key)
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](js))
	if err != nil || n != len(files) {
		t.Fatalf("make %d files: %v (%d)", len(files), err, n)
	}
}

// dropStaged drops the files stageFiles kept under key on class row
// (0-based) of the teach panel.
func dropStaged(t testing.TB, ctx context.Context, row int, key string) {
	t.Helper()
	js := fmt.Sprintf(`(() => {
		const dt = new DataTransfer();
		for (const f of globalThis.stagedFiles[%q]) dt.items.add(f);
		const li = document.querySelectorAll('#teach-classes .teach-class')[%d];
		li.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
		return dt.files.length;
	})()`, key, row)
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](js)); err != nil || n == 0 {
		t.Fatalf("drop the files %s on class %d: %v (%d)", key, row, err, n)
	}
}

func setClassNames(t testing.TB, ctx context.Context, names ...string) {
	t.Helper()
	js := fmt.Sprintf(`(() => {
		const names = %s;
		const rows = document.querySelectorAll('#teach-classes .teach-name');
		names.forEach((n, i) => {
			rows[i].focus();
			rows[i].value = n;
			rows[i].dispatchEvent(new Event('input', {bubbles: true}));
		});
		return rows.length;
	})()`, jsonStrings(names))
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](js)); err != nil || n < len(names) {
		t.Fatalf("name the classes: %v (%d rows)", err, n)
	}
}

func jsonStrings(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = fmt.Sprintf("%q", v)
	}
	return "[" + strings.Join(q, ",") + "]"
}

func click(t testing.TB, ctx context.Context, sel string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
		t.Fatalf("click %s: %v", sel, err)
	}
}

// catchDownload clicks sel and returns the file the page offers for
// download: the name on the link it clicks and the blob behind it (the
// page's CSP keeps fetch off blob: URLs, so the blob is caught as the URL
// is made).
func catchDownload(t testing.TB, ctx context.Context, sel string) (name string, data []byte) {
	t.Helper()
	js := fmt.Sprintf(`new Promise((resolve, reject) => {
		const makeURL = URL.createObjectURL;
		const click = HTMLAnchorElement.prototype.click;
		let blob = null;
		URL.createObjectURL = (b) => {
			blob = b;
			return makeURL.call(URL, b);
		};
		HTMLAnchorElement.prototype.click = function () {
			URL.createObjectURL = makeURL;
			HTMLAnchorElement.prototype.click = click;
			const name = this.download;
			if (!blob) {
				reject(new Error('the link is not to a blob the page made'));
				return;
			}
			blob.arrayBuffer().then((buf) => {
				let s = '';
				const b = new Uint8Array(buf);
				for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
				resolve({name, b64: btoa(s)});
			}, reject);
		};
		document.querySelector(%q).click();
		setTimeout(() => reject(new Error('no download within 20 s')), 20000);
	})`, sel)
	got, err := chromedp.Run(ctx, chromedp.Evaluate[struct {
		Name string `json:"name"`
		B64  string `json:"b64"`
	}](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("download from %s: %v", sel, err)
	}
	data, err = base64.StdEncoding.DecodeString(got.B64)
	if err != nil {
		t.Fatal(err)
	}
	return got.Name, data
}

// watchLongTasks records the main thread's long tasks (over 50 ms) from
// now on, for the log, with the scripts behind each long animation frame
// (the test's own injected scripts show as empty sources).
func watchLongTasks(t testing.TB, ctx context.Context) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`(() => {
		globalThis.teachLongTasks = [];
		if (globalThis.teachObserving) return;
		globalThis.teachObserving = true;
		new PerformanceObserver((l) => { for (const e of l.getEntries()) globalThis.teachLongTasks.push('task ' + Math.round(e.duration)); })
			.observe({type: 'longtask'});
		if (PerformanceObserver.supportedEntryTypes.includes('long-animation-frame')) {
			new PerformanceObserver((l) => {
				for (const e of l.getEntries()) {
					const scripts = e.scripts.map((s) => (s.sourceURL.split('/').pop() || 'injected') + ':' + s.invoker + ' ' + Math.round(s.duration));
					globalThis.teachLongTasks.push('frame ' + Math.round(e.duration) + ' [' + scripts.join(', ') + ']');
				}
			}).observe({type: 'long-animation-frame'});
		}
	})()`)); err != nil {
		t.Fatal(err)
	}
}

func longTasks(t testing.TB, ctx context.Context) []string {
	t.Helper()
	d, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`globalThis.teachLongTasks || []`))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestTeach teaches two classes of generated pictures (red and blue
// squares with noise, 10 each) in the real page, classifies new pictures
// with the new model, saves it, finds it again after a reload and
// downloads it: the .cnw parses, names the two classes and its base.
func TestTeach(t *testing.T) {
	ctx := newPage(t)
	srv := startServer(t, nil)
	openReady(t, ctx, srv.URL)
	red := color.NRGBA{200, 40, 40, 255}
	blue := color.NRGBA{40, 40, 200, 255}

	// Plain-words refusals before anything is trained.
	click(t, ctx, "#teach-train")
	if st := waitTeach(t, ctx, "the no-name refusal", `s.state === 'error'`); !strings.Contains(st.Status, "Class 1 has no name") {
		t.Errorf("train with no names says %q", st.Status)
	}
	setClassNames(t, ctx, "red", "Red")
	teachFiles(t, ctx, 0, []namedFile{{"r.png", modeltest.NoisySquarePNG(t, red, 40, 40, 1)}, {"r2.png", modeltest.NoisySquarePNG(t, red, 40, 40, 2)}})
	waitTeach(t, ctx, "two images", `s.images === 2 && s.pending === 0`)
	click(t, ctx, "#teach-train")
	if st := waitTeach(t, ctx, "the duplicate-name refusal", `s.state === 'error'`); !strings.Contains(st.Status, `both called "Red"`) {
		t.Errorf("train with duplicate names says %q", st.Status)
	}
	setClassNames(t, ctx, "red", "blue")
	click(t, ctx, "#teach-train")
	if st := waitTeach(t, ctx, "the empty-class refusal", `s.state === 'error'`); !strings.Contains(st.Status, `"blue" has 0 images`) {
		t.Errorf("train with an empty class says %q", st.Status)
	}
	// A file that is not an image, and one too large to decode, are named
	// and skipped.
	for _, f := range []namedFile{{"notes.png", []byte("not a picture")}, {"huge.png", pngHeader(20000, 20000)}} {
		teachFiles(t, ctx, 1, []namedFile{f})
		const msg = `document.querySelectorAll('.teach-class-message')[1].textContent`
		if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](msg+`.includes(`+fmt.Sprintf("%q", f.name)+`)`,
			chromedp.WithPollingTimeout(30*time.Second))); err != nil {
			t.Fatalf("no message for %s: %v", f.name, err)
		}
		text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](msg))
		t.Logf("%s: %q", f.name, text)
		if f.name == "huge.png" && !strings.Contains(text, "too large") {
			t.Errorf("a 20000×20000 image: %q", text)
		}
	}
	if st := waitTeach(t, ctx, "the bad files gone", `s.pending === 0`); st.Images != 2 {
		t.Errorf("%d images kept after two bad files, want 2", st.Images)
	}

	watchLongTasks(t, ctx)
	start := time.Now()
	var reds, blues []namedFile
	for i := range 8 { // 2 red already in
		reds = append(reds, namedFile{fmt.Sprintf("red-%d.png", i), modeltest.NoisySquarePNG(t, red, 32+i*3, 32+i, uint64(10+i))})
	}
	for i := range 10 {
		blues = append(blues, namedFile{fmt.Sprintf("blue-%d.png", i), modeltest.NoisySquarePNG(t, blue, 32+i*3, 40-i, uint64(30+i))})
	}
	teachFiles(t, ctx, 0, reds)
	teachFiles(t, ctx, 1, blues)
	click(t, ctx, "#teach-train")
	st := waitTeach(t, ctx, "training", `s.state === 'trained' || (s.state === 'error' && s.images === 20)`)
	if st.State != "trained" {
		t.Fatalf("training failed: %+v", st)
	}
	t.Logf("20 images: %.2f s from the drop to the trained model (%.2f s in Go for cross-validation and training); main-thread long tasks and frames (ms): %q",
		time.Since(start).Seconds(), st.Seconds, longTasks(t, ctx))
	trainedAcc := st.Accuracy
	if st.Accuracy < 0.9 || !strings.Contains(st.Status, "Cross-validated accuracy") {
		t.Errorf("cross-validated accuracy %.3f on red and blue squares (chance 0.5): %q", st.Accuracy, st.Status)
	}
	if st.Known != "" || strings.Contains(st.Status, "already knew") {
		t.Errorf("red and blue are no classes of the base model, yet known %q, status %q", st.Known, st.Status)
	}
	if shown, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#teach-classes .teach-known:not([hidden])').length`)); err != nil || shown != 0 {
		t.Errorf("%d classes marked as known to the base model (%v), want none for red and blue", shown, err)
	}

	// The new model classifies new pictures.
	click(t, ctx, "#teach-use")
	if s := waitStatus(t, ctx, "taught-red-blue.cnw"); s.State != "ready" {
		t.Fatalf("the taught model did not load: %+v", s)
	}
	giveFile(t, ctx, "drop", "new-blue.png", "image/png", modeltest.NoisySquarePNG(t, blue, 50, 30, 99))
	giveFile(t, ctx, "paste", "new-red.png", "image/png", modeltest.NoisySquarePNG(t, red, 30, 50, 98))
	cards := waitCards(t, ctx, 2)
	if cards[0].TopLabel != "blue" || cards[1].TopLabel != "red" || cards[0].Bars != 2 {
		t.Errorf("new pictures classified as %q (%v) and %q (%v), want blue and red", cards[0].TopLabel, cards[0].Probs, cards[1].TopLabel, cards[1].Probs)
	}

	// Saved, it survives a reload.
	click(t, ctx, "#teach-save")
	waitTeach(t, ctx, "the save", `s.saved === 1`)
	openReady(t, ctx, srv.URL)
	st = waitTeach(t, ctx, "the saved model after a reload", `s.saved === 1`)
	if len(st.Options) != 1 || !strings.HasPrefix(st.Options[0], "red, blue · ") {
		t.Errorf("saved models listed as %q", st.Options)
	}

	name, data := catchDownload(t, ctx, "#teach-saved-download")
	if name != "taught-red-blue.cnw" {
		t.Errorf("download named %q", name)
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := models.ReadFile(path)
	if err != nil {
		t.Fatalf("the downloaded .cnw: %v", err)
	}
	base, err := os.ReadFile(site.models[defaultID])
	if err != nil {
		t.Fatal(err)
	}
	wantBase := fmt.Sprintf("%s%s sha256:%x", defaultID, models.FileExt, sha256.Sum256(base))
	p := f.Meta.Provenance
	if !slices.Equal(f.Meta.Classes, []string{"red", "blue"}) || p.BaseModel != wantBase || p.Recipe != "head-only" || p.ValAccuracy != trainedAcc {
		t.Errorf("downloaded file: classes %q, provenance %+v; want base %q", f.Meta.Classes, p, wantBase)
	}

	// The saved model is usable after the reload, and can be deleted.
	click(t, ctx, "#teach-saved-use")
	if s := waitStatus(t, ctx, "taught-red-blue.cnw"); s.State != "ready" {
		t.Fatalf("the saved model did not load: %+v", s)
	}
	giveFile(t, ctx, "drop", "again-red.png", "image/png", modeltest.NoisySquarePNG(t, red, 33, 33, 97))
	if c := waitCards(t, ctx, 1); c[0].TopLabel != "red" {
		t.Errorf("after the reload a red picture is %q", c[0].TopLabel)
	}
	click(t, ctx, "#teach-saved-delete")
	waitTeach(t, ctx, "the delete", `s.saved === 0`)
	noCSPViolations(t, ctx)
}

// cifarPNGs returns PNGs of the CIFAR-10 test images of class (an index)
// numbered from skip to skip+n-1 within that class.
func cifarPNGs(t *testing.T, class, skip, n int) []namedFile {
	t.Helper()
	dir := os.Getenv("CIFAR10_DIR")
	if dir == "" {
		dir = filepath.Join(site.repo, "..", "shared", "cifar10", "cifar-10-batches-bin")
	}
	data, err := os.ReadFile(filepath.Join(dir, "test_batch.bin"))
	if err != nil {
		t.Skipf("CIFAR-10 test batch not found (set CIFAR10_DIR): %v", err)
	}
	const rec = 3073
	var out []namedFile
	seen := 0
	for r := 0; r+rec <= len(data) && len(out) < n; r += rec {
		if int(data[r]) != class {
			continue
		}
		seen++
		if seen <= skip {
			continue
		}
		img := image.NewNRGBA(image.Rect(0, 0, 32, 32))
		for i := range 1024 {
			img.Pix[4*i], img.Pix[4*i+1], img.Pix[4*i+2], img.Pix[4*i+3] = data[r+1+i], data[r+1+1024+i], data[r+1+2048+i], 255
		}
		var b bytes.Buffer
		if err := png.Encode(&b, img); err != nil {
			t.Fatal(err)
		}
		out = append(out, namedFile{fmt.Sprintf("%s-%d.png", models.CIFAR10Classes[class], seen), b.Bytes()})
	}
	return out
}

// TestTeachShippedCIFAR teaches the shipped default model three CIFAR-10
// classes from 20 test images each, as a user would, and logs the time
// from the drop to the trained model (features included), the main
// thread's long tasks and the cross-validated accuracy the page shows;
// then it classifies 20 further images of each class in the page.
func TestTeachShippedCIFAR(t *testing.T) {
	classes := []int{2, 4, 6} // bird, deer, frog
	var train, held [][]namedFile
	for _, c := range classes {
		train = append(train, cifarPNGs(t, c, 0, 20))
		held = append(held, cifarPNGs(t, c, 20, 20))
	}
	ctx := newPage(t)
	_, name := openShipped(t, ctx)
	click(t, ctx, "#teach-add-class")
	names := []string{"bird", "deer", "frog"}
	t0 := time.Now()
	setClassNames(t, ctx, names...) // the focus starts the teach worker
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](`document.querySelector('section.teach').dataset.base === `+fmt.Sprintf("%q", name),
		chromedp.WithPollingTimeout(60*time.Second))); err != nil {
		t.Fatalf("the teach worker never had its base model: %v", err)
	}
	t.Logf("teach worker ready with %s %.2f s after the first focus", name, time.Since(t0).Seconds())
	// Each class is one the base model has, and the panel says so.
	hints, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#teach-classes .teach-known')).map((p) => p.hidden ? '' : p.textContent)`))
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range names {
		if want := name + " knows “" + n + "”"; i >= len(hints) || !strings.HasPrefix(hints[i], want) {
			t.Errorf("class %d (%s): hint %q, want %q…", i+1, n, hints, want)
		}
	}
	// Two classes with one name (case and spaces aside), which Train
	// would refuse: both say so, neither claims the base model's class,
	// and renaming one clears both.
	setClassNames(t, ctx, "bird", "Bird ", "frog")
	hints, err = chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#teach-classes .teach-known')).map((p) => p.hidden ? '' : p.textContent)`))
	if err != nil {
		t.Fatal(err)
	}
	if len(hints) != 3 || !strings.HasPrefix(hints[0], "Another class is also called “bird”") ||
		!strings.HasPrefix(hints[1], "Another class is also called “Bird”") || !strings.HasPrefix(hints[2], name+" knows “frog”") {
		t.Errorf("hints with two classes called bird: %q", hints)
	}
	setClassNames(t, ctx, names...)
	hints, err = chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#teach-classes .teach-known')).map((p) => p.hidden ? '' : p.textContent)`))
	if err != nil {
		t.Fatal(err)
	}
	if len(hints) != 3 || !strings.HasPrefix(hints[0], name+" knows “bird”") || !strings.HasPrefix(hints[1], name+" knows “deer”") {
		t.Errorf("hints after renaming: %q", hints)
	}
	for i, files := range train {
		stageFiles(t, ctx, names[i], files)
	}
	watchLongTasks(t, ctx)
	start := time.Now()
	for i := range train {
		dropStaged(t, ctx, i, names[i])
	}
	waitTeach(t, ctx, "the features", `s.images === 60 && s.pending === 0`)
	features := time.Since(start)
	click(t, ctx, "#teach-train")
	st := waitTeach(t, ctx, "training", `s.state === 'trained' || (s.state === 'error' && s.images === 60)`)
	if st.State != "trained" {
		t.Fatalf("training failed: %+v", st)
	}
	t.Logf("%s, 3 classes × 20 CIFAR-10 images: %.2f s from the drop to the trained model: %.2f s to the features of all, %.2f s in Go for 5-fold cross-validation and training; "+
		"cross-validated accuracy shown %.1f %%; main-thread long tasks and frames (ms): %q",
		name, time.Since(start).Seconds(), features.Seconds(), st.Seconds, 100*st.Accuracy, longTasks(t, ctx))
	if st.Accuracy < 0.6 {
		t.Errorf("cross-validated accuracy %.3f on three CIFAR-10 classes (chance 0.33)", st.Accuracy)
	}
	if st.Known != "bird,deer,frog" || !strings.Contains(st.Status, "bird, deer, frog started from what "+name+" already knew") {
		t.Errorf("classes the base model has: known %q, status %q; want bird, deer and frog started from the base", st.Known, st.Status)
	}
	// CIFARNET_TEACH_OUT=DIR keeps the downloaded model (DIR/taught.cnw)
	// and the held-out images (DIR/held/<class>/) for `trainer eval`.
	fname, file := catchDownload(t, ctx, "#teach-download")
	if f, err := models.Decode(file); err != nil || !slices.Equal(f.Meta.Classes, names) || !strings.HasPrefix(f.Meta.Provenance.BaseModel, name+" sha256:") {
		t.Errorf("downloaded %s: %v", fname, err)
	}
	if out := os.Getenv("CIFARNET_TEACH_OUT"); out != "" {
		for i, files := range held {
			dir := filepath.Join(out, "held", names[i])
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, f := range files {
				if err := os.WriteFile(filepath.Join(dir, f.name), f.data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := os.WriteFile(filepath.Join(out, "taught.cnw"), file, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	click(t, ctx, "#teach-use")
	if s := waitStatus(t, ctx, "taught-bird-deer-frog.cnw"); s.State != "ready" {
		t.Fatalf("the taught model did not load: %+v", s)
	}
	// For comparison, the long tasks while the page classifies a drop.
	var all []namedFile
	for _, files := range held {
		all = append(all, files...)
	}
	stageFiles(t, ctx, "held", all)
	watchLongTasks(t, ctx)
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`(() => {
		const dt = new DataTransfer();
		for (const f of globalThis.stagedFiles.held) dt.items.add(f);
		document.getElementById('drop').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
	})()`)); err != nil {
		t.Fatal(err)
	}
	right := 0
	cards := waitCards(t, ctx, len(all))
	for _, c := range cards {
		if strings.HasPrefix(c.File, c.TopLabel+"-") {
			right++
		}
	}
	t.Logf("held-out: %d of %d further test images right (%.1f %%); main-thread long tasks and frames while classifying them (ms): %q",
		right, len(cards), 100*float64(right)/float64(len(cards)), longTasks(t, ctx))
	if float64(right) < 0.6*float64(len(cards)) {
		t.Errorf("only %d of %d held-out images right", right, len(cards))
	}
}
