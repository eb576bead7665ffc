package app

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cifarnet-go/cifarnet/models"
)

// ModelList is the body of GET /api/models.
type ModelList struct {
	// Models holds the readable weight files newest first, then the
	// unreadable ones by name.
	Models []ModelInfo `json:"models"`
}

// ModelInfo describes one weight file of the models directory.
type ModelInfo struct {
	File string `json:"file"`
	// URL is relative to the site root (where index.html is), as in
	// "models/cifarnet.cnw".
	URL  string `json:"url"`
	Size int64  `json:"size"`
	// SHA256 is the checksum the weight file ends with (hex): it names
	// the contents, and the page keys its cache of built models by it.
	SHA256   string `json:"sha256,omitempty"`
	Modified string `json:"modified,omitempty"` // file modification time, UTC, RFC 3339
	// Latest marks the newest readable model: by provenance.created, then
	// by modification time.
	Latest bool `json:"latest"`
	// Default marks the model front ends load first: the one the
	// directory's DEFAULT file names, else the latest.
	Default bool `json:"default"`

	Spec            string             `json:"spec,omitempty"`
	DType           models.DType       `json:"dtype,omitempty"`
	Classes         int                `json:"classes,omitempty"`
	TrainableParams int                `json:"trainable_params,omitempty"`
	Provenance      *ProvenanceSummary `json:"provenance,omitempty"`

	// Report is the URL of the model's test report (ReportSuffix) when the
	// directory has one beside the weight file: the page's model card
	// reads its per-class accuracy from it.
	Report string `json:"report,omitempty"`

	// Error says why the file could not be read; the other metadata
	// fields are then empty.
	Error string `json:"error,omitempty"`
}

// ProvenanceSummary is the part of a model's provenance worth listing.
type ProvenanceSummary struct {
	Recipe       string  `json:"recipe,omitempty"`
	TestAccuracy float64 `json:"test_accuracy,omitempty"`
	Created      string  `json:"created,omitempty"`
}

// modelLister lists the weight files of a directory. Headers are decoded
// once per file version (size and modification time): each request costs
// a directory read and a stat per file. The directory's own mtime is not
// enough, because a file rewritten in place leaves it unchanged.
type modelLister struct {
	dir       string
	urlPrefix string // URL of dir relative to the site root: "" or ending in '/'

	mu    sync.Mutex
	cache map[string]listedModel // by file name
}

type listedModel struct {
	v       version
	info    ModelInfo
	created time.Time // parsed provenance.created; zero if absent or bad
}

func newModelLister(dir, urlPrefix string) *modelLister {
	return &modelLister{dir: dir, urlPrefix: urlPrefix, cache: make(map[string]listedModel)}
}

// DefaultFile is the name of the optional file in a models directory that
// names (on its first line) the weight file front ends load first.
const DefaultFile = "DEFAULT"

// ReportSuffix names a weight file's test report: NAME.cnw has
// NAME.report.json (written by static/manifest from trainer eval's
// report.json).
const ReportSuffix = ".report.json"

// ReportName is the report file name of the weight file name.
func ReportName(name string) string {
	return strings.TrimSuffix(name, models.FileExt) + ReportSuffix
}

// ListModels lists the weight files of dir as GET /api/models does, with
// URLs prefixed by urlPrefix (relative to the site root, e.g. "models/").
// Static builds use it to write models/manifest.json.
func ListModels(dir, urlPrefix string) (ModelList, error) {
	return newModelLister(dir, urlPrefix).list()
}

// modelsURL is the URL, relative to the site root, at which the static
// handler serves the weight files of modelsDir: its place inside dist, or
// models/ for a directory outside. Relative, like the page's own
// references, so that the site also works below a path prefix.
func modelsURL(dist, modelsDir string) string {
	if !within(dist, modelsDir) {
		return "models/"
	}
	rel, _ := filepath.Rel(dist, modelsDir)
	if rel == "." {
		return ""
	}
	return filepath.ToSlash(rel) + "/"
}

func (l *modelLister) handle(c echo.Context) error {
	list, err := l.list()
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderCacheControl, cacheRevalidate)
	return c.JSON(http.StatusOK, list)
}

