package download

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cifarnet-go/cifarnet/trainer/internal/cifar"
)

type entry struct {
	name     string
	body     []byte
	typeflag byte
	link     string
}

func makeArchive(t *testing.T, entries []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typeflag, Linkname: e.link, Mode: 0o644, ModTime: time.Unix(1e9, 0)}
		if e.typeflag == 0 {
			hdr.Typeflag = tar.TypeReg
		}
		if hdr.Typeflag == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// tinyBatch is a valid batch file of two records labelled label and
// label+1, whose first pixel is fill; the rest is noise, so that the
// archive does not compress to almost nothing.
func tinyBatch(label, fill byte) []byte {
	b := make([]byte, 2*cifar.RecordSize)
	x := uint32(fill) + 1
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	b[0], b[cifar.RecordSize] = label, label+1
	b[1], b[cifar.RecordSize+1] = fill, fill
	return b
}

// cifarEntries lays out a miniature of the official archive.
func cifarEntries() []entry {
	es := []entry{{name: cifar.DirName + "/", typeflag: tar.TypeDir}}
	for i, name := range cifar.TrainFiles {
		es = append(es, entry{name: cifar.DirName + "/" + name, body: tinyBatch(byte(i), byte(10+i))})
	}
	es = append(es,
		entry{name: cifar.DirName + "/" + cifar.TestFile, body: tinyBatch(8, 99)},
		entry{name: cifar.DirName + "/" + cifar.MetaFile, body: []byte("airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n")},
		entry{name: cifar.DirName + "/readme.html", body: []byte("<p>tiny</p>")})
	return es
}

var tinyFiles = func() []File {
	var fs []File
	for _, f := range OfficialFiles {
		fs = append(fs, File{f.Name, 2 * cifar.RecordSize})
	}
	return fs
}()

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

// server serves one archive and records the requests it gets.
type server struct {
	*httptest.Server
	data        []byte
	ignoreRange bool // answer 200 with the whole file to range requests
	cutAt       int  // if > 0, send only this many bytes, then drop the connection

	mu       sync.Mutex
	requests int
	ranges   []string
}

func newServer(t *testing.T, data []byte) *server {
	s := &server{data: data}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	if rg := r.Header.Get("Range"); rg != "" {
		s.ranges = append(s.ranges, rg)
	}
	ignore, cut := s.ignoreRange, s.cutAt
	s.mu.Unlock()
	switch {
	case cut > 0:
		w.Header().Set("Content-Length", strconv.Itoa(len(s.data)))
		w.Write(s.data[:cut])
		// Returning short of Content-Length makes the server close the
		// connection: the client sees a truncated body.
	case ignore:
		w.Header().Set("Content-Length", strconv.Itoa(len(s.data)))
		w.Write(s.data)
	default:
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(s.data))
	}
}

func (s *server) stats() (int, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests, slices.Clone(s.ranges)
}

func opts(s *server, dir string, archive []byte) Options {
	return Options{URL: s.URL + "/cifar-10-binary.tar.gz", MD5: md5hex(archive), DataDir: dir, Files: tinyFiles}
}

// checkInstalled asserts that dir holds the miniature data set, readable
// by the cifar package, and nothing left over from the download.
func checkInstalled(t *testing.T, dir string) {
	t.Helper()
	train, test, err := cifar.Load(dir)
	if err != nil {
		t.Fatalf("installed data does not load: %v", err)
	}
	if train.Len() != 10 || test.Len() != 2 || train.Labels[2] != 1 || test.Image(1)[0] != 99 {
		t.Fatalf("installed data: %d train, %d test images, labels %v", train.Len(), test.Len(), train.Labels)
	}
	assertNoLeftovers(t, dir)
}

func assertNoLeftovers(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.Name() != cifar.DirName {
			t.Errorf("left in %s: %s", dir, e.Name())
		}
	}
}

