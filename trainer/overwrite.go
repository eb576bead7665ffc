package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// refuseOverwrite returns an error naming the files among dir/names that
// already exist, unless overwrite is set: no command replaces a file it
// did not create without being told to.
func refuseOverwrite(overwrite bool, dir string, names ...string) error {
	if overwrite {
		return nil
	}
	var there []string
	for _, n := range names {
		p := filepath.Join(dir, n)
		if _, err := os.Lstat(p); err == nil {
			there = append(there, p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("check %s: %w", p, err)
		}
	}
	if len(there) == 0 {
		return nil
	}
	verb := "exists"
	if len(there) > 1 {
		verb = "exist"
	}
	return fmt.Errorf("%s already %s; pass --overwrite to replace, or choose another --out", strings.Join(there, ", "), verb)
}
