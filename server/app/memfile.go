package app

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"time"

	"github.com/labstack/echo/v4"
)

// Small files (the page, its scripts, icons, samples, weight files up to
// maxMemFile) are answered from memory for memFileFresh after they were
// last read, as nginx's open_file_cache does: most requests then cost no
// system call beyond the socket's, where opening the directory, the file
// and its .gz sibling costs about ten. A file changed on disk (./build.sh
// replacing dist/) is served within memFileFresh.
const (
	maxMemFile    = 2 << 20
	maxMemBytes   = 64 << 20
	maxMemEntries = 4096
	memFileFresh  = time.Second
)

// memFile is a small file held in memory with its ETag and, where it has
// one, its gzip representation (the precompressed sibling, or a copy
// compressed here).
type memFile struct {
	name    string // the file served: index.html for a directory
	typ     fileType
	vary    bool
	modTime time.Time
	data    []byte
	etag    string
	gz      []byte
	gzETag  string
	read    time.Time // when it was read from disk
}

func (m *memFile) bytes() int { return len(m.data) + len(m.gz) }

// representation picks what to send to req: the gzip copy when the client
// accepts it, else the bytes as they are.
func (m *memFile) representation(req *http.Request) representation {
	if m.gz != nil && acceptsGzip(req.Header.Get(echo.HeaderAcceptEncoding)) {
		return representation{content: bytes.NewReader(m.gz), size: int64(len(m.gz)), etag: m.gzETag, gzip: true}
	}
	return representation{content: bytes.NewReader(m.data), size: int64(len(m.data)), etag: m.etag}
}

// memFile returns the entry for a request key if it was read from disk
// less than memFileFresh before now.
func (c *fileCache) memFile(key string, now time.Time) *memFile {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m, ok := c.mem[key]; ok && now.Sub(m.read) < memFileFresh {
		return m
	}
	return nil
}

// loadMemFile reads the open file f (stat fi, cache key fileKey, served
// as name) and its open gzip sibling, if any, into memory and remembers
// them under the request key reqKey.
func (c *fileCache) loadMemFile(reqKey, fileKey, name string, typ fileType, f *os.File, fi fs.FileInfo, sibling *os.File, siblingInfo fs.FileInfo) (*memFile, error) {
	read := time.Now()
	data, err := readExactly(f, fi.Size())
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", fileKey, err)
	}
	etag, err := c.etag(fileKey, bytes.NewReader(data), fi)
	if err != nil {
		return nil, err
	}
	m := &memFile{name: name, typ: typ, vary: typ.varies(sibling != nil), modTime: fi.ModTime(), data: data, etag: etag, read: read}
	switch {
	case sibling != nil:
		if m.gz, err = readExactly(sibling, siblingInfo.Size()); err != nil {
			return nil, fmt.Errorf("read %s.gz: %w", fileKey, err)
		}
		if m.gzETag, err = c.etag(fileKey+".gz", bytes.NewReader(m.gz), siblingInfo); err != nil {
			return nil, err
		}
	case typ.gzipsHere(fi.Size()):
		g, err := c.gzip(fileKey, bytes.NewReader(data), fi)
		if err != nil {
			return nil, err
		}
		m.gz, m.gzETag = g.data, g.etag
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.mem[reqKey]; ok {
		c.memBytes -= old.bytes()
		delete(c.mem, reqKey)
	}
	for k, old := range c.mem {
		if c.memBytes+m.bytes() <= maxMemBytes && len(c.mem) < maxMemEntries {
			break
		}
		c.memBytes -= old.bytes()
		delete(c.mem, k)
	}
	if c.memBytes+m.bytes() <= maxMemBytes {
		c.mem[reqKey] = m
		c.memBytes += m.bytes()
	}
	return m, nil
}

// readExactly reads size bytes from the start of f; a file that changed
// size since its stat is an error rather than a short or long response.
func readExactly(f *os.File, size int64) ([]byte, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, err
	}
	if n, _ := f.Read(make([]byte, 1)); n != 0 {
		return nil, fmt.Errorf("file grew while being read")
	}
	return data, nil
}
