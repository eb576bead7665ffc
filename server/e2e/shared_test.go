package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"github.com/cifarnet-go/cifarnet/models"
)

// marksOf reads the page's start-up marks (app.js mark, the worker's as
// worker.*, sent with its first result).
func marksOf(t testing.TB, ctx context.Context) map[string]float64 {
	t.Helper()
	m, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]float64](`globalThis.cifarnetMarks`))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// classifySample clicks a sample and checks its answer against the native
// forward pass of modelID.
func classifySample(t *testing.T, ctx context.Context, class, modelID string) {
	t.Helper()
	_, img := sample(t, class)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`button[data-sample="`+class+`"]`))); err != nil {
		t.Fatal(err)
	}
	checkCard(t, waitCards(t, ctx, 1)[0], modelID, img)
}

// The first worker is shared and outlives its page: a reload finds the
// model loaded and answers as the native forward pass does. A second tab
// open at the same time gets a worker of its own; a page that chose another
// model leaves the shared worker holding it, and the next page's default
// is loaded again, not taken for the one held.
func TestSharedWorkerKeepsModel(t *testing.T) {
	ctx := newPage(t)
	setCores(t, ctx, 2)
	srv := startServer(t, nil)

	openReady(t, ctx, srv.URL)
	classifySample(t, ctx, "cat", defaultID)
	m := marksOf(t, ctx)
	if _, ok := m["sharedWorker"]; !ok {
		t.Fatalf("the first worker is not a shared one (marks %v)", m)
	}
	if _, ok := m["worker.goStarted"]; !ok {
		t.Errorf("the first visit's worker reports no start (marks %v)", m)
	}
	// The helper compiles the stored module itself and hands it over:
	// the page's thread compiles nothing.
	waitPool(t, ctx, 2)
	if _, ok := marksOf(t, ctx)["compiled"]; ok {
		t.Error("the page compiled the module on its own thread")
	}

	openReady(t, ctx, srv.URL)
	classifySample(t, ctx, "cat", defaultID)
	m = marksOf(t, ctx)
	_, kept := m["worker.modelKept"]
	_, started := m["worker.goStarted"]
	_, loaded := m["worker.modelLoaded"]
	if !kept || started || loaded {
		t.Errorf("after a reload: model kept %v, Go started again %v, model loaded again %v (marks %v)", kept, started, loaded, m)
	}

	// A second tab while the first holds the shared worker.
	tab2, cancel := chromedp.NewContext(ctx)
	defer cancel()
	openReady(t, tab2, srv.URL)
	classifySample(t, tab2, "ship", defaultID)
	m2 := marksOf(t, tab2)
	if _, ok := m2["sharedWorker"]; ok {
		t.Errorf("the second tab shares the first tab's worker (marks %v)", m2)
	}
	if _, ok := m2["worker.goStarted"]; !ok {
		t.Errorf("the second tab's worker reports no start of its own (marks %v)", m2)
	}
	closePage(tab2)

	// The first tab switches to the tiny model, then reloads: the shared
	// worker holds tiny, the page asks for the default.
	chooseModel(t, ctx, tinyID)
	if st := waitStatus(t, ctx, tinyID+models.FileExt); st.State != "ready" {
		t.Fatalf("after choosing tiny: %+v", st)
	}
	openReady(t, ctx, srv.URL)
	classifySample(t, ctx, "cat", defaultID)
	m = marksOf(t, ctx)
	if _, ok := m["worker.modelKept"]; ok {
		t.Errorf("the default model was taken for the tiny one the shared worker held (marks %v)", m)
	}
	if _, ok := m["worker.modelLoaded"]; !ok {
		t.Errorf("the default model was not loaded again (marks %v)", m)
	}
}

// Where the browser has no SharedWorker the first worker is a dedicated
// one and the page works as before.
func TestWithoutSharedWorker(t *testing.T) {
	ctx := newPage(t)
	setCores(t, ctx, 2)
	withoutSharedWorker(t, ctx)
	srv := startServer(t, nil)
	openReady(t, ctx, srv.URL)
	classifySample(t, ctx, "cat", defaultID)
	m := marksOf(t, ctx)
	if _, ok := m["sharedWorker"]; ok {
		t.Errorf("a shared worker was used where there is none (marks %v)", m)
	}
	waitPool(t, ctx, 2)
	openReady(t, ctx, srv.URL)
	classifySample(t, ctx, "cat", defaultID)
	if _, ok := marksOf(t, ctx)["worker.goStarted"]; !ok {
		t.Error("the reload's dedicated worker reports no start")
	}
}

// A shared worker that never answers (one that was ending as the page
// connected: a race no test can bring about on demand, so the browser's
// SharedWorker is replaced by one whose port leads nowhere) is given up for
// a dedicated worker after 5 s, which gets what it was sent: the page
// loads the model and classifies.
func TestSilentSharedWorker(t *testing.T) {
	ctx := newPage(t)
	onNewDocument(t, ctx, `globalThis.SharedWorker = class {
		constructor(url, options) {
			void options.extendedLifetime;
			new URL(url, location.href); // as the real one, it throws for a bad URL
			this.port = new MessageChannel().port1;
		}
	};`)
	srv := startServer(t, nil)
	openReady(t, ctx, srv.URL)
	classifySample(t, ctx, "cat", defaultID)
	m := marksOf(t, ctx)
	_, tried := m["sharedWorker"]
	_, started := m["worker.goStarted"]
	if !tried || !started || m["modelReady"] < 5000 {
		t.Errorf("marks %v: want the shared worker tried, then a dedicated one started after 5 s", m)
	}
}

// withoutSharedWorker removes SharedWorker from the pages of ctx, as a
// browser without it would be.
func withoutSharedWorker(t testing.TB, ctx context.Context) {
	t.Helper()
	onNewDocument(t, ctx, `delete globalThis.SharedWorker;`)
}

// onNewDocument runs src in every page of ctx before its own scripts.
func onNewDocument(t testing.TB, ctx context.Context, src string) {
	t.Helper()
	add := chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument,
			page.AddScriptToEvaluateOnNewDocumentParams{Source: src})
		return err
	})
	if err := chromedp.Do(ctx, add); err != nil {
		t.Fatal(err)
	}
}

// closeSharedWorkers ends the browser's shared workers, as the browser does
// once their lifetime is over, so that the next visit starts its first
// worker afresh; it waits until they are gone. From the browser's own
// session, as bench/pagecheck/firstanswer.mjs does, not by attaching to
// the workers.
func closeSharedWorkers(t testing.TB, ctx context.Context) {
	t.Helper()
	shared := func() []target.ID {
		infos, err := chromedp.Targets(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []target.ID
		for _, info := range infos {
			if info.Type == "shared_worker" {
				ids = append(ids, info.TargetID)
			}
		}
		return ids
	}
	browser := chromedp.FromContext(ctx).Browser
	for _, id := range shared() {
		// A worker gone meanwhile is what was wanted.
		_, _ = cdp.Call(ctx, browser, target.CloseTarget, target.CloseTargetParams{TargetID: id})
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(shared()) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the shared workers did not end")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
