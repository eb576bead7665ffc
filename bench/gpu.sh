#!/usr/bin/env bash
# bench/gpu.sh: everything the GPU host runs, in stages, with the files
# that "prepare" builds here (the GPU host has no Go and no network).
#
# Here, on a machine with Go (and cuda.h: ./build.sh cuda-headers):
#
#   bench/gpu.sh prepare     bin/gpu/bundle.tar.xz (bin/trainer-cuda,
#                            bin/trainer, the GPU test binaries, cifarpack;
#                            stripped, xz -9e) and bin/gpu/cifar10.pack (the
#                            data set from $CIFAR10_DIR, JPEG-packed): about
#                            30 MB to carry as the one path bin/gpu
#
# On the GPU host, from the repository root with bin/gpu carried (the
# device tool: carry ["bin/gpu"], command "bench/gpu.sh", which writes to
# $OUT; a later call on the still-warm machine that carries nothing reuses
# what setup unpacked):
#
#   bench/gpu.sh [flags] [STAGE...]      default: all stages, in this order
#
#   info      nvidia-smi, the Python/PyTorch and CPU it runs with
#   setup     unpack the bundle and the data, find libcuda and cuBLAS
#             (CIFARNET_CUBLAS, LD_LIBRARY_PATH); later stages run it if needed
#   devices   bin/trainer-cuda devices
#   tests     the GPU test binaries with -test.v: preflight, then driver
#             (memory, kernels, cuBLAS, CPU parity of a step per preset,
#             determinism)
#   speed     training-step throughput, ours (BenchmarkStep in the driver
#             test binary) against bench/pytorch_train.py on the same device,
#             medians of -rounds rounds
#   profile   where our step's time goes (BenchmarkStepProfile): kernels by
#             name, cuBLAS, copies, host
#   train     train the recipes (default: fast) on the device, evaluate
#             final.cnw on the test set, sample nvidia-smi while training
#
# Each stage has its own time limit (info 20 s, setup 60, devices 20,
# tests 120, speed 150, profile 60, train 220; LIMIT_<STAGE>=SECONDS in the environment
# overrides one) and its log in the output folder; a failing
# stage does not stop the next. The summary table is printed last. The
# output folder gets at most 8 files (what the device tool brings back):
# summary.txt, results.tar.gz (logs, metrics.csv, config.json, reports)
# and RECIPE.final.cnw per trained recipe.
#
# flags:
#   -out DIR        output folder (default: $OUT, else gpu-out)
#   -device D       device for speed and train: cuda (default), cuda:N or cpu
#   -recipes "R…"   recipes to train, each NAME or NAME:EPOCHS (default: fast)
#   -epochs N       override the epochs of recipes given without :EPOCHS
#   -parallel       train the recipes at the same time (one GPU, shared)
#   -keep "N…"      recipes whose final.cnw (or unfinished run's checkpoint)
#                   comes back (default: all)
#   -keep-best "N…" recipes whose best.cnw comes back too (default: none)
#   -limit N        train on the first N images only (a quick run)
#   -speed "P:B…"   speed cases, preset:batch (default: every preset at
#                   batch 128 and 512)
#   -steps N        timed steps per round of a speed case (default 20)
#   -rounds N       rounds per speed case, the median reported (default 3)
#   -precision "P…" speed at fp32 (default) and/or tf32: cuBLAS TF32 tensor
#                   ops for ours (CIFARNET_TF32=1), --tf32 for PyTorch
#   -work DIR       where the bundle and data are unpacked (default bin/gpu/work)
#   -budget S       seconds for all the stages together (default 560)
#
# PYTHON names the Python with PyTorch (default python3).
#
# Rehearsal without a GPU (what can run on the CPU):
#   bench/gpu.sh prepare
#   LD_LIBRARY_PATH=$PWD/.cuda/lib PYTHON=/usr/bin/python3 bench/gpu.sh -out /tmp/gpu-out \
#     -device cpu -limit 2048 -epochs 3 -speed keras-cnn:32 -steps 2
set -uo pipefail
cd "$(dirname "$0")/.."
start_all=$SECONDS

die() {
	echo "gpu.sh: $*" >&2
	exit 2
}

# ---------------------------------------------------------------- prepare

