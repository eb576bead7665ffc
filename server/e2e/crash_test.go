package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
)

// The crash tests run the Go program of a real worker out of memory. So
// that this takes a quarter of a gigabyte rather than four, their browser
// caps a WebAssembly memory at 4096 pages of 64 KiB (V8's --wasm-max-mem-pages),
// as a small device would; the page works as usual under the cap.
const wasmCap = "--wasm-max-mem-pages=4096"

// crashPage starts a browser of its own with the memory cap, tells the
// page it has two cores (a pool of two workers), opens the site and waits
// until both workers have the model.
func crashPage(t *testing.T) context.Context {
	t.Helper()
	if site.skip != "" {
		t.Skip(site.skip)
	}
	bctx, cancel, err := launch(chromedp.Flag("js-flags", wasmCap))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cancel)
	ctx, cancelTimeout := context.WithTimeout(bctx, 150*time.Second)
	t.Cleanup(cancelTimeout)
	setCores(t, ctx, 2)
	srv := startServer(t, nil)
	openReady(t, ctx, srv.URL)
	waitPool(t, ctx, 2)
	return ctx
}

// setCores sets navigator.hardwareConcurrency for the pages of ctx.
func setCores(t testing.TB, ctx context.Context, n int) {
	t.Helper()
	override := chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetHardwareConcurrencyOverride,
			emulation.SetHardwareConcurrencyOverrideParams{HardwareConcurrency: int64(n)})
		return err
	})
	if err := chromedp.Do(ctx, override); err != nil {
		t.Fatal(err)
	}
}

type poolSlot struct {
	Primary bool `json:"primary"`
	Ready   bool `json:"ready"`
	Jobs    int  `json:"jobs"`
}

// waitPool waits until the page's pool has n workers with the model.
func waitPool(t testing.TB, ctx context.Context, n int) []poolSlot {
	t.Helper()
	expr := fmt.Sprintf(`cifarnetPool().length === %d && cifarnetPool().every((s) => s.ready)`, n)
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(60*time.Second))); err != nil {
		p, _ := chromedp.Run(ctx, chromedp.Evaluate[[]poolSlot](`cifarnetPool()`))
		st, _ := chromedp.Run(ctx, chromedp.Evaluate[status](statusJS))
		t.Fatalf("waiting for %d ready workers: %v; pool %+v, status %+v", n, err, p, st)
	}
	p, err := chromedp.Run(ctx, chromedp.Evaluate[[]poolSlot](`cifarnetPool()`))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// worker is a classifier worker's DevTools session.
type worker struct {
	id       target.ID
	ctx      context.Context
	primary  bool // the page's first worker: shared, or without one the worker that compiled the module
	compiled bool // it compiled the module itself
}

// workers attaches to every worker of the page with the Go program
// running in it that is not in seen, and marks the targets seen.
func workers(t testing.TB, ctx context.Context, seen map[target.ID]bool) []worker {
	t.Helper()
	infos, err := chromedp.Targets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// With a shared first worker, the first helper compiles the module
	// too (the shared one cannot hand it over).
	sharedFirst := false
	for _, info := range infos {
		sharedFirst = sharedFirst || info.Type == "shared_worker"
	}
	var out []worker
	for _, info := range infos {
		if (info.Type != "worker" && info.Type != "shared_worker") || seen[info.TargetID] {
			continue
		}
		seen[info.TargetID] = true
		wctx, cancel := chromedp.NewContext(ctx, chromedp.WithTargetID(info.TargetID), chromedp.WithDetachOnCancel())
		t.Cleanup(cancel)
		// timing is worker.js's record of its start-up steps: only a
		// worker that compiled the module has 'compiled'.
		compiled, err := chromedp.Run(wctx, chromedp.Evaluate[bool](`typeof cifarnet === 'object' && 'compiled' in timing`))
		if err != nil {
			t.Fatalf("worker %s: %v", info.URL, err)
		}
		primary := info.Type == "shared_worker" || (compiled && !sharedFirst)
		out = append(out, worker{id: info.TargetID, ctx: wctx, primary: primary, compiled: compiled})
	}
	return out
}