func TestFetch(t *testing.T) {
	archive := makeArchive(t, cifarEntries())
	srv := newServer(t, archive)
	dir := filepath.Join(t.TempDir(), "data")
	var log bytes.Buffer
	o := opts(srv, dir, archive)
	o.Log = &log
	res, err := Fetch(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Present || res.Resumed || res.Downloaded != int64(len(archive)) || res.Dir != filepath.Join(dir, cifar.DirName) {
		t.Errorf("result %+v", res)
	}
	checkInstalled(t, dir)
	if !strings.Contains(log.String(), "downloaded") || !strings.Contains(log.String(), "(100%)") {
		t.Errorf("log lacks progress lines:\n%s", log.String())
	}

	// A second run finds the files and asks nothing of the server.
	res, err = Fetch(context.Background(), o)
	if err != nil || !res.Present {
		t.Fatalf("second run: %+v, %v; want Present", res, err)
	}
	if n, _ := srv.stats(); n != 1 {
		t.Errorf("server saw %d requests after two runs, want 1", n)
	}

	// --force replaces the files, even a damaged install.
	if err := os.WriteFile(filepath.Join(dir, cifar.DirName, cifar.TestFile), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	o.Force = true
	if _, err := Fetch(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	checkInstalled(t, dir)
	if n, _ := srv.stats(); n != 2 {
		t.Errorf("server saw %d requests, want 2 after --force", n)
	}
}

func TestFetchReplacesWrongSizes(t *testing.T) {
	archive := makeArchive(t, cifarEntries())
	srv := newServer(t, archive)
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, cifar.DirName), 0o755)
	os.WriteFile(filepath.Join(dir, cifar.DirName, "data_batch_1.bin"), []byte("short"), 0o644)
	res, err := Fetch(context.Background(), opts(srv, dir, archive))
	if err != nil || res.Present {
		t.Fatalf("%+v, %v; want a download", res, err)
	}
	checkInstalled(t, dir)
}

func TestFetchResume(t *testing.T) {
	archive := makeArchive(t, cifarEntries())
	srv := newServer(t, archive)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ArchiveName+".part"), archive[:1000], 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Fetch(context.Background(), opts(srv, dir, archive))
	if err != nil {
		t.Fatal(err)
	}
	if _, ranges := srv.stats(); !slices.Equal(ranges, []string{"bytes=1000-"}) {
		t.Errorf("range requests %q, want [bytes=1000-]", ranges)
	}
	if !res.Resumed || res.Downloaded != int64(len(archive)-1000) {
		t.Errorf("result %+v, want resumed with %d bytes", res, len(archive)-1000)
	}
	checkInstalled(t, dir)
}

func TestFetchCompletePart(t *testing.T) {
	// A run stopped after the transfer, before unpacking: the server
	// answers 416 to a range past the end, and the part is used as is.
	archive := makeArchive(t, cifarEntries())
	srv := newServer(t, archive)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, ArchiveName+".part"), archive, 0o644)
	res, err := Fetch(context.Background(), opts(srv, dir, archive))
	if err != nil {
		t.Fatal(err)
	}
	if res.Downloaded != 0 {
		t.Errorf("downloaded %d bytes again", res.Downloaded)
	}
	checkInstalled(t, dir)
}

func TestFetchServerIgnoresRange(t *testing.T) {
	archive := makeArchive(t, cifarEntries())
	srv := newServer(t, archive)
	srv.ignoreRange = true
	dir := t.TempDir()
	// Junk in the part file proves the download started over cleanly.
	os.WriteFile(filepath.Join(dir, ArchiveName+".part"), bytes.Repeat([]byte{0xAA}, 5000), 0o644)
	res, err := Fetch(context.Background(), opts(srv, dir, archive))
	if err != nil {
		t.Fatal(err)
	}
	if _, ranges := srv.stats(); len(ranges) != 1 {
		t.Errorf("range requests %q, want one", ranges)
	}
	if res.Resumed || res.Downloaded != int64(len(archive)) {
		t.Errorf("result %+v, want a full download", res)
	}
	checkInstalled(t, dir)
}

