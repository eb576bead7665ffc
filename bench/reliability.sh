#!/usr/bin/env bash
# bench/reliability.sh: the fault campaign. Each class of fault is tried a
# counted number of times and every try is checked; the table at the end
# says, per class, how many were tried, how many survived and what
# "survived" means. Loopback only; every loop is bounded in count and
# time. Exits non-zero when any try did not survive.
#
#   bench/reliability.sh [CLASS...]     default: kill diskfull download fuzz server
#
#   kill      SIGKILL a training run (bench/reliability/tiny.json, CPU) at
#             KILLS (20) random moments, checkpoint writes included, then
#             --resume it: the weights must be bit-identical to an
#             uninterrupted run's and the run folder readable
#   diskfull  a resume whose checkpoint writes hit a file-size limit
#             (ulimit -f 8 KiB): a clear error, the previous checkpoint intact,
#             and a later resume ends bit-identical to the uninterrupted run
#   download  the downloader's fault tests (dropped connections, truncated
#             archives, wrong MD5, ../ and symlink and absolute tar entries,
#             HTTP errors, resumed downloads) against local HTTP servers
#   fuzz      every fuzz target for FUZZTIME each (default 2m; the issue's
#             bar is 10m: FUZZTIME=10m) on FUZZPARALLEL workers (default
#             all cores), crashes and hangs counted
#   server    bin/server on loopback: uploads refused, a path-traversal and
#             dotfile corpus never escapes dist/, the security headers
#             present, 50,000 requests at 200 connections (bench/loadgen,
#             vegeta) without an error, and a normal request answered
#             within a second while 1,000 slow-header connections are open
#
# CIFAR10_DIR names the data (default ../shared/cifar10/cifar-10-batches-bin).
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3} # the project's Go (build.sh)

