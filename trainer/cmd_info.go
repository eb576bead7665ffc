package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cifarnet-go/cifarnet/models"
)

func runInfo(e *env, args []string) error {
	fs := e.flags("[flags] MODEL", `Reads the weight file MODEL, checks it, and prints its architecture (layers
and output shapes), size, classes, normalisation and provenance.

Example:
  trainer info models/zoo/cifarnet-fast/cifarnet-fast.int8.cnw`)
	asJSON := fs.Bool("json", false, "print the file's header (spec, classes, normalisation, provenance) as JSON")
	if err := e.parse(fs, args); err != nil {
		return err
	}
	pos, err := positional(fs, "MODEL")
	if err != nil {
		return err
	}
	path := pos[0]
	f, err := models.ReadFile(path)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(f.Meta)
	}
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	return printInfo(e.stdout, path, st.Size(), f)
}

// printInfo writes the human-readable description of a weight file.
func printInfo(w io.Writer, path string, size int64, f *models.File) error {
	m := &f.Meta
	spec := &m.Spec
	shapes, err := spec.Shapes()
	if err != nil {
		return err
	}
	params, err := spec.Params()
	if err != nil {
		return err
	}
	trainable, err := spec.TrainableParams()
	if err != nil {
		return err
	}
	flops, err := spec.FLOPs()
	if err != nil {
		return err
	}

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, a...)...) }
	row("file", "%s (%s, %s)", path, byteSize(size), m.DType)
	row("spec", "%s", spec.Name)
	row("input", "%v", spec.Input)
	row("parameters", "%s trainable", thousands(int64(trainable)))
	row("FLOPs", "%.3g G per image", float64(flops)/1e9)
	row("classes", "%s", strings.Join(m.Classes, ", "))
	row("normalisation", "mean %s, std %s", floats(m.Normalization.Mean), floats(m.Normalization.Std))
	if len(m.Inference.TTA) > 0 {
		row("test-time aug.", "%s", strings.Join(m.Inference.TTA, ", "))
	}
	tw.Flush()

	fmt.Fprintf(w, "\nlayers:\n")
	perLayer := paramsPerLayer(spec, params)
	counts := make([]string, len(perLayer))
	width := len("params")
	for i, n := range perLayer {
		counts[i] = thousands(n)
		width = max(width, len(counts[i]))
	}
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  #\tname\ttype\toutput\t%*s\n", width, "params")
	for i, l := range spec.Layers {
		fmt.Fprintf(tw, "%3d\t%s\t%s\t%s\t%*s\n", i, l.Name, l.Type, shapeText(shapes[i]), width, counts[i])
	}
	tw.Flush()

	p := m.Provenance
	fmt.Fprintf(w, "\nprovenance:\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	opt := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "  %s\t%s\n", k, v)
		}
	}
	opt("dataset", p.Dataset)
	opt("recipe", p.Recipe)
	if p.Epochs > 0 {
		opt("epochs", fmt.Sprint(p.Epochs))
	}
	opt("val accuracy", percent(p.ValAccuracy))
	opt("test accuracy", percent(p.TestAccuracy))
	opt("test acc. (TTA)", percent(p.TestAccuracyTT))
	seconds := func(v float64) string { return time.Duration(v * float64(time.Second)).Round(time.Second).String() }
	if p.TrainSeconds > 0 {
		opt("training time", seconds(p.TrainSeconds))
	}
	if p.WallSeconds > 0 {
		opt("wall time", seconds(p.WallSeconds)+" (whole train command)")
	}
	opt("trained on", p.Device)
	opt("trainer", p.Trainer)
	opt("created", p.Created)
	opt("command", p.Command)
	opt("notes", p.Notes)
	return tw.Flush()
}

// paramsPerLayer counts the trainable parameters of each layer. A
// parameter belongs to the layer whose name, followed by a dot, is its
// longest prefix (layer names may themselves contain dots).
func paramsPerLayer(spec *models.Spec, params []models.Param) []int64 {
	counts := make([]int64, len(spec.Layers))
	for _, p := range params {
		if !p.Trainable {
			continue
		}
		best := -1
		for i, l := range spec.Layers {
			if strings.HasPrefix(p.Name, l.Name+".") && (best < 0 || len(l.Name) > len(spec.Layers[best].Name)) {
				best = i
			}
		}
		if best >= 0 {
			counts[best] += int64(p.Size())
		}
	}
	return counts
}

// shapeText writes a layer's output shape: "64×16×16", or "256" for a
// vector (flatten, linear, pooled outputs).
func shapeText(s models.Shape) string {
	if s.H == 1 && s.W == 1 {
		return fmt.Sprint(s.C)
	}
	return s.String()
}
