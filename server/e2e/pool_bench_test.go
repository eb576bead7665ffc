package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/cifarnet-go/cifarnet/models"
)

// BenchmarkBrowserPool drops 100 images (the ten samples, ten times) on
// the page at once and times until every result is in, with the worker
// pool at one worker and at the page's size for this machine's cores
// (navigator.hardwareConcurrency set through the DevTools protocol):
//
//	one-img/s    images per second with one worker
//	pool-img/s   with min(cores, 4) workers
//	pool/one     the ratio
//
//	go test -run '^$' -bench BrowserPool -benchtime 3x ./server/e2e/
func BenchmarkBrowserPool(b *testing.B) {
	if site.skip != "" {
		b.Skip(site.skip)
	}
	dist := singleModelSite(b, nil) // one forward pass an image: the pool, not TTA, is measured
	pool := min(runtime.NumCPU(), 4)
	var one, many float64
	for range b.N {
		one += dropHundred(b, dist, 1)
		many += dropHundred(b, dist, pool)
	}
	n := float64(b.N)
	b.ReportMetric(one/n, "one-img/s")
	b.ReportMetric(many/n, "pool-img/s")
	b.ReportMetric(many/one, "pool/one")
	b.ReportMetric(float64(pool), "workers")
}

// dropHundred opens the site in dist with the page told it has cores
// cores, drops 100 images at once and returns images per second from the
// drop to the last result.
func dropHundred(b *testing.B, dist string, cores int) float64 {
	b.Helper()
	ctx := newPage(b)
	override := chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetHardwareConcurrencyOverride,
			emulation.SetHardwareConcurrencyOverrideParams{HardwareConcurrency: int64(cores)})
		return err
	})
	if err := chromedp.Do(ctx, override); err != nil {
		b.Fatal(err)
	}
	srv := serveDist(b, dist, nil)
	openReady(b, ctx, srv.URL)
	var files strings.Builder
	for i := range 100 {
		class := []string{"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}[i%10]
		_, data := sample(b, class)
		fmt.Fprintf(&files, "dt.items.add(new File([Uint8Array.from(atob(%q), (c) => c.charCodeAt(0))], %q, {type: 'image/png'}));\n",
			base64.StdEncoding.EncodeToString(data), fmt.Sprintf("%s-%d.png", class, i))
	}
	js := `(() => { const dt = new DataTransfer();` + files.String() +
		`document.getElementById('drop').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
		return dt.files.length; })()`
	start := time.Now()
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](js)); err != nil || n != 100 {
		b.Fatalf("drop: %v (%d files)", err, n)
	}
	done := `document.querySelectorAll('#results .result[data-state="done"]').length === 100`
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](done, chromedp.WithPollingTimeout(5*time.Minute))); err != nil {
		b.Fatalf("%d workers: 100 results: %v", cores, err)
	}
	return 100 / time.Since(start).Seconds()
}

// oneAtATimeJS drops the ten samples one at a time, each when the one
// before has its answer, and returns the page's time from each drop to
// its answer (ms) with the card's data, for ROUNDS rounds of the ten.
const oneAtATimeJS = `(async (rounds) => {
	const names = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];
	const bytes = {};
	for (const c of names) bytes[c] = new Uint8Array(await (await fetch('samples/' + c + '.png')).arrayBuffer());
	const results = document.getElementById('results');
	const out = [];
	for (let i = 0; i < 10 * rounds; i++) {
		const name = names[i % 10];
		const dt = new DataTransfer();
		dt.items.add(new File([bytes[name]], name + '.png', {type: 'image/png'}));
		const before = results.querySelectorAll('.result:not([data-state="pending"])').length;
		const answered = new Promise((resolve) => {
			const mo = new MutationObserver(() => {
				if (results.querySelectorAll('.result:not([data-state="pending"])').length > before) {
					mo.disconnect();
					resolve();
				}
			});
			mo.observe(results, {subtree: true, childList: true, attributes: true, attributeFilter: ['data-state']});
		});
		const t0 = performance.now();
		document.getElementById('drop').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
		await answered;
		const ms = performance.now() - t0;
		const card = results.querySelector('.result');
		out.push({ms, name, state: card.dataset.state, parts: Number(card.dataset.parts || 1),
			probs: card.dataset.probs ? JSON.parse(card.dataset.probs) : [], tta: card.dataset.tta === 'true'});
	}
	return out;
})(ROUNDS)`

