package app

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cifarnet-go/cifarnet/models"
)

// discard is a ResponseWriter that keeps headers and drops the body.
type discard struct {
	h    http.Header
	code int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(code int)        { d.code = code }

// benchDist writes a dist directory with a 4 MiB module shaped like a Go
// WebAssembly binary: a small alphabet, so it gzips to roughly half.
func benchDist(b *testing.B) (dist string, size int) {
	b.Helper()
	dist = b.TempDir()
	rng := rand.New(rand.NewPCG(3, 4))
	wasm := make([]byte, 4<<20)
	for i := range wasm {
		wasm[i] = byte(rng.IntN(16))
	}
	for name, content := range map[string][]byte{"index.html": []byte("<p>hi</p>"), "cifarnet.0123abcd.wasm": wasm} {
		if err := os.WriteFile(filepath.Join(dist, name), content, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return dist, len(wasm)
}

// BenchmarkServeWasm measures serving the module once its ETag and gzip
// copy are cached: the steady state of a running server.
func BenchmarkServeWasm(b *testing.B) {
	dist, size := benchDist(b)
	e, err := New(Config{Dist: dist})
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct{ name, header, value string }{
		{"identity", "", ""},
		{"gzip", "Accept-Encoding", "gzip"},
		{"not-modified", "If-None-Match", ""},
	} {
		b.Run(c.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/cifarnet.0123abcd.wasm", nil)
			if c.header == "Accept-Encoding" {
				req.Header.Set(c.header, c.value)
			}
			w := &discard{h: http.Header{}}
			e.ServeHTTP(w, req) // fills the cache
			if c.header == "If-None-Match" {
				req.Header.Set(c.header, w.h.Get("ETag"))
			}
			b.SetBytes(int64(size))
			for b.Loop() {
				w := &discard{h: http.Header{}}
				e.ServeHTTP(w, req)
				if w.code != http.StatusOK && w.code != http.StatusNotModified {
					b.Fatalf("status %d", w.code)
				}
			}
		})
	}
}

// BenchmarkFirstRequest measures the one-off work of a file version's
// first request: hashing it for the ETag, and compressing it.
func BenchmarkFirstRequest(b *testing.B) {
	dist, size := benchDist(b)
	path := filepath.Join(dist, "cifarnet.0123abcd.wasm")
	for _, name := range []string{"etag", "gzip"} {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				f, err := os.Open(path)
				if err != nil {
					b.Fatal(err)
				}
				fi, err := f.Stat()
				if err != nil {
					b.Fatal(err)
				}
				c := newFileCache()
				if name == "etag" {
					_, err = c.etag(path, f, fi)
				} else {
					var g *gzipped
					g, err = c.gzip(path, f, fi)
					if err == nil {
						b.ReportMetric(float64(len(g.data))/float64(size), "gzip-ratio")
					}
				}
				f.Close()
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkModelList measures /api/models over 20 unchanged weight files.
func BenchmarkModelList(b *testing.B) {
	dist, _ := benchDist(b)
	dir := filepath.Join(dist, "models")
	if err := os.Mkdir(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	for i := range 20 {
		weightFile(b, filepath.Join(dir, fmt.Sprintf("m%02d.cnw", i)), uint64(i), models.Provenance{Created: "2026-01-01T00:00:00Z"}, time.Now())
	}
	e, err := New(Config{Dist: dist})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/api/models", nil)
	for b.Loop() {
		w := &discard{h: http.Header{}}
		e.ServeHTTP(w, req)
		if w.code != http.StatusOK {
			b.Fatalf("status %d", w.code)
		}
	}
}
