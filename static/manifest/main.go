// Command manifest writes models/manifest.json for static hosting: the same
// JSON the server answers GET /api/models with (app.ModelList), so that the
// page reads either. static/assemble.sh runs it on the weight files it
// copied into dist:
//
//	go run ./static/manifest -dir DIST/models -zoo ZOO -o DIST/models/manifest.json
//
// With -zoo it first writes NAME.report.json beside each weight file whose
// zoo folder has trainer eval's report.json (see CardReport), which the
// listing then links.
//
// It prints the file name of the default model (named by DIST/models/DEFAULT,
// else the newest), if any, for the precache list. Unlike the server, which
// lists unreadable files with their error, it fails on any file that does
// not decode: a broken model must not ship.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cifarnet-go/cifarnet/models/atomicfile"

	"github.com/cifarnet-go/cifarnet/server/app"
)

func main() {
	dir := flag.String("dir", "", "directory of weight files (*.cnw)")
	out := flag.String("o", "", "output file (default DIR/manifest.json)")
	zoo := flag.String("zoo", "", "model zoo (ZOO/ID/*.cnw with ZOO/ID/report.json) to take test reports from")
	flag.Parse()
	if *dir == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: manifest -dir DIR [-zoo ZOO] [-o FILE]")
		os.Exit(2)
	}
	if *out == "" {
		*out = filepath.Join(*dir, "manifest.json")
	}
	var err error
	if *zoo != "" {
		err = writeReports(*dir, *zoo)
	}
	var list app.ModelList
	if err == nil {
		list, err = build(*dir)
	}
	if err == nil {
		err = writeJSON(*out, list)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "manifest:", err)
		os.Exit(1)
	}
	for _, m := range list.Models {
		if m.Default {
			fmt.Println(m.File)
		}
	}
}

// build lists the weight files of dir as the server does, refusing any
// that does not decode: a broken model must not ship. The DEFAULT file of
// dir, if any, names the default model.
func build(dir string) (app.ModelList, error) {
	list, err := app.ListModels(dir, "models/")
	if err != nil {
		return list, err
	}
	for _, m := range list.Models {
		if m.Error != "" {
			return list, fmt.Errorf("%s: %s", filepath.Join(dir, m.File), m.Error)
		}
	}
	if def, err := os.ReadFile(filepath.Join(dir, app.DefaultFile)); err == nil {
		name := strings.TrimSpace(string(def))
		if !slices.ContainsFunc(list.Models, func(m app.ModelInfo) bool { return m.File == name }) {
			return list, fmt.Errorf("%s names %s, which is not in %s", app.DefaultFile, name, dir)
		}
	}
	return list, nil
}

// writeJSON writes v as indented JSON, atomically (see package atomicfile).
func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(data, '\n'))
}
