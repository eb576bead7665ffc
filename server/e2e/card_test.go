package e2e

import (
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"image/color"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cifarnet-go/cifarnet/models"
)

// modelCard is what the model panel's card shows.
type modelCard struct {
	Facts    map[string]string `json:"facts"`
	Report   string            `json:"report"` // data-report: shown, none
	Note     string            `json:"note"`
	PerClass [][3]string       `json:"perClass"` // class, accuracy, with TTA
}

const modelCardJS = `(() => {
	const card = document.getElementById('model-card');
	const facts = {};
	for (const dd of card.querySelectorAll('[data-card]')) facts[dd.dataset.card] = dd.textContent;
	const table = document.getElementById('per-class');
	return {
		facts,
		report: card.dataset.report || '',
		note: document.getElementById('per-class-note').textContent,
		perClass: table.hidden ? [] : Array.from(table.tBodies[0].rows).map((r) => Array.from(r.cells).map((c) => c.textContent)),
	};
})()`

// waitModelCard waits until the card shows file and its report is settled.
func waitModelCard(t *testing.T, ctx context.Context, file string) modelCard {
	t.Helper()
	expr := fmt.Sprintf(`document.getElementById('model-card').dataset.file === %q &&
		document.getElementById('model-card').dataset.report !== 'loading'`, file)
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		c, _ := chromedp.Run(ctx, chromedp.Evaluate[modelCard](modelCardJS))
		t.Fatalf("waiting for the model card of %s: %v; it shows %+v", file, err, c)
	}
	c, err := chromedp.Run(ctx, chromedp.Evaluate[modelCard](modelCardJS))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fmtSize is the page's size rule (decimal units, one decimal).
