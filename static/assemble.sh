#!/usr/bin/env bash
# assemble.sh DIST WASM WASM_EXEC_JS MODELS_ZOO
#
# Builds the static site in DIST (which should be empty) from the page
# sources next to this script, the compiled WebAssembly module WASM, Go's
# wasm_exec.js and the weight files of MODELS_ZOO (every *.cnw in
# MODELS_ZOO/*/; MODELS_ZOO/DEFAULT names the default model: an id or a .cnw file name):
#
#   - scripts, style sheet and module get content-hashed names
#     (app.<hash>.js, teach.<hash>.js, worker.<hash>.js, wasm_exec.<hash>.js, style.<hash>.css,
#     cifarnet.<hash>.wasm) and the references to them are rewritten;
#   - weight files go to DIST/models/ with DIST/models/manifest.json, the
#     same JSON as the server's GET /api/models, and, where a zoo folder
#     has trainer eval's report.json, NAME.report.json for the model card;
#   - sw.js gets the build version and its precache list;
#   - compressible files get gzip -9 siblings (name.gz).
#
# Needs bash, coreutils, sed, gzip and go (for the manifest).
set -euo pipefail

if [ $# -ne 4 ]; then
	sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
fi
dist=$1 wasm=$2 wasm_exec=$3 zoo=$4
src=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$src/.." && pwd)

die() {
	printf 'assemble.sh: %s\n' "$*" >&2
	exit 1
}

[ -f "$wasm" ] || die "no WebAssembly module at $wasm"
[ -f "$wasm_exec" ] || die "no wasm_exec.js at $wasm_exec"
mkdir -p "$dist"
dist=$(cd "$dist" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

hash_of() { sha256sum "$1" | cut -c1-12; }

# hashed FILE BASE EXT: copies FILE to DIST/BASE.<hash>.EXT, prints the name.
hashed() {
	local name
	name="$2.$(hash_of "$1").$3"
	install -m 0644 "$1" "$dist/$name"
	printf '%s' "$name"
}

# rewrite FILE OLD NEW: replaces the literal OLD by NEW, failing when OLD
# does not occur, so that a renamed reference cannot slip through.
rewrite() {
	grep -qF -- "$2" "$1" || die "$(basename "$1"): expected to find $2"
	local old new
	old=$(printf '%s' "$2" | sed 's/[][\.*^$/]/\\&/g')
	new=$(printf '%s' "$3" | sed 's/[\/&]/\\&/g')
	sed -i "s/$old/$new/g" "$1"
}

# The WebAssembly module and Go's loader.
wasm_name=$(hashed "$wasm" cifarnet wasm)
exec_name=$(hashed "$wasm_exec" wasm_exec js)

# worker.js names both, and the module's raw size for its progress bar.
cp "$src/worker.js" "$work/worker.js"
rewrite "$work/worker.js" "importScripts('wasm_exec.js')" "importScripts('$exec_name')"
rewrite "$work/worker.js" "const WASM_URL = 'cifarnet.wasm'" "const WASM_URL = '$wasm_name'"
rewrite "$work/worker.js" "const WASM_SIZE = 0;" "const WASM_SIZE = $(stat -c %s "$wasm");"
worker_name=$(hashed "$work/worker.js" worker js)

# app.js imports teach.js, the teach mode module.
teach_name=$(hashed "$src/teach.js" teach js)
cp "$src/app.js" "$work/app.js"
rewrite "$work/app.js" "const WORKER_URL = 'worker.js'" "const WORKER_URL = '$worker_name'"
rewrite "$work/app.js" "const WASM_URL = 'cifarnet.wasm'" "const WASM_URL = '$wasm_name'"
rewrite "$work/app.js" "from './teach.js'" "from './$teach_name'"
app_name=$(hashed "$work/app.js" app js)
style_name=$(hashed "$src/style.css" style css)

cp "$src/index.html" "$dist/index.html"
rewrite "$dist/index.html" 'src="app.js"' "src=\"$app_name\""
rewrite "$dist/index.html" 'href="style.css"' "href=\"$style_name\""
rewrite "$dist/index.html" 'href="teach.js"' "href=\"$teach_name\""

cp "$src/icon.svg" "$src/manifest.webmanifest" "$dist/"
mkdir -p "$dist/samples"
cp "$src"/samples/*.png "$dist/samples/"

# Weight files, flattened into DIST/models/.
mkdir -p "$dist/models"
shopt -s nullglob
for f in "$zoo"/*/*.cnw; do
	name=$(basename "$f")
	[ ! -e "$dist/models/$name" ] || die "two weight files are called $name"
	install -m 0644 "$f" "$dist/models/$name"
done
shopt -u nullglob
if [ -f "$zoo/DEFAULT" ]; then
	# The zoo names a model id; dist/models/DEFAULT names its file, for the
	# manifest and for the server's /api/models alike.
	# DEFAULT holds a model id (zoo/ID/ID.cnw) or a weight file name
	# (e.g. ID.int8.cnw, to ship the smallest good file).
	id=$(tr -d '[:space:]' <"$zoo/DEFAULT")
	case $id in *.cnw) file=$id ;; *) file=$id.cnw ;; esac
	[ -f "$dist/models/$file" ] || die "$zoo/DEFAULT names $id, but no $file is in $zoo/*/"
	echo "$file" >"$dist/models/DEFAULT"
fi
# The manifest tool prints the file name of the default model, if any.
latest=$(cd "$repo" && go run ./static/manifest -dir "$dist/models" -zoo "$zoo" -o "$dist/models/manifest.json")

# Service worker: build version and precache list.
# The module is not in it: worker.js keeps it in a cache of its own (see
# there).
precache="'./', '$app_name', '$teach_name', '$worker_name', '$exec_name', '$style_name', 'icon.svg', 'manifest.webmanifest', 'models/manifest.json'"
for f in "$dist"/samples/*.png; do
	precache+=", 'samples/$(basename "$f")'"
done
if [ -n "$latest" ]; then
	precache+=", 'models/$latest'"
fi
version=$( (cd "$dist" && find . -type f ! -name sw.js -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-12)
cp "$src/sw.js" "$dist/sw.js"
rewrite "$dist/sw.js" "const VERSION = 'dev';" "const VERSION = '$version';"
rewrite "$dist/sw.js" "const PRECACHE = ['./'];" "const PRECACHE = [$precache];"

# Precompressed siblings; -n leaves out name and time, so builds repeat.
find "$dist" -type f \( -name '*.js' -o -name '*.css' -o -name '*.html' -o -name '*.wasm' -o -name '*.json' \
	-o -name '*.svg' -o -name '*.webmanifest' \) -exec gzip -9 -n -k -f {} +

printf 'assemble.sh: %s: build %s, %s, %s model(s)%s\n' "$dist" "$version" "$wasm_name" \
	"$(find "$dist/models" -name '*.cnw' | wc -l)" "${latest:+, default $latest}" >&2
