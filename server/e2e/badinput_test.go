package e2e

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// badDropJS builds, in the page, one drop of 50 malformed files and three
// good pictures (the cat, deer and ship samples) and drops it. The files
// are made in the page so that the 100 MB one need not cross the DevTools
// connection.
const badDropJS = `(async () => {
	const good = {};
	for (const c of ['cat', 'deer', 'ship']) {
		good[c] = new Uint8Array(await (await fetch('samples/' + c + '.png')).arrayBuffer());
	}
	const canvas = new OffscreenCanvas(48, 48);
	const g = canvas.getContext('2d');
	g.fillStyle = '#3a7';
	g.fillRect(0, 0, 48, 48);
	const jpeg = new Uint8Array(await (await canvas.convertToBlob({type: 'image/jpeg'})).arrayBuffer());
	const files = [];
	const add = (name, type, bytes) => files.push(new File([bytes], name, {type}));
	const text = (s) => new TextEncoder().encode(s);
	for (let i = 1; i <= 6; i++) add('cut-png-' + i + '.png', 'image/png', good.cat.slice(0, Math.floor(good.cat.length * i / 8)));
	for (let i = 1; i <= 6; i++) add('cut-jpeg-' + i + '.jpg', 'image/jpeg', jpeg.slice(0, Math.floor(jpeg.length * i / 8)));
	for (let i = 0; i < 5; i++) add('empty-' + i + ['.png', '.jpg', '.gif', '.webp', ''][i], 'image/png', new Uint8Array(0));
	for (let i = 0; i < 5; i++) add('notes-' + i + '.png', 'image/png', text('not a picture, line ' + i + '\n'));
	// A PNG header claiming 30000×30000 pixels and no data.
	const hdr = new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0, 117, 48, 0, 0, 117, 48, 8, 6, 0, 0, 0, 0, 0, 0, 0]);
	for (let i = 0; i < 4; i++) add('huge-' + i + '.png', 'image/png', hdr);
	for (let i = 0; i < 4; i++) add('drawing-' + i + '.svg', 'image/svg+xml', text('<svg xmlns="http://www.w3.org/2000/svg" width="' + (10 + i) + '" height="10"><rect width="10" height="10" fill="red"/></svg>'));
	for (let i = 0; i < 4; i++) add('paper-' + i + '.pdf', 'application/pdf', text('%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n'));
	let seed = 7;
	const noise = (n) => Uint8Array.from({length: n}, () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) & 255);
	for (let i = 0; i < 8; i++) add('noise-' + i + ['.png', '.jpg', '.gif', '.bmp'][i % 4], 'image/png', noise(64 + 300 * i));
	add('gif-header.gif', 'image/gif', text('GIF89a'));
	add('bmp-header.bmp', 'image/bmp', new Uint8Array([66, 77, 0, 0, 0, 0, 0, 0, 0, 0, 54, 0, 0, 0, 40, 0, 0, 0, 255, 255, 0, 0, 255, 255, 0, 0, 1, 0, 24, 0]));
	add('tiff.tif', 'image/tiff', new Uint8Array([73, 73, 42, 0, 8, 0, 0, 0]));
	add('riff.webp', 'image/webp', text('RIFF\x10\x00\x00\x00WEBPVP8 '));
	add('archive.png', 'image/png', new Uint8Array([80, 75, 3, 4, 20, 0, 0, 0, 8, 0]));
	add('page.jpg', 'image/jpeg', text('<!doctype html><title>not a photo</title>'));
	add('program.gif', 'image/gif', new Uint8Array([77, 90, 144, 0, 3, 0, 0, 0, 4, 0]));
	add('vast.png', 'image/png', new Uint8Array(100e6 + 1));
	add('cat.png', 'image/png', good.cat);
	add('deer.png', 'image/png', good.deer);
	add('ship.png', 'image/png', good.ship);
	const dt = new DataTransfer();
	for (const f of files) dt.items.add(f);
	document.getElementById('drop').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
	return files.length;
})()`

// TestFiftyBadFilesInOneDrop: every malformed file of one drop gets its own
// error card with a message, the good pictures in the same drop classify
// as native Go does, and the page goes on working.
func TestFiftyBadFilesInOneDrop(t *testing.T) {
	ctx := newPage(t)
	srv := startServer(t, nil)
	openReady(t, ctx, srv.URL)
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](badDropJS, chromedp.EvalAwaitPromise))
	if err != nil || n != 53 {
		t.Fatalf("drop: %d files (%v)", n, err)
	}
	cards := waitCards(t, ctx, 53)
	if len(cards) != 53 {
		t.Fatalf("%d cards for 53 files", len(cards))
	}
	codes := map[string]int{}
	for _, c := range cards {
		switch c.File {
		case "cat.png", "deer.png", "ship.png":
			_, data := sample(t, strings.TrimSuffix(c.File, ".png"))
			checkCard(t, c, defaultID, data)
			continue
		}
		// An SVG the browser can draw may classify; anything else is an
		// error with its own words.
		if c.State == "done" && strings.HasSuffix(c.File, ".svg") {
			continue
		}
		if c.State != "error" || c.Code == "" || c.Code == "internal" || len(c.Message) < 10 {
			t.Errorf("%s: state %q code %q message %q; want an error that says what is wrong", c.File, c.State, c.Code, c.Message)
		}
		codes[c.Code]++
		if strings.HasPrefix(c.File, "empty-") && !strings.Contains(strings.ToLower(c.Message), "empty") {
			t.Errorf("%s: message %q does not say the file is empty", c.File, c.Message)
		}
		if c.File == "vast.png" && c.Code != "too_large" {
			t.Errorf("vast.png (100 MB + 1 byte): code %q, message %q", c.Code, c.Message)
		}
	}
	t.Logf("error codes: %v", codes)
	_, cat := sample(t, "cat")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`button[data-sample="cat"]`))); err != nil {
		t.Fatal(err)
	}
	checkCard(t, waitCards(t, ctx, 54)[53], defaultID, cat)
	noCSPViolations(t, ctx)
}