// list reads the directory. A missing directory is an empty list; a file
// that cannot be read is listed with its error.
func (l *modelLister) list() (ModelList, error) {
	l.mu.Lock()
	defer l.mu.Unlock()

	list := ModelList{Models: []ModelInfo{}}
	root, err := os.OpenRoot(l.dir)
	if errors.Is(err, fs.ErrNotExist) {
		clear(l.cache)
		return list, nil
	}
	if err != nil {
		return list, fmt.Errorf("models directory: %w", err)
	}
	defer root.Close()
	d, err := root.Open(".")
	if err != nil {
		return list, fmt.Errorf("models directory: %w", err)
	}
	entries, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return list, fmt.Errorf("models directory: %w", err)
	}

	found := make(map[string]listedModel, len(entries))
	for _, e := range entries {
		name := e.Name()
		// Dotfiles include WriteFile's temporary files.
		if strings.HasPrefix(name, ".") || !strings.HasSuffix(name, models.FileExt) {
			continue
		}
		m, ok := l.describe(root, name)
		if !ok {
			continue
		}
		// Stat'ed on every request: a report can appear or go without
		// the weight file changing.
		m.info.Report = ""
		if m.info.Error == "" {
			rep := ReportName(name)
			if fi, err := root.Stat(rep); err == nil && fi.Mode().IsRegular() {
				m.info.Report = l.urlPrefix + url.PathEscape(rep)
			}
		}
		found[name] = m
	}
	l.cache = found

	all := make([]listedModel, 0, len(found))
	for _, m := range found {
		all = append(all, m)
	}
	slices.SortFunc(all, newestFirst)
	def := readDefault(root)
	hasDefault := slices.ContainsFunc(all, func(m listedModel) bool { return m.info.File == def && m.info.Error == "" })
	for i, m := range all {
		m.info.Latest = i == 0 && m.info.Error == ""
		m.info.Default = m.info.File == def && hasDefault || m.info.Latest && !hasDefault
		list.Models = append(list.Models, m.info)
	}
	return list, nil
}

// readDefault returns the file name that the directory's DEFAULT file
// names, or "" when there is none.
func readDefault(root *os.Root) string {
	f, err := root.Open(DefaultFile)
	if err != nil {
		return ""
	}
	defer f.Close()
	line, _ := bufio.NewReader(io.LimitReader(f, 1024)).ReadString('\n')
	return strings.TrimSpace(line)
}

// describe stats and, if it changed, decodes the header of one file. It
// reports false for names that are not regular files.
func (l *modelLister) describe(root *os.Root, name string) (listedModel, bool) {
	info := ModelInfo{File: name, URL: l.urlPrefix + url.PathEscape(name)}
	// Root.Stat follows symlinks only while they stay in the directory,
	// as the static handler does, so what is listed can be fetched.
	fi, err := root.Stat(name)
	if err != nil {
		info.Error = errorText(err)
		return listedModel{info: info}, true
	}
	if !fi.Mode().IsRegular() {
		return listedModel{}, false
	}
	v := versionOf(fi)
	if old, ok := l.cache[name]; ok && old.v == v && old.info.URL == info.URL {
		return old, true
	}
	info.Size = fi.Size()
	info.Modified = fi.ModTime().UTC().Format(time.RFC3339)
	m := listedModel{v: v}
	meta, sum, err := readMeta(root, name, fi.Size())
	if err != nil {
		info.Error = errorText(err)
		m.info = info
		return m, true
	}
	params, err := meta.Spec.TrainableParams()
	if err != nil {
		info.Error = errorText(fmt.Errorf("spec %q: %w", meta.Spec.Name, err))
		m.info = info
		return m, true
	}
	info.SHA256 = sum
	info.Spec = meta.Spec.Name
	info.DType = meta.DType
	info.Classes = len(meta.Classes)
	info.TrainableParams = params
	p := meta.Provenance
	info.Provenance = &ProvenanceSummary{Recipe: p.Recipe, TestAccuracy: p.TestAccuracy, Created: p.Created}
	if t, err := time.Parse(time.RFC3339, p.Created); err == nil {
		m.created = t
	}
	m.info = info
	return m, true
}

// readMeta decodes the header of a weight file below root and reads the
// checksum at its end.
func readMeta(root *os.Root, name string, size int64) (*models.Meta, string, error) {
	f, err := root.Open(name)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	meta, err := models.DecodeMeta(bufio.NewReader(f))
	if err != nil {
		return nil, "", err
	}
	sum, err := models.ReadChecksum(f, size)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", name, err)
	}
	return meta, sum, nil
}

// errorText is an error's message without the server's directory: an
// *fs.PathError names the file relative to the models directory already.
func errorText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Path + ": " + pe.Err.Error()
	}
	return err.Error()
}

// newestFirst orders readable models by provenance.created, then
// modification time, newest first, then by name; unreadable ones last.
func newestFirst(a, b listedModel) int {
	aBad, bBad := a.info.Error != "", b.info.Error != ""
	switch {
	case aBad && bBad:
		return strings.Compare(a.info.File, b.info.File)
	case aBad:
		return 1
	case bBad:
		return -1
	}
	if c := b.created.Compare(a.created); c != 0 {
		return c
	}
	if c := cmp.Compare(b.v.modTime, a.v.modTime); c != 0 {
		return c
	}
	return strings.Compare(a.info.File, b.info.File)
}