prepare() {
	set -e
	local stage=bin/gpu/stage
	command -v go >/dev/null || die "prepare needs Go (it runs here, not on the GPU host)"
	local data=${CIFAR10_DIR:-$(cd .. && pwd)/shared/cifar10/cifar-10-batches-bin}
	[ -f "$data/data_batch_1.bin" ] || die "no CIFAR-10 at $data (set CIFAR10_DIR)"
	./build.sh cuda
	./build.sh cuda-tests
	rm -rf "$stage"
	mkdir -p "$stage"
	echo "==> go build bin/trainer (CPU) and cifarpack" >&2
	GOEXPERIMENT=simd go build -trimpath -ldflags "-X github.com/cifarnet-go/cifarnet/trainer/internal/training.stamped=$(git describe --always --dirty)" -o "$stage/trainer" ./trainer
	CGO_ENABLED=0 go build -trimpath -o "$stage/cifarpack" ./bench/cifarpack
	cp bin/trainer-cuda bin/cuda-tests/driver.test bin/cuda-tests/preflight.test "$stage/"
	strip "$stage"/*
	echo "==> cifarpack pack -test" >&2
	"$stage/cifarpack" pack -test -data "$data" -out bin/gpu/cifar10.pack >&2
	echo "==> xz -9e the binaries ($(du -sh "$stage" | cut -f1))" >&2
	(cd "$stage" && XZ_OPT=-9e tar -cJf ../bundle.tar.xz.tmp -- *)
	mv bin/gpu/bundle.tar.xz.tmp bin/gpu/bundle.tar.xz
	rm -rf "$stage" bin/gpu/work
	ls -l bin/gpu >&2
	echo "==> carry bin/gpu ($(du -sh bin/gpu | cut -f1)); run: bench/gpu.sh -out \$OUT [STAGE...]" >&2
}

# ---------------------------------------------------------------- flags

out=${OUT:-gpu-out}
device=cuda
recipes=fast
epochs=
limit=
speed_cases="cifarnet:128 cifarnet:512 cifarnet-fast:128 cifarnet-fast:512 keras-cnn:128 keras-cnn:512"
steps=20
rounds=3
parallel=0
keep=all
keep_best=
precisions=fp32
budget=560
work=bin/gpu/work
stages=()
all_stages=(info setup devices tests speed profile train)
while [ $# -gt 0 ]; do
	case $1 in
	-parallel)
		parallel=1
		shift
		;;
	-out | -device | -recipes | -epochs | -limit | -speed | -steps | -rounds | -work | -budget | -keep | -keep-best | -precision)
		[ $# -ge 2 ] || die "$1 needs a value"
		case $1 in
		-out) out=$2 ;;
		-device) device=$2 ;;
		-recipes) recipes=$2 ;;
		-epochs) epochs=$2 ;;
		-limit) limit=$2 ;;
		-speed) speed_cases=$2 ;;
		-steps) steps=$2 ;;
		-rounds) rounds=$2 ;;
		-keep) keep=$2 ;;
		-keep-best) keep_best=$2 ;;
		-precision) precisions=$2 ;;
		-work) work=$2 ;;
		-budget) budget=$2 ;;
		esac
		shift 2
		;;
	-h | --help | help)
		sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
		exit 0
		;;
	prepare)
		[ $# -eq 1 ] || die "prepare takes no other arguments"
		prepare
		exit
		;;
	all)
		stages+=("${all_stages[@]}")
		shift
		;;
	info | setup | devices | tests | speed | profile | train)
		stages+=("$1")
		shift
		;;
	*) die "unknown stage or flag $1 (stages: ${all_stages[*]}, all, prepare; see bench/gpu.sh -h)" ;;
	esac
done
[ ${#stages[@]} -gt 0 ] || stages=("${all_stages[@]}")
case $device in
cpu | cuda | cuda:[0-9]*) ;;
*) die "-device $device: want cpu, cuda or cuda:N" ;;
esac
for v in "$epochs" "$limit" "$steps" "$rounds" "$budget"; do
	[[ -z $v || $v =~ ^[0-9]+$ ]] || die "-epochs, -limit, -steps, -rounds and -budget take whole numbers (got $v)"
done
for r in $recipes; do
	[[ $r =~ ^[a-z0-9._/-]+(:[0-9]+)?$ ]] || die "-recipes $r: want NAME or NAME:EPOCHS"
done
for c in $speed_cases; do
	[[ $c =~ ^[a-z0-9-]+:[0-9]+$ ]] || die "-speed $c: want preset:batch"
done
for p in $precisions; do
	[[ $p == fp32 || $p == tf32 ]] || die "-precision $p: want fp32 or tf32"
done

mkdir -p "$out" "$work" || die "cannot create $out or $work"
out=$(cd "$out" && pwd)
work=$(cd "$work" && pwd)
res=$work/results # becomes results.tar.gz
rm -rf "$res"
mkdir -p "$res/logs" "$res/summary.d"

# Default time limits (seconds). Whatever they say, no stage starts or
# runs past the budget (-budget, default 560 s, for a 10-minute call),
# less 15 s kept for the summary.
declare -A limits=([info]=20 [setup]=60 [devices]=20 [tests]=120 [speed]=150 [profile]=60 [train]=220)

log() { printf '==> %s\n' "$*" >&2; }

# note STAGE TEXT… adds a line to the stage's part of the summary.
note() {
	local s=$1
	shift
	printf '%s\n' "$*" >>"$res/summary.d/$s.notes"
}

# limited LOG CMD… runs CMD with what is left of the stage's time,
# appending its output to LOG; status 124 when the time ran out.
limited() {
	local logf=$1
	shift
	local left=$((deadline - SECONDS))
	if [ $left -le 0 ]; then
		echo "(not run: stage time limit reached) $*" >>"$logf"
		return 124
	fi
	echo "\$ $*" >>"$logf"
	timeout -k 15 "$left" "$@" >>"$logf" 2>&1
}

bin=$work/bin
data=$work/data
py=${PYTHON:-python3}

# ---------------------------------------------------------------- stages

stage_info() {
	local l=$res/logs/info.log
	if command -v nvidia-smi >/dev/null; then
		limited "$l" nvidia-smi
		local q
		q=$(timeout 20 nvidia-smi --query-gpu=index,name,memory.total,driver_version,compute_cap --format=csv,noheader 2>/dev/null)
		while IFS= read -r line; do [ -n "$line" ] && note info "GPU $line"; done <<<"$q"
	else
		note info "no nvidia-smi"
	fi
	{
		echo "\$ uname -a"
		uname -a
		echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) threads; $(free -g | awk '/Mem:/ { print $2 " GiB" }') RAM"
	} >>"$l" 2>&1
	local pyv
	pyv=$(timeout 60 "$py" -c 'import sys, torch; print("python", sys.version.split()[0], "torch", torch.__version__, "CUDA", torch.version.cuda, "GPU" if torch.cuda.is_available() else "no GPU")' 2>&1 | tail -1)
	echo "$pyv" >>"$l"
	note info "$pyv"
	note info "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) threads"
}

# find_cublas prints the newest libcuBLAS found: in Python's nvidia wheels
# or the loader's cache, else anywhere on this file system.
find_cublas() {
	local found
	found=$(
		timeout 30 "$py" - <<-'EOF' 2>/dev/null
			import glob, os
			try:
			    import nvidia
			    roots = list(nvidia.__path__)
			except Exception:
			    roots = []
			for r in roots:
			    for p in glob.glob(os.path.join(r, "**", "libcublas.so.*"), recursive=True):
			        print(p)
		EOF
		ldconfig -p 2>/dev/null | awk '/libcublas\.so\.[0-9]/ { print $NF }'
	)
	if [ -z "$found" ]; then
		found=$(timeout 60 find / -xdev \( -path /proc -o -path /sys \) -prune -o -name 'libcublas.so.[0-9]*' -print 2>/dev/null)
	fi
	echo "$found" | grep -v -e '^$' -e 'libcublasLt' | awk -F/ '{ print $NF "\t" $0 }' | sort -t$'\t' -k1,1V | tail -1 | cut -f2
}

stage_setup() {
	local l=$res/logs/setup.log
	if [ ! -x "$bin/trainer-cuda" ] || [ bin/gpu/bundle.tar.xz -nt "$bin/trainer-cuda" ]; then
		[ -f bin/gpu/bundle.tar.xz ] || {
			note setup "no bin/gpu/bundle.tar.xz: run bench/gpu.sh prepare where Go is, and carry bin/gpu"
			return 1
		}
		rm -rf "$bin"
		mkdir -p "$bin"
		if command -v xz >/dev/null; then
			limited "$l" tar -xJf bin/gpu/bundle.tar.xz -C "$bin" || return 1
		else
			limited "$l" "$py" -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2], filter="data")' bin/gpu/bundle.tar.xz "$bin" || return 1
		fi
		touch "$bin/trainer-cuda"
	fi
	note setup "binaries: $(cd "$bin" && echo *)"
	if [ ! -f "$data/.unpacked" ] || [ bin/gpu/cifar10.pack -nt "$data/.unpacked" ]; then
		[ -f bin/gpu/cifar10.pack ] || {
			note setup "no bin/gpu/cifar10.pack"
			return 1
		}
		limited "$l" "$bin/cifarpack" unpack -in bin/gpu/cifar10.pack -out "$data" || {
			note setup "cifarpack unpack failed (see logs/setup.log)"
			return 1
		}
		touch "$data/.unpacked"
	fi
	note setup "data: $(cd "$data" && ls ./*.bin | wc -l) batch files in $data"
	# The environment later stages source.
	local env=$work/env.sh
	: >"$env"
	if [ "$device" != cpu ]; then
		local cublas
		cublas=$(find_cublas)
		if [ -n "$cublas" ]; then
			echo "export CIFARNET_CUBLAS=$cublas" >>"$env"
			echo "export LD_LIBRARY_PATH=$(dirname "$cublas")\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" >>"$env"
			note setup "cuBLAS: $cublas"
		else
			note setup "cuBLAS: no libcublas.so.* found; the GPU stages will fail"
		fi
		if ! ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1 '; then
			local cuda
			cuda=$(timeout 60 find / -xdev \( -path /proc -o -path /sys \) -prune -o -name 'libcuda.so.1' -print 2>/dev/null | head -n1)
			[ -n "$cuda" ] && echo "export LD_LIBRARY_PATH=$(dirname "$cuda")\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" >>"$env"
			note setup "libcuda.so.1: ${cuda:-not found}"
		fi
	fi
	cat "$env" >>"$l"
}

# need_setup runs setup when an earlier call has not, then loads its
# environment.
need_setup() {
	if [ ! -f "$work/env.sh" ] || [ ! -x "$bin/trainer-cuda" ] || [ ! -f "$data/.unpacked" ]; then
		stage_setup || return 1
	fi
	# shellcheck disable=SC1091
	. "$work/env.sh"
}

stage_devices() {
	need_setup || return 1
	local l=$res/logs/devices.log rc=0
	limited "$l" "$bin/trainer-cuda" devices || rc=$?
	while IFS= read -r line; do note devices "$line"; done < <(grep -v '^\$ ' "$l")
	return $rc
}

# test_counts LOG prints "N passed, N failed, N skipped" of a -test.v log.
test_counts() {
	awk '/^--- PASS/ { p++ } /^--- FAIL/ { f++ } /^--- SKIP/ { s++ }
		END { printf "%d passed, %d failed, %d skipped", p, f, s }' "$1"
}

stage_tests() {
	need_setup || return 1
	local rc=0 t
	for t in preflight driver; do
		local l=$res/logs/test-$t.log trc=0
		(cd "$bin" && limited "$l" "./$t.test" -test.v -test.timeout "$((deadline - SECONDS))s") || trc=$?
		local failed
		failed=$(awk '/--- FAIL/ { print $3 }' "$l" | head -5 | xargs)
		note tests "$t.test: $(test_counts "$l")$([ $trc -ne 0 ] && echo ", exit $trc")${failed:+ (failed: $failed)}"
		grep -h 'no GPU:' "$l" | head -1 | sed 's/^ *[a-z_]*\.go:[0-9]*: /  /' | while IFS= read -r line; do note tests "$line"; done
		[ $trc -eq 0 ] || rc=$trc
	done
	return $rc
}

# median prints the median of its arguments ("-" when there are none).
median() {
	[ $# -gt 0 ] || {
		echo -
		return
	}
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { printf "%.0f", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}

stage_speed() {
	need_setup || return 1
	local rc=0 c
	printf '%-14s %5s %-5s %12s %14s %6s\n' preset batch prec "ours img/s" "pytorch img/s" ratio >"$res/speed.table"
	local prec pc
	for pc in $(for prec in $precisions; do for c in $speed_cases; do echo "$prec/$c"; done; done); do
		prec=${pc%%/*} c=${pc#*/}
		local preset=${c%%:*} batch=${c##*:}
		local ours=- pt=- l=$res/logs/speed-$preset-$batch-$prec.log tf=0 ptf=()
		[ "$prec" = tf32 ] && tf=1 && ptf=(--tf32)
		# Ours: the driver test binary's benchmark (needs a GPU), one
		# result per round.
		if [ "$device" != cpu ]; then
			(cd "$bin" && CIFARNET_TF32=$tf limited "$l" ./driver.test -test.v -test.run '^$' -test.bench "BenchmarkStep/^$preset\$/^batch=$batch\$" \
				-test.benchtime "${steps}x" -test.count "$rounds" -test.timeout "$((deadline - SECONDS + 30))s") || rc=$?
			# shellcheck disable=SC2046
			ours=$(median $(awk '/^BenchmarkStep/ { for (i = 3; i < NF; i++) if ($(i+1) == "images/s") print $i }' "$l"))
		fi
		local dev=$device
		[ "$dev" = cuda ] && dev=cuda:0
		limited "$l" "$py" bench/pytorch_train.py --device "$dev" --spec "models/testdata/reference/$preset.spec.json" \
			--batch "$batch" --steps "$steps" --warmup 3 --rounds "$rounds" "${ptf[@]}" || rc=$?
		pt=$(sed -n 's/.*"images_per_s": \([0-9.]*\).*/\1/p' "$l" | tail -1)
		pt=${pt:--}
		local ratio=-
		[[ $ours != - && $pt != - ]] && ratio=$(awk -v a="$ours" -v b="$pt" 'BEGIN { printf "%.2f", a / b }')
		printf '%-14s %5d %-5s %12s %14s %6s\n' "$preset" "$batch" "$prec" "$ours" "$pt" "$ratio" >>"$res/speed.table"
	done
	local how="pytorch_train.py --device $device"
	[ "$device" != cpu ] && how+=", cuDNN autotuner off, loss read after the last step; fp32: TF32 off for both, tf32: TF32 on for both"
	note speed "ours: BenchmarkStep (driver.test), full steps with the loss read back each step; pytorch: $how; medians of $rounds rounds of $steps timed steps"
	[ "$device" = cpu ] && note speed "ours: not measured on the CPU here (BenchmarkStep needs a GPU; bench/train_vs_pytorch.sh is the CPU comparison)"
	return $rc
}

