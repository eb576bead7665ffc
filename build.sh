#!/usr/bin/env bash
# build.sh: builds everything, runs the tests, serves the page.
#
#   ./build.sh          build bin/trainer, bin/server and dist/ (the static site)
#   ./build.sh serve    build, then serve dist/ on http://127.0.0.1:8080
#   ./build.sh test     build, then run every check and test (what CI runs)
#   ./build.sh bench    build, then run the benchmarks (see README)
#   ./build.sh wasm OUT build only the WebAssembly module, into the file OUT
#   ./build.sh cuda     build bin/trainer-cuda, the GPU trainer (cgo, build tag
#                       cifarnet_cuda); needs cuda.h and libcuda's link stub:
#                       CUDA_INCLUDE and CUDA_STUBS, else /usr/local/cuda,
#                       /usr/include or .cuda/ (./build.sh cuda-headers)
#   ./build.sh cuda-vet     go vet the cifarnet_cuda build of trainer/...
#   ./build.sh cuda-tests   build the GPU test binaries into bin/cuda-tests/
#   ./build.sh cuda-headers (root, Debian) fetch cuda.h and libcuda.so into .cuda/
#
# dist/ is self-contained: any static file server can serve it. bin/trainer
# needs no CUDA at all; bin/trainer-cuda links libcuda.so.1, so it starts
# only where the NVIDIA driver is installed, and loads cuBLAS at run time.
set -euo pipefail
cd "$(dirname "$0")"
root=$PWD

log() { printf '==> %s\n' "$*" >&2; }

# The one Go version of the project (go.mod's toolchain line): an older go
# command fetches it, and the WebAssembly SIMD128 build needs it.
go_version=go1.27.3
export GOTOOLCHAIN=${GOTOOLCHAIN:-$go_version}
if [ "$(go env GOVERSION)" != "$go_version" ]; then
	echo "build.sh: needs $go_version, go env GOVERSION says $(go env GOVERSION) (GOTOOLCHAIN=$GOTOOLCHAIN)" >&2
	exit 1
fi

# Native amd64 binaries use the AVX2+FMA or AVX-512 assembly matrix kernel
# on CPUs that have it; GOEXPERIMENT=simd (simd/archsimd) adds the vector
# GELU. The WebAssembly module is built with GOEXPERIMENT=simd too: its
# matrix kernel, packing and GELU use SIMD128 (every current browser has it).
# nojsonv2 gives it the classic encoding/json, which is the same API and
# about 330 KB smaller gzipped than the v2-backed one (1.73 → 1.42 MB).
native_goexperiment=""
if [ "$(go env GOARCH)" = amd64 ]; then
	native_goexperiment=simd
fi
wasm_goexperiment=simd,nojsonv2

# build_wasm OUT compiles the WebAssembly module; every build of it (dist/,
# the end-to-end tests, the browser benchmark) goes through here.
build_wasm() {
	GOEXPERIMENT=$wasm_goexperiment GOOS=js GOARCH=wasm go build -trimpath -ldflags="-s -w" -o "$1" ./wasm
}

# The trainer records its revision in every weight file's provenance.
trainer_ldflags="-X github.com/cifarnet-go/cifarnet/trainer/internal/training.stamped=$(git describe --always --dirty 2>/dev/null || true)"

# wasm_gzip_size prints the gzip -9 size of dist/'s module.
wasm_gzip_size() {
	find dist -name 'cifarnet*.wasm' -exec sh -c 'gzip -9c "$1" | wc -c' _ {} \; | head -n1
}

build() {
	if [ ! -d "$(go env GOMODCACHE)/gorgonia.org" ]; then
		log "first build on this machine: downloading the Go modules before compiling (minutes on a slow link)"
		go mod download
	fi
	log "go build bin/trainer bin/server"
	mkdir -p bin
	GOEXPERIMENT=$native_goexperiment go build -trimpath -ldflags "$trainer_ldflags" -o bin/trainer ./trainer
	go build -trimpath -o bin/server ./server

	log "GOOS=js GOARCH=wasm go build wasm"
	local tmp
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' RETURN
	build_wasm "$tmp/cifarnet.wasm"

	log "assemble dist/"
	rm -rf dist.new
	mkdir -p dist.new
	cp "$(go env GOROOT)/lib/wasm/wasm_exec.js" "$tmp/wasm_exec.js"
	static/assemble.sh dist.new "$tmp/cifarnet.wasm" "$tmp/wasm_exec.js" models/zoo
	# Swap in the new dist/ only once it is complete.
	rm -rf dist
	mv dist.new dist
	local raw
	raw=$(find dist -name 'cifarnet*.wasm' -exec stat -c %s {} + | head -n1)
	log "dist/ ready: wasm module ${raw} bytes raw, $(wasm_gzip_size) bytes gzip"
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
	GOEXPERIMENT=$wasm_goexperiment GOOS=js GOARCH=wasm go vet ./wasm ./models/...
	log "go test ./..."
	go test -count=1 ./...
	if [ -n "$native_goexperiment" ]; then
		log "GOEXPERIMENT=$native_goexperiment go test (the SIMD kernels)"
		GOEXPERIMENT=$native_goexperiment go test -count=1 ./models/... ./trainer/internal/layerops/... ./trainer/internal/nn/... ./trainer/internal/training/...
	fi
	log "wasm tests under Node"
	GOOS=js GOARCH=wasm go test -count=1 -exec="$(go env GOROOT)/lib/wasm/go_js_wasm_exec" ./models/ ./wasm/
	log "wasm module size"
	local gz
	gz=$(wasm_gzip_size)
	# The budget: 10 % above the first module's 1.34 MB; a first visit
	# downloads and compiles all of it before the first prediction.
	if [ "$gz" -gt 1474000 ]; then
		echo "build.sh: the wasm module is $gz bytes gzipped, over the 1,474,000-byte budget" >&2
		return 1
	fi
	log "wasm SIMD128 tests under Node"
	GOEXPERIMENT=$wasm_goexperiment GOOS=js GOARCH=wasm go test -count=1 -exec="$(go env GOROOT)/lib/wasm/go_js_wasm_exec" ./models/... ./wasm/
	skipped_tests
}

