package e2e

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/cifarnet-go/cifarnet/models"
)

// BenchmarkBrowserPool drops 100 images (the ten samples, ten times) on
// the page at once and times, on the page's clock, from the drop to the
// last result, with the worker pool at one worker and at the page's size
// for this machine's cores (navigator.hardwareConcurrency set through the
// DevTools protocol), without and with test-time augmentation (flip +
// translate, six views, as the shipped models run by default). Each page
// waits for its whole pool and classifies 20 images before the timed
// drop, so that neither side pays the engine's one-time optimising of
// the module. Medians over the rounds:
//
//	one-img/s, pool-img/s          images per second, one forward pass each
//	pool/one                       the ratio
//	tta-one-img/s, tta-pool-img/s  the same with test-time augmentation
//	tta-pool/one                   its ratio
//
//	go test -run '^$' -bench BrowserPool -benchtime 3x ./server/e2e/
func BenchmarkBrowserPool(b *testing.B) {
	if site.skip != "" {
		b.Skip(site.skip)
	}
	plainDist := singleModelSite(b, nil)
	ttaDist := singleModelSite(b, []string{models.TTAFlip, models.TTATranslate})
	pool := min(runtime.NumCPU(), 4)
	var one, many, ttaOne, ttaMany []float64
	for range b.N {
		one = append(one, dropHundred(b, plainDist, 1))
		many = append(many, dropHundred(b, plainDist, pool))
		ttaOne = append(ttaOne, dropHundred(b, ttaDist, 1))
		ttaMany = append(ttaMany, dropHundred(b, ttaDist, pool))
	}
	b.Logf("images/s per round: one %.1f, pool %.1f; with TTA one %.1f, pool %.1f", one, many, ttaOne, ttaMany)
	b.ReportMetric(median(one), "one-img/s")
	b.ReportMetric(median(many), "pool-img/s")
	b.ReportMetric(median(many)/median(one), "pool/one")
	b.ReportMetric(median(ttaOne), "tta-one-img/s")
	b.ReportMetric(median(ttaMany), "tta-pool-img/s")
	b.ReportMetric(median(ttaMany)/median(ttaOne), "tta-pool/one")
	b.ReportMetric(float64(pool), "workers")
}

// median is the middle value of v (the mean of the two middle ones for an
// even count).
func median(v []float64) float64 {
	s := slices.Sorted(slices.Values(v))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// dropHundredJS drops the samples n at a time (warm first, then timed) and
// returns the timed drop's milliseconds from the drop until the page's
// progress line says all are done. It waits with a MutationObserver, not
// by polling, so that the wait adds no frames of its own.
const dropHundredJS = `(async () => {
	const names = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];
	const bytes = {};
	for (const c of names) bytes[c] = new Uint8Array(await (await fetch('samples/' + c + '.png')).arrayBuffer());
	const batch = document.getElementById('batch');
	const drop = async (n) => {
		const dt = new DataTransfer();
		for (let i = 0; i < n; i++) dt.items.add(new File([bytes[names[i % 10]]], names[i % 10] + '-' + i + '.png', {type: 'image/png'}));
		const done = new Promise((resolve) => {
			const mo = new MutationObserver(() => {
				if (batch.dataset.state === 'done') {
					mo.disconnect();
					resolve();
				}
			});
			mo.observe(batch, {attributes: true, attributeFilter: ['data-state']});
		});
		const t0 = performance.now();
		document.getElementById('drop').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
		await done;
		return performance.now() - t0;
	};
	await drop(20);
	document.getElementById('clear').click();
	const ms = await drop(100);
	const shown = document.querySelectorAll('#results .result[data-state="done"]').length;
	if (shown !== 100) throw new Error(shown + ' results shown, not 100');
	return ms;
})()`

// dropHundred opens the site in dist with the page told it has cores
// cores and returns images per second of a timed drop of 100 (dropHundredJS).
func dropHundred(b *testing.B, dist string, cores int) float64 {
	b.Helper()
	ctx := openPool(b, dist, cores)
	defer closePage(ctx)
	ms, err := chromedp.Run(ctx, chromedp.Evaluate[float64](dropHundredJS, chromedp.EvalAwaitPromise))
	if err != nil {
		b.Fatalf("%d workers: %v", cores, err)
	}
	return 100 / (ms / 1000)
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
		let t0 = 0;
		let firstMs = -1;
		const answered = new Promise((resolve) => {
			const mo = new MutationObserver(() => {
				const newest = results.querySelector('.result');
				if (firstMs < 0 && newest && newest.dataset.firstLabel) firstMs = performance.now() - t0;
				if (results.querySelectorAll('.result:not([data-state="pending"])').length > before) {
					mo.disconnect();
					resolve();
				}
			});
			mo.observe(results, {subtree: true, childList: true, attributes: true, attributeFilter: ['data-state', 'data-first-label']});
		});
		t0 = performance.now();
		document.getElementById('drop').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
		await answered;
		const ms = performance.now() - t0;
		const card = results.querySelector('.result');
		out.push({ms, name, state: card.dataset.state, parts: Number(card.dataset.parts || 1),
			probs: card.dataset.probs ? JSON.parse(card.dataset.probs) : [], tta: card.dataset.tta === 'true',
			firstMs, firstLabel: card.dataset.firstLabel || '', firstP: Number(card.dataset.firstP || -1)});
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
	// The answer from the image alone shown while the other test-time
	// views ran, and when (-1 and "" without one).
	FirstMs    float64 `json:"firstMs"`
	FirstLabel string  `json:"firstLabel"`
	FirstP     float32 `json:"firstP"`
}

// oneAtATime opens the site in dist on a page told it has cores cores,
// waits for the whole pool, and classifies the samples one at a time
// (rounds × 10 images).
func oneAtATime(t testing.TB, dist string, cores, rounds int) []timedCard {
	t.Helper()
	ctx := openPool(t, dist, cores)
	defer closePage(ctx)
	return timeOneAtATime(t, ctx, rounds)
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
//	first1-ms     there, to the answer from the image alone, which the
//	              card shows while the other five views run
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
	var plain, tta, one, first []float64
	for range b.N {
		plain = append(plain, medianMs(oneAtATime(b, plainDist, cores, 2)))
		tta = append(tta, medianMs(oneAtATime(b, ttaDist, cores, 2)))
		cards := oneAtATime(b, ttaDist, 1, 2)
		one = append(one, medianMs(cards))
		for i := range cards {
			cards[i].Ms = cards[i].FirstMs
		}
		first = append(first, medianMs(cards))
	}
	b.Logf("per round (ms): plain %.1f, TTA split %.1f, TTA one worker %.1f (its first answer %.1f)", plain, tta, one, first)
	b.ReportMetric(median(plain), "plain-ms")
	b.ReportMetric(median(tta), "tta-ms")
	b.ReportMetric(median(one), "tta1-ms")
	b.ReportMetric(median(first), "first1-ms")
	b.ReportMetric(median(tta)/median(plain), "tta/plain")
	b.ReportMetric(median(one)/median(plain), "tta1/plain")
	b.ReportMetric(float64(cores), "workers")
}
