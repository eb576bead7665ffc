package app

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestContentTypes(t *testing.T) {
	s := newSite(t)
	for path, want := range map[string]string{
		"/":                       "text/html; charset=utf-8",
		"/index.html":             "text/html; charset=utf-8",
		"/app.3fa9c2d1.js":        "text/javascript; charset=utf-8",
		"/worker.mjs":             "text/javascript; charset=utf-8",
		"/app.css":                "text/css; charset=utf-8",
		"/data.json":              "application/json",
		"/models/manifest.json":   "application/json",
		"/logo.svg":               "image/svg+xml",
		"/site.webmanifest":       "application/manifest+json",
		"/icon.png":               "image/png",
		"/cifarnet.0123abcd.wasm": "application/wasm",
		"/models/weights.cnw":     "application/octet-stream",
		"/unknown.bin7":           "application/octet-stream",
	} {
		for _, enc := range []string{"", "gzip"} {
			res := s.get(t, path, "Accept-Encoding", enc)
			if res.StatusCode != http.StatusOK {
				t.Errorf("GET %s (Accept-Encoding %q): status %d", path, enc, res.StatusCode)
				continue
			}
			if got := res.Header.Get("Content-Type"); got != want {
				t.Errorf("GET %s (Accept-Encoding %q): Content-Type %q, want %q", path, enc, got, want)
			}
		}
	}
}

func TestFilesServedExactly(t *testing.T) {
	s := newSite(t)
	for path, want := range s.files {
		if strings.Contains(path, "/.") {
			continue // hidden: see TestNothingHiddenOrOutsideIsServed
		}
		res := s.get(t, path)
		if res.StatusCode != http.StatusOK || !bytes.Equal(res.body, want) {
			t.Errorf("GET %s: status %d, %d bytes; want 200 with its %d bytes", path, res.StatusCode, len(res.body), len(want))
		}
		if res.Header.Get("Content-Encoding") != "" {
			t.Errorf("GET %s without Accept-Encoding: Content-Encoding %q", path, res.Header.Get("Content-Encoding"))
		}
	}
}

func TestETagAndNotModified(t *testing.T) {
	s := newSite(t)
	res := s.get(t, "/app.css")
	etag := res.Header.Get("ETag")
	sum := sha256.Sum256(s.files["/app.css"])
	if want := `"` + hex.EncodeToString(sum[:16]) + `"`; etag != want {
		t.Fatalf("ETag %s, want the strong content hash %s", etag, want)
	}
	if again := s.get(t, "/app.css").Header.Get("ETag"); again != etag {
		t.Errorf("second ETag %s differs from first %s", again, etag)
	}

	res = s.get(t, "/app.css", "If-None-Match", etag)
	if res.StatusCode != http.StatusNotModified || len(res.body) != 0 {
		t.Errorf("If-None-Match %s: status %d with %d bytes, want 304 and no body", etag, res.StatusCode, len(res.body))
	}
	res = s.get(t, "/app.css", "If-None-Match", `"0000", `+etag)
	if res.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match listing the ETag: status %d, want 304", res.StatusCode)
	}
	res = s.get(t, "/app.css", "If-None-Match", `"0123456789abcdef0123456789abcdef"`)
	if res.StatusCode != http.StatusOK {
		t.Errorf("If-None-Match with another ETag: status %d, want 200", res.StatusCode)
	}

	// The gzip representation has its own ETag, and revalidates too.
	gz := s.get(t, "/app.css", "Accept-Encoding", "gzip")
	gzTag := gz.Header.Get("ETag")
	if gz.Header.Get("Content-Encoding") != "gzip" || gzTag == "" || gzTag == etag {
		t.Fatalf("gzip response: Content-Encoding %q, ETag %s (identity %s); want gzip with its own ETag",
			gz.Header.Get("Content-Encoding"), gzTag, etag)
	}
	res = s.get(t, "/app.css", "Accept-Encoding", "gzip", "If-None-Match", gzTag)
	if res.StatusCode != http.StatusNotModified {
		t.Errorf("gzip If-None-Match: status %d, want 304", res.StatusCode)
	}

	// A changed file gets a new ETag, and the old one no longer matches,
	// once the memory copy is older than memFileFresh.
	p := filepath.Join(s.dist, "app.css")
	if err := os.WriteFile(p, []byte("body { margin: 1px; }"), 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(p, later, later); err != nil {
		t.Fatal(err)
	}
	time.Sleep(memFileFresh)
	res = s.get(t, "/app.css", "If-None-Match", etag)
	if res.StatusCode != http.StatusOK || string(res.body) != "body { margin: 1px; }" {
		t.Errorf("after a change: status %d body %q, want 200 with the new content", res.StatusCode, res.body)
	}
	if res.Header.Get("ETag") == etag {
		t.Errorf("after a change the ETag is still %s", etag)
	}
}

func TestCacheControl(t *testing.T) {
	s := newSite(t)
	for path, want := range map[string]string{
		"/app.3fa9c2d1.js":                cacheImmutable,
		"/cifarnet.0123abcd.wasm":         cacheImmutable,
		"/assets/app.0123456789abcdef.js": cacheImmutable,
		"/sub/page.4b2e7f9a01.html":       cacheImmutable,
		"/":                               "no-cache",
		"/index.html":                     "no-cache",
		"/sw.js":                          "no-cache",
		"/wasm_exec.js":                   "no-cache",
		"/models/manifest.json":           "no-cache",
		"/site.webmanifest":               "no-cache",
		"/models/weights.cnw":             "no-cache",
		"/icon.png":                       "no-cache",
		"/api/models":                     "no-cache",
	} {
		for _, enc := range []string{"", "gzip"} {
			if got := s.get(t, path, "Accept-Encoding", enc).Header.Get("Cache-Control"); got != want {
				t.Errorf("GET %s (Accept-Encoding %q): Cache-Control %q, want %q", path, enc, got, want)
			}
		}
	}
}

func TestContentHashed(t *testing.T) {
	for name, want := range map[string]bool{
		"app.3fa9c2d1.js":           true,
		"cifarnet.0123abcd.wasm":    true,
		"assets/x.y.deadbeef99.css": true,
		"app.3fa9c2d.js":            false, // 7 digits
		"app.3FA9C2D1.js":           false, // upper case
		"app.3fa9c2g1.js":           false, // not hex
		"3fa9c2d1.js":               false, // hash is the first segment
		"app.js.3fa9c2d1":           false, // hash is the extension
		"index.html":                false,
		"sw.js":                     false,
	} {
		if got := contentHashed(name); got != want {
			t.Errorf("contentHashed(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestGzipPrecompressedSibling(t *testing.T) {
	s := newSite(t)
	res := s.get(t, "/big.js", "Accept-Encoding", "br, gzip")
	if res.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding %q, want gzip", res.Header.Get("Content-Encoding"))
	}
	if got := res.Header.Get("Content-Type"); got != "text/javascript; charset=utf-8" {
		t.Errorf("Content-Type %q, want the original's text/javascript", got)
	}
	if !strings.Contains(res.Header.Get("Vary"), "Accept-Encoding") {
		t.Errorf("Vary %q lacks Accept-Encoding", res.Header.Get("Vary"))
	}
	if !bytes.Equal(res.body, s.files["/big.js.gz"]) {
		t.Errorf("body is not the precompressed sibling's bytes")
	}
	if got := string(gunzip(t, res.body)); !strings.HasSuffix(got, "// precompressed\n") {
		t.Errorf("decompressed body does not end with the sibling's marker")
	}
	res = s.get(t, "/big.js")
	if res.Header.Get("Content-Encoding") != "" || !bytes.Equal(res.body, s.files["/big.js"]) {
		t.Errorf("without Accept-Encoding: Content-Encoding %q and %d bytes, want the original", res.Header.Get("Content-Encoding"), len(res.body))
	}
}

func TestGzipOnTheFly(t *testing.T) {
	s := newSite(t)
	for _, path := range []string{"/", "/app.3fa9c2d1.js", "/worker.mjs", "/app.css", "/data.json", "/logo.svg", "/site.webmanifest", "/cifarnet.0123abcd.wasm"} {
		want := s.files[path]
		if path == "/" {
			want = s.files["/index.html"]
		}
		for _, accept := range []string{"gzip", "gzip, deflate, br", "*", "deflate, gzip;q=0.5"} {
			res := s.get(t, path, "Accept-Encoding", accept)
			if res.Header.Get("Content-Encoding") != "gzip" {
				t.Errorf("GET %s (Accept-Encoding %q): Content-Encoding %q, want gzip", path, accept, res.Header.Get("Content-Encoding"))
				continue
			}
			if !strings.Contains(res.Header.Get("Vary"), "Accept-Encoding") {
				t.Errorf("GET %s: Vary %q lacks Accept-Encoding", path, res.Header.Get("Vary"))
			}
			if res.ContentLength != int64(len(res.body)) {
				t.Errorf("GET %s: Content-Length %d for %d bytes", path, res.ContentLength, len(res.body))
			}
			if len(res.body) >= len(want) {
				t.Errorf("GET %s: %d gzip bytes for %d raw", path, len(res.body), len(want))
			}
			if got := gunzip(t, res.body); !bytes.Equal(got, want) {
				t.Errorf("GET %s: decompressed body differs from the file", path)
			}
		}
	}

	// Not compressed: incompressible types, weight files, tiny files, and
	// clients that refuse gzip.
	for _, c := range []struct{ path, accept string }{
		{"/icon.png", "gzip"},
		{"/models/weights.cnw", "gzip"},
		{"/unknown.bin7", "gzip"},
		{"/small.js", "gzip"},
		{"/app.css", "gzip;q=0"},
		{"/app.css", "br"},
		{"/app.css", "*, gzip;q=0"},
		{"/app.css", "identity"},
	} {
		res := s.get(t, c.path, "Accept-Encoding", c.accept)
		if res.Header.Get("Content-Encoding") != "" || !bytes.Equal(res.body, s.files[c.path]) {
			t.Errorf("GET %s (Accept-Encoding %q): Content-Encoding %q, %d bytes; want the file as is",
				c.path, c.accept, res.Header.Get("Content-Encoding"), len(res.body))
		}
	}
}

func TestHead(t *testing.T) {
	s := newSite(t)
	get := s.get(t, "/cifarnet.0123abcd.wasm", "Accept-Encoding", "gzip")
	head := s.do(t, http.MethodHead, "/cifarnet.0123abcd.wasm", "Accept-Encoding", "gzip")
	if head.StatusCode != http.StatusOK || len(head.body) != 0 {
		t.Fatalf("HEAD: status %d with %d body bytes, want 200 and none", head.StatusCode, len(head.body))
	}
	for _, h := range []string{"Content-Type", "Content-Encoding", "Content-Length", "ETag", "Cache-Control"} {
		if head.Header.Get(h) != get.Header.Get(h) {
			t.Errorf("HEAD %s %q, GET has %q", h, head.Header.Get(h), get.Header.Get(h))
		}
	}
}

func TestRange(t *testing.T) {
	s := newSite(t)
	for _, path := range []string{"/models/weights.cnw", "/cifarnet.0123abcd.wasm"} {
		file := s.files[path]
		res := s.get(t, path, "Range", "bytes=100-1099")
		if res.StatusCode != http.StatusPartialContent {
			t.Fatalf("GET %s bytes=100-1099: status %d, want 206", path, res.StatusCode)
		}
		if want := "bytes 100-1099/" + strconv.Itoa(len(file)); res.Header.Get("Content-Range") != want {
			t.Errorf("GET %s: Content-Range %q, want %q", path, res.Header.Get("Content-Range"), want)
		}
		if !bytes.Equal(res.body, file[100:1100]) {
			t.Errorf("GET %s: range body differs from bytes 100..1099 of the file", path)
		}
		// A range still valid only for the current version.
		etag := res.Header.Get("ETag")
		res = s.get(t, path, "Range", "bytes=0-9", "If-Range", `"stale"`)
		if res.StatusCode != http.StatusOK || !bytes.Equal(res.body, file) {
			t.Errorf("GET %s with a stale If-Range: status %d, want 200 and the whole file", path, res.StatusCode)
		}
		res = s.get(t, path, "Range", "bytes=0-9", "If-Range", etag)
		if res.StatusCode != http.StatusPartialContent || !bytes.Equal(res.body, file[:10]) {
			t.Errorf("GET %s with a current If-Range: status %d, want 206 and 10 bytes", path, res.StatusCode)
		}
	}
	res := s.get(t, "/models/weights.cnw", "Range", "bytes=999999-")
	if res.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		t.Errorf("range past the end: status %d, want 416", res.StatusCode)
	}
}

func TestDirectories(t *testing.T) {
	s := newSite(t)
	res := s.get(t, "/sub")
	if res.StatusCode != http.StatusMovedPermanently || res.Header.Get("Location") != "sub/" {
		t.Errorf("GET /sub: status %d Location %q, want 301 to sub/", res.StatusCode, res.Header.Get("Location"))
	}
	res = s.get(t, "/sub?x=1")
	if res.Header.Get("Location") != "sub/?x=1" {
		t.Errorf("GET /sub?x=1: Location %q, want sub/?x=1", res.Header.Get("Location"))
	}
	res = s.get(t, "/sub/")
	if res.StatusCode != http.StatusOK || string(res.body) != "<p>sub page</p>" {
		t.Errorf("GET /sub/: status %d body %q, want its index.html", res.StatusCode, res.body)
	}
	for _, path := range []string{"/nodir/", "/models/", "/index.html/", "/missing", "/missing/"} {
		if res := s.get(t, path); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", path, res.StatusCode)
		}
	}
	if res := s.rawGet(t, "/my%20notes%20%28v2%29.txt"); res.StatusCode != http.StatusOK || string(res.body) != "escaped name" {
		t.Errorf("GET a percent-encoded name: status %d body %q", res.StatusCode, res.body)
	}
	// A symlink that stays inside dist is followed.
	if res := s.get(t, "/alias.css"); res.StatusCode != http.StatusOK || !bytes.Equal(res.body, s.files["/app.css"]) {
		t.Errorf("GET /alias.css (symlink to app.css): status %d", res.StatusCode)
	}
}

