package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
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
