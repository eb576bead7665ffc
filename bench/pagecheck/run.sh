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

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$server" --addr "127.0.0.1:$port" --dist "$dist" >/dev/null 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true' EXIT
up=0
for _ in $(seq 100); do
	curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && up=1 && break
	sleep 0.1
done
[[ $up = 1 ]] || { echo "pagecheck: $server did not answer on 127.0.0.1:$port within 10 s" >&2; exit 2; }
node check.mjs "http://127.0.0.1:$port/"