# skipped_tests says, last, which tests skipped themselves for want of a
# tool (CI sets CIFARNET_E2E=1 and CIFARNET_ONNXRUNTIME=1, which make
# that a failure instead).
skipped_tests() {
	local skipped=()
	if [ "${CIFARNET_E2E:-}" != 1 ] && [ -z "${CIFARNET_CHROMIUM:-}" ] &&
		! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null && ! command -v google-chrome >/dev/null; then
		skipped+=("the browser tests (server/e2e): no Chromium; apt-get install chromium, or set CIFARNET_CHROMIUM")
	fi
	if [ "${CIFARNET_ONNXRUNTIME:-}" != 1 ] && { ! command -v node >/dev/null ||
		[ ! -f trainer/internal/onnx/testdata/ort/node_modules/onnxruntime-node/package.json ]; }; then
		skipped+=("the ONNX Runtime check (trainer/internal/onnx): npm install --no-save --prefix trainer/internal/onnx/testdata/ort onnxruntime-node@1.30.0")
	fi
	[ -n "${CIFAR10_DIR:-}" ] || [ -f ../shared/cifar10/cifar-10-batches-bin/data_batch_1.bin ] ||
		skipped+=("the tests on the CIFAR-10 files: none at ../shared/cifar10/cifar-10-batches-bin; set CIFAR10_DIR")
	if [ ${#skipped[@]} -gt 0 ]; then
		printf '==> all run tests passed; skipped for want of a tool or the data:\n' >&2
		printf '    %s\n' "${skipped[@]}" >&2
	fi
}

# The GPU build. Its tag is not "cuda": that tag would switch
# gorgonia.org/gorgonia itself to CUDA (cuDNN, cuBLAS 11 linked in).
cuda_tag=cifarnet_cuda

# cuda_env finds cuda.h and libcuda.so (the link stub) and exports cgo's
# flags for them.
cuda_env() {
	local inc=${CUDA_INCLUDE:-} stubs=${CUDA_STUBS:-} d
	if [ -z "$inc" ]; then
		for d in /usr/local/cuda/include /usr/include "$root/.cuda/include"; do
			if [ -f "$d/cuda.h" ]; then
				inc=$d
				break
			fi
		done
	fi
	if [ -z "$inc" ] || [ ! -f "$inc/cuda.h" ]; then
		cat >&2 <<-EOF
			build.sh: cuda.h not found (CUDA_INCLUDE=${CUDA_INCLUDE:-unset}, /usr/local/cuda/include, /usr/include, .cuda/include).
			Install the CUDA toolkit, set CUDA_INCLUDE and CUDA_STUBS, or on Debian run (as root, ~10 s, 30 MB kept)
			  ./build.sh cuda-headers
			which adds 'contrib non-free' to /etc/apt/sources.list.d/debian.sources, runs
			apt-get download nvidia-cuda-dev libcuda1 and keeps cuda.h and libcuda.so in .cuda/.
		EOF
		return 1
	fi
	if [ -z "$stubs" ]; then
		for d in /usr/local/cuda/lib64/stubs /usr/local/cuda/lib64 /usr/lib/x86_64-linux-gnu/stubs /usr/lib/x86_64-linux-gnu "$root/.cuda/lib"; do
			if [ -e "$d/libcuda.so" ]; then
				stubs=$d
				break
			fi
		done
	fi
	if [ -z "$stubs" ] || [ ! -e "$stubs/libcuda.so" ]; then
		echo "build.sh: found $inc/cuda.h but no libcuda.so to link against (CUDA_STUBS=${CUDA_STUBS:-unset}); set CUDA_STUBS to the folder of the toolkit's stubs/libcuda.so, or run ./build.sh cuda-headers" >&2
		return 1
	fi
	export CGO_ENABLED=1 CGO_CFLAGS="-O2 -g -I$inc" CGO_LDFLAGS="-O2 -g -L$stubs"
}

# cuda_headers fills .cuda/ from two Debian packages: include/cuda.h from
# nvidia-cuda-dev (a 774 MB download of which tar reads only the first
# 3 MB: cuda.h comes early, before the static libraries) and lib/libcuda.so
# from libcuda1, the driver's library (3 MB), to link against and, on a
# machine without a GPU, to run bin/trainer-cuda up to its "no GPU" line.
cuda_headers() {
	if [ -f .cuda/include/cuda.h ] && [ -e .cuda/lib/libcuda.so ]; then
		log ".cuda/ already has cuda.h and libcuda.so"
		return 0
	fi
	local src=/etc/apt/sources.list.d/debian.sources tmp lib
	if [ ! -f "$src" ]; then
		echo "build.sh cuda-headers: $src not found; this fetch is for Debian 12 and later" >&2
		return 1
	fi
	# Both packages are in non-free; the edit is idempotent.
	sed -i '/^Components:/{/ contrib/!s/$/ contrib/;/ non-free\( \|$\)/!s/$/ non-free/}' "$src"
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' RETURN
	log "apt-get download nvidia-cuda-dev libcuda1"
	# Update the package lists only when the download needs it.
	if ! (cd "$tmp" && apt-get download -qq nvidia-cuda-dev libcuda1 >/dev/null 2>&1); then
		apt-get update -qq
		(cd "$tmp" && apt-get download -qq nvidia-cuda-dev libcuda1 >/dev/null 2>&1) || {
			echo "build.sh cuda-headers: apt-get download nvidia-cuda-dev libcuda1 failed" >&2
			return 1
		}
	fi
	rm -rf .cuda.new
	mkdir -p .cuda.new/include .cuda.new/lib "$tmp/x"
	# --occurrence stops tar once cuda.h is out, which kills dpkg-deb
	# with SIGPIPE: the pipeline's status says nothing, the file does.
	dpkg-deb --fsys-tarfile "$tmp"/nvidia-cuda-dev_*.deb 2>/dev/null |
		tar -x -C "$tmp/x" --occurrence ./usr/include/cuda.h || true
	dpkg-deb --fsys-tarfile "$tmp"/libcuda1_*.deb | tar -x -C "$tmp/x" --wildcards './usr/lib/*/libcuda.so.*'
	lib=$(find "$tmp/x/usr/lib" -name 'libcuda.so.*.*' | head -n1)
	if [ ! -f "$tmp/x/usr/include/cuda.h" ] || [ -z "$lib" ]; then
		echo "build.sh cuda-headers: cuda.h or libcuda.so.* missing from the packages" >&2
		return 1
	fi
	mv "$tmp/x/usr/include/cuda.h" .cuda.new/include/
	mv "$lib" .cuda.new/lib/
	ln -s "$(basename "$lib")" .cuda.new/lib/libcuda.so.1
	ln -s libcuda.so.1 .cuda.new/lib/libcuda.so
	rm -rf .cuda
	mv .cuda.new .cuda
	log ".cuda/: cuda.h of CUDA $(awk '/^#define CUDA_VERSION/ { printf "%d.%d", $3 / 1000, $3 % 1000 / 10 }' .cuda/include/cuda.h), $(basename "$lib")"
}

build_cuda() {
	cuda_env
	log "go build -tags $cuda_tag bin/trainer-cuda"
	mkdir -p bin
	GOEXPERIMENT=$native_goexperiment go build -trimpath -tags "$cuda_tag" -ldflags "$trainer_ldflags" -o bin/trainer-cuda ./trainer
}

case "${1:-build}" in
build) build ;;
cuda) build_cuda ;;
cuda-vet)
	cuda_env
	log "go vet -tags $cuda_tag ./trainer/..."
	GOEXPERIMENT=$native_goexperiment go vet -tags "$cuda_tag" ./trainer/...
	;;
cuda-tests)
	cuda_env
	log "go test -c -tags $cuda_tag: bin/cuda-tests/{driver,preflight}.test"
	mkdir -p bin/cuda-tests
	GOEXPERIMENT=$native_goexperiment go test -c -trimpath -tags "$cuda_tag" -o bin/cuda-tests/driver.test ./trainer/internal/cuda/driver
	GOEXPERIMENT=$native_goexperiment go test -c -trimpath -tags "$cuda_tag" -o bin/cuda-tests/preflight.test ./trainer/internal/cuda/driver/preflight
	;;
cuda-headers) cuda_headers ;;
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
wasm)
	if [ $# -ne 2 ]; then
		echo "build.sh: wasm needs the output file: ./build.sh wasm OUT" >&2
		exit 2
	fi
	out=$2
	case $out in /*) ;; *) out=$OLDPWD/$out ;; esac # relative to where build.sh was called
	build_wasm "$out"
	;;
-h | --help | help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//' ;;
*)
	echo "build.sh: unknown command ${1}; see ./build.sh --help" >&2
	exit 2
	;;
esac
