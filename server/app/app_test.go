package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/models/modeltest"
)

func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	s := newSite(t)
	want := map[string]string{
		"Content-Security-Policy":      "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; img-src 'self' blob: data:; connect-src 'self'; style-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
		"X-Content-Type-Options":       "nosniff",
		"Referrer-Policy":              "no-referrer",
		"Cross-Origin-Opener-Policy":   "same-origin",
		"Cross-Origin-Embedder-Policy": "require-corp",
		"Cross-Origin-Resource-Policy": "same-origin",
		"Permissions-Policy":           "camera=(self), microphone=(), geolocation=()",
		"X-Cifarnet-Models":            "api/models",
	}
	for _, c := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/", 200},
		{"GET", "/cifarnet.0123abcd.wasm", 200},
		{"HEAD", "/app.css", 200},
		{"GET", "/sub", 301},
		{"GET", "/missing", 404},
		{"GET", "/.env", 404},
		{"GET", "/%252e", 400},
		{"POST", "/", 405},
		{"GET", "/api/models", 200},
		{"GET", "/healthz", 200},
	} {
		res := s.do(t, c.method, c.path)
		if res.StatusCode != c.status {
			t.Errorf("%s %s: status %d, want %d", c.method, c.path, res.StatusCode, c.status)
		}
		for k, v := range want {
			if got := res.Header.Values(k); len(got) != 1 || got[0] != v {
				t.Errorf("%s %s: %s = %q, want %q", c.method, c.path, k, got, v)
			}
		}
	}
	// The gzip path and conditional responses carry them too.
	etag := s.get(t, "/app.css").Header.Get("ETag")
	for _, res := range []response{
		s.get(t, "/app.css", "Accept-Encoding", "gzip"),
		s.get(t, "/app.css", "If-None-Match", etag),
		s.get(t, "/models/weights.cnw", "Range", "bytes=0-1"),
	} {
		if res.Header.Get("Content-Security-Policy") == "" || res.Header.Get("Cross-Origin-Embedder-Policy") != "require-corp" {
			t.Errorf("status %d response lacks the security headers", res.StatusCode)
		}
	}
}

func TestOnlyGetAndHead(t *testing.T) {
	s := newSite(t)
	for _, method := range []string{"POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND"} {
		for _, path := range []string{"/", "/index.html", "/api/models", "/healthz", "/missing"} {
			res := s.do(t, method, path)
			if res.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("%s %s: status %d, want 405", method, path, res.StatusCode)
			}
			if got := res.Header.Get("Allow"); got != "GET, HEAD" {
				t.Errorf("%s %s: Allow %q, want \"GET, HEAD\"", method, path, got)
			}
			if bytes.Contains(res.body, []byte("cifarnet")) {
				t.Errorf("%s %s: 405 body contains the file: %q", method, path, res.body)
			}
		}
	}
}

func TestUploadBodyIsNotRead(t *testing.T) {
	s := newSite(t)
	// A body that would block forever if the server tried to read it all.
	pr, pw := io.Pipe()
	defer pw.Close()
	req, err := http.NewRequest(http.MethodPost, s.srv.URL+"/models/upload.cnw", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = 1 << 40
	go pw.Write(make([]byte, 1024))
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST upload: status %d, want 405", res.StatusCode)
	}
	if _, err := os.Stat(filepath.Join(s.dist, "models", "upload.cnw")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("upload.cnw exists after a POST (stat error %v)", err)
	}
}

func TestHealthz(t *testing.T) {
	s := newSite(t)
	res := s.get(t, "/healthz")
	if res.StatusCode != http.StatusOK || strings.TrimSpace(string(res.body)) != `{"status":"ok"}` {
		t.Errorf("GET /healthz: %d %q", res.StatusCode, res.body)
	}
	if res := s.do(t, http.MethodHead, "/healthz"); res.StatusCode != http.StatusOK {
		t.Errorf("HEAD /healthz: %d", res.StatusCode)
	}
}

func TestNewNeedsIndex(t *testing.T) {
	dir := t.TempDir()
	if _, err := New(Config{Dist: dir}); !errors.Is(err, ErrNoIndex) {
		t.Errorf("New on an empty directory: %v, want ErrNoIndex", err)
	}
	if err := os.Mkdir(filepath.Join(dir, "index.html"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Dist: dir}); !errors.Is(err, ErrNoIndex) {
		t.Errorf("New with index.html a directory: %v, want ErrNoIndex", err)
	}
	if _, err := New(Config{}); err == nil {
		t.Error("New without a dist directory succeeded")
	}
}

