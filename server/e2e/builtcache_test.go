package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// builtEntriesJS lists the page's saved builds (worker.js): file name,
// size and whether the check a snapshot carries matches its bytes
// (models/snapshot.go's snapshotCheck, written again here from its
// description: the uint64 at bytes 12–19 over the 32-bit words after it).
const builtEntriesJS = `(async () => {
	const intact = (bytes) => {
		if (bytes.length < 20 || bytes.length % 4 !== 0) return false;
		const copy = bytes.slice();
		const words = new Uint32Array(copy.buffer, 20, (copy.length - 20) / 4);
		const lanes = [0x811c9dc5, 0x050c5d1f, 0x1b873593, 0x2545f491];
		words.forEach((w, i) => { lanes[i % 4] = Math.imul(lanes[i % 4] ^ w, 0x01000193); });
		const view = new DataView(copy.buffer);
		return view.getUint32(12, true) === ((lanes[1] ^ lanes[3]) >>> 0) &&
			view.getUint32(16, true) === ((Math.imul(lanes[0] ^ lanes[2], 0x01000193) ^ words.length) >>> 0);
	};
	const root = await navigator.storage.getDirectory();
	let dir;
	try {
		dir = await root.getDirectoryHandle('cifarnet-built');
	} catch {
		return [];
	}
	const out = [];
	for await (const [name, handle] of dir.entries()) {
		let bytes;
		try {
			bytes = new Uint8Array(await (await handle.getFile()).arrayBuffer());
		} catch {
			continue; // deleted or being written as we look
		}
		out.push({key: name, bytes: bytes.length, intact: intact(bytes)});
	}
	return out;
})()`

type builtEntry struct {
	Key    string `json:"key"`
	Bytes  int    `json:"bytes"`
	Intact bool   `json:"intact"`
}

// builtDirJS runs body with the page's saved-build directory as dir.
func builtDirJS(body string) string {
	return `(async () => {
	const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('cifarnet-built');
	` + body + `
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

// The page keeps the model it built (origin private file system) and loads that on the
// next visit, with the same answers; a damaged saved build is noticed by
// its check, the weight file used instead, and the build saved again;
// builds of other modules are deleted; a build cut short is not used.
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
	saved := waitBuilt(t, ctx, func(e []builtEntry) bool { return len(e) == 1 && e[0].Intact })
	if !saved[0].Intact || saved[0].Bytes < 1<<20 {
		t.Fatalf("saved build %+v", saved[0])
	}

	closeSharedWorkers(t, ctx) // else the next visit finds the model loaded
	openReady(t, ctx, srv.URL)
	classify()
	if !fromBuild() {
		t.Error("the second visit built the model again instead of loading the saved build")
	}

	// One byte of the saved build flipped, and another module's entry.
	rewriteBuild(t, ctx, saved[0].Key, `bytes[bytes.length - 1000] ^= 0x10;`, `
	const w = await (await dir.getFileHandle('cifarnet.000000000000.wasm.00', {create: true})).createWritable();
	await w.write(bytes.subarray(0, 64));
	await w.close();`)
	closeSharedWorkers(t, ctx) // else the next visit finds the model loaded
	openReady(t, ctx, srv.URL)
	classify()
	if fromBuild() {
		t.Error("a damaged saved build was used")
	}
	again := waitBuilt(t, ctx, func(e []builtEntry) bool { return len(e) == 1 && e[0].Intact })
	if again[0].Key != saved[0].Key {
		t.Errorf("saved again as %q, first as %q", again[0].Key, saved[0].Key)
	}
	closeSharedWorkers(t, ctx) // else the next visit finds the model loaded
	openReady(t, ctx, srv.URL)
	classify()
	if !fromBuild() {
		t.Error("the build saved again is not used")
	}

	// A file cut short, as a write the tab's end interrupted leaves it.
	rewriteBuild(t, ctx, saved[0].Key, `bytes = bytes.subarray(0, bytes.length - 4096);`, ``)
	closeSharedWorkers(t, ctx) // else the next visit finds the model loaded
	openReady(t, ctx, srv.URL)
	classify()
	if fromBuild() {
		t.Error("a build cut short was used")
	}
}

// rewriteBuild reads the saved build key into bytes, runs change on
// them, writes them back and then runs then (both JavaScript, with dir
// and bytes in scope). A worker reading the file holds it for a moment:
// the write is tried again then.
func rewriteBuild(t *testing.T, ctx context.Context, key, change, then string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](builtDirJS(`
	const handle = await dir.getFileHandle('`+key+`');
	let bytes = new Uint8Array(await (await handle.getFile()).arrayBuffer());
	`+change+`
	for (let tries = 0; ; tries++) {
		try {
			const w = await handle.createWritable();
			await w.write(bytes);
			await w.close();
			break;
		} catch (err) {
			if (err.name !== 'NoModificationAllowedError' || tries === 50) throw err;
			await new Promise((resolve) => setTimeout(resolve, 100));
		}
	}`+then),
		chromedp.EvalAwaitPromise)); err != nil {
		t.Fatal(err)
	}
}
