package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/heapprofiler"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// makeImagesJS draws COUNT pictures in the page, a mix of sizes from 24 to
// 480 pixels a side, PNG and JPEG, gradients, shapes and noise, and drops
// them in one drop named PREFIX<i>.
const makeImagesJS = `(async () => {
	const sides = [[24, 24], [32, 32], [64, 48], [120, 160], [200, 200], [320, 240], [480, 360], [300, 480]];
	let seed = SEED;
	const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
	const dt = new DataTransfer();
	for (let i = 0; i < COUNT; i++) {
		const [w, h] = sides[i % sides.length];
		const canvas = new OffscreenCanvas(w, h);
		const g = canvas.getContext('2d');
		const grad = g.createLinearGradient(0, 0, w, h);
		grad.addColorStop(0, 'hsl(' + Math.floor(rnd() * 360) + ', 70%, 50%)');
		grad.addColorStop(1, 'hsl(' + Math.floor(rnd() * 360) + ', 60%, 40%)');
		g.fillStyle = grad;
		g.fillRect(0, 0, w, h);
		for (let k = 0; k < 6; k++) {
			g.fillStyle = 'hsl(' + Math.floor(rnd() * 360) + ', 80%, ' + Math.floor(20 + rnd() * 60) + '%)';
			g.beginPath();
			g.arc(rnd() * w, rnd() * h, 2 + rnd() * w / 3, 0, 2 * Math.PI);
			g.fill();
		}
		if (i % 3 === 0) {
			const img = g.getImageData(0, 0, w, h);
			for (let p = 0; p < img.data.length; p += 4) img.data[p] ^= Math.floor(rnd() * 64);
			g.putImageData(img, 0, 0);
		}
		const type = i % 2 ? 'image/jpeg' : 'image/png';
		const blob = await canvas.convertToBlob({type});
		dt.items.add(new File([blob], 'PREFIX' + i + (i % 2 ? '.jpg' : '.png'), {type}));
	}
	document.getElementById('drop').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
	return dt.files.length;
})()`

// tabMemory is what the tab holds, after a garbage collection in the page
// and in every worker.
type tabMemory struct {
	RSS       int64 // resident memory of the renderer processes (the page and its workers)
	PageHeap  int64 // JavaScript heap used by the page, with array buffer storage
	WorkerJS  int64 // the same for the workers, together
	WasmMem   int64 // the workers' WebAssembly memories, together
	UASpecMem int64 // performance.measureUserAgentSpecificMemory(): page and workers
	Workers   int
}

func (m tabMemory) String() string {
	return fmt.Sprintf("renderer RSS %.1f MB, page JS %.1f MB, workers JS %.1f MB, wasm memory %.1f MB (%d workers), measureUserAgentSpecificMemory %.1f MB",
		mbOf(m.RSS), mbOf(m.PageHeap), mbOf(m.WorkerJS), mbOf(m.WasmMem), m.Workers, mbOf(m.UASpecMem))
}

func mbOf(n int64) float64 { return float64(n) / 1e6 }

// measureTab collects garbage everywhere in the tab and measures it.
func measureTab(t testing.TB, ctx context.Context) tabMemory {
	t.Helper()
	var m tabMemory
	heap := func(ctx context.Context) int64 {
		t.Helper()
		var used int64
		err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			if _, err := cdp.Call(ctx, tg, heapprofiler.CollectGarbage, cdp.Empty{}); err != nil {
				return err
			}
			u, err := cdp.Call(ctx, tg, runtime.GetHeapUsage, cdp.Empty{})
			used = int64(u.UsedSize + u.EmbedderHeapUsedSize + u.BackingStorageSize)
			return err
		}))
		if err != nil {
			t.Fatal(err)
		}
		return used
	}
	infos, err := chromedp.Targets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, info := range infos {
		if info.Type != "worker" && info.Type != "shared_worker" { // the first worker may be shared
			continue
		}
		wctx, cancel := chromedp.NewContext(ctx, chromedp.WithTargetID(info.TargetID), chromedp.WithDetachOnCancel())
		mem, err := chromedp.Run(wctx, chromedp.Evaluate[int64](`typeof cifarnetMemory === 'function' ? cifarnetMemory() : 0`))
		if err == nil {
			m.WorkerJS += heap(wctx)
			m.WasmMem += mem
			m.Workers++
		}
		cancel()
	}
	m.PageHeap = heap(ctx)
	m.UASpecMem, err = chromedp.Run(ctx, chromedp.Evaluate[int64](`crossOriginIsolated && performance.measureUserAgentSpecificMemory
		? performance.measureUserAgentSpecificMemory().then((r) => r.bytes) : 0`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	m.RSS = rendererRSS(t, chromedp.FromContext(ctx).Browser.Process().Pid)
	return m
}

// rendererRSS adds up the resident memory of the renderer processes
// under the browser process pid.
func rendererRSS(t testing.TB, pid int) int64 {
	t.Helper()
	parent := map[int]int{}
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		p, _ := strconv.Atoi(filepath.Base(filepath.Dir(d)))
		pp, _ := strconv.Atoi(f[1])
		parent[p] = pp
	}
	under := func(p int) bool {
		for i := 0; i < 64 && p > 1; i++ {
			if p = parent[p]; p == pid {
				return true
			}
		}
		return false
	}
	var total int64
	for p := range parent {
		if !under(p) {
			continue
		}
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
		if !strings.Contains(string(cmd), "--type=renderer") {
			continue
		}
		status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		for _, line := range strings.Split(string(status), "\n") {
			if kb, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(kb), "kB")), 10, 64)
				total += n << 10
			}
		}
	}
	if total == 0 {
		t.Fatalf("no renderer process found under the browser (pid %d)", pid)
	}
	return total
}

