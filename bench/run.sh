#!/usr/bin/env bash
# bench/run.sh: forward-pass benchmarks, natively and compiled to
# WebAssembly under Node (Go's go_js_wasm_exec), median of COUNT runs.
#
#   bench/run.sh                 all presets, batch 1 and 64
#   COUNT=10 bench/run.sh        more runs per figure
#
# The machine is shared and noisy: read the medians, and compare figures
# only within one run. Raw outputs stay in $BENCH_OUT (default: a temp dir).
# Native runs use GOEXPERIMENT=simd (the vector GELU; the matrix kernel is
# AVX-512 or AVX2 assembly in any amd64 build) like bin/.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-5}
pattern=${1:-'Predict/'}
out=${BENCH_OUT:-$(mktemp -d)}
mkdir -p "$out"

echo "==> native: go test -bench '$pattern' -count $count ./models" >&2
GOEXPERIMENT=simd go test -run '^$' -bench "$pattern" -benchtime 5x -count "$count" ./models >"$out/native.txt"

echo "==> wasm under Node" >&2
GOOS=js GOARCH=wasm go test -c -o "$out/models.wasm" ./models
(cd models && "$(go env GOROOT)/lib/wasm/go_js_wasm_exec" "$out/models.wasm" \
	-test.run '^$' -test.bench "$pattern" -test.benchtime 5x -test.count "$count") >"$out/wasm.txt"

# median prints, per benchmark name, the median of the ms/image column
# (portable awk: values are sorted by sort(1), not awk).
median() {
	awk '/^Benchmark/ {
		name = $1; sub(/-[0-9]+$/, "", name)
		for (i = 3; i < NF; i++) if ($(i+1) == "ms/image") print name, $i
	}' "$1" | sort -k1,1 -k2,2g | awk '
	function flush() { if (n) printf "%s %.2f\n", cur, (n % 2) ? v[(n+1)/2] : (v[n/2] + v[n/2+1]) / 2 }
	$1 != cur { flush(); cur = $1; n = 0 }
	{ v[++n] = $2 }
	END { flush() }'
}
median "$out/native.txt" >"$out/native.med"
median "$out/wasm.txt" >"$out/wasm.med"
printf '%-46s %12s %12s\n' benchmark "native ms" "wasm ms"
join "$out/native.med" "$out/wasm.med" | while read -r name native wasm; do
	printf '%-46s %12s %12s\n' "${name#BenchmarkPredict/}" "$native" "$wasm"
done
