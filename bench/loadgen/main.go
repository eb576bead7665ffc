// Command loadgen drives an HTTP server with vegeta's attacker: a fixed
// number of GET requests over a list of paths, round robin, from a fixed
// number of concurrent keep-alive connections as fast as the server
// answers, with a browser's Accept-Encoding, and prints one line of results (requests/s, latency quantiles,
// errors). bench/reliability.sh runs it against bin/server on loopback.
//
//	loadgen -base http://127.0.0.1:8080 -n 50000 -c 200 / /app.js /style.css
//
// It is its own module so that the load generator's dependencies stay out
// of the product's go.mod.
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

func main() {
	base := flag.String("base", "http://127.0.0.1:8080", "server `URL`")
	n := flag.Int("n", 50000, "requests in all")
	c := flag.Int("c", 200, "concurrent connections")
	flag.Parse()
	paths := flag.Args()
	if len(paths) == 0 || *n <= 0 || *c <= 0 {
		fmt.Fprintln(os.Stderr, "usage: loadgen [-base URL] [-n requests] [-c connections] PATH...")
		os.Exit(2)
	}
	var sent atomic.Int64
	// A browser's Accept-Encoding: the server sends its gzip copies, and
	// the client, like a benchmark of the server should, does not spend
	// its CPU decompressing them (Go's transport would if it asked itself).
	acceptEncoding := http.Header{"Accept-Encoding": {"gzip, deflate, br, zstd"}}
	targeter := func(t *vegeta.Target) error {
		i := sent.Add(1) - 1
		if i >= int64(*n) {
			return vegeta.ErrNoTargets
		}
		t.Method = http.MethodGet
		t.URL = *base + paths[int(i)%len(paths)]
		t.Header = acceptEncoding
		return nil
	}
	attacker := vegeta.NewAttacker(
		vegeta.Workers(uint64(*c)), vegeta.MaxWorkers(uint64(*c)), vegeta.Connections(*c),
		vegeta.KeepAlive(true), vegeta.Timeout(30*time.Second),
	)
	var m vegeta.Metrics
	for res := range attacker.Attack(targeter, vegeta.Rate{Freq: 0}, 0, "load") {
		if res.Error == vegeta.ErrNoTargets.Error() {
			continue // a worker finding the list used up, not a request
		}
		m.Add(res)
	}
	m.Close()
	errs := m.Requests - uint64(float64(m.Requests)*m.Success+0.5)
	fmt.Printf("requests %d, errors %d, %.0f requests/s, p50 %s, p99 %s, max %s, %d bytes in\n",
		m.Requests, errs, m.Throughput, m.Latencies.P50, m.Latencies.P99, m.Latencies.Max, m.BytesIn.Total)
	if len(m.Errors) > 0 {
		fmt.Printf("first errors: %q\n", m.Errors[:min(3, len(m.Errors))])
	}
	if errs > 0 || m.Requests != uint64(*n) {
		os.Exit(1)
	}
}
