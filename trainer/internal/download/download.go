// Package download fetches the CIFAR-10 binary archive, verifies it and
// unpacks it safely, resuming interrupted transfers.
package download

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/cifarnet-go/cifarnet/trainer/internal/cifar"
)

// The official archive.
const (
	DefaultURL  = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
	DefaultMD5  = "c32a1d4ab5d03f1284b67883e8d87530"
	ArchiveName = "cifar-10-binary.tar.gz"
)

// File is an extracted file that must exist, with its size, for the data
// to count as installed.
type File struct {
	Name string // within cifar-10-batches-bin
	Size int64
}

// OfficialFiles are the batch files of the official archive.
var OfficialFiles = func() []File {
	var fs []File
	for _, name := range slices.Concat(cifar.TrainFiles, []string{cifar.TestFile}) {
		fs = append(fs, File{name, 10000 * cifar.RecordSize})
	}
	return fs
}()

// Options configure Fetch. Zero values select the official archive.
type Options struct {
	URL     string
	MD5     string // hex digest of the archive
	DataDir string // the archive unpacks to DataDir/cifar-10-batches-bin
	Force   bool   // download and unpack even if the files are present
	Files   []File // what a complete install holds; default OfficialFiles

	// MaxEntrySize and MaxTotalSize bound what the archive may unpack
	// to; defaults 64 MiB and 512 MiB (the official files are 30 MB,
	// 180 MB together).
	MaxEntrySize int64
	MaxTotalSize int64

	Client *http.Client // default http.DefaultClient
	Log    io.Writer    // progress and status messages; nil discards them
	Bar    bool         // draw a progress bar on Log, which is a terminal
}

// Result says what Fetch did.
type Result struct {
	Dir        string // the folder holding the batch files
	Present    bool   // the files were already there; nothing was done
	Resumed    bool   // a partial download was continued
	Downloaded int64  // bytes transferred by this call
}

// ChecksumError reports an archive whose MD5 is not the expected one.
type ChecksumError struct {
	Path      string
	Want, Got string
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("%s: md5 %s, expected %s (the file was removed; run again to download it anew)", e.Path, e.Got, e.Want)
}

