package app

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/models/modeltest"
)

// secret is the content of files the server must never send: one beside
// dist and dotfiles inside it.
const secret = "TOP-SECRET-DO-NOT-SERVE"

// site is a built dist directory in a temporary folder, served by the
// real application over real HTTP.
type site struct {
	root  string // holds dist/ and secret.txt beside it
	dist  string
	files map[string][]byte // URL path → content, for files written by the test
	srv   *httptest.Server
}

// newSite writes a dist directory with one file of every served type, a
// precompressed sibling, weight files, hidden files and symlinks, and
// starts the application on it.
func newSite(t *testing.T) *site {
	t.Helper()
	root := t.TempDir()
	s := &site{root: root, dist: filepath.Join(root, "dist"), files: make(map[string][]byte)}

	js := []byte(strings.Repeat("export function classify(x) { return x * 2; }\n", 400))
	// Pseudo-random bytes from a small alphabet: they compress to about
	// half, still far more than the server's write buffer.
	rng := rand.New(rand.NewPCG(1, 2))
	wasm := []byte("\x00asm\x01\x00\x00\x00")
	for range 64 << 10 {
		wasm = append(wasm, byte(rng.IntN(16)))
	}
	for name, content := range map[string][]byte{
		"index.html":                     []byte("<!doctype html><title>cifarnet</title>" + strings.Repeat("<p>classify</p>", 100)),
		"app.3fa9c2d1.js":                js,
		"worker.mjs":                     js,
		"sw.js":                          []byte("self.addEventListener('fetch', () => {});" + strings.Repeat(" ", 1000)),
		"wasm_exec.js":                   js,
		"app.css":                        []byte(strings.Repeat("body { margin: 0; }\n", 100)),
		"data.json":                      []byte(`{"labels":[` + strings.Repeat(`"cat",`, 200) + `"dog"]}`),
		"logo.svg":                       []byte(`<svg xmlns="http://www.w3.org/2000/svg">` + strings.Repeat(`<rect width="1" height="1"/>`, 50) + `</svg>`),
		"site.webmanifest":               []byte(`{"name":"cifarnet","icons":[]` + strings.Repeat(" ", 600) + `}`),
		"icon.png":                       pngBytes(t),
		"cifarnet.0123abcd.wasm":         wasm,
		"small.js":                       []byte("let x = 1;"),
		"my notes (v2).txt":              []byte("escaped name"),
		"unknown.bin7":                   bytes.Repeat([]byte{1, 2, 3}, 300),
		"big.js":                         js,
		"models/manifest.json":           []byte(`{"models":["a.cnw"]}`),
		"models/weights.cnw":             bytes.Repeat([]byte("0123456789"), 2000),
		"sub/index.html":                 []byte("<p>sub page</p>"),
		"sub/page.4b2e7f9a01.html":       []byte("<p>hashed page</p>"),
		"nodir/readme.txt":               []byte("no index here"),
		".env":                           []byte(secret),
		".git/config":                    []byte("[core]\n" + secret),
		"models/.hidden.cnw":             []byte(secret),
		"assets/.secret/note.txt":        []byte(secret),
		"assets/app.0123456789abcdef.js": js,
	} {
		s.write(t, name, content)
	}
	// A precompressed sibling, deliberately not the gzip of big.js, so
	// that a response proves which one was sent.
	s.writeGzip(t, "big.js.gz", append(js, "// precompressed\n"...))
	// Outside dist.
	if err := os.WriteFile(filepath.Join(root, "secret.txt"), []byte(secret), 0o644); err != nil {
		t.Fatal(err)
	}
	// Symlinks: two leave dist, one stays inside.
	for link, target := range map[string]string{
		"leak.txt":  "../secret.txt",
		"leakdir":   "..",
		"alias.css": "app.css",
	} {
		if err := os.Symlink(target, filepath.Join(s.dist, link)); err != nil {
			t.Fatal(err)
		}
	}
	s.files["/alias.css"] = s.files["/app.css"]
	s.start(t, Config{Dist: s.dist})
	return s
}

func (s *site) start(t *testing.T, cfg Config) {
	t.Helper()
	if s.srv != nil {
		s.srv.Close()
	}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	e, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	s.srv = httptest.NewServer(e)
	t.Cleanup(s.srv.Close)
}

func (s *site) write(t *testing.T, name string, content []byte) {
	t.Helper()
	p := filepath.Join(s.dist, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, content, 0o644); err != nil {
		t.Fatal(err)
	}
	s.files["/"+name] = content
}

func (s *site) writeGzip(t *testing.T, name string, content []byte) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(content)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	s.write(t, name, buf.Bytes())
}

func pngBytes(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 32, 32))
	for i := range 32 {
		img.Set(i, i, color.RGBA{R: 255, A: 255})
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// response is a fully read response.
type response struct {
	*http.Response
	body []byte
}

// do sends a request with the given headers. The client neither asks for
// nor undoes compression, so tests see exactly what the server sent.
func (s *site) do(t *testing.T, method, path string, header ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, s.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	client := &http.Client{
		Transport:     &http.Transport{DisableCompression: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return response{res, body}
}

func (s *site) get(t *testing.T, path string, header ...string) response {
	t.Helper()
	return s.do(t, http.MethodGet, path, header...)
}

// rawGet sends target verbatim as the request target, bypassing every
// client-side normalisation, and reads the response.
func (s *site) rawGet(t *testing.T, target string) response {
	t.Helper()
	conn, err := net.Dial("tcp", s.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n", target); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("GET %q: %v", target, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("GET %q: reading body: %v", target, err)
	}
	return response{res, body}
}

func gunzip(t *testing.T, data []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	return out
}

// weightFile writes a random weight file for the tiny test spec with the
// given provenance and modification time, and returns it.
func weightFile(t testing.TB, path string, seed uint64, prov models.Provenance, mtime time.Time) *models.File {
	t.Helper()
	f := modeltest.RandomFile(modeltest.TinySpec(), seed)
	f.Meta.Provenance = prov
	if err := models.WriteFile(path, f); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	return f
}
