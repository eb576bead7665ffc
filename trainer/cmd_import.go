package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/trainer/internal/onnx"
)

func runImport(e *env, args []string) error {
	fs := e.flags("--out FILE.cnw [flags] MODEL.onnx", `Converts an ONNX image classifier into a weight file, so that the browser
can run a network trained elsewhere (PyTorch's torch.onnx.export, or
"trainer export --format onnx"). The network must take one float input of
fixed channels×height×width (the batch size may vary) and be built from
Conv, BatchNormalization, Relu, LeakyRelu, GELU, MaxPool,
GlobalAveragePool, residual Add, Flatten, Gemm and Softmax.

Class names and normalisation come from the model's metadata_props
("classes", "normalization") when it has them; the flags override them.

Example:
  trainer import --out models/zoo/theirs/theirs.cnw theirs.onnx`)
	out := fs.String("out", "", "write the weight file to `FILE.cnw`")
	name := fs.String("name", "", "architecture `NAME` in the weight file (default: the ONNX graph's name)")
	classes := fs.String("classes", "", "class names in output order: a comma-separated `LIST`, or \"cifar10\"")
	mean := fs.String("mean", "", "per-channel mean of pixels scaled to [0, 1]: a comma-separated `LIST`")
	std := fs.String("std", "", "per-channel standard deviation: a comma-separated `LIST`")
	overwrite := fs.Bool("overwrite", false, "replace --out if it exists")
	dtype := fs.String("dtype", string(models.Float32), "store weights as `TYPE`: float32, float16 or int8")
	if err := e.parse(fs, args); err != nil {
		return err
	}
	pos, err := positional(fs, "MODEL.onnx")
	if err != nil {
		return err
	}
	if *out == "" {
		return usagef("--out is required")
	}
	if err := refuseOverwrite(*overwrite, "", *out); err != nil {
		return err
	}
	dt, err := parseDType(*dtype)
	if err != nil {
		return err
	}
	opts := onnx.ImportOptions{Name: *name}
	switch *classes {
	case "":
	case "cifar10":
		opts.Classes = slices.Clone(models.CIFAR10Classes)
	default:
		for _, c := range strings.Split(*classes, ",") {
			opts.Classes = append(opts.Classes, strings.TrimSpace(c))
		}
	}
	if (*mean == "") != (*std == "") {
		return usagef("give both --mean and --std, or neither")
	}
	if *mean != "" {
		m, err := parseFloats("--mean", *mean)
		if err != nil {
			return err
		}
		s, err := parseFloats("--std", *std)
		if err != nil {
			return err
		}
		opts.Normalization = &models.Normalization{Mean: m, Std: s}
	}

	data, err := os.ReadFile(pos[0])
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	f, err := onnx.Import(data, opts)
	switch {
	case errors.Is(err, onnx.ErrNoClasses):
		return fmt.Errorf("import: %w; give them with --classes", err)
	case errors.Is(err, onnx.ErrNoNormalization):
		return fmt.Errorf("import: %w; give it with --mean and --std", err)
	case err != nil:
		return fmt.Errorf("import: %s: %w", pos[0], err)
	}
	f.Meta.DType = dt
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	if err := models.WriteFile(*out, f); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	trainable, err := f.Meta.Spec.TrainableParams()
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	fmt.Fprintf(e.stdout, "wrote %s: %s, %d layers, %s parameters, %s\n",
		*out, f.Meta.Spec.Name, len(f.Meta.Spec.Layers), thousands(int64(trainable)), f.Meta.DType)
	return nil
}

// parseFloats parses a comma-separated list of numbers given to flag.
func parseFloats(flag, s string) ([]float32, error) {
	parts := strings.Split(s, ",")
	v := make([]float32, len(parts))
	for i, p := range parts {
		x, err := strconv.ParseFloat(strings.TrimSpace(p), 32)
		if err != nil {
			return nil, usagef("%s: %q is not a number", flag, p)
		}
		v[i] = float32(x)
	}
	return v, nil
}
