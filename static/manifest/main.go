// Command manifest writes models/manifest.json for static hosting: the same
// JSON the server answers GET /api/models with (app.ModelList), so that the
// page reads either. static/assemble.sh runs it on the weight files it
// copied into dist:
//
//	go run ./static/manifest -dir DIST/models [-default NAME.cnw] -o DIST/models/manifest.json
//
// It prints the file name of the model marked latest (the page's default),
// if any, for the precache list. Unlike the server, which lists unreadable
// files with their error, it fails on any file that does not decode: a
// broken model must not ship.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/server/app"
)

func main() {
	dir := flag.String("dir", "", "directory of weight files (*.cnw)")
	def := flag.String("default", "", "file name of the model marked latest (the page's default); empty: the newest by provenance.created")
	out := flag.String("o", "", "output file (default DIR/manifest.json)")
	flag.Parse()
	if *dir == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: manifest -dir DIR [-default NAME.cnw] [-o FILE]")
		os.Exit(2)
	}
	if *out == "" {
		*out = filepath.Join(*dir, "manifest.json")
	}
	list, err := build(*dir, *def)
	if err == nil {
		err = writeJSON(*out, list)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "manifest:", err)
		os.Exit(1)
	}
	for _, m := range list.Models {
		if m.Latest {
			fmt.Println(m.File)
		}
	}
}

type entry struct {
	info    app.ModelInfo
	created time.Time
}

// build lists the weight files of dir, newest first (by provenance.created,
// then name), URLs relative to the page.
func build(dir, def string) (app.ModelList, error) {
	list := app.ModelList{Models: []app.ModelInfo{}}
	des, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return list, nil
	}
	if err != nil {
		return list, err
	}
	var all []entry
	for _, de := range des {
		name := de.Name()
		if strings.HasPrefix(name, ".") || !strings.HasSuffix(name, models.FileExt) || !de.Type().IsRegular() {
			continue
		}
		e, err := describe(filepath.Join(dir, name))
		if err != nil {
			return list, err
		}
		all = append(all, e)
	}
	slices.SortFunc(all, func(a, b entry) int {
		if c := b.created.Compare(a.created); c != 0 {
			return c
		}
		return strings.Compare(a.info.File, b.info.File)
	})
	if def != "" {
		i := slices.IndexFunc(all, func(e entry) bool { return e.info.File == def })
		if i < 0 {
			return list, fmt.Errorf("default model %s is not in %s", def, dir)
		}
		all[i].info.Latest = true
	} else if len(all) > 0 {
		all[0].info.Latest = true
	}
	for _, e := range all {
		list.Models = append(list.Models, e.info)
	}
	return list, nil
}

func describe(path string) (entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return entry{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return entry{}, err
	}
	meta, err := models.DecodeMeta(bufio.NewReader(f))
	if err != nil {
		return entry{}, fmt.Errorf("%s: %w", path, err)
	}
	params, err := meta.Spec.TrainableParams()
	if err != nil {
		return entry{}, fmt.Errorf("%s: spec %q: %w", path, meta.Spec.Name, err)
	}
	name := filepath.Base(path)
	p := meta.Provenance
	e := entry{info: app.ModelInfo{
		File:            name,
		URL:             "models/" + url.PathEscape(name),
		Size:            fi.Size(),
		Spec:            meta.Spec.Name,
		DType:           meta.DType,
		Classes:         len(meta.Classes),
		TrainableParams: params,
		Provenance:      &app.ProvenanceSummary{Recipe: p.Recipe, TestAccuracy: p.TestAccuracy, Created: p.Created},
	}}
	if t, err := time.Parse(time.RFC3339, p.Created); err == nil {
		e.created = t
	}
	return e, nil
}

// writeJSON writes atomically: temp file in the same directory, fsync,
// rename.
func writeJSON(path string, v any) (err error) {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".manifest-*.json")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(append(data, '\n')); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Rename(tmp.Name(), path)
}