func fmtSize(n int64) string {
	switch {
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d bytes", n)
}

// wantCardFacts is what the card must say about the weight file at path,
// from the file itself.
func wantCardFacts(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := models.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	m := f.Meta
	params, err := m.Spec.TrainableParams()
	if err != nil {
		t.Fatal(err)
	}
	flops, err := m.Spec.FLOPs()
	if err != nil {
		t.Fatal(err)
	}
	p := m.Provenance
	or := func(s string) string {
		if s == "" || s == "0" {
			return "not recorded"
		}
		return s
	}
	acc := func(a float64) string {
		if a == 0 {
			return "not measured"
		}
		return fmt.Sprintf("%.2f%%", 100*a)
	}
	train := "not recorded"
	if p.TrainSeconds > 0 {
		s := int(p.TrainSeconds + 0.5)
		train = fmt.Sprintf("%d s", s%60)
		if s >= 60 {
			train = fmt.Sprintf("%d min %s", s%3600/60, train)
		}
		if s >= 3600 {
			train = fmt.Sprintf("%d h %s", s/3600, train)
		}
	}
	tta := acc(p.TestAccuracyTT)
	if p.TestAccuracyTT != 0 && len(m.Inference.TTA) > 0 {
		tta += " (" + strings.Join(m.Inference.TTA, " + ") + ")"
	}
	in := m.Spec.Input
	return map[string]string{
		"file":         filepath.Base(path),
		"arch":         fmt.Sprintf("%s, %d layers, input %d×%d×%d", m.Spec.Name, len(m.Spec.Layers), in.C, in.H, in.W),
		"params":       commas(params),
		"flops":        fmt.Sprintf("%.1f MFLOPs", float64(flops)/1e6),
		"size":         fmt.Sprintf("%s (%s bytes)", fmtSize(fi.Size()), commas(int(fi.Size()))),
		"dtype":        string(m.DType),
		"accuracy":     acc(p.TestAccuracy),
		"accuracy-tta": tta,
		"dataset":      or(p.Dataset),
		"recipe":       or(p.Recipe),
		"epochs":       or(fmt.Sprint(p.Epochs)),
		"device":       or(p.Device),
		"train-time":   train,
		"created":      or(p.Created),
		"trainer":      or(p.Trainer),
	}
}

func checkCardFacts(t *testing.T, got modelCard, path string) {
	t.Helper()
	for k, want := range wantCardFacts(t, path) {
		if got.Facts[k] != want {
			t.Errorf("%s: model card %s = %q, want %q (from the file)", filepath.Base(path), k, got.Facts[k], want)
		}
	}
}

// The model card states the weight file's own metadata; the default model
// has a test report, so its per-class accuracy is listed; the tiny one has
// none and says "not measured".
func TestModelCard(t *testing.T) {
	ctx := newPage(t)
	srv := startServer(t, nil)
	openReady(t, ctx, srv.URL)

	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#model-card summary"))); err != nil {
		t.Fatal(err)
	}
	open, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById('model-card').open &&
		document.getElementById('model-card').querySelector('dl').getBoundingClientRect().height > 0`))
	if err != nil || !open {
		t.Fatalf("the model card does not open (%v)", err)
	}
	c := waitModelCard(t, ctx, defaultID+models.FileExt)
	checkCardFacts(t, c, site.models[defaultID])
	if c.Report != "shown" || len(c.PerClass) != len(models.CIFAR10Classes) {
		t.Fatalf("per-class accuracy of %s: %+v, want a row per class", defaultID, c)
	}
	for i, row := range c.PerClass {
		want := [3]string{models.CIFAR10Classes[i], fmt.Sprintf("%.1f%%", 100*reportRecall(i, false)), fmt.Sprintf("%.1f%%", 100*reportRecall(i, true))}
		if row != want {
			t.Errorf("per-class row %d: %q, want %q (from report.json)", i, row, want)
		}
	}
	if !strings.Contains(c.Note, "this file") {
		t.Errorf("report note %q: the report measured this very file", c.Note)
	}

	chooseModel(t, ctx, tinyID)
	c = waitModelCard(t, ctx, tinyID+models.FileExt)
	checkCardFacts(t, c, site.models[tinyID])
	if c.Report != "none" || len(c.PerClass) != 0 || !strings.HasPrefix(c.Note, "Not measured") {
		t.Errorf("tiny has no report: the card shows %+v, want per-class accuracy not measured", c)
	}
	noCSPViolations(t, ctx)
}

// versus is a card's side-by-side block.
type versus struct {
	State      string    `json:"state"`
	Compare    string    `json:"compare"`
	TopLabel   string    `json:"topLabel"`
	OtherLabel string    `json:"otherLabel"`
	OtherProbs []float32 `json:"otherProbs"`
	Disagree   string    `json:"disagree"`
	Verdict    string    `json:"verdict"`
	Models     []string  `json:"models"`
	Shown      []string  `json:"shown"`
	Visible    bool      `json:"visible"`
}

const versusJS = `Array.from(document.querySelectorAll('#results .result')).reverse().map((li) => {
	const v = li.querySelector('.versus');
	return {
		state: li.dataset.state, compare: li.dataset.compare || '',
		topLabel: li.dataset.topLabel || '', otherLabel: li.dataset.compareTopLabel || '',
		otherProbs: li.dataset.compareProbs ? JSON.parse(li.dataset.compareProbs) : [],
		disagree: li.dataset.disagree || '',
		verdict: v.querySelector('.versus-verdict').textContent,
		models: Array.from(v.querySelectorAll('dt')).map((d) => d.textContent),
		shown: Array.from(v.querySelectorAll('dd')).map((d) => d.textContent),
		visible: !v.hidden && v.getBoundingClientRect().height > 0,
	};
})`

// Compare mode runs the second model on the same images: each card shows
// both answers (the second model's probabilities as native Go computes
// them) and marks where the two disagree. The random test models never
// agree, so agreement is shown by comparing the default model with itself.
// With one core there is no helper to hand the compiled module over (the
// shared first worker cannot): the second model's worker compiles its own.
func TestCompareModels(t *testing.T) {
	for _, cores := range []int{2, 1} {
		t.Run(fmt.Sprintf("cores=%d", cores), func(t *testing.T) { testCompareModels(t, cores) })
	}
}

func testCompareModels(t *testing.T, cores int) {
	top := func(p []float32) int { return slices.Index(p, slices.Max(p)) }
	var pic string
	for _, class := range models.CIFAR10Classes {
		_, data := sample(t, class)
		a, _ := nativeProbs(t, defaultID, data)
		b, _ := nativeProbs(t, tinyID, data)
		if top(a) != top(b) {
			pic = class
			break
		}
	}
	if pic == "" {
		t.Fatal("the test models agree on every sample: nothing to mark")
	}

	ctx := newPage(t)
	setCores(t, ctx, cores)
	srv := startServer(t, nil)
	openReady(t, ctx, srv.URL)
	compareWith := func(id string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => {
			const sel = document.getElementById('compare-select');
			sel.value = Array.from(sel.options).find((o) => o.textContent.startsWith(%q)).value;
			sel.dispatchEvent(new Event('change'));
		})()`, id+" "))); err != nil {
			t.Fatal(err)
		}
		if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.getElementById('compare-choice').dataset.state === 'ready' &&
			document.getElementById('compare-note').textContent.startsWith('Comparing with %s')`, id+models.FileExt),
			chromedp.WithPollingTimeout(60*time.Second))); err != nil {
			note, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('compare-note').textContent`))
			t.Fatalf("the second model %s is not ready: %v (%q)", id, err, note)
		}
	}
	classify := func(n int) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector('button[data-sample=%q]').click()`, pic))); err != nil {
			t.Fatal(err)
		}
		waitCards(t, ctx, n)
		if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](`!document.querySelector('#results .result:not([data-compare="done"])')`,
			chromedp.WithPollingTimeout(60*time.Second))); err != nil {
			t.Fatalf("the second model's answer did not come: %v", err)
		}
	}
	compareWith(tinyID)
	classify(1)
	compareWith(defaultID)
	classify(2)

	vs, err := chromedp.Run(ctx, chromedp.Evaluate[[]versus](versusJS))
	if err != nil || len(vs) != 2 {
		t.Fatalf("cards: %+v, %v", vs, err)
	}
	cards, err := chromedp.Run(ctx, chromedp.Evaluate[[]card](cardsJS))
	if err != nil {
		t.Fatal(err)
	}
	_, data := sample(t, pic)
	for i, second := range []string{tinyID, defaultID} {
		checkCard(t, cards[i], defaultID, data)
		want, names := nativeProbs(t, second, data)
		v := vs[i]
		if len(v.OtherProbs) != len(want) {
			t.Fatalf("with %s: second model's probabilities %v", second, v.OtherProbs)
		}
		for j := range want {
			if d := float64(v.OtherProbs[j] - want[j]); d > tolerance || d < -tolerance {
				t.Errorf("with %s: second model p[%d] = %.7f in the browser, %.7f natively", second, j, v.OtherProbs[j], want[j])
			}
		}
		if !v.Visible || len(v.Models) != 2 || v.Models[0] != defaultID+models.FileExt || v.Models[1] != second+models.FileExt ||
			!strings.HasPrefix(v.Shown[0], v.TopLabel+" ") || !strings.HasPrefix(v.Shown[1], names[top(want)]+" ") {
			t.Errorf("with %s: side by side shows %+v", second, v)
		}
		wantDisagree := second == tinyID
		if (v.Disagree == "true") != wantDisagree || (v.Verdict == "The models disagree") != wantDisagree ||
			(v.Verdict == "Both models agree") == wantDisagree {
			t.Errorf("with %s: disagree %q, verdict %q; want disagreement %v", second, v.Disagree, v.Verdict, wantDisagree)
		}
	}
	// The JSON and CSV downloads carry the second model's answer.
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](captureDownloadsJS)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.getElementById('export-json').click(),
		document.getElementById('export-csv').click()`)); err != nil {
		t.Fatal(err)
	}
	files, err := chromedp.Run(ctx, chromedp.Evaluate[[]exported](`Promise.all(window.cifarnetDownloads)`, chromedp.EvalAwaitPromise))
	if err != nil || len(files) != 2 {
		t.Fatalf("downloads: %v, %v", files, err)
	}
	var doc struct {
		Results []struct {
			Model    string   `json:"model"`
			Compare  string   `json:"compare_model"`
			Top      string   `json:"compare_top_class"`
			P        *float64 `json:"compare_top_probability"`
			Disagree *bool    `json:"models_disagree"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(files[0].Text), &doc); err != nil || len(doc.Results) != 2 {
		t.Fatalf("JSON download: %v\n%s", err, files[0].Text)
	}
	for i, second := range []string{tinyID, defaultID} {
		r := doc.Results[i]
		if r.Compare != second+models.FileExt || r.Top != vs[i].OtherLabel || r.P == nil || r.Disagree == nil || *r.Disagree != (second == tinyID) {
			t.Errorf("JSON result %d (compared with %s): %+v", i, second, r)
		}
	}
	rows, err := csv.NewReader(strings.NewReader(files[1].Text)).ReadAll()
	if err != nil || len(rows) != 3 || !slices.Contains(rows[0], "models_disagree") {
		t.Fatalf("CSV download: %v\n%s", err, files[1].Text)
	}
	col := slices.Index(rows[0], "models_disagree")
	if rows[1][col] != "true" || rows[2][col] != "false" {
		t.Errorf("CSV models_disagree: %q, %q; want true, false", rows[1][col], rows[2][col])
	}

	// A disagreement is also marked in colour.
	borders, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#results .result')).map((li) =>
		getComputedStyle(li).borderTopColor)`))
	if err != nil || len(borders) != 2 || borders[0] == borders[1] {
		t.Errorf("agreeing and disagreeing cards have borders %q (%v), want two colours", borders, err)
	}
	noCSPViolations(t, ctx)
}