kills=${KILLS:-20}
fuzztime=${FUZZTIME:-2m}
data=${CIFAR10_DIR:-$(cd .. && pwd)/shared/cifar10/cifar-10-batches-bin}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
classes=("$@")
[ ${#classes[@]} -gt 0 ] || classes=(kill diskfull download fuzz server)

declare -a rows
failed=0
log() { printf '==> %s\n' "$*" >&2; }
# row CLASS TRIED SURVIVED CHECKED
row() {
	rows+=("$(printf '%-9s %6s %9s  %s' "$1" "$2" "$3" "$4")")
	[ "$2" = "$3" ] || failed=1
}

build() {
	log "go build bin/trainer, bin/server, cnwsum"
	mkdir -p "$work/bin"
	go build -o "$work/bin/trainer" ./trainer &&
		go build -o "$work/bin/server" ./server &&
		go build -o "$work/bin/cnwsum" ./bench/reliability/cnwsum &&
		(cd bench/loadgen && go build -o "$work/bin/loadgen" . && go build -o "$work/bin/bare" ./bare)
}

# wait_folder RUNS waits (up to 60 s) until a run folder with its
# config.json exists under RUNS.
wait_folder() {
	local i
	for i in $(seq 6000); do
		compgen -G "$1/*/config.json" >/dev/null && return 0
		sleep 0.01
	done
	echo "reliability.sh: no run folder under $1 after 60 s" >&2
	return 1
}

# train_and_kill RUNS MS starts a training run under RUNS and SIGKILLs it
# MS milliseconds after its run folder appeared.
train_and_kill() {
	# The trainer itself in the background (not a shell function, whose
	# subshell would take the signal instead).
	# shellcheck disable=SC2046
	"$work/bin/trainer" $(train_args "$1") >"$1.log" 2>&1 &
	local pid=$!
	wait_folder "$1"
	sleep "$(awk -v ms="$2" 'BEGIN { printf "%.3f", ms / 1000 }')"
	kill -KILL $pid 2>/dev/null
	wait $pid 2>/dev/null
}

# weights RUNDIR prints the digest of final.cnw and best.cnw.
weights() { "$work/bin/cnwsum" "$1/final.cnw" "$1/best.cnw" 2>&1 | awk '{ print $1 }' | xargs; }

epochs=40
train_args() { echo "train --recipe bench/reliability/tiny.json --epochs $epochs --workers 2 --data $data --runs $1"; }
train() { # shellcheck disable=SC2046
	"$work/bin/trainer" $(train_args "$1")
}

reference() {
	[ -n "${ref:-}" ] && return 0
	log "reference run (uninterrupted)"
	train "$work/ref" >"$work/ref.log" 2>&1 &
	local pid=$!
	wait_folder "$work/ref" || return 1
	local t0=$EPOCHREALTIME
	wait $pid || {
		cat "$work/ref.log" >&2
		return 1
	}
	# ref_ms: how long training runs once the run folder exists (data
	# loading comes before it).
	ref_ms=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 }')
	ref=$(weights "$(echo "$work"/ref/*)")
	log "reference: ${ref_ms} ms of training, weights ${ref:0:16}…"
}

class_kill() {
	reference || return 1
	local tried=0 ok=0 i
	for i in $(seq 1 "$kills"); do
		local runs=$work/kill/$i
		mkdir -p "$runs"
		local at=$((RANDOM * 32768 + RANDOM))
		at=$((at % ref_ms))
		train_and_kill "$runs" "$at"
		tried=$((tried + 1))
		local dir
		dir=$(find "$runs" -mindepth 1 -maxdepth 1 -type d | head -n1)
		local lines
		lines=$(($(cat "$dir/metrics.csv" 2>/dev/null | wc -l) - 1))
		if timeout 300 "$work/bin/trainer" train --resume "$dir" >>"$runs.log" 2>&1 &&
			[ "$(weights "$dir")" = "$ref" ]; then
			ok=$((ok + 1))
			echo "kill $i at ${at} ms, $((lines < 0 ? 0 : lines)) epochs logged: resumed, weights identical" >>"$work/kill.txt"
		else
			echo "kill $i at ${at} ms: FAILED (log: $runs.log)" >>"$work/kill.txt"
			tail -5 "$runs.log" >&2
		fi
	done
	row kill "$tried" "$ok" "SIGKILL at a random moment of ${ref_ms} ms of training (checkpoint writes included), then --resume: final.cnw and best.cnw bit-identical to the uninterrupted run"
}

class_diskfull() {
	reference || return 1
	local tried=0 ok=0 i
	for i in 1 2 3; do
		local runs=$work/full/$i
		mkdir -p "$runs"
		tried=$((tried + 1))
		# Train a few epochs normally, then resume under a file-size limit
		# too small for a checkpoint (the tiny network's state is ~40 KB).
		train_and_kill "$runs" $((ref_ms * (2 + 3 * i) / 12))
		local dir
		dir=$(find "$runs" -mindepth 1 -maxdepth 1 -type d | head -n1)
		[ -n "$dir" ] || {
			echo "diskfull $i: no run folder" >>"$work/full.txt"
			continue
		}
		local before
		before=$(cat "$dir/metrics.csv" 2>/dev/null | wc -l)
		local msg rc=0
		msg=$( (
			ulimit -f 8 # 8 × 1024-byte blocks
			"$work/bin/trainer" train --resume "$dir" 2>&1
		) | tail -n 2) || rc=$?
		# The limited resume must fail with a message about writing, and
		# a plain resume must then finish bit-identical.
		if [ $rc -ne 0 ] && grep -qiE 'write|file too large|checkpoint|no space' <<<"$msg" &&
			timeout 300 "$work/bin/trainer" train --resume "$dir" >>"$runs.log" 2>&1 &&
			[ "$(weights "$dir")" = "$ref" ]; then
			ok=$((ok + 1))
			echo "diskfull $i ($before metrics lines): error \"$(tail -n1 <<<"$msg")\"; resumed after, weights identical" >>"$work/full.txt"
		else
			echo "diskfull $i: FAILED (rc $rc): $msg; then: $(tail -n 3 "$runs.log" | xargs); weights $(weights "$dir")" >>"$work/full.txt"
		fi
	done
	# Exports under the same limit, over an existing file: a clear error,
	# the old file untouched, no temporary file left beside it.
	local src
	src=$(echo "$work"/ref/*/final.cnw)
	for fmt in cnw onnx; do
		tried=$((tried + 1))
		local dst=$work/full/export/model.$fmt
		mkdir -p "$work/full/export"
		printf 'the user'"'"'s previous file\n' >"$dst"
		local msg rc=0
		msg=$( (
			ulimit -f 2 # the tiny network's ONNX file is 7.9 kB
			"$work/bin/trainer" export --overwrite --dtype float32 --out "$dst" "$src" 2>&1
		) | tail -n 1) || rc=$?
		if [ $rc -ne 0 ] && grep -qiE 'write|file too large|no space' <<<"$msg" &&
			[ "$(cat "$dst")" = "the user's previous file" ] && [ "$(ls "$work/full/export" | wc -l)" = 1 ]; then
			ok=$((ok + 1))
			echo "export $fmt over an existing file under ulimit -f 2 KiB: error \"$msg\"; the old file intact, nothing left beside it" >>"$work/full.txt"
		else
			echo "export $fmt: FAILED (rc $rc): $msg; folder: $(ls "$work/full/export" | xargs)" >>"$work/full.txt"
		fi
		rm -f "$work/full/export"/*
	done
	row diskfull "$tried" "$ok" "resume under ulimit -f 8 KiB: non-zero exit with a write error; then resume without the limit: bit-identical weights. export (cnw, onnx) over an existing file under ulimit -f 2 KiB: an error, the old file intact, no temporary file left"
}

class_download() {
	log "go test trainer/internal/download"
	local l=$work/download.log
	go test -count=1 -v -run 'Fetch|Untar' ./trainer/internal/download >"$l" 2>&1
	local pass fail
	pass=$(grep -c '^\(    \)\?--- PASS' "$l")
	fail=$(grep -c '^\(    \)\?--- FAIL' "$l")
	row download "$((pass + fail))" "$pass" "local HTTP servers: dropped, truncated, wrong MD5, HTTP errors, ranges ignored, cancel; tar ../, symlinks, absolute names, size limit: one clear error, nothing outside the data folder, resumes complete"
}

class_fuzz() {
	local tried=0 ok=0
	local targets=(
		"./models FuzzDecode"
		"./models FuzzOrientation"
		"./models FuzzPreprocess"
		"./trainer/internal/onnx FuzzImport"
		"./trainer/internal/training FuzzParseRecipe"
		"./trainer/internal/cifar FuzzLoadFile"
		"./trainer/internal/imagefolder FuzzPixels"
	)
	local t
	for t in "${targets[@]}"; do
		local pkg=${t% *} fn=${t#* }
		grep -rqs "func $fn(" "$pkg"/*_test.go || {
			log "no $fn in $pkg"
			continue
		}
		log "fuzz $fn ($fuzztime)"
		tried=$((tried + 1))
		# A short minimisation: with the default minute per new input the
		# weight-file target ran a few hundred inputs in two minutes.
		if go test -run '^$' -fuzz "^$fn\$" -fuzztime "$fuzztime" -fuzzminimizetime 5s \
			-parallel "${FUZZPARALLEL:-$(nproc)}" "$pkg" >"$work/fuzz-$fn.log" 2>&1; then
			ok=$((ok + 1))
			echo "$fn: $(grep -o 'execs: [0-9]*' "$work/fuzz-$fn.log" | tail -1)" >>"$work/fuzz.txt"
		else
			echo "$fn: FAILED: $(grep -m3 -E 'Failing input|panic|hang|--- FAIL' "$work/fuzz-$fn.log" | xargs)" >>"$work/fuzz.txt"
		fi
	done
	row fuzz "$tried" "$ok" "each target $fuzztime under go test -fuzz: no crash, no hang, no failed property (inputs that failed are saved in testdata/fuzz)"
}

class_server() {
	[ -d dist ] || ./build.sh >/dev/null 2>&1 || {
		row server 1 0 "./build.sh failed: no dist/"
		return
	}
	local port=18080
	"$work/bin/server" --addr 127.0.0.1:$port --dist dist >"$work/server.log" 2>&1 &
	local spid=$!
	local up=0
	for _ in $(seq 50); do
		curl -s -o /dev/null "http://127.0.0.1:$port/" && up=1 && break
		sleep 0.1
	done
	[ $up = 1 ] || {
		row server 1 0 "bin/server did not start"
		return
	}
	local base=http://127.0.0.1:$port tried=0 ok=0 code
	# Uploads: any method that sends a body is refused.
	for m in POST PUT PATCH DELETE; do
		for size in 0 1024 10485760; do
			tried=$((tried + 1))
			code=$(head -c $size /dev/zero | curl -s -o /dev/null -w '%{http_code}' -X $m --data-binary @- "$base/upload" 2>/dev/null)
			[[ $code =~ ^(400|403|404|405|413)$ ]] && ok=$((ok + 1)) || echo "upload $m $size: $code" >>"$work/server.txt"
		done
	done
	# Traversal and dotfiles: never 200 with a file from outside dist/.
	local paths=(
		'/../go.mod' '/..%2fgo.mod' '/%2e%2e/go.mod' '/%2e%2e%2fgo.mod' '/..%252fgo.mod' '/%252e%252e/go.mod'
		'/..\go.mod' '/..%5cgo.mod' '/%c0%ae%c0%ae/go.mod' '/%c0%af..%c0%afgo.mod' '/models/../../go.mod'
		'/.git/config' '/.env' '/%2egit/config' '/models/.hidden' '/./../README.md' '//etc/passwd'
		'/..%00/go.mod' '/static/../../../etc/passwd' '/api/models/../../go.mod'
	)
	local p
	for p in "${paths[@]}"; do
		tried=$((tried + 1))
		local body
		body=$(curl -s --path-as-is -w '\n%{http_code}' "$base$p")
		code=${body##*$'\n'}
		if [ "$code" = 200 ] && grep -qE '^module |root:x:0|\[core\]' <<<"$body"; then
			echo "traversal $p: escaped" >>"$work/server.txt"
		else
			ok=$((ok + 1))
		fi
	done
	# Headers the page relies on.
	local h
	h=$(curl -s -D - -o /dev/null "$base/")
	for want in 'Content-Security-Policy' 'X-Content-Type-Options: nosniff' 'Referrer-Policy' 'Cross-Origin-Opener-Policy' 'Cross-Origin-Embedder-Policy' 'Permissions-Policy'; do
		tried=$((tried + 1))
		if grep -qi "^$want" <<<"$h"; then
			ok=$((ok + 1))
		else
			echo "header missing: $want" >>"$work/server.txt"
		fi
	done
	tried=$((tried + 1))
	if grep -i '^Content-Security-Policy' <<<"$h" | grep -q "unsafe-inline"; then
		echo "Content-Security-Policy allows unsafe-inline" >>"$work/server.txt"
	else
		ok=$((ok + 1))
	fi
	# Load: 50,000 requests over 200 keep-alive connections across the
	# page's files (vegeta, bench/loadgen), every one answered.
	tried=$((tried + 1))
	local files
	files=$(cd dist && ls -- *.js *.css *.svg index.html manifest.webmanifest 2>/dev/null | sed 's|^|/|' | xargs)
	local load
	# shellcheck disable=SC2086
	if load=$("$work/bin/loadgen" -base "$base" -n 50000 -c 200 / $files 2>&1); then
		ok=$((ok + 1))
	fi
	echo "load, 50000 GETs over 200 connections: $load; server peak RSS $(awk '/VmHWM/ { print $2 / 1024 " MiB" }' /proc/$spid/status)" >>"$work/server.txt"
	# Throughput on small files beside its ceiling, a bare net/http handler
	# (bench/loadgen/bare) driven by the same load generator on the same
	# cores, alternating, median of 3 rounds; and each server's CPU time per
	# request, which says what it would serve with the cores to itself (the
	# load generator here takes most of them). Reported, not counted.
	"$work/bin/bare" -addr 127.0.0.1:$((port + 1)) 2>/dev/null &
	local bpid=$! ours=() bare=() ours_us=() bare_us=() r
	sleep 0.3
	cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
	# rps_and_cpu PID BASE PATH...: "requests/s µs-of-server-CPU-per-request"
	rps_and_cpu() {
		local pid=$1 base=$2 t0 t1 rps
		shift 2
		t0=$(cpu_ticks "$pid")
		rps=$("$work/bin/loadgen" -base "$base" -n 50000 -c 200 "$@" | grep -o '[0-9]* requests/s' | cut -d' ' -f1)
		t1=$(cpu_ticks "$pid")
		echo "${rps:-0} $(((t1 - t0) * 1000000 / $(getconf CLK_TCK) / 50000))"
	}
	for r in 1 2 3; do
		read -r a b < <(rps_and_cpu $spid "$base" /icon.svg /manifest.webmanifest /sw.js)
		ours+=("$a") ours_us+=("$b")
		read -r a b < <(rps_and_cpu $bpid "http://127.0.0.1:$((port + 1))" /a /b /c)
		bare+=("$a") bare_us+=("$b")
	done
	kill $bpid 2>/dev/null
	wait $bpid 2>/dev/null
	med() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
	local mo mb uo ub
	mo=$(med "${ours[@]}") mb=$(med "${bare[@]}") uo=$(med "${ours_us[@]}") ub=$(med "${bare_us[@]}")
	echo "throughput, small files (icon.svg, manifest.webmanifest, sw.js; 50,000 GETs at 200 keep-alive connections), median of 3: bin/server $mo requests/s (${ours[*]}), bare net/http handler $mb requests/s (${bare[*]}), ratio $(awk -v a="$mo" -v b="$mb" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "?" }'); server CPU per request: bin/server $uo µs (${ours_us[*]}), bare $ub µs (${bare_us[*]}), so $(awk -v u="$uo" -v n="$(nproc)" 'BEGIN { if (u > 0) printf "%.0f", n * 1e6 / u; else print "?" }') requests/s on $(nproc) cores of its own; load average $(cut -d' ' -f1-3 /proc/loadavg)" >>"$work/server.txt"
	# 1,000 slow-header connections held open; a normal request still
	# works within a second.
	tried=$((tried + 1))
	local held=()
	for _ in $(seq 1000); do
		(exec 3<>/dev/tcp/127.0.0.1/$port && printf 'GET / HTTP/1.1\r\nHost: x\r\n' >&3 && sleep 30) 2>/dev/null &
		held+=($!)
	done
	sleep 1
	local t
	t=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time 5 "$base/")
	kill "${held[@]}" 2>/dev/null
	wait "${held[@]}" 2>/dev/null
	if [[ $t == 200\ * ]] && awk -v s="${t#* }" 'BEGIN { exit !(s < 1) }'; then
		ok=$((ok + 1))
		echo "with 1000 slow-header connections open: $t s" >>"$work/server.txt"
	else
		echo "with 1000 slow-header connections open: $t" >>"$work/server.txt"
	fi
	kill $spid 2>/dev/null
	wait $spid 2>/dev/null
	row server "$tried" "$ok" "uploads (4 methods × 3 sizes) refused; $((${#paths[@]})) traversal/dotfile paths never serve a file outside dist/; 7 header checks; 50,000 GETs at 200 connections without an error; a request answered < 1 s with 1,000 slow-header connections open"
}

start=$SECONDS
build || exit 1
for c in "${classes[@]}"; do
	case $c in
	kill | diskfull | download | fuzz | server) "class_$c" ;;
	*)
		echo "reliability.sh: unknown class $c (kill diskfull download fuzz server)" >&2
		exit 2
		;;
	esac
done

for f in kill full fuzz server; do
	[ -f "$work/$f.txt" ] && {
		echo
		cat "$work/$f.txt"
	}
done
echo
echo "== bench/reliability.sh, $(date -u +%Y-%m-%dT%H:%M:%SZ), $((SECONDS - start)) s, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) threads"
printf '%-9s %6s %9s  %s\n' class tried survived "what survived means"
printf '%s\n' "${rows[@]}"
exit $failed
