package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/models/atomicfile"
	"github.com/cifarnet-go/cifarnet/trainer/internal/onnx"
	"github.com/cifarnet-go/cifarnet/trainer/internal/training"
)

func runExport(e *env, args []string) error {
	fs := e.flags("--out FILE.cnw [flags] RUN|CHECKPOINT", `Writes a weight file for the front end from a run folder (its best.cnw) or a
checkpoint file, completing its provenance (data set, recipe, command,
epochs, validation accuracy, training time, trainer version, creation time)
from the run's config.json. The usual destination is
models/zoo/<id>/<id>.cnw.

--dtype float16 halves the file and int8 quarters it (per-channel
quantised weights; biases and batchnorm stay float32). --format onnx writes
a standard ONNX model instead, for other runtimes; "trainer import" reads
one back.

Examples:
  trainer export --out models/zoo/mine/mine.cnw runs/<run>
  trainer export --dtype int8 --out models/zoo/mine/mine.int8.cnw models/zoo/mine/mine.cnw
  trainer export --out mine.onnx models/zoo/mine/mine.cnw`)
	out := fs.String("out", "", "write the weight file to `FILE.cnw` (or FILE.onnx)")
	format := fs.String("format", "", "output `FORMAT`: cnw (weight file) or onnx (opset 17); default from --out's extension")
	overwrite := fs.Bool("overwrite", false, "replace --out if it exists")
	dtype := fs.String("dtype", "", "store weights as `TYPE`: float32, float16 or int8 (cnw only); default: as the source")
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
	if err := refuseOverwrite(*overwrite, "", *out); err != nil {
		return err
	}
	if *format == "" {
		*format = formatCNW
		if strings.EqualFold(filepath.Ext(*out), ".onnx") {
			*format = formatONNX
		}
	}
	if *format != formatCNW && *format != formatONNX {
		return usagef("--format %q: want %s or %s", *format, formatCNW, formatONNX)
	}
	dt, err := parseDType(*dtype)
	if err != nil {
		return err
	}
	if *format == formatONNX && dt != "" && dt != models.Float32 {
		return usagef("--dtype %s: ONNX export writes float32 weights; --dtype applies to %s files", dt, formatCNW)
	}
	f, err := readExportSource(pos[0])
	if err != nil {
		return err
	}
	if dt != "" {
		f.Meta.DType = dt
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if *format == formatONNX {
		data, err := onnx.Export(f)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		if err := atomicfile.WriteFile(*out, data); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		fmt.Fprintf(e.stdout, "wrote %s: %s as ONNX opset %d, %s\n", *out, f.Meta.Spec.Name, onnx.Opset, byteSize(int64(len(data))))
		return nil
	}
	if err := models.WriteFile(*out, f); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	p := f.Meta.Provenance
	fmt.Fprintf(e.stdout, "wrote %s: %s, %s, recipe %s, %d epochs, val accuracy %.4f\n",
		*out, f.Meta.Spec.Name, f.Meta.DType, p.Recipe, p.Epochs, p.ValAccuracy)
	return nil
}

// Output formats of export.
const (
	formatCNW  = "cnw"
	formatONNX = "onnx"
)

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