// A drop of 200 images counts up, can be cancelled part-way (the rest
// are dropped, the results so far stay) and leaves the page answering.
func TestManyImagesCancel(t *testing.T) {
	ctx := newPage(t)
	srv := startServer(t, nil)
	openReady(t, ctx, srv.URL)

	dir := t.TempDir()
	var paths []string
	for i := range 200 {
		p := filepath.Join(dir, fmt.Sprintf("img%03d.png", i))
		if err := os.WriteFile(p, plainPNG(t, 40+i%24, 40, color.RGBA{uint8(i), uint8(255 - i), uint8(i * 7), 255}), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`window.cifarnetLongTasks = [];
		new PerformanceObserver((l) => { for (const e of l.getEntries()) window.cifarnetLongTasks.push(Math.round(e.duration)); })
			.observe({type: 'longtask'});`)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.SetUploadFiles(chromedp.CSS("#file"), paths)); err != nil {
		t.Fatal(err)
	}
	// Part-way: some done, most not.
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](`document.querySelectorAll('#results .result[data-state="done"]').length >= 8`,
		chromedp.WithPollingTimeout(60*time.Second))); err != nil {
		t.Fatalf("no results: %v", err)
	}
	progress, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('batch').hidden ? '' : document.getElementById('batch-text').textContent`))
	if err != nil || !strings.HasSuffix(progress, " of 200") {
		t.Errorf("progress line %q (%v), want n of 200", progress, err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#batch-cancel"))); err != nil {
		t.Fatal(err)
	}
	// In-flight images may still finish; then nothing is pending.
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](`!document.querySelector('#results .result[data-state="pending"]') &&
		document.getElementById('batch').dataset.state === 'cancelled'`, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("pending cards stay after Cancel: %v", err)
	}
	type after struct {
		Cards, Done int
		Text, Said  string
		Compact     bool
		Focus       string
		Cancel      bool
	}
	a, err := chromedp.Run(ctx, chromedp.Evaluate[after](`({
		Cards: document.querySelectorAll('#results .result').length,
		Done: document.querySelectorAll('#results .result[data-state="done"]').length,
		Text: document.getElementById('batch-text').textContent,
		Said: document.getElementById('announce').textContent,
		Compact: document.getElementById('results').classList.contains('compact'),
		Focus: document.activeElement.id,
		Cancel: document.getElementById('batch-cancel').disabled,
	})`))
	if err != nil {
		t.Fatal(err)
	}
	if a.Cards >= 200 || a.Cards < 8 || a.Done != a.Cards {
		t.Errorf("after Cancel: %d cards, %d done; want the finished ones only, fewer than 200", a.Cards, a.Done)
	}
	if want := fmt.Sprintf("Stopped at %d of 200", a.Cards); a.Text != want {
		t.Errorf("progress line %q, want %q", a.Text, want)
	}
	if want := fmt.Sprintf("Stopped: %d of 200 images classified, %d cancelled.", a.Cards, 200-a.Cards); a.Said != want {
		t.Errorf("announced %q, want %q", a.Said, want)
	}
	if !a.Compact || a.Focus != "batch-text" || !a.Cancel {
		t.Errorf("after Cancel: %+v; want the compact layout, focus on the progress line, Cancel disabled", a)
	}
	// The page still answers, and classifies.
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.querySelector('button[data-sample="cat"]').click()`)); err != nil {
		t.Fatal(err)
	}
	cards := waitCards(t, ctx, a.Cards+1)
	_, cat := sample(t, "cat")
	checkCard(t, cards[len(cards)-1], defaultID, cat)
	long, err := chromedp.Run(ctx, chromedp.Evaluate[[]int](`window.cifarnetLongTasks`))
	if err != nil {
		t.Fatal(err)
	}
	// Reported, not judged: on a shared machine the scheduler alone can
	// stretch a task (bench/pagecheck runs Lighthouse for that).
	t.Logf("main-thread tasks over 50 ms during the drop: %v", long)

	// The compact cards' bars, heat strips and model inputs are made when
	// the full layout is chosen.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#view-compact"))); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](`(() => {
		const cards = document.querySelectorAll('#results .result[data-state="done"]');
		return !document.getElementById('results').classList.contains('compact') && cards.length > 0 &&
			Array.from(cards).every((c) => c.querySelectorAll('.bars li').length === 10 && c.querySelectorAll('.heat span').length === 10 &&
				c.querySelector('.seen canvas.input').width === 32);
	})()`, chromedp.WithPollingTimeout(30*time.Second), quietPoll)); err != nil {
		t.Errorf("details of compact cards never shown in the full layout: %v", err)
	}
	cards, err = chromedp.Run(ctx, chromedp.Evaluate[[]card](cardsJS))
	if err != nil {
		t.Fatal(err)
	}
	checkCard(t, cards[len(cards)-1], defaultID, cat)
	noCSPViolations(t, ctx)
}

// A drop of several images made while the model is still downloading
// shows its cards at once, waiting; all are answered once the model is
// in. A drop on a working classifier adds each card with its answer.
func TestDropWhileLoadingShowsCards(t *testing.T) {
	ctx := newPage(t)
	release := make(chan struct{})
	srv := startServer(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, models.FileExt) {
				select {
				case <-release:
				case <-r.Context().Done():
					return
				}
			}
			h.ServeHTTP(w, r)
		})
	})
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL)); err != nil {
		t.Fatal(err)
	}
	var files strings.Builder
	for i, class := range []string{"cat", "dog", "ship", "frog", "truck"} {
		_, data := sample(t, class)
		fmt.Fprintf(&files, "dt.items.add(new File([Uint8Array.from(atob(%q), (c) => c.charCodeAt(0))], %q, {type: 'image/png'}));\n",
			base64.StdEncoding.EncodeToString(data), fmt.Sprintf("%d-%s.png", i, class))
	}
	drop := `(() => { const dt = new DataTransfer();` + files.String() +
		`document.getElementById('drop').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
		return dt.files.length; })()`
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](drop)); err != nil || n != 5 {
		t.Fatalf("drop: %v (%d files)", err, n)
	}
	waiting := `document.querySelectorAll('#results .result[data-state="pending"]').length === 5 &&
		document.getElementById('status').dataset.state !== 'ready'`
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](waiting, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		cards, _ := chromedp.Run(ctx, chromedp.Evaluate[[]card](cardsJS))
		t.Fatalf("no waiting cards while the model downloads: %v; the page shows %+v", err, cards)
	}
	close(release)
	cards := waitCards(t, ctx, 5)
	if len(cards) != 5 {
		t.Fatalf("%d cards, want 5: %+v", len(cards), cards)
	}
	for _, c := range cards {
		_, data := sample(t, sampleOf(c.File))
		checkCard(t, c, defaultID, data)
	}

	// With the model in, a drop's cards join the page with their answers:
	// none is added waiting.
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`window.cifarnetAdded = [];
		new MutationObserver((records) => {
			for (const r of records) for (const n of r.addedNodes) if (n.classList && n.classList.contains('result')) window.cifarnetAdded.push(n.dataset.state);
		}).observe(document.getElementById('results'), {childList: true});`)); err != nil {
		t.Fatal(err)
	}
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](drop)); err != nil || n != 5 {
		t.Fatalf("second drop: %v (%d files)", err, n)
	}
	waitCards(t, ctx, 10)
	added, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.cifarnetAdded`))
	if err != nil {
		t.Fatal(err)
	}
	if len(added) < 5 || slices.ContainsFunc(added, func(s string) bool { return s != "done" }) {
		t.Errorf("cards added to the page in a drop on a working classifier: %q; want every one done", added)
	}
}