// Bounds for 500 images in a row on a pool of two workers: what was
// measured (2-core AMD EPYC, Chromium 156; TestFiveHundredImagesMemory
// logs it) with a margin. The renderer's memory grows with the cards
// shown (each keeps a 160 px thumbnail canvas, its 32×32 input and its
// bars); what it holds for the images themselves must go with them.
const (
	maxRSSAt500     = 1000e6 // the tab's renderer processes after 500 images (measured 740 MB)
	maxRSSPer100    = 60e6   // their growth per 100 images, from 100 to 500 (measured 38 MB)
	maxWasmMem      = 120e6  // the two workers' WebAssembly memories (measured 86 MB, 85 MB before any image; 139 MB when the load's garbage set the heap goal)
	maxWorkerJS     = 12e6   // the two workers' JavaScript heaps (measured 2.5–4 MB)
	maxPageAfterAll = 8e6    // the page's JavaScript heap once the results are cleared, above where it started (measured 1.3–3.1 MB)
)

// TestFiveHundredImagesMemory drops 500 generated pictures of mixed sizes
// and formats, 100 at a time, and measures the tab after each hundred:
// its memory must stay under a stated bound and must not keep growing
// with the number of images classified beyond what the cards themselves
// hold.
func TestFiveHundredImagesMemory(t *testing.T) {
	if site.skip != "" {
		t.Skip(site.skip)
	}
	// A browser of its own, so that its renderer is this tab alone, and
	// measureUserAgentSpecificMemory answers at once.
	bctx, cancel, err := launch(chromedp.Flag("enable-blink-features", "ForceEagerMeasureMemory"))
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(bctx, 10*time.Minute)
	defer cancelTimeout()
	setCores(t, ctx, 2)
	srv := startServer(t, nil)
	openReady(t, ctx, srv.URL)
	waitPool(t, ctx, 2)
	start := measureTab(t, ctx)
	t.Logf("    0 images: %v", start)
	var at []tabMemory
	for round := 1; round <= 5; round++ {
		js := strings.NewReplacer("COUNT", "100", "SEED", strconv.Itoa(round), "PREFIX", fmt.Sprintf("r%d-", round)).Replace(makeImagesJS)
		if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](js, chromedp.EvalAwaitPromise)); err != nil || n != 100 {
			t.Fatalf("round %d: drop: %v (%d files)", round, err, n)
		}
		done := fmt.Sprintf(`document.querySelectorAll('#results .result:not([data-state="pending"])').length === %d &&
			!document.querySelector('#results .result[data-state="pending"]')`, 100*round)
		if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](done, chromedp.WithPollingTimeout(3*time.Minute))); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		bad, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#results .result[data-state="error"]'),
			(c) => c.querySelector('.file').textContent + ': ' + c.querySelector('.message').textContent)`))
		if err != nil || len(bad) > 0 {
			t.Fatalf("round %d: errors %v %v", round, bad, err)
		}
		m := measureTab(t, ctx)
		at = append(at, m)
		t.Logf("%5d images: %v", 100*round, m)
	}
	last := at[len(at)-1]
	if last.RSS > maxRSSAt500 {
		t.Errorf("after 500 images the tab's renderers hold %.1f MB, over the bound of %.0f MB", mbOf(last.RSS), mbOf(maxRSSAt500))
	}
	if g := float64(last.RSS-at[0].RSS) / 4; g > maxRSSPer100 {
		t.Errorf("the tab grew %.1f MB per 100 images from 100 to 500, over the bound of %.0f MB", mbOf(int64(g)), mbOf(maxRSSPer100))
	}
	if last.WasmMem > maxWasmMem || last.WorkerJS > maxWorkerJS {
		t.Errorf("after 500 images the workers hold %.1f MB of WebAssembly memory and %.1f MB of JavaScript heap, over the bounds of %.0f and %.0f MB",
			mbOf(last.WasmMem), mbOf(last.WorkerJS), mbOf(maxWasmMem), mbOf(maxWorkerJS))
	}
	// With the cards gone nothing of the 500 images may stay: no file,
	// bytes, bitmap or result held in a queue or a map.
	click(t, ctx, "#clear")
	cleared := measureTab(t, ctx)
	t.Logf("cleared: %v", cleared)
	if g := cleared.PageHeap - start.PageHeap; g > maxPageAfterAll {
		t.Errorf("with the results cleared the page's heap is %.1f MB above where it started, over the bound of %.0f MB", mbOf(g), mbOf(maxPageAfterAll))
	}
}
