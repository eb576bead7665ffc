package app

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cifarnet-go/cifarnet/models"
)

// fileType is how a file is sent.
type fileType struct {
	mime string
	// compressible types are gzipped on the fly when the client accepts
	// it. WebAssembly compresses to about a third; images and weight
	// files hardly compress, and weight files stay byte-rangeable.
	compressible bool
}

// gzipsHere reports whether a file of this type and size with no .gz
// sibling is gzipped by the server for clients that accept it.
func (t fileType) gzipsHere(size int64) bool {
	return t.compressible && size >= minGzipSize && size <= maxGzipSource
}

// varies reports whether responses for a file of this type depend on
// Accept-Encoding: it is gzipped here or has a precompressed sibling.
func (t fileType) varies(hasSibling bool) bool { return t.compressible || hasSibling }

// fileTypes maps a file name extension to its type. The table is fixed
// rather than taken from the host's mime.types, so responses do not
// depend on the machine. Anything else is application/octet-stream, and
// X-Content-Type-Options: nosniff stops browsers from guessing.
var fileTypes = map[string]fileType{
	".html":        {"text/html; charset=utf-8", true},
	".js":          {"text/javascript; charset=utf-8", true},
	".mjs":         {"text/javascript; charset=utf-8", true},
	".css":         {"text/css; charset=utf-8", true},
	".json":        {"application/json", true},
	".map":         {"application/json", true},
	".webmanifest": {"application/manifest+json", true},
	".txt":         {"text/plain; charset=utf-8", true},
	".md":          {"text/markdown; charset=utf-8", true},
	".svg":         {"image/svg+xml", true},
	".ico":         {"image/x-icon", true},
	".wasm":        {"application/wasm", true},
	".png":         {"image/png", false},
	".jpg":         {"image/jpeg", false},
	".jpeg":        {"image/jpeg", false},
	".webp":        {"image/webp", false},
	".woff2":       {"font/woff2", false},
	".gz":          {"application/gzip", false},
	models.FileExt: {"application/octet-stream", false},
}

var defaultFileType = fileType{"application/octet-stream", false}

func typeOf(name string) fileType {
	if t, ok := fileTypes[strings.ToLower(path.Ext(name))]; ok {
		return t
	}
	return defaultFileType
}

// Cache-Control values. Content-hashed names never change content, so
// browsers may keep them for a year without asking; everything else
// (index.html, sw.js, manifests, weight files) is revalidated on each use,
// which costs a 304 thanks to the ETag.
const (
	cacheImmutable   = "public, max-age=31536000, immutable"
	cacheRevalidate  = "no-cache"
	minHashHexDigits = 8
)

// contentHashed reports whether a file name carries a content hash: a
// dot-separated segment, neither the first nor the extension, of at least
// eight lowercase hex digits, as in app.3fa9c2d1.js or
// cifarnet.0123abcd.wasm. Build tools must change that segment whenever
// the content changes.
func contentHashed(name string) bool {
	segs := strings.Split(path.Base(name), ".")
	if len(segs) < 3 {
		return false
	}
	for _, s := range segs[1 : len(segs)-1] {
		if len(s) >= minHashHexDigits && strings.Trim(s, "0123456789abcdef") == "" {
			return true
		}
	}
	return false
}

func cacheControl(name string) string {
	if contentHashed(name) {
		return cacheImmutable
	}
	return cacheRevalidate
}

// minGzipSize is the smallest file worth compressing on the fly.
const minGzipSize = 512

// staticFiles serves the files of the dist directory.
type staticFiles struct {
	dist string
	// extModels, when set, is a models directory outside dist whose
	// weight files (and their reports) are served at /models/<name>.cnw.
	extModels string
	cache     *fileCache
}

func (s *staticFiles) handle(c echo.Context) error {
	req := c.Request()
	name, trailingSlash, err := fileName(req)
	if err != nil {
		return err
	}
	dir := s.dist
	if s.extModels != "" && path.Dir(name) == "models" && (path.Ext(name) == models.FileExt || strings.HasSuffix(name, ReportSuffix)) {
		dir, name = s.extModels, path.Base(name)
	}
	memKey := dir + "\x00" + name
	if trailingSlash {
		memKey += "/"
	}
	if m := s.cache.memFile(memKey, time.Now()); m != nil {
		return s.send(c, m.name, m.typ, m.vary, m.modTime, m.representation(req))
	}

	// Opened per request (outside the memory cache's window), because
	// ./build.sh replaces dist/ wholesale.
	root, err := os.OpenRoot(dir)
	if err != nil {
		return echo.ErrNotFound.WithInternal(err)
	}
	defer root.Close()

	f, fi, err := openServable(root, name)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		f.Close()
		if !trailingSlash {
			// Relative, so that it cannot point at another host.
			target := &url.URL{Path: path.Base(name) + "/", RawQuery: req.URL.RawQuery}
			return c.Redirect(http.StatusMovedPermanently, target.String())
		}
		name = path.Join(name, "index.html")
		if f, fi, err = openServable(root, name); err != nil {
			return err
		}
		if fi.IsDir() {
			f.Close()
			return echo.ErrNotFound
		}
	} else if trailingSlash {
		f.Close()
		return echo.ErrNotFound
	}
	defer f.Close()

	typ := typeOf(name)
	key := filepath.Join(dir, filepath.FromSlash(name))
	sibling, siblingInfo := openSibling(root, name+".gz")
	if sibling != nil {
		defer sibling.Close()
	}
	vary := typ.varies(sibling != nil)
	if fi.Size() <= maxMemFile && (sibling == nil || siblingInfo.Size() <= maxMemFile) {
		m, err := s.cache.loadMemFile(memKey, key, name, typ, f, fi, sibling, siblingInfo)
		if err != nil {
			return err
		}
		return s.send(c, m.name, m.typ, m.vary, m.modTime, m.representation(req))
	}
	rep, err := s.representation(req, key, typ, f, fi, sibling, siblingInfo)
	if err != nil {
		return err
	}
	return s.send(c, name, typ, vary, fi.ModTime(), rep)
}