// Fetch makes sure the CIFAR-10 files are in DataDir/cifar-10-batches-bin:
// it downloads the archive to DataDir/cifar-10-binary.tar.gz.part
// (continuing a partial one with a range request), checks its MD5,
// unpacks it into a temporary folder and renames that into place. When
// the files are already present with the right sizes it does nothing.
// If ctx is cancelled during the transfer the partial file is kept for the
// next call to resume; unpacking (seconds) is not interrupted.
func Fetch(ctx context.Context, opt Options) (*Result, error) {
	opt.setDefaults()
	if !ValidMD5(opt.MD5) {
		return nil, fmt.Errorf("md5 %q is not 32 hexadecimal digits", opt.MD5)
	}
	dest := filepath.Join(opt.DataDir, cifar.DirName)
	res := &Result{Dir: dest}
	if !opt.Force && installed(dest, opt.Files) == nil {
		res.Present = true
		return res, nil
	}
	if err := os.MkdirAll(opt.DataDir, 0o755); err != nil {
		return nil, err
	}
	part := filepath.Join(opt.DataDir, ArchiveName+".part")
	if opt.Force {
		if err := os.Remove(part); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	if err := transfer(ctx, &opt, part, res); err != nil {
		return nil, err
	}
	logf(opt.Log, "verifying md5 of %s\n", part)
	if got, err := fileMD5(part); err != nil {
		return nil, err
	} else if got != opt.MD5 {
		os.Remove(part)
		return nil, &ChecksumError{Path: part, Want: opt.MD5, Got: got}
	}
	logf(opt.Log, "extracting into %s\n", dest)
	if err := install(part, opt.DataDir, &opt); err != nil {
		// The archive matched its checksum but cannot be unpacked:
		// downloading it again is the only remedy.
		os.Remove(part)
		return nil, err
	}
	if err := os.Remove(part); err != nil {
		return nil, err
	}
	return res, nil
}

func (o *Options) setDefaults() {
	if o.URL == "" {
		o.URL = DefaultURL
	}
	if o.MD5 == "" {
		o.MD5 = DefaultMD5
	}
	o.MD5 = strings.ToLower(o.MD5)
	if o.DataDir == "" {
		o.DataDir = "data"
	}
	if o.Files == nil {
		o.Files = OfficialFiles
	}
	if o.MaxEntrySize <= 0 {
		o.MaxEntrySize = 64 << 20
	}
	if o.MaxTotalSize <= 0 {
		o.MaxTotalSize = 512 << 20
	}
	if o.Client == nil {
		o.Client = http.DefaultClient
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
}

// ValidMD5 reports whether s is an MD5 digest in hex.
func ValidMD5(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == md5.Size
}

// installed reports why dir does not hold files with the expected sizes,
// or nil when it does.
func installed(dir string, files []File) error {
	for _, f := range files {
		st, err := os.Stat(filepath.Join(dir, f.Name))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("%s is missing", f.Name)
		case err != nil:
			return err
		case !st.Mode().IsRegular() || st.Size() != f.Size:
			return fmt.Errorf("%s has %d bytes, want %d", f.Name, st.Size(), f.Size)
		}
	}
	return nil
}

// errCannotResume means the server refused to continue from the partial
// file's end: with 416 because the file is already complete (the last run
// stopped before unpacking) or longer than the archive.
var errCannotResume = errors.New("cannot resume")

// transfer brings part up to the whole archive.
func transfer(ctx context.Context, opt *Options, part string, res *Result) error {
	f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	offset, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	err = get(ctx, opt, f, offset, res)
	if errors.Is(err, errCannotResume) {
		if sum, err := fileMD5(part); err == nil && sum == opt.MD5 {
			logf(opt.Log, "%s is already complete\n", part)
			return nil
		}
		logf(opt.Log, "cannot resume %s; starting over\n", part)
		err = get(ctx, opt, f, 0, res)
	}
	if err != nil {
		if st, statErr := f.Stat(); statErr == nil && st.Size() > 0 && f.Sync() == nil {
			return fmt.Errorf("%w (the partial download %s is kept; run again to resume)", err, part)
		}
		f.Close()
		os.Remove(part)
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return f.Close()
}

// get requests the archive from offset on and appends it to f; offset 0
// asks for the whole file. A server that ignores the range gets the file
// truncated and written from the start.
func get(ctx context.Context, opt *Options, f *os.File, offset int64, res *Result) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, opt.URL, nil)
	if err != nil {
		return err
	}
	if offset > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
	}
	resp, err := opt.Client.Do(req)
	if err != nil {
		return fmt.Errorf("download: %w", err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusPartialContent && offset > 0 && rangeStart(resp) == offset:
		res.Resumed = true
		logf(opt.Log, "resuming %s at %s\n", opt.URL, megabytes(offset))
	case offset > 0 && (resp.StatusCode == http.StatusRequestedRangeNotSatisfiable || resp.StatusCode == http.StatusPartialContent):
		return errCannotResume
	case resp.StatusCode == http.StatusOK:
		if offset > 0 {
			logf(opt.Log, "the server does not resume downloads; starting over\n")
		}
		logf(opt.Log, "downloading %s\n", opt.URL)
		offset = 0
	default:
		return fmt.Errorf("download %s: server answered %s", opt.URL, resp.Status)
	}
	if err := f.Truncate(offset); err != nil {
		return err
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return err
	}
	total := int64(-1)
	if resp.ContentLength >= 0 {
		total = offset + resp.ContentLength
	}
	p := newProgress(opt.Log, opt.Bar, offset, total)
	n, err := io.Copy(io.MultiWriter(f, p), resp.Body)
	res.Downloaded += n
	p.finish()
	if err != nil {
		return fmt.Errorf("download %s stopped after %s: %w", opt.URL, megabytes(offset+n), err)
	}
	return nil
}

// rangeStart parses the first byte position of a Content-Range header
// ("bytes 100-199/200"), -1 if absent or malformed.
func rangeStart(resp *http.Response) int64 {
	v, ok := strings.CutPrefix(resp.Header.Get("Content-Range"), "bytes ")
	if !ok {
		return -1
	}
	start, _, ok := strings.Cut(v, "-")
	if !ok {
		return -1
	}
	n, err := strconv.ParseInt(start, 10, 64)
	if err != nil {
		return -1
	}
	return n
}

func fileMD5(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := md5.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func logf(w io.Writer, format string, a ...any) { fmt.Fprintf(w, format, a...) }

func megabytes(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }
