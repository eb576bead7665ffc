#!/usr/bin/env bash
# bench/pagecheck/run.sh [DIST] [SERVER]: the page's Lighthouse and axe
# checks (check.mjs) against SERVER (default bin/server) serving DIST
# (default dist), both as ./build.sh makes them. Installs the pinned npm
# dev dependencies (npm ci) on first use. Exits non-zero when a limit is
# missed. LH_RUNS (default 3) and CHROMIUM pass through to check.mjs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
dist=$(cd "${1:-$repo/dist}" && pwd)
server=${2:-$repo/bin/server}
[[ -x $server ]] || { echo "pagecheck: no server binary at $server (./build.sh builds bin/server)" >&2; exit 2; }
server=$(cd "$(dirname "$server")" && pwd)/$(basename "$server") # the script changes folder below
[[ -f $dist/index.html ]] || { echo "pagecheck: $dist has no index.html (./build.sh builds dist/)" >&2; exit 2; }

cd "$here"
[[ -d node_modules/lighthouse ]] || npm ci --no-audit --no-fund >/dev/null

# shellcheck source=serve.sh
. "$here/serve.sh"
serve_dist "$dist" "$server"
node check.mjs "$url"