// shownCard is a result card as the view shows it, in page order.
type shownCard struct {
	Label  string  `json:"label"`
	P      float64 `json:"p"`
	Unsure bool    `json:"unsure"`
	Shown  bool    `json:"shown"`
}

const shownJS = `Array.from(document.querySelectorAll('#results .result')).map((li) => ({
	label: li.dataset.topLabel || '', p: Number(li.dataset.topP || -1), unsure: li.dataset.unsure === 'true',
	shown: li.getBoundingClientRect().height > 0,
}))`

// setView sets one of the view controls as a user would and returns the
// cards once the view has been applied.
func setView(t *testing.T, ctx context.Context, js string) []shownCard {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](js)); err != nil {
		t.Fatal(err)
	}
	cards, err := chromedp.Run(ctx, chromedp.Evaluate[[]shownCard](`new Promise((r) => requestAnimationFrame(() => r(`+shownJS+`)))`,
		chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	return cards
}

// Filter by class, sort by confidence and "only unsure" change which
// cards show and in what order (with the shipped model, which is sure of
// the samples and unsure of flat colours).
func TestResultsView(t *testing.T) {
	ctx := newPage(t)
	openShipped(t, ctx)
	var paths []string
	for _, class := range models.CIFAR10Classes {
		p, _ := sample(t, class)
		paths = append(paths, p)
	}
	dir := t.TempDir()
	for i, c := range []color.Color{color.Gray{Y: 128}, color.RGBA{200, 30, 30, 255}, color.RGBA{30, 30, 200, 255}} {
		p := filepath.Join(dir, fmt.Sprintf("flat%d.png", i))
		w, h := 48, 48
		if i == 0 {
			w, h = 300, 200 // over the thumbnail size
		}
		if err := os.WriteFile(p, plainPNG(t, w, h, c), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	if err := chromedp.Do(ctx, chromedp.SetUploadFiles(chromedp.CSS("#file"), paths)); err != nil {
		t.Fatal(err)
	}
	n := len(paths)
	waitCards(t, ctx, n)

	// Each card keeps a thumbnail of at most 160 px (tiny pictures at their
	// own size), not the picture itself.
	type preview struct {
		File        string
		W, H, Alpha int
		Images      int
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](`Array.from(document.querySelectorAll('#results canvas.preview')).every((c) => c.width > 1)`,
		chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("thumbnails not drawn: %v", err)
	}
	previews, err := chromedp.Run(ctx, chromedp.Evaluate[[]preview](`Array.from(document.querySelectorAll('#results .result')).map((li) => {
		const c = li.querySelector('canvas.preview');
		const copy = new OffscreenCanvas(c.width, c.height).getContext('2d');
		copy.drawImage(c, 0, 0);
		return {File: li.querySelector('.file').textContent, W: c.width, H: c.height,
			Alpha: copy.getImageData(c.width >> 1, c.height >> 1, 1, 1).data[3],
			Images: li.querySelectorAll('img').length};
	})`))
	if err != nil || len(previews) != n {
		t.Fatalf("previews: %+v, %v", previews, err)
	}
	for _, p := range previews {
		want := [2]int{32, 32} // the samples
		if strings.HasPrefix(p.File, "flat") {
			want = [2]int{48, 48}
		}
		if p.File == "flat0.png" {
			want = [2]int{160, 160}
		}
		if [2]int{p.W, p.H} != want || p.Alpha != 255 || p.Images != 0 {
			t.Errorf("%s: preview %d×%d (alpha %d), %d <img>; want a drawn %d×%d canvas only", p.File, p.W, p.H, p.Alpha, p.Images, want[0], want[1])
		}
	}
	all := setView(t, ctx, `0`)
	unsure := 0
	for _, c := range all {
		if c.Unsure {
			unsure++
		}
	}
	if unsure == 0 || unsure == n {
		t.Fatalf("%d of %d unsure: the test needs both kinds", unsure, n)
	}

	shownOnly := func(cards []shownCard) []shownCard {
		return slices.DeleteFunc(slices.Clone(cards), func(c shownCard) bool { return !c.Shown })
	}
	got := shownOnly(setView(t, ctx, `document.getElementById('view-unsure').click()`))
	if len(got) != unsure || slices.ContainsFunc(got, func(c shownCard) bool { return !c.Unsure }) {
		t.Errorf("only unsure: shows %+v, want the %d unsure cards", got, unsure)
	}
	setView(t, ctx, `document.getElementById('view-unsure').click()`)

	label := all[0].Label
	want := 0
	for _, c := range all {
		if c.Label == label {
			want++
		}
	}
	got = shownOnly(setView(t, ctx, fmt.Sprintf(`(() => {
		const s = document.getElementById('view-class');
		s.value = %q;
		s.dispatchEvent(new Event('change'));
	})()`, label)))
	if len(got) != want || want == n || slices.ContainsFunc(got, func(c shownCard) bool { return c.Label != label }) {
		t.Errorf("class %s: shows %+v, want its %d cards of %d", label, got, want, n)
	}
	count, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('view-count').textContent`))
	if count != fmt.Sprintf("Showing %d of %d", want, n) {
		t.Errorf("count line %q", count)
	}
	setView(t, ctx, `(() => {
		const s = document.getElementById('view-class');
		s.value = '';
		s.dispatchEvent(new Event('change'));
	})()`)

	for _, order := range []string{"sure", "unsure"} {
		got = setView(t, ctx, fmt.Sprintf(`(() => {
			const s = document.getElementById('view-sort');
			s.value = %q;
			s.dispatchEvent(new Event('change'));
		})()`, order))
		if len(shownOnly(got)) != n || !slices.IsSortedFunc(got, func(a, b shownCard) int {
			if order == "sure" {
				a, b = b, a
			}
			return cmpFloat(a.P, b.P)
		}) {
			t.Errorf("order %s: %+v", order, got)
		}
	}
	noCSPViolations(t, ctx)
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