func TestNothingHiddenOrOutsideIsServed(t *testing.T) {
	s := newSite(t)
	for _, target := range []string{
		"/../secret.txt",
		"/../../../../etc/passwd",
		"/sub/../../secret.txt",
		"/%2e%2e/secret.txt",
		"/%2E%2E/secret.txt",
		"/.%2e/secret.txt",
		"/..%2fsecret.txt",
		"/%2e%2e%2fsecret.txt",
		"/sub%2f..%2f..%2fsecret.txt",
		"/..%5csecret.txt",
		"/..\\secret.txt",
		"/sub\\..\\..\\secret.txt",
		"/%252e%252e/secret.txt",
		"/%252e%252e%252fsecret.txt",
		"/index.html%00.png",
		"/leak.txt%00",
		"//secret.txt",
		"/./index.html",
		"/.env",
		"/.git/config",
		"/.git/",
		"/.git",
		"/%2egit/config",
		"/models/.hidden.cnw",
		"/assets/.secret/note.txt",
		"/leak.txt",
		"/leakdir/secret.txt",
		"/leakdir/",
		"/nodir/",
		"/api/../secret.txt",
		"http://test/../secret.txt",
	} {
		res := s.rawGet(t, target)
		if res.StatusCode != http.StatusNotFound && res.StatusCode != http.StatusBadRequest {
			t.Errorf("GET %q: status %d, want 404 or 400", target, res.StatusCode)
		}
		if bytes.Contains(res.body, []byte(secret)) || bytes.Contains(res.body, []byte("no index here")) {
			t.Errorf("GET %q: body leaks %q", target, res.body)
		}
		if strings.Contains(string(res.body), "goroutine") || strings.Contains(string(res.body), s.root) {
			t.Errorf("GET %q: body reveals internals: %q", target, res.body)
		}
	}
}

