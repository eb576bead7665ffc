package e2e

import (
	"context"
	"slices"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// maxLongTaskMs bounds every main-thread task from navigation to the first
// prediction. The page's own work in any one task is under 20 ms of CPU
// (bench/pagecheck/longtasks.mjs, the "on the CPU" figures); the wall time
// of a task is far longer on a loaded machine, where the main thread waits
// for a core behind the workers and whatever else runs: 50–625 ms measured
// on a 2-core AMD EPYC at load averages 5–14 (bench/RESULTS.md). So the
// bound is generous; what it catches is a page that does real work on the
// main thread (decoding or resizing images, compiling, parsing a weight
// file), which takes seconds there.
const maxLongTaskMs = 2000

// TestNoLongMainThreadTasks records the page's long tasks (PerformanceObserver,
// from before the page's own scripts run) while it loads and classifies a
// sample clicked at once, and checks none exceeds maxLongTaskMs.
func TestNoLongMainThreadTasks(t *testing.T) {
	ctx := newPage(t)
	srv := startServer(t, nil)
	observe := chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
			Source: `globalThis.e2eLongTasks = [];
				new PerformanceObserver((l) => {
					for (const e of l.getEntries()) globalThis.e2eLongTasks.push(Math.round(e.duration));
				}).observe({type: 'longtask', buffered: true});`,
		})
		return err
	})
	if err := chromedp.Do(ctx, observe); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL),
		chromedp.Click(chromedp.CSS(`button[data-sample="cat"]`)),
	); err != nil {
		t.Fatal(err)
	}
	waitCards(t, ctx, 1)
	tasks, err := chromedp.Run(ctx, chromedp.Evaluate[[]float64](`globalThis.e2eLongTasks`))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("long tasks to the first prediction (ms): %v", tasks)
	if len(tasks) > 0 && slices.Max(tasks) > maxLongTaskMs {
		t.Errorf("a main-thread task took %.0f ms (bound %d ms); all: %v", slices.Max(tasks), maxLongTaskMs, tasks)
	}
}
