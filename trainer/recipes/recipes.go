// Package recipes embeds the training recipes shipped with the trainer:
// JSON files that users may copy, edit and pass to "trainer train
// --recipe path.json". The recipe format is defined by package
// trainer/internal/training.
package recipes

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

//go:embed *.json
var files embed.FS

// Names lists the embedded recipes, sorted.
func Names() []string {
	entries, _ := fs.ReadDir(files, ".")
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".json"))
	}
	sort.Strings(names)
	return names
}

// Get returns the JSON of the named recipe.
func Get(name string) ([]byte, error) {
	data, err := files.ReadFile(path.Clean(name) + ".json")
	if err != nil {
		return nil, fmt.Errorf("unknown recipe %q (have %s)", name, strings.Join(Names(), ", "))
	}
	return data, nil
}