func TestFetchTruncatedThenResumed(t *testing.T) {
	archive := makeArchive(t, cifarEntries())
	srv := newServer(t, archive)
	srv.cutAt = len(archive) / 2
	dir := t.TempDir()
	o := opts(srv, dir, archive)
	_, err := Fetch(context.Background(), o)
	if err == nil {
		t.Fatal("truncated body: no error")
	}
	if !strings.Contains(err.Error(), "kept") {
		t.Errorf("error %q does not mention the kept partial file", err)
	}
	part := filepath.Join(dir, ArchiveName+".part")
	if st, err := os.Stat(part); err != nil || st.Size() != int64(len(archive)/2) {
		t.Fatalf("part file after truncation: %v, %v; want %d bytes", st, err, len(archive)/2)
	}
	if _, err := os.Stat(filepath.Join(dir, cifar.DirName)); err == nil {
		t.Error("data folder exists after a failed download")
	}

	srv.mu.Lock()
	srv.cutAt = 0
	srv.mu.Unlock()
	res, err := Fetch(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Resumed {
		t.Error("second run did not resume")
	}
	checkInstalled(t, dir)
}

func TestFetchWrongChecksum(t *testing.T) {
	archive := makeArchive(t, cifarEntries())
	srv := newServer(t, archive)
	dir := t.TempDir()
	o := opts(srv, dir, archive)
	o.MD5 = strings.Repeat("0", 32)
	_, err := Fetch(context.Background(), o)
	var ce *ChecksumError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v, want a ChecksumError", err)
	}
	if !strings.Contains(err.Error(), o.MD5) || !strings.Contains(err.Error(), md5hex(archive)) {
		t.Errorf("error %q names neither expected nor actual md5", err)
	}
	if _, err := os.Stat(filepath.Join(dir, ArchiveName+".part")); err == nil {
		t.Error("bad download kept")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("%d entries left in the data folder", len(ents))
	}
}

func TestFetchCorruptArchive(t *testing.T) {
	archive := makeArchive(t, cifarEntries())
	for name, tc := range map[string]struct {
		data []byte
		want string
	}{
		"not gzip":     {[]byte(strings.Repeat("this is not a gzip file\n", 100)), "not a gzip file"},
		"bad gzip crc": {append(slices.Clone(archive[:len(archive)-8]), 1, 2, 3, 4, 5, 6, 7, 8), "invalid checksum"},
		"missing file": {makeArchive(t, cifarEntries()[:3]), "data_batch_3.bin is missing"},
	} {
		t.Run(name, func(t *testing.T) {
			srv := newServer(t, tc.data)
			dir := t.TempDir()
			_, err := Fetch(context.Background(), opts(srv, dir, tc.data)) // its own md5: it passes verification
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Errorf("left in the data folder: %v", ents)
			}
		})
	}
}

func TestFetchHTTPError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	dir := t.TempDir()
	_, err := Fetch(context.Background(), Options{URL: srv.URL, DataDir: dir, Files: tinyFiles})
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("error %v, want one naming the 404", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left in the data folder: %v", ents)
	}
}

// cancelOnWrite cancels a context when the first progress line appears,
// i.e. once part of the body is in the file.
type cancelOnWrite struct{ cancel context.CancelFunc }

func (c cancelOnWrite) Write(p []byte) (int, error) {
	if bytes.HasPrefix(p, []byte("downloaded")) {
		c.cancel()
	}
	return len(p), nil
}

func TestFetchCancelKeepsPart(t *testing.T) {
	archive := makeArchive(t, cifarEntries())
	half := len(archive) / 2
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(archive)))
		w.Write(archive[:half])
		w.(http.Flusher).Flush()
		<-r.Context().Done() // hang until the client gives up
	}))
	defer srv.Close()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := Options{URL: srv.URL, MD5: md5hex(archive), DataDir: dir, Files: tinyFiles, Log: cancelOnWrite{cancel}}
	_, err := Fetch(ctx, o)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	st, err := os.Stat(filepath.Join(dir, ArchiveName+".part"))
	if err != nil || st.Size() == 0 {
		t.Fatalf("part file after cancel: %v, %v", st, err)
	}
}

func TestFetchBadMD5Option(t *testing.T) {
	if _, err := Fetch(context.Background(), Options{MD5: "xyz", DataDir: t.TempDir()}); err == nil {
		t.Error("md5 \"xyz\" accepted")
	}
}