// send writes the response for representation rep of file name.
func (s *staticFiles) send(c echo.Context, name string, typ fileType, vary bool, modTime time.Time, rep representation) error {
	req := c.Request()
	// Headers are set only now, so that an error response never carries
	// a file's caching headers.
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, typ.mime)
	h.Set(echo.HeaderCacheControl, cacheControl(name))
	if vary {
		h.Add(echo.HeaderVary, echo.HeaderAcceptEncoding)
	}
	h.Set("ETag", rep.etag)
	if !rep.gzip {
		http.ServeContent(c.Response(), req, name, modTime, rep.content)
		return nil
	}
	h.Set(echo.HeaderContentEncoding, "gzip")
	// ServeContent leaves out the Content-Length of whole responses once
	// Content-Encoding is set; browsers need it to show progress.
	w := &wholeLength{ResponseWriter: c.Response(), size: rep.size}
	http.ServeContent(w, req, name, modTime, rep.content)
	return nil
}

// representation is the bytes sent for a file: the file itself, its
// precompressed sibling or a cached gzip copy.
type representation struct {
	content io.ReadSeeker // positioned at the start
	size    int64
	etag    string
	gzip    bool
}

// representation picks what to send for file f (stat fi, cache key key):
// when the client accepts gzip, a precompressed sibling if there is one,
// else a gzip copy of compressible files of a worthwhile size; otherwise
// the file as is.
func (s *staticFiles) representation(req *http.Request, key string, typ fileType, f *os.File, fi fs.FileInfo, sibling *os.File, siblingInfo fs.FileInfo) (representation, error) {
	if acceptsGzip(req.Header.Get(echo.HeaderAcceptEncoding)) {
		switch {
		case sibling != nil:
			etag, err := s.cache.etag(key+".gz", sibling, siblingInfo)
			if err != nil {
				return representation{}, err
			}
			if _, err := sibling.Seek(0, io.SeekStart); err != nil {
				return representation{}, fmt.Errorf("rewind %s.gz: %w", key, err)
			}
			return representation{content: sibling, size: siblingInfo.Size(), etag: etag, gzip: true}, nil
		case typ.gzipsHere(fi.Size()):
			gz, err := s.cache.gzip(key, f, fi)
			if err != nil {
				return representation{}, err
			}
			return representation{content: bytes.NewReader(gz.data), size: int64(len(gz.data)), etag: gz.etag, gzip: true}, nil
		}
	}
	etag, err := s.cache.etag(key, f, fi)
	if err != nil {
		return representation{}, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return representation{}, fmt.Errorf("rewind %s: %w", key, err)
	}
	return representation{content: f, size: fi.Size(), etag: etag}, nil
}

// wholeLength sets Content-Length on 200 responses, which carry the whole
// representation.
type wholeLength struct {
	http.ResponseWriter
	size int64
}

func (w *wholeLength) WriteHeader(code int) {
	if code == http.StatusOK {
		w.Header().Set(echo.HeaderContentLength, strconv.FormatInt(w.size, 10))
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *wholeLength) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// openServable opens name below root, following only symlinks that stay
// inside it. Anything missing, unreadable or neither a regular file nor a
// directory is not found.
func openServable(root *os.Root, name string) (*os.File, fs.FileInfo, error) {
	f, err := root.Open(name)
	if err != nil {
		return nil, nil, echo.ErrNotFound.WithInternal(err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("stat %s: %w", name, err)
	}
	if !fi.Mode().IsRegular() && !fi.IsDir() {
		f.Close()
		return nil, nil, echo.ErrNotFound
	}
	return f, fi, nil
}

// openSibling opens a precompressed sibling such as app.js.gz, or returns
// nil if there is no such regular file.
func openSibling(root *os.Root, name string) (*os.File, fs.FileInfo) {
	f, fi, err := openServable(root, name)
	if err != nil {
		return nil, nil
	}
	if fi.IsDir() {
		f.Close()
		return nil, nil
	}
	return f, fi
}

// acceptsGzip reports whether an Accept-Encoding header value accepts
// gzip: listed (or matched by "*") with a non-zero quality.
func acceptsGzip(header string) bool {
	gzipQ, starQ := -1.0, -1.0
	for item := range strings.SplitSeq(header, ",") {
		coding, params, _ := strings.Cut(item, ";")
		q := 1.0
		for p := range strings.SplitSeq(params, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				parsed, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil {
					parsed = 0
				}
				q = parsed
			}
		}
		switch strings.ToLower(strings.TrimSpace(coding)) {
		case "gzip", "x-gzip":
			gzipQ = q
		case "*":
			starQ = q
		}
	}
	if gzipQ >= 0 {
		return gzipQ > 0
	}
	return starQ > 0
}
