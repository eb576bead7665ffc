package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// builtEntriesJS lists the page's saved builds: key and whether the
// stored digest matches the bytes.
const builtEntriesJS = `(async () => {
	const db = await new Promise((resolve, reject) => {
		const req = indexedDB.open('cifarnet-built');
		req.onsuccess = () => resolve(req.result);
		req.onerror = () => reject(req.error);
	});
	if (!db.objectStoreNames.contains('models')) { db.close(); return []; }
	const recs = await new Promise((resolve, reject) => {
		const req = db.transaction('models').objectStore('models').getAll();
		req.onsuccess = () => resolve(req.result);
		req.onerror = () => reject(req.error);
	});
	db.close();
	const out = [];
	for (const r of recs) {
		const d = new Uint8Array(await crypto.subtle.digest('SHA-256', r.bytes));
		const s = new Uint8Array(r.digest);
		out.push({key: r.key, bytes: r.bytes.byteLength, intact: d.every((v, i) => v === s[i])});
	}
	return out;
})()`

type builtEntry struct {
	Key    string `json:"key"`
	Bytes  int    `json:"bytes"`
	Intact bool   `json:"intact"`
}

// builtRecordJS runs body with the page's saved build store open for
// writing (as store) and waits for the transaction.
func builtRecordJS(body string) string {
	return `(async () => {
	const db = await new Promise((resolve, reject) => {
		const req = indexedDB.open('cifarnet-built');
		req.onsuccess = () => resolve(req.result);
		req.onerror = () => reject(req.error);
	});
	const tx = db.transaction('models', 'readwrite');
	const store = tx.objectStore('models');
	` + body + `
	await new Promise((resolve, reject) => { tx.oncomplete = resolve; tx.onerror = () => reject(tx.error); });
	db.close();
	return true;
})()`
}

func waitBuilt(t *testing.T, ctx context.Context, want func([]builtEntry) bool) []builtEntry {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := chromedp.Run(ctx, chromedp.Evaluate[[]builtEntry](builtEntriesJS, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatal(err)
		}
		if want(got) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("saved builds: %+v", got)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// The page keeps the model it built in IndexedDB and loads that on the
// next visit, with the same answers; a damaged saved build is noticed by
// its digest, the weight file used instead, and the build saved again;
// builds of other modules are deleted.
func TestBuiltModelCache(t *testing.T) {
	ctx := newPage(t)
	srv := startServer(t, nil)
	_, cat := sample(t, "cat")
	classify := func() {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`button[data-sample="cat"]`))); err != nil {
			t.Fatal(err)
		}
		checkCard(t, waitCards(t, ctx, 1)[0], defaultID, cat)
	}
	// The worker reports its start-up steps with its first result.
	fromBuild := func() bool {
		t.Helper()
		hit, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`'worker.builtLoaded' in globalThis.cifarnetMarks`))
		if err != nil {
			t.Fatal(err)
		}
		return hit
	}

	openReady(t, ctx, srv.URL)
	classify()
	if fromBuild() {
		t.Fatal("the first visit loaded a saved build")
	}
	saved := waitBuilt(t, ctx, func(e []builtEntry) bool { return len(e) == 1 })
	if !saved[0].Intact || saved[0].Bytes < 1<<20 {
		t.Fatalf("saved build %+v", saved[0])
	}

	openReady(t, ctx, srv.URL)
	classify()
	if !fromBuild() {
		t.Error("the second visit built the model again instead of loading the saved build")
	}

	// One byte of the saved build flipped, and another module's entry.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](builtRecordJS(`
	const rec = await new Promise((resolve) => { const r = store.get('`+saved[0].Key+`'); r.onsuccess = () => resolve(r.result); });
	new Uint8Array(rec.bytes)[rec.bytes.byteLength - 1000] ^= 0x10;
	store.put(rec);
	store.put({key: 'cifarnet.000000000000.wasm 00', digest: rec.digest, bytes: new ArrayBuffer(8), saved: 0});`),
		chromedp.EvalAwaitPromise)); err != nil {
		t.Fatal(err)
	}
	openReady(t, ctx, srv.URL)
	classify()
	if fromBuild() {
		t.Error("a damaged saved build was used")
	}
	again := waitBuilt(t, ctx, func(e []builtEntry) bool { return len(e) == 1 && e[0].Intact })
	if again[0].Key != saved[0].Key {
		t.Errorf("saved again as %q, first as %q", again[0].Key, saved[0].Key)
	}
	openReady(t, ctx, srv.URL)
	classify()
	if !fromBuild() {
		t.Error("the build saved again is not used")
	}
}