// outOfMemory makes the Go program of the worker run out of memory for
// real: it is handed a 500 MB "weight file" (under loadBytes's 512 MB
// limit) to copy in, more than the capped memory can grow to, and the
// runtime dies. Any call after that throws, because the program has
// exited.
func outOfMemory(t testing.TB, w worker) {
	t.Helper()
	got, err := chromedp.Run(w.ctx, chromedp.Evaluate[string](`(() => {
		const before = cifarnetMemory();
		cifarnet.loadBytes(new Uint8Array(500e6), 'too-large.cnw');
		try {
			cifarnet.info();
		} catch (err) {
			return String(err);
		}
		return 'still running with ' + before + ' bytes of memory';
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got, "exited") {
		t.Fatalf("the worker's Go program did not die: %s", got)
	}
}

// dropSamples drops n images (the ten samples in turn) in one drop.
func dropSamples(t testing.TB, ctx context.Context, n int, prefix string) {
	t.Helper()
	js := fmt.Sprintf(`(async () => {
		const names = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];
		const bytes = {};
		for (const c of names) bytes[c] = new Uint8Array(await (await fetch('samples/' + c + '.png')).arrayBuffer());
		const dt = new DataTransfer();
		for (let i = 0; i < %d; i++) dt.items.add(new File([bytes[names[i %% 10]]], %q + i + '-' + names[i %% 10] + '.png', {type: 'image/png'}));
		document.getElementById('drop').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
		return dt.files.length;
	})()`, n, prefix)
	if got, err := chromedp.Run(ctx, chromedp.Evaluate[int](js, chromedp.EvalAwaitPromise)); err != nil || got != n {
		t.Fatalf("drop %d images: %v (%d)", n, err, got)
	}
}

// sampleOf is the sample class in a name dropSamples gave.
func sampleOf(name string) string {
	name = strings.TrimSuffix(name, ".png")
	return name[strings.LastIndex(name, "-")+1:]
}

// checkCrashedBatch checks the cards from index from on: exactly one has
// the crash error, and every other one equals native Go.
func checkCrashedBatch(t *testing.T, cards []card, from int) {
	t.Helper()
	crashed := 0
	for _, c := range cards[from:] {
		if c.State == "error" {
			crashed++
			if c.Code != "crashed" || !strings.Contains(c.Message, "stopped while working on this image and was restarted") {
				t.Errorf("%s: error %q %q, want the crash message", c.File, c.Code, c.Message)
			}
			continue
		}
		_, data := sample(t, sampleOf(c.File))
		checkCard(t, c, defaultID, data)
	}
	if crashed != 1 {
		t.Errorf("%d images have an error, want the one the worker was working on", crashed)
	}
}

// A worker whose Go program runs out of memory in the middle of a batch,
// the first worker and then a helper: it is replaced, the image it was
// working on says so on its card, the images queued on it are classified
// by the others, the status line says the classifier was restarted, and
// later images classify on a full pool again.
func TestWorkerCrashMidBatch(t *testing.T) {
	ctx := crashPage(t)
	seen := map[target.ID]bool{}
	ws := workers(t, ctx, seen)
	if len(ws) != 2 || ws[0].primary == ws[1].primary {
		t.Fatalf("%d workers %+v; want the first and one helper", len(ws), ws)
	}
	if !ws[0].primary {
		ws[0], ws[1] = ws[1], ws[0]
	}
	total := 0
	// The first worker (whose replacement takes its place), then the
	// helper, which has been there all along.
	for round, victim := range ws {
		const n = 30
		victimJS := fmt.Sprintf(`cifarnetPool().find((s) => s.primary === %v)`, victim.primary)
		before, err := chromedp.Run(ctx, chromedp.Evaluate[int](victimJS+`.answered`))
		if err != nil {
			t.Fatal(err)
		}
		dropSamples(t, ctx, n, fmt.Sprintf("r%d-", round))
		// Kill it while it holds images and more wait behind them, once it
		// has answered two of this drop (the page shows answers in
		// batches, so the cards would tell it too late).
		held := fmt.Sprintf(`((v) => v.answered >= %d && v.jobs === 2)(%s)`, before+2, victimJS)
		if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](held, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
			t.Fatalf("round %d: the worker never held two images: %v", round, err)
		}
		outOfMemory(t, victim)
		cards := waitCards(t, ctx, total+n)
		checkCrashedBatch(t, cards, total)
		total += n
		st, err := chromedp.Run(ctx, chromedp.Evaluate[status](statusJS))
		if err != nil {
			t.Fatal(err)
		}
		if st.State != "ready" || !strings.Contains(st.Text, "stopped unexpectedly while working on r") || !strings.Contains(st.Text, "was restarted") {
			t.Errorf("round %d: status %+v, want it to say the classifier was restarted", round, st)
		}
		p := waitPool(t, ctx, 2)
		if p[0].Primary == p[1].Primary {
			t.Errorf("round %d: pool %+v, want one first worker", round, p)
		}
		// The replacement started from the page's compiled module.
		fresh := workers(t, ctx, seen)
		if len(fresh) != 1 || fresh[0].compiled {
			t.Errorf("round %d: new workers %+v, want one that did not compile the module", round, fresh)
		}
	}
	// Later images classify on the mended pool.
	dropSamples(t, ctx, 10, "after-")
	cards := waitCards(t, ctx, total+10)
	for _, c := range cards[total:] {
		_, data := sample(t, sampleOf(c.File))
		checkCard(t, c, defaultID, data)
	}
	noCSPViolations(t, ctx)
}

// A worker that dies again and again is replaced only MAX_RESTARTS (3)
// times a minute: the pool shrinks, and when none is left the status line
// says so and offers Retry, which starts the pool again; an image given
// meanwhile waits for it and is then classified.
func TestCrashLoopStopsAndRetry(t *testing.T) {
	ctx := crashPage(t)
	seen := map[target.ID]bool{}
	alive := workers(t, ctx, seen)
	kill := func() {
		t.Helper()
		outOfMemory(t, alive[0])
		alive = alive[1:]
	}
	for i := 1; i <= 3; i++ {
		kill()
		if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](`document.getElementById('status').textContent.includes('was restarted')`,
			chromedp.WithPollingTimeout(30*time.Second))); err != nil {
			t.Fatalf("crash %d: no restart: %v", i, err)
		}
		waitPool(t, ctx, 2)
		alive = append(workers(t, ctx, seen), alive...) // the new one dies next
	}
	// The fourth within a minute is not replaced.
	kill()
	p := waitPool(t, ctx, 1)
	st, _ := chromedp.Run(ctx, chromedp.Evaluate[status](statusJS))
	if !strings.Contains(st.Text, "4 times within a minute") || !strings.Contains(st.Text, "goes on with 1 worker") || !p[0].Primary {
		t.Errorf("after the fourth crash: status %+v, pool %+v", st, p)
	}
	// The last one.
	kill()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](`cifarnetPool().length === 0 && !document.getElementById('retry').hidden`,
		chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("no Retry once every worker is gone: %v", err)
	}
	st, _ = chromedp.Run(ctx, chromedp.Evaluate[status](statusJS))
	if st.State != "error" || !strings.Contains(st.Text, "was not restarted") {
		t.Errorf("with no worker left: status %+v", st)
	}
	_, cat := sample(t, "cat")
	giveFile(t, ctx, "drop", "waits.png", "image/png", cat)
	click(t, ctx, "#retry")
	checkCard(t, waitCards(t, ctx, 1)[0], defaultID, cat)
	waitPool(t, ctx, 2)
	if st := waitStatus(t, ctx, ""); st.State != "ready" || !strings.Contains(st.Text, "started again") {
		t.Errorf("after Retry: status %+v", st)
	}
}

// When the module cannot be downloaded the page says so and tries again
// by itself (after 1, 2 and 4 s); after that it offers Retry. It never
// leaves a dead page.
func TestModuleDownloadRetries(t *testing.T) {
	for _, tc := range []struct {
		name     string
		failures int64 // module requests answered 503 before the first that is served
	}{
		// The first try: one request, whose error status ends it.
		{"recovers by itself", 1},
		{"Retry", 1 << 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := newPage(t)
			var failing atomic.Int64
			failing.Store(tc.failures)
			var requests atomic.Int64
			srv := startServer(t, func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if strings.HasSuffix(r.URL.Path, ".wasm") {
						requests.Add(1)
						if failing.Add(-1) >= 0 {
							http.Error(w, "try later", http.StatusServiceUnavailable)
							return
						}
					}
					h.ServeHTTP(w, r)
				})
			})
			if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL)); err != nil {
				t.Fatal(err)
			}
			said := `document.getElementById('status').textContent`
			if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](said+`.includes('503') && `+said+`.includes('Trying again in 1 s')`,
				chromedp.WithPollingTimeout(30*time.Second))); err != nil {
				st, _ := chromedp.Run(ctx, chromedp.Evaluate[status](statusJS))
				t.Fatalf("no message about the failed download: %v; status %+v", err, st)
			}
			if tc.failures > 1 {
				if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](`!document.getElementById('retry').hidden`,
					chromedp.WithPollingTimeout(30*time.Second))); err != nil {
					t.Fatalf("no Retry button: %v", err)
				}
				st, _ := chromedp.Run(ctx, chromedp.Evaluate[status](statusJS))
				if st.State != "error" || !strings.Contains(st.Text, "press Retry") {
					t.Errorf("status %+v", st)
				}
				if n := requests.Load(); n != 4 {
					t.Errorf("%d requests for the module before Retry, want 4 tries of one", n)
				}
				failing.Store(0)
				click(t, ctx, "#retry")
			}
			if st := waitStatus(t, ctx, defaultID+".cnw"); st.State != "ready" {
				t.Fatalf("status %+v", st)
			}
			_, cat := sample(t, "cat")
			giveFile(t, ctx, "drop", "cat.png", "image/png", cat)
			checkCard(t, waitCards(t, ctx, 1)[0], defaultID, cat)
		})
	}
}
