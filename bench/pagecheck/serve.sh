# bench/pagecheck/serve.sh, sourced by run.sh and bench/browser.sh:
# serve_dist DIST SERVER starts SERVER (bin/server) on a free localhost
# port serving DIST, waits until it answers, stops it when the shell
# exits, and sets url to its address. Exits 2 if it does not answer.
serve_dist() {
	local dist=$1 server=$2 port up=0
	port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	"$server" --addr "127.0.0.1:$port" --dist "$dist" >/dev/null 2>&1 &
	serve_pid=$!
	trap 'kill "$serve_pid" 2>/dev/null; wait "$serve_pid" 2>/dev/null || true' EXIT
	for _ in $(seq 100); do
		curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && up=1 && break
		sleep 0.1
	done
	[[ $up = 1 ]] || { echo "$server did not answer on 127.0.0.1:$port within 10 s" >&2; exit 2; }
	url="http://127.0.0.1:$port/"
}