type timedCard struct {
	Ms    float64   `json:"ms"`
	Name  string    `json:"name"`
	State string    `json:"state"`
	Parts int       `json:"parts"`
	Probs []float32 `json:"probs"`
	TTA   bool      `json:"tta"`
}

// oneAtATime opens the site in dist on a page told it has cores cores,
// waits for the whole pool, and classifies the samples one at a time
// (rounds × 10 images).
func oneAtATime(t testing.TB, dist string, cores, rounds int) []timedCard {
	t.Helper()
	return timeOneAtATime(t, openPool(t, dist, cores), rounds)
}

// openPool opens the site in dist on a page told it has cores cores and
// waits for its whole pool.
func openPool(t testing.TB, dist string, cores int) context.Context {
	t.Helper()
	ctx := newPage(t)
	setCores(t, ctx, cores)
	srv := serveDist(t, dist, nil)
	openReady(t, ctx, srv.URL)
	waitPool(t, ctx, min(cores, 4))
	return ctx
}

// timeOneAtATime classifies the samples one at a time on the page.
func timeOneAtATime(t testing.TB, ctx context.Context, rounds int) []timedCard {
	t.Helper()
	got, err := chromedp.Run(ctx, chromedp.Evaluate[[]timedCard](strings.ReplaceAll(oneAtATimeJS, "ROUNDS", fmt.Sprint(rounds)), chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// medianMs is the median time to an answer, the first round (the
// engine's warm-up) left out.
func medianMs(cards []timedCard) float64 {
	var ms []float64
	for _, c := range cards[min(10, len(cards)-1):] {
		ms = append(ms, c.Ms)
	}
	slices.Sort(ms)
	return ms[len(ms)/2]
}

// BenchmarkBrowserTTAPool measures what one image with test-time
// augmentation (flip + translate, six views) costs through the page's
// pool against one image without it, each sample dropped alone on an idle
// pool and timed on the page from the drop to its answer (decoding,
// messages and drawing included), median of the samples:
//
//	plain-ms      without TTA, pool of min(cores, 4)
//	tta-ms        with TTA, its views split across that pool
//	tta1-ms       with TTA on one worker (the page told it has one core)
//	tta/plain     the ratio the page achieves
//	tta1/plain    the ratio without splitting
//
//	go test -run '^$' -bench BrowserTTAPool -benchtime 5x ./server/e2e/
func BenchmarkBrowserTTAPool(b *testing.B) {
	if site.skip != "" {
		b.Skip(site.skip)
	}
	plainDist := singleModelSite(b, nil)
	ttaDist := singleModelSite(b, []string{models.TTAFlip, models.TTATranslate})
	cores := min(runtime.NumCPU(), 4)
	var plain, tta, one []float64
	for range b.N {
		plain = append(plain, medianMs(oneAtATime(b, plainDist, cores, 2)))
		tta = append(tta, medianMs(oneAtATime(b, ttaDist, cores, 2)))
		one = append(one, medianMs(oneAtATime(b, ttaDist, 1, 2)))
	}
	b.Logf("per round (ms): plain %.1f, TTA split %.1f, TTA one worker %.1f", plain, tta, one)
	med := func(v []float64) float64 {
		v = slices.Clone(v)
		slices.Sort(v)
		return v[len(v)/2]
	}
	b.ReportMetric(med(plain), "plain-ms")
	b.ReportMetric(med(tta), "tta-ms")
	b.ReportMetric(med(one), "tta1-ms")
	b.ReportMetric(med(tta)/med(plain), "tta/plain")
	b.ReportMetric(med(one)/med(plain), "tta1/plain")
	b.ReportMetric(float64(cores), "workers")
}
