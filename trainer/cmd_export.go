package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/cifarnet-go/cifarnet/models"
	training "github.com/cifarnet-go/cifarnet/trainer/internal/run"
)

func runExport(e *env, args []string) error {
	fs := e.flags("--out FILE.cnw [flags] RUN|CHECKPOINT", `Writes a weight file for the front end from a run folder (its best.cnw) or a
checkpoint file, completing its provenance (data set, recipe, command,
epochs, validation accuracy, training time, trainer version, creation time)
from the run's config.json. The usual destination is
models/zoo/<id>/<id>.cnw.`)
	out := fs.String("out", "", "write the weight file to `FILE.cnw`")
	if err := e.parse(fs, args); err != nil {
		return err
	}
	pos, err := positional(fs, "RUN|CHECKPOINT")
	if err != nil {
		return err
	}
	if *out == "" {
		return usagef("--out is required")
	}
	f, err := readExportSource(pos[0])
	if err != nil {
		return err
	}
	// Conversions chosen by flags (storage dtype, other formats) go here,
	// between reading and writing.
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := models.WriteFile(*out, f); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	p := f.Meta.Provenance
	fmt.Fprintf(e.stdout, "wrote %s: %s, recipe %s, %d epochs, val accuracy %.4f\n",
		*out, f.Meta.Spec.Name, p.Recipe, p.Epochs, p.ValAccuracy)
	return nil
}

// readExportSource reads the weights of a run folder (best.cnw) or a
// checkpoint file and fills in missing provenance from the run's
// config.json when there is one.
func readExportSource(src string) (*models.File, error) {
	st, err := os.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	path, dir := src, filepath.Dir(src)
	if st.IsDir() {
		path, dir = filepath.Join(src, training.BestFile), src
	}
	f, err := models.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	p := &f.Meta.Provenance
	cfg, err := training.ReadConfig(dir)
	switch {
	case err == nil:
		if p.Recipe == "" {
			p.Recipe = cfg.Recipe.Name
		}
		if p.Command == "" {
			p.Command = cfg.Command
		}
		if p.Trainer == "" {
			p.Trainer = cfg.Commit
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("export: %w", err)
	}
	if p.Dataset == "" {
		p.Dataset = "CIFAR-10"
	}
	if p.Trainer == "" {
		p.Trainer = training.Version()
	}
	if p.Created == "" {
		p.Created = time.Now().UTC().Format(time.RFC3339)
	}
	return f, nil
}
