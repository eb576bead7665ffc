#!/usr/bin/env bash
# bench/browser.sh [count]: the page in headless Chromium, with a
# random-weight cifarnet-fast model. Prints the WebAssembly module size
# (raw and gzip), bytes sent for the first visit and for a reload, time from
# navigation to the first prediction (cold and warm, through the service
# worker) and the median inference time per image; then the same model's
# inference time without and with test-time augmentation, side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-3}
go test -run '^$' -bench '^BenchmarkBrowser$' -benchtime "${count}x" ./server/e2e/ |
	awk '/^BenchmarkBrowser/ {
		for (i = 3; i < NF; i += 2) v[$(i + 1)] = $i
		printf "wasm module        %9.0f bytes raw, %.0f gzip\n", v["wasm-bytes"], v["wasm-gzip-bytes"]
		printf "first visit        %9.0f bytes sent\n", v["cold-bytes"]
		printf "reload             %9.0f bytes sent\n", v["warm-bytes"]
		printf "first prediction   %9.0f ms cold, %.0f ms warm (from navigation)\n", v["cold-ms"], v["warm-ms"]
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
