// Command ortweb is the side-by-side browser benchmark bench/browser.sh
// -ort runs: our WebAssembly module against onnxruntime-web's wasm
// execution provider on the ONNX export of the same weight file, in
// headless Chromium, a fresh browser for each engine in each round. It
// serves -dir (page.html, bench.js, cifarnet.wasm, wasm_exec.js,
// model.cnw, model.onnx, sample.png, ort/) cross-origin isolated, so that
// ORT can use threads, and prints each round, the medians and the ratios.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"time"

	"github.com/chromedp/chromedp"
)

func main() {
	dir := flag.String("dir", "", "folder with the page, the module, the model files and ort/")
	rounds := flag.Int("rounds", 5, "rounds, each in fresh browsers")
	warm := flag.Int("warm", 5, "untimed warm-up runs per engine and round")
	runs := flag.Int("runs", 20, "timed runs per engine and round (their median is the round's figure)")
	chrome := flag.String("chromium", "chromium", "Chromium executable")
	flag.Parse()
	if err := run(*dir, *chrome, *rounds, *warm, *runs); err != nil {
		log.Fatalf("ortweb: %v", err)
	}
}

func run(dir, chrome string, rounds, warm, runs int) error {
	if dir == "" {
		return fmt.Errorf("-dir is required")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	fs := http.FileServer(http.Dir(dir))
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Cross-origin isolation: SharedArrayBuffer, hence ORT's threads.
		w.Header().Set("Cross-Origin-Opener-Policy", "same-origin")
		w.Header().Set("Cross-Origin-Embedder-Policy", "require-corp")
		w.Header().Set("Cache-Control", "no-store")
		fs.ServeHTTP(w, r)
	}))
	base := "http://" + ln.Addr().String() + "/page.html"

	series := map[string][]float64{}
	var norm json.RawMessage
	for round := 1; round <= rounds; round++ {
		o, err := evalIn[oursResult](chrome, base, "ours", warm, runs)
		if err != nil {
			return fmt.Errorf("round %d, ours: %w", round, err)
		}
		norm = o.Normalization
		series["ours"] = append(series["ours"], o.Ours)
		series["oursTTA"] = append(series["oursTTA"], o.OursTTA)
		line := fmt.Sprintf("round %d: ours %.2f ms (top %d), TTA %.2f ms (top %d)", round, o.Ours, o.OursTop, o.OursTTA, o.OursTTATop)
		for _, e := range []string{"ort1", "ortN"} {
			u := base + "?norm=" + url.QueryEscape(string(norm))
			r, err := evalIn[ortResult](chrome, u, e, warm, runs)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", round, e, err)
			}
			if r.Threads > 1 && !r.Isolated {
				return fmt.Errorf("round %d: the page is not cross-origin isolated; ORT would run one thread", round)
			}
			series[e] = append(series[e], r.Ms)
			series["threads"] = []float64{float64(r.Threads)}
			line += fmt.Sprintf(", ORT %d thread(s) %.2f ms (top %d)", r.Threads, r.Ms, r.Top)
		}
		fmt.Println(line)
	}
	med := func(k string) float64 {
		s := slices.Clone(series[k])
		slices.Sort(s)
		n := len(s)
		if n%2 == 1 {
			return s[n/2]
		}
		return (s[n/2-1] + s[n/2]) / 2
	}
	threads := int(series["threads"][0])
	fmt.Printf("medians of %d rounds (%d warm-up + %d timed runs each):\n", rounds, warm, runs)
	fmt.Printf("  ours, one image            %8.2f ms\n", med("ours"))
	fmt.Printf("  ours, one image with TTA   %8.2f ms (6 views)\n", med("oursTTA"))
	fmt.Printf("  ORT-web wasm, 1 thread     %8.2f ms\n", med("ort1"))
	fmt.Printf("  ORT-web wasm, %d threads    %8.2f ms\n", threads, med("ortN"))
	fmt.Printf("ratios:\n")
	fmt.Printf("  ours / ORT 1 thread        %8.2f (goal ≤ 1.0)\n", med("ours")/med("ort1"))
	fmt.Printf("  ours / ORT %d threads       %8.2f\n", threads, med("ours")/med("ortN"))
	fmt.Printf("  ours TTA / ours single     %8.2f (goal ≤ 3)\n", med("oursTTA")/med("ours"))
	return nil
}

type oursResult struct {
	Ours, OursTTA       float64
	OursTop, OursTTATop int
	Normalization       json.RawMessage
}

type ortResult struct {
	Ms       float64
	Top      int
	Threads  int
	Isolated bool
}

// evalIn starts a fresh headless Chromium, opens u and returns the result
// of bench(engine, warm, runs).
func evalIn[T any](chrome, u, engine string, warm, runs int) (T, error) {
	var zero T
	profile, err := os.MkdirTemp("", "ortweb-profile-") // fresh: nothing cached
	if err != nil {
		return zero, fmt.Errorf("profile folder: %w", err)
	}
	defer os.RemoveAll(profile)
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(chrome), chromedp.NoSandbox, chromedp.UserDataDir(profile),
		// chromedp's own two, and the omnibox popup WebUI a headless
		// Chromium renders unseen (bench/pagecheck/chromeflags.mjs).
		chromedp.Flag("disable-features", "Translate,BlinkGenPropertyTrees,WebUIOmniboxPopup,WebUIOmniboxAimPopup,WebUIOmniboxFullPopup"))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel2 := chromedp.NewContext(actx)
	defer cancel2()
	ctx, cancel3 := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel3()
	if err := chromedp.Do(ctx, chromedp.Navigate(u)); err != nil {
		return zero, fmt.Errorf("chromium: %w", err)
	}
	expr := fmt.Sprintf("bench(%q, %d, %d)", engine, warm, runs)
	r, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		return zero, fmt.Errorf("chromium: %w", err)
	}
	return r, nil
}
