package app

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"sync"
)

// Bounds of the file cache. A served tree is small (a page, a few scripts,
// one WebAssembly module), so the bounds only guard against surprises;
// eviction is arbitrary rather than LRU for the same reason.
const (
	maxETagEntries = 4096
	// maxGzipSource is the largest file compressed on the fly; larger
	// ones are sent as they are unless a precompressed sibling exists.
	maxGzipSource = 32 << 20
	maxGzipCached = 128 << 20
)

// version identifies one version of a file by its stat: a file rewritten
// with the same size and modification time is taken to be unchanged.
type version struct {
	size    int64
	modTime int64 // Unix nanoseconds
}

func versionOf(fi fs.FileInfo) version {
	return version{size: fi.Size(), modTime: fi.ModTime().UnixNano()}
}

type etagEntry struct {
	v    version
	etag string
}

// gzipped is a file's gzip representation with its own strong ETag.
type gzipped struct {
	v    version
	data []byte
	etag string
}

// fileCache remembers per file version the strong ETag of its bytes and a
// gzip-compressed copy of compressible files, so that each is computed
// once rather than per request. Keys are absolute file paths.
type fileCache struct {
	// compressing is held while compressing, so that concurrent first
	// requests for a file compress it once; cache hits do not wait.
	compressing sync.Mutex

	mu        sync.Mutex
	etags     map[string]etagEntry
	gz        map[string]*gzipped
	gzipBytes int
	mem       map[string]*memFile // request key → small file (memfile.go)
	memBytes  int
}

func newFileCache() *fileCache {
	return &fileCache{etags: make(map[string]etagEntry), gz: make(map[string]*gzipped), mem: make(map[string]*memFile)}
}

// contentETag is a strong entity tag naming exactly these bytes: the first
// 128 bits of their SHA-256.
func contentETag(sum []byte) string {
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}

// etag returns the ETag of the file at key, which r reads from its start;
// fi is r's stat. r is left at an unspecified offset.
func (c *fileCache) etag(key string, r io.Reader, fi fs.FileInfo) (string, error) {
	v := versionOf(fi)
	c.mu.Lock()
	e, ok := c.etags[key]
	c.mu.Unlock()
	if ok && e.v == v {
		return e.etag, nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.LimitReader(r, v.size)); err != nil {
		return "", fmt.Errorf("hash %s: %w", key, err)
	}
	etag := contentETag(h.Sum(nil))
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.etags[key]; !ok && len(c.etags) >= maxETagEntries {
		for k := range c.etags {
			delete(c.etags, k)
			break
		}
	}
	c.etags[key] = etagEntry{v: v, etag: etag}
	return etag, nil
}

// gzip returns the gzip representation of the file at key, which r reads
// from its start; fi is r's stat and must be at most maxGzipSource bytes.
func (c *fileCache) gzip(key string, r io.Reader, fi fs.FileInfo) (*gzipped, error) {
	v := versionOf(fi)
	if v.size > maxGzipSource {
		return nil, fmt.Errorf("gzip %s: %d bytes is over the %d byte limit", key, v.size, maxGzipSource)
	}
	if g := c.cachedGzip(key, v); g != nil {
		return g, nil
	}
	c.compressing.Lock()
	defer c.compressing.Unlock()
	if g := c.cachedGzip(key, v); g != nil {
		return g, nil // compressed by a request we waited for
	}

	var buf bytes.Buffer
	// The default level: on a 5 MB Go WebAssembly module, best
	// compression takes three times as long for 0.5% fewer bytes, and
	// the first visitor waits for it. Precompressed siblings are the
	// place for maximum compression.
	zw, err := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	if err != nil {
		return nil, fmt.Errorf("gzip %s: %w", key, err)
	}
	if _, err := io.Copy(zw, io.LimitReader(r, v.size)); err != nil {
		return nil, fmt.Errorf("gzip %s: %w", key, err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("gzip %s: %w", key, err)
	}
	sum := sha256.Sum256(buf.Bytes())
	g := &gzipped{v: v, data: buf.Bytes(), etag: contentETag(sum[:])}

	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.gz[key]; ok {
		c.gzipBytes -= len(old.data)
		delete(c.gz, key)
	}
	for k, old := range c.gz {
		if c.gzipBytes+len(g.data) <= maxGzipCached {
			break
		}
		c.gzipBytes -= len(old.data)
		delete(c.gz, k)
	}
	if c.gzipBytes+len(g.data) <= maxGzipCached {
		c.gz[key] = g
		c.gzipBytes += len(g.data)
	}
	return g, nil
}

func (c *fileCache) cachedGzip(key string, v version) *gzipped {
	c.mu.Lock()
	defer c.mu.Unlock()
	if g, ok := c.gz[key]; ok && g.v == v {
		return g
	}
	return nil
}
