#!/usr/bin/env bash
# bench/browser.sh [count]: the page in headless Chromium, with a
# random-weight cifarnet-fast model. Prints the WebAssembly module size
# (raw and gzip), bytes sent for the first visit and for a reload, time from
# navigation to the first prediction (cold; warm, through the service
# worker, on a reload and in a new browser process with the same profile;
# the reload's steps too, means over the rounds) and the median
# inference time per image; then the same model's
# inference time without and with test-time augmentation, side by side;
# and one image dropped alone on the page, timed to its answer, with TTA
# split across the pool, with TTA on one worker and without TTA.
#
# bench/browser.sh ort [rounds]: our module against onnxruntime-web 1.30
# (wasm execution provider, SIMD, 1 thread and navigator.hardwareConcurrency
# threads, cross-origin isolated) on the ONNX export of the shipped default
# weight file, the same sample pixels, in headless Chromium: a fresh browser
# per engine and round (default 5 rounds), warm-up excluded (WARM runs per
# engine and round, default 5; each engine's code is still being optimised
# then, so WARM=100 measures the steady state), medians and
# ratios last (bench/ortweb). Needs npm (onnxruntime-web is installed into
# ${ORT_CACHE:-~/.cache/cifarnet-bench}) and bin/trainer for the export.
#
# bench/browser.sh first [rounds]: navigation to the first answer with the
# shipped default model, served by bin/server from dist/ (both as
# ./build.sh makes them): cold, on a reload, opened again in a new
# renderer process (a later tab) and after a browser restart,
# a fresh profile per round (default 3), medians last
# (bench/pagecheck/firstanswer.mjs).
#
# bench/browser.sh all [rounds]: the four side by side, the ratios last:
# ort, first, the page's one image with TTA (BenchmarkBrowserTTAPool) and
# 100 images through the page's pool against one worker
# (BenchmarkBrowserPool, 3 rounds), rounds (default 5) for the first two.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3}
cpu() { echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores"; }
if [ "${1:-}" = all ]; then
	rounds=${2:-5}
	out=$(mktemp -d)
	trap 'rm -rf "$out"' EXIT
	"$0" ort "$rounds" | tee "$out/ort"
	"$0" first "$rounds" | tee "$out/first"
	go test -run '^$' -bench '^BenchmarkBrowser(TTA)?Pool$' -benchtime 3x ./server/e2e/ | tee "$out/pool"
	echo
	echo "== ratios ($(cpu), load $(cut -d' ' -f1-3 /proc/loadavg))"
	sed -n '/^ratios:/,$p' "$out/ort" | tail -n +2
	awk '/^BenchmarkBrowserTTAPool/ {
		for (i = 3; i < NF; i += 2) v[$(i + 1)] = $i
		printf "  page, one image with TTA   %8.2f × without (split over %d workers; %.2f on one) (goal ≤ 3)\n", v["tta/plain"], v["workers"], v["tta1/plain"]
	}
	/^BenchmarkBrowserPool/ {
		for (i = 3; i < NF; i += 2) v[$(i + 1)] = $i
		printf "  page, 100 images, pool     %8.2f × one worker with TTA, %.2f × without (goal ≥ 1.6)\n", v["tta-pool/one"], v["pool/one"]
	}' "$out/pool"
	grep -E '^(cold|warm|newtab|expired|restart) ' "$out/first" | sed 's/^/  first answer: /'
	exit
fi
if [ "${1:-}" = first ]; then
	[ -f dist/index.html ] && [ -x bin/server ] || ./build.sh
	(cd bench/pagecheck && { [ -d node_modules/puppeteer-core ] || npm ci --no-audit --no-fund >/dev/null; })
	# shellcheck source=pagecheck/serve.sh
	. bench/pagecheck/serve.sh
	serve_dist dist bin/server
	echo "model $(cat models/zoo/DEFAULT); CPU $(cpu); $(chromium --version 2>/dev/null)"
	ROUNDS=${2:-3} node bench/pagecheck/firstanswer.mjs "$url"
	exit