func TestUntarRefusesUnsafeEntries(t *testing.T) {
	for name, tc := range map[string]struct {
		e    entry
		want string
	}{
		"dotdot":      {entry{name: "../evil.txt", body: []byte("x")}, "unsafe path"},
		"inner":       {entry{name: cifar.DirName + "/../../evil.txt", body: []byte("x")}, "unsafe path"},
		"staying in":  {entry{name: cifar.DirName + "/../x.txt", body: []byte("x")}, "unsafe path"},
		"absolute":    {entry{name: "/tmp/evil.txt", body: []byte("x")}, "unsafe path"},
		"dotdot-dir":  {entry{name: "a/../../b/", typeflag: tar.TypeDir}, "unsafe path"},
		"empty name":  {entry{name: "", body: []byte("x")}, "unsafe path"},
		"parent only": {entry{name: "..", typeflag: tar.TypeDir}, "unsafe path"},
		"symlink":     {entry{name: cifar.DirName + "/link", typeflag: tar.TypeSymlink, link: "/etc/passwd"}, "not allowed"},
		"hardlink":    {entry{name: cifar.DirName + "/hard", typeflag: tar.TypeLink, link: cifar.DirName + "/" + cifar.TestFile}, "not allowed"},
		"device":      {entry{name: cifar.DirName + "/dev", typeflag: tar.TypeChar}, "not allowed"},
		"oversized":   {entry{name: cifar.DirName + "/big.bin", body: make([]byte, 10000)}, "more than the 8192 allowed"},
		"duplicate":   {entry{name: cifar.DirName + "/" + cifar.TestFile, body: []byte("again")}, "exists"},
	} {
		t.Run(name, func(t *testing.T) {
			base := t.TempDir()
			dir := filepath.Join(base, "out")
			os.Mkdir(dir, 0o755)
			archive := filepath.Join(base, "a.tar.gz")
			os.WriteFile(archive, makeArchive(t, append(cifarEntries(), tc.e)), 0o644)
			err := untar(archive, dir, 8192, 1<<20)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
			if _, err := os.Lstat(filepath.Join(base, "evil.txt")); err == nil {
				t.Error("wrote outside the target folder")
			}
		})
	}
}

func TestUntarTotalLimit(t *testing.T) {
	base := t.TempDir()
	archive := filepath.Join(base, "a.tar.gz")
	os.WriteFile(archive, makeArchive(t, cifarEntries()), 0o644)
	if err := untar(archive, base, 8192, 20000); err == nil || !strings.Contains(err.Error(), "more than 20000 bytes") {
		t.Fatalf("error %v, want the total limit", err)
	}
	if err := untar(archive, t.TempDir(), 8192, 1<<20); err != nil {
		t.Fatalf("within limits: %v", err)
	}
}

func TestFetchRefusesTraversal(t *testing.T) {
	archive := makeArchive(t, append(cifarEntries(), entry{name: "../../escaped.txt", body: []byte("x")}))
	srv := newServer(t, archive)
	base := t.TempDir()
	dir := filepath.Join(base, "a", "data")
	_, err := Fetch(context.Background(), opts(srv, dir, archive))
	if err == nil || !strings.Contains(err.Error(), "unsafe path") {
		t.Fatalf("error %v, want an unsafe path", err)
	}
	if _, err := os.Stat(filepath.Join(base, "escaped.txt")); err == nil {
		t.Error("entry escaped the data folder")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left in the data folder: %v", ents)
	}
}

func TestLineProgress(t *testing.T) {
	var out bytes.Buffer
	p := newProgress(&out, false, 250, 1000)
	for range 75 {
		p.Write(make([]byte, 10))
	}
	p.finish()
	want := "downloaded 0.0 MB of 0.0 MB (30%)\n"
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	// 250 → 1000 crosses 300, 400, …, 1000: eight lines.
	if len(lines) != 8 || lines[0]+"\n" != want || !strings.HasSuffix(lines[7], "(100%)") {
		t.Errorf("progress lines:\n%s", out.String())
	}
}