func TestNotFoundBody(t *testing.T) {
	s := newSite(t)
	res := s.get(t, "/missing.js")
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("status %d, want 404", res.StatusCode)
	}
	if got := res.Header.Get("Content-Type"); !strings.HasPrefix(got, "application/json") {
		t.Errorf("Content-Type %q, want JSON", got)
	}
	if got := strings.TrimSpace(string(res.body)); got != `{"message":"Not Found"}` {
		t.Errorf("body %s", got)
	}
}

func TestAcceptsGzip(t *testing.T) {
	for header, want := range map[string]bool{
		"":                        false,
		"gzip":                    true,
		"GZIP":                    true,
		"x-gzip":                  true,
		"gzip, deflate, br, zstd": true,
		"br;q=1.0, gzip;q=0.8":    true,
		"gzip;q=0":                false,
		"gzip; q=0.000":           false,
		"gzip;q=bad":              false,
		"*":                       true,
		"*;q=0":                   false,
		"*, gzip;q=0":             false,
		"gzip;q=0.1, *;q=0":       true,
		"deflate, br":             false,
		"identity":                false,
		"gzipped":                 false,
	} {
		if got := acceptsGzip(header); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", header, got, want)
		}
	}
}

func TestConcurrentFirstRequests(t *testing.T) {
	s := newSite(t)
	const n = 8
	bodies := make(chan []byte, n)
	for range n {
		go func() {
			res, err := http.DefaultClient.Do(mustRequest(t, s.srv.URL+"/cifarnet.0123abcd.wasm", "gzip"))
			if err != nil {
				bodies <- nil
				return
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			bodies <- b
		}()
	}
	for range n {
		body := <-bodies
		if got := gunzip(t, body); !bytes.Equal(got, s.files["/cifarnet.0123abcd.wasm"]) {
			t.Errorf("a concurrent request got %d bytes, not the module", len(got))
		}
	}
}

func mustRequest(t *testing.T, url, acceptEncoding string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept-Encoding", acceptEncoding)
	return req
}
