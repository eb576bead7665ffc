// Command bare is the ceiling for bin/server's throughput: a plain
// net/http server answering every GET with one fixed 600-byte body, no
// files, headers, logging or checks. bench/reliability.sh drives it with
// the same load generator, on the same cores, beside bin/server.
//
//	bare -addr 127.0.0.1:8091
package main

import (
	"bytes"
	"flag"
	"fmt"
	"net/http"
	"os"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8091", "listen `address`")
	flag.Parse()
	body := bytes.Repeat([]byte("x"), 600) // the mean size of the gzipped small files bin/server is tested on
	err := http.ListenAndServe(*addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(body)
	}))
	fmt.Fprintln(os.Stderr, "bare:", err)
	os.Exit(1)
}
