// Package pathtext decides how file paths appear in what the trainer
// writes for others to read (weight-file provenance, reports): relative
// to the working directory, never as the absolute paths of the machine
// the work ran on, which mean nothing elsewhere and say more than needed.
package pathtext

import (
	"os"
	"path/filepath"
	"strings"
)

// Of returns p as it should be written, absolute or not: relative to the
// working directory when it is at most two folders up (e.g.
// ../shared/cifar10/…), else its last two elements
// (cifar-10-batches-bin/test_batch.bin).
func Of(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		return p // no working directory: p as given, relative or not
	}
	p = abs
	if wd, err := os.Getwd(); err == nil {
		up := ".." + string(filepath.Separator)
		if rel, err := filepath.Rel(wd, p); err == nil && !strings.HasPrefix(rel, up+up+up) && rel != up+up+".." {
			return rel
		}
	}
	return filepath.Join(filepath.Base(filepath.Dir(p)), filepath.Base(p))
}

// Command returns a command line with every absolute path argument (a
// word, or the value of --flag=VALUE) written by Of.
func Command(line string) string {
	words := strings.Fields(line)
	for i, w := range words {
		if k, v, ok := strings.Cut(w, "="); ok && strings.HasPrefix(k, "-") && filepath.IsAbs(v) {
			words[i] = k + "=" + Of(v)
		} else if filepath.IsAbs(w) {
			words[i] = Of(w)
		}
	}
	return strings.Join(words, " ")
}
