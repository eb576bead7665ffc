#!/usr/bin/env bash
# bench/train_vs_pytorch.sh: training throughput of our gorgonia trainer
# against PyTorch on the CPU: the same network, batch size and kind of input
# (random N(0, 1) NCHW float32 images), full steps (forward in training
# mode, cross-entropy, backward, Adam update), both on every core.
#
# Ours is BenchmarkTrainThroughput (trainer/internal/nn), built with
# GOEXPERIMENT=simd like bin/trainer (AVX2 or AVX-512 kernels); PyTorch's is
# bench/pytorch_train.py, which builds the network from
# models/testdata/reference/<preset>.spec.json. Each round runs one fresh
# process per framework (one untimed warm-up step, then STEPS timed ones),
# alternating which goes first; the table shows the median images/s of the
# rounds and the largest peak RSS.
#
#   bench/train_vs_pytorch.sh
#   ROUNDS=5 STEPS=3 bench/train_vs_pytorch.sh      more rounds, steps per round
#   PT_MEMORY_FORMAT=contiguous bench/train_vs_pytorch.sh
#
# Needs /usr/bin/python3 with torch (Debian python3-torch) and GNU time.
# The machine is shared and noisy: compare figures only within one run.
set -euo pipefail
cd "$(dirname "$0")/.."

py=${PYTHON:-/usr/bin/python3}
rounds=${ROUNDS:-3}
threads=$(nproc)
memfmt=${PT_MEMORY_FORMAT:-channels_last} # faster for both presets here

fail() {
	echo "train_vs_pytorch: $*" >&2
	exit 1
}
if ! err=$("$py" -c 'import torch' 2>&1); then
	fail "$py cannot import torch (install Debian's python3-torch): ${err##*$'\n'}"
fi
[[ -x /usr/bin/time ]] || fail "GNU time is needed for peak RSS (apt-get install time)"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "==> building the Go benchmark with GOEXPERIMENT=simd" >&2
GOEXPERIMENT=simd go test -c -o "$out/nn.test" ./trainer/internal/nn

# pytorch and ours run one round for preset $1 at batch $2, $3 timed steps,
# appending images/s to $out/<fw>.<preset>.ips and peak RSS (KiB) to
# $out/<fw>.<preset>.rss.
pytorch() {
	/usr/bin/time -o "$out/rss" -f %M "$py" bench/pytorch_train.py \
		--spec "models/testdata/reference/$1.spec.json" --batch "$2" --steps "$3" --warmup 1 \
		--threads "$threads" --memory-format "$memfmt" >"$out/py.json" ||
		fail "pytorch_train.py failed on $1"
	local ips
	ips=$(sed -n 's/.*"images_per_s": \([0-9.]*\).*/\1/p' "$out/py.json")
	[[ -n $ips ]] || fail "no images_per_s in pytorch_train.py's output: $(cat "$out/py.json")"
	echo "$ips" >>"$out/pytorch.$1.ips"
	cat "$out/rss" >>"$out/pytorch.$1.rss"
	echo "    pytorch $1: $ips images/s" >&2
}
ours() {
	(cd trainer/internal/nn && /usr/bin/time -o "$out/rss" -f %M "$out/nn.test" -test.run '^$' \
		-test.bench "^BenchmarkTrainThroughput\$/^$1\$/^batch=$2\$" -test.benchtime "${3}x") >"$out/go.txt" ||
		fail "Go benchmark failed on $1: $(cat "$out/go.txt")"
	grep -q 'layerops accelerated: true' "$out/go.txt" ||
		echo "    warning: layerops not accelerated (no AVX2+FMA or AVX-512 kernel); gorgonia's convolutions ran" >&2
	local ips
	ips=$(awk '/^BenchmarkTrainThroughput/ { for (i = 3; i < NF; i++) if ($(i+1) == "images/s") print $i }' "$out/go.txt")
	[[ -n $ips ]] || fail "no images/s in the Go benchmark's output: $(cat "$out/go.txt")"
	echo "$ips" >>"$out/ours.$1.ips"
	cat "$out/rss" >>"$out/ours.$1.rss"
	echo "    ours    $1: $ips images/s" >&2
}

median() { sort -g "$1" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2 }'; }
peak_mib() { sort -g "$1" | tail -1 | awk '{ printf "%.0f MiB", $1 / 1024 }'; }

# preset, batch, timed steps per round (a round of cifarnet-fast at 512
# takes about a minute on two busy cores).
cases=("keras-cnn 128 4" "cifarnet-fast 512 2")

echo "==> $rounds rounds on $threads threads; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs);" \
	"torch $("$py" -c 'import torch; print(torch.__version__)'), $(go env GOVERSION); load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for c in "${cases[@]}"; do
	read -r preset batch steps <<<"$c"
	steps=${STEPS:-$steps}
	for ((r = 1; r <= rounds; r++)); do
		echo "==> $preset batch $batch, round $r/$rounds, $steps steps" >&2
		if ((r % 2)); then
			pytorch "$preset" "$batch" "$steps"
			ours "$preset" "$batch" "$steps"
		else
			ours "$preset" "$batch" "$steps"
			pytorch "$preset" "$batch" "$steps"
		fi
	done
done

printf '%-14s %5s %14s %11s %6s %12s %9s\n' preset batch "pytorch img/s" "ours img/s" ratio "pytorch RSS" "ours RSS"
for c in "${cases[@]}"; do
	read -r preset batch _ <<<"$c"
	pt=$(median "$out/pytorch.$preset.ips")
	go=$(median "$out/ours.$preset.ips")
	printf '%-14s %5d %14.1f %11.1f %6.2f %12s %9s\n' "$preset" "$batch" "$pt" "$go" "$(awk -v a="$go" -v b="$pt" 'BEGIN { print a / b }')" \
		"$(peak_mib "$out/pytorch.$preset.rss")" "$(peak_mib "$out/ours.$preset.rss")"
done
echo "(median of $rounds rounds; ratio = ours / pytorch; RSS = largest peak resident set of a round's process)"
