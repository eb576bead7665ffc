// Package teach fine-tunes a trained network on an image folder with the
// backbone frozen: the images go through the base model once, a new
// classifier head is trained on their features (models/finetune, the code
// the page's teach mode runs too), and the result is an ordinary weight
// file with the folder's class names.
package teach

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/models/finetune"
	"github.com/cifarnet-go/cifarnet/trainer/internal/evaluate"
	"github.com/cifarnet-go/cifarnet/trainer/internal/imagefolder"
	"github.com/cifarnet-go/cifarnet/trainer/internal/pathtext"
)

// Options say what to fine-tune on.
type Options struct {
	Base    string  // the base weight file
	Data    string  // the image folder
	Out     string  // the weight file to write (must not exist)
	HoldOut float64 // share of each class held out when the folder has no val/ (default 0.2)
	Seed    uint64
	// SkipUnreadable skips files that do not decode (each named in the
	// log) instead of stopping at the first.
	SkipUnreadable bool
	// FreshHead trains every class's row from scratch; otherwise a class
	// the base model already has (by name) starts from the base's row.
	FreshHead bool
	Head      finetune.Options
	Command   string // recorded in the provenance
	Trainer   string // trainer version, recorded in the provenance
	Log       io.Writer
}

// Result reports what was trained.
type Result struct {
	Out          string
	Classes      []string
	Train, Held  int      // images used
	HeldAccuracy float64  // on the held-out images
	Skipped      []string // unreadable files skipped
	Seconds      float64
}

// Run fine-tunes and writes Options.Out.
func Run(o Options) (*Result, error) {
	start := time.Now()
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.HoldOut == 0 {
		o.HoldOut = 0.2
	}
	if _, err := os.Stat(o.Out); err == nil {
		return nil, fmt.Errorf("teach: %s exists: choose another --out or remove it", o.Out)
	}
	data, err := os.ReadFile(o.Base)
	if err != nil {
		return nil, fmt.Errorf("teach: base model: %w", err)
	}
	base, err := models.Decode(data)
	if err != nil {
		return nil, fmt.Errorf("teach: base model %s: %w", o.Base, err)
	}
	ex, err := finetune.NewExtractor(base)
	if err != nil {
		return nil, err
	}
	train, held, err := imagefolder.Load(o.Data)
	if err != nil {
		return nil, err
	}
	if held == nil {
		if train, held, err = train.Split(o.HoldOut, o.Seed); err != nil {
			return nil, err
		}
	}
	res := &Result{Out: o.Out, Classes: train.Classes}
	fmt.Fprintf(o.Log, "teach: %d classes (%s) from %s: %d images to train on, %d held out; base %s, head %q\n",
		len(train.Classes), quoteList(train.Classes), o.Data, train.Len(), held.Len(), filepath.Base(o.Base), ex.Head)
	xTrain, lTrain, err := load(train, base, o, res)
	if err != nil {
		return nil, err
	}
	xHeld, lHeld, err := load(held, base, o, res)
	if err != nil {
		return nil, err
	}
	for c := range train.Classes {
		if !slices.Contains(lTrain, c) {
			return nil, fmt.Errorf("teach: class %q has no readable training image", train.Classes[c])
		}
	}
	fTrain, dim, err := ex.Features(xTrain, len(lTrain))
	if err != nil {
		return nil, err
	}
	if !o.FreshHead {
		if o.Head.Start = ex.KnownRows(train.Classes); o.Head.Start != nil {
			fmt.Fprintf(o.Log, "teach: classes the base model has start from its rows (--fresh-head: from scratch): %s\n", quoteList(o.Head.Start.Names()))
		}
	}
	head, err := finetune.Train(fTrain, dim, lTrain, len(train.Classes), o.Head, nil)
	if err != nil {
		return nil, err
	}
	if len(lHeld) > 0 {
		fHeld, _, err := ex.Features(xHeld, len(lHeld))
		if err != nil {
			return nil, err
		}
		res.HeldAccuracy = accuracy(head, fHeld, lHeld)
	}
	res.Train, res.Held = len(lTrain), len(lHeld)
	res.Seconds = time.Since(start).Seconds()
	prov := finetune.HeadProvenance("image folder "+filepath.Base(filepath.Clean(o.Data)), o.Head, res.Train, res.Held, 0, res.HeldAccuracy, res.Seconds)
	prov.Command, prov.Trainer, prov.Device = pathtext.Command(o.Command), o.Trainer, "cpu"
	prov.Created = time.Now().UTC().Format(time.RFC3339)
	f, err := ex.NewFile(head, train.Classes, o.Base, data, prov)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(o.Out), 0o755); err != nil {
		return nil, fmt.Errorf("teach: %w", err)
	}
	if err := models.WriteFile(o.Out, f); err != nil {
		return nil, fmt.Errorf("teach: %w", err)
	}
	return res, nil
}

// load reads a set's images as the page does (imagefolder.Pixels) and
// normalises them for the base model.
func load(s *imagefolder.Set, base *models.File, o Options, res *Result) ([]float32, []int, error) {
	in := base.Meta.Spec.Input
	if in.C != 3 || in.H != in.W {
		return nil, nil, fmt.Errorf("teach: base model input %v: want square RGB images", in)
	}
	pix, labels, skipped, err := s.Pixels(in.H, o.SkipUnreadable)
	if err != nil {
		return nil, nil, fmt.Errorf("teach: %w (--skip-unreadable skips such files)", err)
	}
	for _, path := range skipped {
		fmt.Fprintf(o.Log, "teach: skipped %s: not a readable image\n", path)
	}
	res.Skipped = append(res.Skipped, skipped...)
	norm, err := evaluate.NewNormalizer(base.Meta.Normalization)
	if err != nil {
		return nil, nil, fmt.Errorf("teach: base model: %w", err)
	}
	size := in.Size()
	x := make([]float32, len(labels)*size)
	for i := range labels {
		norm.Normalize(x[i*size:(i+1)*size], pix[i*size:(i+1)*size])
	}
	return x, labels, nil
}

func accuracy(h *finetune.Head, rows []float32, labels []int) float64 {
	correct := 0
	for i, l := range labels {
		if h.Predict(rows[i*h.Dim:(i+1)*h.Dim]) == l {
			correct++
		}
	}
	return float64(correct) / float64(len(labels))
}

func quoteList(s []string) string {
	if len(s) > 6 {
		return fmt.Sprintf("%q … %d more", s[:6], len(s)-6)
	}
	return fmt.Sprintf("%q", s)
}