fi
if [ "${1:-}" = ort ]; then
	rounds=${2:-5}
	cache=${ORT_CACHE:-$HOME/.cache/cifarnet-bench}
	if [ ! -f "$cache/node_modules/onnxruntime-web/dist/ort.wasm.min.js" ]; then
		echo "==> npm install onnxruntime-web@1.30.0 into $cache" >&2
		mkdir -p "$cache"
		npm install --no-save --silent --prefix "$cache" onnxruntime-web@1.30.0
	fi
	[ -x bin/trainer ] || ./build.sh
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	model=models/zoo/cifarnet-fast/$(cat models/zoo/DEFAULT)
	./build.sh wasm "$tmp/cifarnet.wasm"
	cp "$(go env GOROOT)/lib/wasm/wasm_exec.js" bench/ortweb/page.html bench/ortweb/bench.js "$tmp/"
	cp "$model" "$tmp/model.cnw"
	cp static/samples/cat.png "$tmp/sample.png"
	bin/trainer export --format onnx --out "$tmp/model.onnx" "$model" >&2
	mkdir "$tmp/ort"
	cp "$cache"/node_modules/onnxruntime-web/dist/{ort.wasm.min.js,ort-wasm-simd-threaded.mjs,ort-wasm-simd-threaded.wasm} "$tmp/ort/"
	echo "model $model; CPU $(cpu); $(chromium --version 2>/dev/null)"
	go run ./bench/ortweb -dir "$tmp" -rounds "$rounds" -warm "${WARM:-5}"
	exit
fi
count=${1:-3}
go test -run '^$' -bench '^BenchmarkBrowser$' -benchtime "${count}x" ./server/e2e/ |
	awk '/^BenchmarkBrowser/ {
		for (i = 3; i < NF; i += 2) v[$(i + 1)] = $i
		printf "wasm module        %9.0f bytes raw, %.0f gzip\n", v["wasm-bytes"], v["wasm-gzip-bytes"]
		printf "first visit        %9.0f bytes sent\n", v["cold-bytes"]
		printf "reload             %9.0f bytes sent\n", v["warm-bytes"]
		printf "first prediction   %9.0f ms cold, %.0f ms warm (reload), %.0f ms after a browser restart (from navigation)\n", v["cold-ms"], v["warm-ms"], v["restart-ms"]
		printf "  warm steps       %9.0f ms to the worker, %.0f to the module compiled, %.0f to the model loaded, %.0f to the first result\n", v["warm-spawn-ms"], v["warm-compile-ms"], v["warm-model-ms"], v["warm-image-ms"]
		printf "inference          %9.1f ms per image (median)\n", v["infer-ms"]
		found = 1
	}
	END { if (!found) { print "bench/browser.sh: no benchmark result (is Chromium installed?)" > "/dev/stderr"; exit 1 } }'
go test -run '^$' -bench '^BenchmarkBrowserTTA$' -benchtime "${count}x" ./server/e2e/ |
	awk '/^BenchmarkBrowserTTA/ {
		for (i = 3; i < NF; i += 2) v[$(i + 1)] = $i
		printf "inference with TTA %9.1f ms per image vs %.1f without (x%.2f; flip + translate, 6 views)\n", v["tta-ms"], v["plain-ms"], v["tta/plain"]
		found = 1
	}
	END { if (!found) { print "bench/browser.sh: no TTA benchmark result" > "/dev/stderr"; exit 1 } }'
go test -run '^$' -bench '^BenchmarkBrowserTTAPool$' -benchtime "${count}x" ./server/e2e/ |
	awk '/^BenchmarkBrowserTTAPool/ {
		for (i = 3; i < NF; i += 2) v[$(i + 1)] = $i
		printf "one image, page     %9.1f ms with TTA split over %d workers, %.1f ms on one, %.1f ms without TTA (x%.2f split, x%.2f on one; drop to answer, median)\n", v["tta-ms"], v["workers"], v["tta1-ms"], v["plain-ms"], v["tta/plain"], v["tta1/plain"]
		printf "  first answer      %9.1f ms on one worker (the image alone, shown while its other views run)\n", v["first1-ms"]
		found = 1
	}
	END { if (!found) { print "bench/browser.sh: no TTA pool benchmark result" > "/dev/stderr"; exit 1 } }'
