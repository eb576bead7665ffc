#!/usr/bin/env bash
# build.sh: builds everything, runs the tests, serves the page.
#
#   ./build.sh          build bin/trainer, bin/server and dist/ (the static site)
#   ./build.sh serve    build, then serve dist/ on http://127.0.0.1:8080
#   ./build.sh test     build, then run every check and test (what CI runs)
#   ./build.sh bench    build, then run the benchmarks (see README)
#
# dist/ is self-contained: any static file server can serve it.
set -euo pipefail
cd "$(dirname "$0")"
root=$PWD

log() { printf '==> %s\n' "$*" >&2; }

# Native amd64 binaries use the AVX2+FMA or AVX-512 assembly matrix kernel
# on CPUs that have it; GOEXPERIMENT=simd (simd/archsimd) adds the vector
# GELU. The WebAssembly module is always portable.
native_goexperiment=""
if [ "$(go env GOARCH)" = amd64 ]; then
	native_goexperiment=simd
fi

build() {
	log "go build bin/trainer bin/server"
	mkdir -p bin
	GOEXPERIMENT=$native_goexperiment go build -trimpath -o bin/trainer ./trainer
	go build -trimpath -o bin/server ./server

	log "GOOS=js GOARCH=wasm go build wasm"
	local tmp
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' RETURN
	GOOS=js GOARCH=wasm go build -trimpath -ldflags="-s -w" -o "$tmp/cifarnet.wasm" ./wasm

	log "assemble dist/"
	rm -rf dist.new
	mkdir -p dist.new
	cp "$(go env GOROOT)/lib/wasm/wasm_exec.js" "$tmp/wasm_exec.js"
	static/assemble.sh dist.new "$tmp/cifarnet.wasm" "$tmp/wasm_exec.js" models/zoo
	# Swap in the new dist/ only once it is complete.
	rm -rf dist
	mv dist.new dist
	local raw gz
	raw=$(find dist -name 'cifarnet*.wasm' -exec stat -c %s {} + | head -n1)
	gz=$(find dist -name 'cifarnet*.wasm' -exec sh -c 'gzip -9c "$1" | wc -c' _ {} \; | head -n1)
	log "dist/ ready: wasm module ${raw} bytes raw, ${gz} bytes gzip"
}

run_tests() {
	log "gofmt -l"
	local unformatted
	unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './dist/*'))
	if [ -n "$unformatted" ]; then
		printf 'gofmt needed:\n%s\n' "$unformatted" >&2
		return 1
	fi
	log "go vet ./..."
	go vet ./...
	GOOS=js GOARCH=wasm go vet ./wasm ./models/...
	log "go test ./..."
	go test -count=1 ./...
	if [ -n "$native_goexperiment" ]; then
		log "GOEXPERIMENT=$native_goexperiment go test (the SIMD kernels)"
		GOEXPERIMENT=$native_goexperiment go test -count=1 ./models/... ./trainer/internal/fastops/... ./trainer/internal/nn/... ./trainer/internal/run/...
	fi
	log "wasm tests under Node"
	GOOS=js GOARCH=wasm go test -count=1 -exec="$(go env GOROOT)/lib/wasm/go_js_wasm_exec" ./models/ ./wasm/
}

case "${1:-build}" in
build) build ;;
serve)
	build
	exec bin/server --dist dist "${@:2}"
	;;
test)
	build
	run_tests
	;;
bench)
	build
	exec bench/run.sh "${@:2}"
	;;
-h | --help | help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' ;;
*)
	echo "build.sh: unknown command ${1}; see ./build.sh --help" >&2
	exit 2
	;;
esac