// listModels fetches and decodes /api/models.
func listModels(t *testing.T, s *site) []ModelInfo {
	t.Helper()
	res := s.get(t, "/api/models")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/models: status %d: %s", res.StatusCode, res.body)
	}
	if got := res.Header.Get("Content-Type"); !strings.HasPrefix(got, "application/json") {
		t.Errorf("GET /api/models: Content-Type %q", got)
	}
	var list ModelList
	if err := json.Unmarshal(res.body, &list); err != nil {
		t.Fatalf("GET /api/models: %v in %s", err, res.body)
	}
	return list.Models
}

func names(list []ModelInfo) []string {
	var n []string
	for _, m := range list {
		n = append(n, m.File)
	}
	return n
}

func TestModelList(t *testing.T) {
	s := newSite(t)
	dir := filepath.Join(s.dist, "models")
	if err := os.Remove(filepath.Join(dir, "weights.cnw")); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	older := weightFile(t, filepath.Join(dir, "older.cnw"), 1,
		models.Provenance{Recipe: "baseline", TestAccuracy: 0.81, Created: "2025-06-01T10:00:00Z"}, base.Add(3*time.Hour))
	weightFile(t, filepath.Join(dir, "newest.cnw"), 2,
		models.Provenance{Recipe: "cifarnet-long", TestAccuracy: 0.93, Created: "2026-02-01T10:00:00Z"}, base)
	// No created time: ordered by mtime after the dated ones.
	weightFile(t, filepath.Join(dir, "undated.cnw"), 3, models.Provenance{}, base.Add(time.Hour))
	if err := os.WriteFile(filepath.Join(dir, "corrupt.cnw"), []byte("CIFARNET this is not a weight file"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "empty.cnw"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "adir.cnw"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../secret.txt", filepath.Join(dir, "escape.cnw")); err != nil {
		t.Fatal(err)
	}

	list := listModels(t, s)
	want := []string{"newest.cnw", "older.cnw", "undated.cnw", "corrupt.cnw", "empty.cnw", "escape.cnw"}
	if got := names(list); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("listed %v, want %v (hidden, non-weight and directory entries left out)", got, want)
	}
	for i, m := range list {
		if m.Latest != (i == 0) || m.Default != (i == 0) {
			t.Errorf("%s: latest = %v, default = %v; without a DEFAULT file the newest is both", m.File, m.Latest, m.Default)
		}
		if m.URL != "models/"+m.File {
			t.Errorf("%s: url %q", m.File, m.URL)
		}
		if bad := i >= 3; bad != (m.Error != "") {
			t.Errorf("%s: error %q", m.File, m.Error)
		}
		if strings.Contains(m.Error, s.root) {
			t.Errorf("%s: error reveals the server's directory: %q", m.File, m.Error)
		}
	}

	newest := list[0]
	params, err := modeltest.TinySpec().TrainableParams()
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "newest.cnw"))
	if err != nil {
		t.Fatal(err)
	}
	newestBytes, err := os.ReadFile(filepath.Join(dir, "newest.cnw"))
	if err != nil {
		t.Fatal(err)
	}
	// The file's own SHA-256 of everything before its last 32 bytes.
	sum := sha256.Sum256(newestBytes[:len(newestBytes)-sha256.Size])
	wantInfo := ModelInfo{
		File: "newest.cnw", URL: "models/newest.cnw", Size: fi.Size(), SHA256: hex.EncodeToString(sum[:]), Modified: "2026-01-01T00:00:00Z", Latest: true, Default: true,
		Spec: "tiny", DType: models.Float32, Classes: 10, TrainableParams: params,
		Provenance: &ProvenanceSummary{Recipe: "cifarnet-long", TestAccuracy: 0.93, Created: "2026-02-01T10:00:00Z"},
	}
	if g, w := jsonOf(t, newest), jsonOf(t, wantInfo); g != w {
		t.Errorf("newest model\n got %s\nwant %s", g, w)
	}

	// The listed URL serves the file, whose metadata matches.
	res := s.get(t, "/"+newest.URL)
	if res.StatusCode != http.StatusOK || int64(len(res.body)) != newest.Size {
		t.Fatalf("GET %s: status %d, %d bytes", newest.URL, res.StatusCode, len(res.body))
	}
	meta, err := models.DecodeMeta(bytes.NewReader(res.body))
	if err != nil || meta.Provenance.Recipe != "cifarnet-long" {
		t.Errorf("GET %s: decoded metadata %+v, %v", newest.URL, meta, err)
	}

	// Rewriting a file is noticed: older.cnw becomes the newest.
	older.Meta.Provenance.Created = "2026-03-01T00:00:00Z"
	if err := models.WriteFile(filepath.Join(dir, "older.cnw"), older); err != nil {
		t.Fatal(err)
	}
	list = listModels(t, s)
	if list[0].File != "older.cnw" || !list[0].Latest || list[1].Latest {
		t.Errorf("after rewriting older.cnw: %v, latest %v/%v", names(list), list[0].Latest, list[1].Latest)
	}
	// A DEFAULT file chooses the default, but not the latest; one naming
	// a missing or broken model is ignored.
	for _, tc := range []struct{ content, want string }{
		{"newest.cnw\n", "newest.cnw"}, {"corrupt.cnw", "older.cnw"}, {"ghost.cnw", "older.cnw"},
	} {
		if err := os.WriteFile(filepath.Join(dir, DefaultFile), []byte(tc.content), 0o644); err != nil {
			t.Fatal(err)
		}
		var def []string
		for _, m := range listModels(t, s) {
			if m.Default {
				def = append(def, m.File)
			}
		}
		if len(def) != 1 || def[0] != tc.want {
			t.Errorf("DEFAULT %q: default %v, want [%s]", tc.content, def, tc.want)
		}
	}
	os.Remove(filepath.Join(dir, DefaultFile))

	// Deleting one is noticed too.
	if err := os.Remove(filepath.Join(dir, "older.cnw")); err != nil {
		t.Fatal(err)
	}
	if got := names(listModels(t, s)); got[0] != "newest.cnw" || len(got) != 5 {
		t.Errorf("after deleting older.cnw: %v", got)
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestModelListEmpty(t *testing.T) {
	s := newSite(t)
	if err := os.RemoveAll(filepath.Join(s.dist, "models")); err != nil {
		t.Fatal(err)
	}
	res := s.get(t, "/api/models")
	if res.StatusCode != http.StatusOK || strings.TrimSpace(string(res.body)) != `{"models":[]}` {
		t.Errorf("no models directory: %d %s", res.StatusCode, res.body)
	}
	// Only errors: nothing is marked latest.
	if err := os.Mkdir(filepath.Join(s.dist, "models"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.dist, "models", "bad.cnw"), []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	list := listModels(t, s)
	if len(list) != 1 || list[0].Latest || list[0].Error == "" {
		t.Errorf("only a corrupt file: %+v", list)
	}
}

func TestModelsOutsideDist(t *testing.T) {
	s := newSite(t)
	ext := t.TempDir()
	weightFile(t, filepath.Join(ext, "trained.cnw"), 7, models.Provenance{Recipe: "ext"}, time.Now())
	s.start(t, Config{Dist: s.dist, Models: ext})

	list := listModels(t, s)
	if len(list) != 1 || list[0].File != "trained.cnw" || list[0].URL != "models/trained.cnw" || !list[0].Latest {
		t.Fatalf("listing of an outside models directory: %+v", list)
	}
	res := s.get(t, "/models/trained.cnw")
	want, err := os.ReadFile(filepath.Join(ext, "trained.cnw"))
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK || !bytes.Equal(res.body, want) {
		t.Errorf("GET /models/trained.cnw: status %d", res.StatusCode)
	}
	// dist's own models/ files are still served; its weight files are
	// replaced by the outside directory's.
	if res := s.get(t, "/models/manifest.json"); res.StatusCode != http.StatusOK {
		t.Errorf("GET /models/manifest.json: status %d", res.StatusCode)
	}
	if res := s.get(t, "/models/weights.cnw"); res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /models/weights.cnw (only in dist): status %d, want 404", res.StatusCode)
	}

	// A test report beside a weight file is linked from the listing and
	// served from the outside directory too; it follows the file's arrival.
	if list[0].Report != "" {
		t.Errorf("report linked before there is one: %q", list[0].Report)
	}
	if err := os.WriteFile(filepath.Join(ext, "trained.report.json"), []byte(`{"per_class":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	list = listModels(t, s)
	if len(list) != 1 || list[0].Report != "models/trained.report.json" {
		t.Fatalf("listing with a report: %+v", list)
	}
	if res := s.get(t, "/"+list[0].Report); res.StatusCode != http.StatusOK || string(res.body) != `{"per_class":[]}` {
		t.Errorf("GET %s: status %d, %q", list[0].Report, res.StatusCode, res.body)
	}

	// Models in another folder of dist are listed at its URL.
	sub := filepath.Join(s.dist, "zoo")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	weightFile(t, filepath.Join(sub, "z.cnw"), 8, models.Provenance{}, time.Now())
	s.start(t, Config{Dist: s.dist, Models: sub})
	list = listModels(t, s)
	if len(list) != 1 || list[0].URL != "zoo/z.cnw" {
		t.Fatalf("listing of dist/zoo: %+v", list)
	}
	if res := s.get(t, "/"+list[0].URL); res.StatusCode != http.StatusOK {
		t.Errorf("GET %s: status %d", list[0].URL, res.StatusCode)
	}
}

func TestServeShutsDownGracefully(t *testing.T) {
	dist := t.TempDir()
	if err := os.WriteFile(filepath.Join(dist, "index.html"), []byte("<p>hi</p>"), 0o644); err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{Dist: dist})
	if err != nil {
		t.Fatal(err)
	}
	// A request that stays in flight until the test lets it finish.
	started, release := make(chan struct{}), make(chan struct{})
	e.GET("/slow", func(c echo.Context) error {
		close(started)
		<-release
		return c.String(http.StatusOK, "finished")
	})
	shuttingDown := make(chan struct{})
	e.Server.RegisterOnShutdown(func() { close(shuttingDown) })

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, e, ln, time.Minute) }()

	url := "http://" + ln.Addr().String()
	type result struct {
		status int
		body   string
		err    error
	}
	got := make(chan result, 1)
	go func() {
		res, err := http.Get(url + "/slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		got <- result{res.StatusCode, string(b), err}
	}()
	<-started
	cancel()
	<-shuttingDown
	select {
	case err := <-served:
		t.Fatalf("Serve returned %v with a request in flight", err)
	default:
	}
	close(release)
	if r := <-got; r.err != nil || r.status != http.StatusOK || r.body != "finished" {
		t.Errorf("in-flight request: %d %q %v, want 200 \"finished\"", r.status, r.body, r.err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if _, err := http.Get(url + "/"); err == nil {
		t.Error("server still answers after shutdown")
	}
}

func TestPanicsAndRequestsAreLogged(t *testing.T) {
	dist := t.TempDir()
	if err := os.WriteFile(filepath.Join(dist, "index.html"), []byte("<p>hi</p>"), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	e, err := New(Config{Dist: dist, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	e.GET("/boom", func(echo.Context) error { panic("kaboom") })

	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/boom", nil))
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("panicking handler: status %d, want 500", rec.Code)
	}
	if body := rec.Body.String(); strings.Contains(body, "kaboom") || strings.Contains(body, "goroutine") {
		t.Errorf("500 body reveals the panic: %q", body)
	}
	if rec.Header().Get("Content-Security-Policy") == "" {
		t.Error("500 response lacks the security headers")
	}
	e.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/index.html?x=1", nil))

	type line struct {
		Msg, Level, Method, URI, Stack string
		Status                         int
	}
	var got []line
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var v line
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		got = append(got, v)
	}
	if len(got) != 3 {
		t.Fatalf("%d log lines, want a panic and two requests:\n%s", len(got), logs.String())
	}
	if got[0].Msg != "panic" || !strings.Contains(got[0].Stack, "goroutine") {
		t.Errorf("first line %+v, want the panic with its stack", got[0])
	}
	if w := (line{Msg: "request", Level: "ERROR", Method: "GET", URI: "/boom", Status: 500}); got[1] != w {
		t.Errorf("second line %+v, want %+v", got[1], w)
	}
	if w := (line{Msg: "request", Level: "INFO", Method: "GET", URI: "/index.html?x=1", Status: 200}); got[2] != w {
		t.Errorf("third line %+v, want %+v", got[2], w)
	}
}