# stage_profile writes where a step's time goes, per speed case.
stage_profile() {
	need_setup || return 1
	[ "$device" != cpu ] || {
		note profile "not run: the profile needs a GPU"
		return 0
	}
	local rc=0 c l=$res/logs/profile.log
	for c in $speed_cases; do
		local preset=${c%%:*} batch=${c##*:}
		(cd "$bin" && limited "$l" ./driver.test -test.run '^$' -test.bench "BenchmarkStepProfile/^$preset\$/^batch=$batch\$" \
			-test.benchtime 5x -test.timeout "$((deadline - SECONDS + 30))s") || rc=$?
	done
	awk '/^== / { print; n = 6; next } n > 0 { print; n-- }' "$l" >"$res/profile.table"
	return $rc
}

# train_one RECIPE[:EPOCHS] trains one recipe, evaluates its final.cnw
# and writes its row of the table to $res/train.d/NAME.row. An unfinished
# run's checkpoint (config, metrics, last.cnw, last.state, best.cnw) is
# kept as $work/keep/NAME.run.tar.gz for a later --resume.
train_one() {
	local r=${1%%:*} ep=$epochs
	[[ $1 == *:* ]] && ep=${1##*:}
	local name
	name=$(basename "$r" .json)
	local l=$res/logs/train-$name.log runs=$work/runs/$name
	rm -rf "$runs"
	local args=(train --recipe "$r" --device "$device" --data "$data" --runs "$runs")
	[ -n "$ep" ] && args+=(--epochs "$ep")
	[ -n "$limit" ] && args+=(--limit "$limit")
	local trc=0
	limited "$l" "$trainer" "${args[@]}" || trc=$?
	local dir
	dir=$(find "$runs" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | head -n1)
	local n=0 ips=- loss=- val=- test=- weights=- secs=-
	if [ -n "$dir" ] && [ -f "$dir/metrics.csv" ]; then
		# epoch,train_loss,train_acc,val_loss,val_acc,lr,epoch_seconds,images_per_second
		n=$(($(wc -l <"$dir/metrics.csv") - 1))
		read -r ips loss val secs < <(awk -F, 'NR > 1 { ips = $8; loss = $2; val = $5; s += $7 } END { printf "%.0f %.4f %s %.1f\n", ips, loss, (val == "" || val == "NaN" ? "-" : val), s }' "$dir/metrics.csv")
		mkdir -p "$res/runs/$name"
		cp "$dir"/*.json "$dir"/*.csv "$res/runs/$name/" 2>/dev/null
	fi
	local kept=0
	[[ $keep == all || " $keep " == *" $name "* ]] && kept=1
	if [ -n "$dir" ] && [ -f "$dir/final.cnw" ]; then
		weights=-
		if [ $kept = 1 ]; then
			cp "$dir/final.cnw" "$work/keep/$name.final.cnw"
			weights=$name.final.cnw
			if [[ " $keep_best " == *" $name "* ]] && [ -f "$dir/best.cnw" ]; then
				cp "$dir/best.cnw" "$work/keep/$name.best.cnw"
				weights+=" $name.best.cnw"
			fi
		fi
		local el=$res/logs/eval-$name.log
		limited "$el" "$trainer" eval --data "$data" --out "$res/runs/$name/eval" \
			--latency-images 0 --resampled 0 "$dir/final.cnw" || trc=$?
		test=$(awk '$1 == "accuracy" { a = $2 } $1 == "with" && $2 == "TTA" { t = $3 }
			END { if (a != "") printf "%s%s", a, (t != "" ? "/" t : "") }' "$el")
		test=${test:--}
	elif [ $kept = 1 ] && [ -n "$dir" ] && [ -f "$dir/last.state" ]; then
		tar -czf "$work/keep/$name.run.tar.gz" -C "$(dirname "$dir")" \
			"$(basename "$dir")/config.json" "$(basename "$dir")/metrics.csv" "$(basename "$dir")/last.cnw" \
			"$(basename "$dir")/last.state" $([ -f "$dir/best.cnw" ] && echo "$(basename "$dir")/best.cnw") 2>>"$l"
		weights="$name.run.tar.gz (checkpoint)"
	fi
	printf '%-18s %-7s %7s %8s %10s %10s %9s %13s %s\n' "$name" "$device" "$n" "$secs" "$ips" "$loss" "$val" "$test" "$weights" >"$res/train.d/$name.row"
	[ $trc -eq 124 ] && echo "$name: stopped by the stage's time limit after $n epochs" >"$res/train.d/$name.note"
	return $trc
}

stage_train() {
	need_setup || return 1
	local rc=0 r trainer=$bin/trainer-cuda
	# The CPU build on the CPU: it runs without libcuda.
	[ "$device" = cpu ] && [ -x "$bin/trainer" ] && trainer=$bin/trainer
	mkdir -p "$res/train.d" "$work/keep"
	local smi=""
	if [ "$device" != cpu ] && command -v nvidia-smi >/dev/null; then
		nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader -l 1 >"$res/logs/nvidia-smi-train.csv" 2>&1 &
		smi=$!
	fi
	local pids=()
	for r in $recipes; do
		if [ "$parallel" = 1 ]; then
			train_one "$r" &
			pids+=($!)
		else
			train_one "$r" || rc=$?
		fi
	done
	for p in "${pids[@]}"; do
		wait "$p" || rc=$?
	done
	printf '%-18s %-7s %7s %8s %10s %10s %9s %13s %s\n' recipe device epochs seconds "img/s" train_loss val_acc "test_acc %" weights >"$res/train.table"
	for r in $recipes; do
		local name
		name=$(basename "${r%%:*}" .json)
		cat "$res/train.d/$name.row" >>"$res/train.table" 2>/dev/null
		[ -f "$res/train.d/$name.note" ] && note train "$(cat "$res/train.d/$name.note")"
	done
	if [ -n "$smi" ]; then
		kill "$smi" 2>/dev/null
		wait "$smi" 2>/dev/null
		note train "GPU while training: $(awk -F', ' '$2 ~ /%/ { u += $2 + 0; m = ($3 + 0 > m ? $3 + 0 : m); n++ }
			END { if (n) printf "mean utilisation %.0f%% over %d s, memory up to %d MiB", u / n, n, m; else print "no nvidia-smi samples" }' "$res/logs/nvidia-smi-train.csv")"
	fi
	return $rc
}

# ---------------------------------------------------------------- run

declare -A status seconds
for s in "${stages[@]}"; do
	[ -n "${status[$s]:-}" ] && continue # a stage named twice runs once
	lim=${limits[$s]}
	var=LIMIT_${s^^}
	[ -n "${!var:-}" ] && lim=${!var}
	left=$((start_all + budget - 15 - SECONDS))
	if [ $left -lt 5 ]; then
		log "$s: skipped, the budget (${budget}s) is spent"
		status[$s]=skipped
		seconds[$s]=0
		note "$s" "not run: the budget of ${budget} s was spent (-budget)"
		continue
	fi
	[ $lim -le $left ] || lim=$left
	limits[$s]=$lim
	log "$s (limit ${lim}s)"
	deadline=$((SECONDS + lim))
	t0=$SECONDS
	rc=0
	"stage_$s" || rc=$?
	seconds[$s]=$((SECONDS - t0))
	case $rc in
	0) status[$s]=ok ;;
	124 | 137) status[$s]=timeout ;;
	*) status[$s]="FAIL($rc)" ;;
	esac
done

# Results: at most 8 files in $out.
{
	echo "== bench/gpu.sh: $(date -u +%Y-%m-%dT%H:%M:%SZ), $((SECONDS - start_all)) s, device $device, stages: ${stages[*]}"
	printf '%-8s %-9s %6s  %s\n' stage status seconds notes
	for s in "${all_stages[@]}"; do
		[ -n "${status[$s]:-}" ] || continue
		first=1
		if [ -f "$res/summary.d/$s.notes" ]; then
			while IFS= read -r line; do
				if [ $first = 1 ]; then
					printf '%-8s %-9s %6s  %s\n' "$s" "${status[$s]}" "${seconds[$s]}" "$line"
					first=0
				else
					printf '%-8s %-9s %6s  %s\n' "" "" "" "$line"
				fi
			done <"$res/summary.d/$s.notes"
		fi
		[ $first = 1 ] && printf '%-8s %-9s %6s\n' "$s" "${status[$s]}" "${seconds[$s]}"
	done
	if [ -f "$res/speed.table" ]; then
		echo
		echo "training steps per second, as images/s (ratio = ours / pytorch):"
		cat "$res/speed.table"
	fi
	if [ -f "$res/profile.table" ]; then
		echo
		echo "where a step's time goes (BenchmarkStepProfile; every call waited for):"
		cat "$res/profile.table"
	fi
	if [ -f "$res/train.table" ]; then
		echo
		echo "training runs (img/s, train_loss and val_acc of the last epoch; test_acc from trainer eval: plain/TTA):"
		cat "$res/train.table"
	fi
	echo
	echo "logs: results.tar.gz (logs/, runs/RECIPE/ metrics, config, eval report)"
} >"$res/summary.txt"
cp "$res/summary.txt" "$out/summary.txt"
tar -czf "$out/results.tar.gz" -C "$res" . 2>/dev/null
# The weights and checkpoints, largest pieces split to fit the 16 MiB a
# file the device tool brings back (join with cat NAME.part-* > NAME).
n=0
for f in "$work"/keep/*; do
	[ -f "$f" ] || continue
	if [ "$(stat -c %s "$f")" -gt 16000000 ]; then
		split -b 15000000 -d "$f" "$out/$(basename "$f").part-"
	else
		cp "$f" "$out/"
	fi
	rm -f "$f"
done
n=$(find "$out" -maxdepth 1 -type f | wc -l)
[ "$n" -le 8 ] || echo "gpu.sh: $n files in $out; the device tool brings back 8" >&2
cat "$out/summary.txt"
for s in "${stages[@]}"; do
	[ "${status[$s]}" = ok ] || exit 1
done
exit 0
