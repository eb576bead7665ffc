package main

import (
	"bytes"
	"fmt"
	"image"
	"math"
	"strings"
	"time"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/models/finetune"
)

// Limits of the page's teach mode, checked here so that every caller gets
// the same plain message.
const (
	MinTeachClasses   = 2
	MaxTeachClasses   = 10
	MinImagesPerClass = 2 // cross-validation holds one out
	MaxTeachImages    = 2000
	MaxClassName      = 40 // characters
	maxFolds          = 5
)

// Teacher is the page's teach mode: it computes a base model's features
// of the user's images and trains a new classifier head on them with
// models/finetune, the code behind `trainer train --init W.cnw --freeze
// head-only`. It keeps no images: the page holds each image's feature row,
// so that several workers can compute them and one trains. Not safe for
// concurrent use.
type Teacher struct {
	name string
	data []byte // the base weight file, whose SHA-256 the provenance records
	ex   *finetune.Extractor
	in   models.Shape
	norm models.Normalization
	dim  int
}

// NewTeacher decodes the base weight file and runs it once, on a grey
// image, to learn the length of its feature rows.
func NewTeacher(name string, data []byte) (*Teacher, error) {
	f, err := models.Decode(data)
	if err != nil {
		return nil, &Error{CodeBadModel, fmt.Errorf("the base model %s cannot be used: %w", name, err)}
	}
	in := f.Meta.Spec.Input
	if in.C != 3 || in.H != in.W {
		return nil, errorf(CodeBadModel, "the base model %s expects %v input; this page feeds square RGB images", name, in)
	}
	ex, err := finetune.NewExtractor(f)
	if err != nil {
		return nil, &Error{CodeBadModel, fmt.Errorf("the base model %s cannot be taught: %w", name, err)}
	}
	_, dim, err := ex.Features(make([]float32, in.Size()), 1)
	if err != nil {
		return nil, &Error{CodeBadModel, fmt.Errorf("the base model %s cannot be taught: %w", name, err)}
	}
	return &Teacher{name: name, data: data, ex: ex, in: in, norm: f.Meta.Normalization, dim: dim}, nil
}

// Base is the base model's file name.
func (t *Teacher) Base() string { return t.name }

// Dim is the length of a feature row.
func (t *Teacher) Dim() int { return t.dim }

// Classes are the base model's classes: a new class named like one of
// them starts from the base's row for it (Train).
func (t *Teacher) Classes() []string { return t.ex.Base.Meta.Classes }

// Features decodes an image file as Classify does and returns the base
// model's features of it, and the model input it became (for the page's
// thumbnail).
func (t *Teacher) Features(file []byte) ([]float32, *image.NRGBA, error) {
	if len(file) == 0 {
		return nil, nil, errorf(CodeUnsupported, "the file is empty")
	}
	x, input, err := models.PreprocessImage(file, t.in, t.norm)
	if err != nil {
		return nil, nil, err
	}
	row, err := t.row(x)
	return row, input, err
}

// FeaturesRGBA is Features for non-premultiplied RGBA pixels the browser
// decoded.
func (t *Teacher) FeaturesRGBA(pix []byte, w, h int) ([]float32, *image.NRGBA, error) {
	img, err := models.ImageFromRGBA(pix, w, h)
	if err != nil {
		return nil, nil, &Error{CodeBadArgument, fmt.Errorf("pixels: %w", err)}
	}
	input := models.ModelInput(img, t.in.W)
	row, err := t.row(models.Normalize(input, t.norm, nil))
	return row, input, err
}

func (t *Teacher) row(x []float32) ([]float32, error) {
	row, _, err := t.ex.Features(x, 1)
	if err != nil {
		return nil, &Error{CodeInternal, fmt.Errorf("features: %w", err)}
	}
	return row, nil
}

// Taught is a trained model.
type Taught struct {
	File     []byte   // the .cnw weight file
	Name     string   // a file name for it
	Classes  []string // as checked and trimmed
	Accuracy float64  // cross-validated
	Folds    int
	Images   int
	Seconds  float64  // cross-validation and training
	Known    []string // classes that started from the base model's rows
}

// Train checks the classes and the images' feature rows (row i, Dim
// values from Features, is of class labels[i]), measures the accuracy by
// cross-validation, trains the head on all the images and builds the
// weight file. progress, when not nil, is called after each epoch with
// the epochs done and the total.
func (t *Teacher) Train(classes []string, rows []float32, labels []int, progress func(done, total int)) (*Taught, error) {
	start := time.Now()
	classes, err := checkClasses(classes)
	if err != nil {
		return nil, err
	}
	n := len(labels)
	if n > MaxTeachImages {
		return nil, errorf(CodeTooLarge, "%d images: %d are the most one model can be taught from here", n, MaxTeachImages)
	}
	if len(rows) != n*t.dim {
		return nil, errorf(CodeBadArgument, "%d feature values for %d images of %d", len(rows), n, t.dim)
	}
	for i, v := range rows {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, errorf(CodeBadArgument, "feature %d of image %d is %v", i%t.dim, i/t.dim, v)
		}
	}
	count := make([]int, len(classes))
	for i, l := range labels {
		if l < 0 || l >= len(classes) {
			return nil, errorf(CodeBadArgument, "image %d has class %d of %d", i, l, len(classes))
		}
		count[l]++
	}
	folds := maxFolds
	for c, k := range count {
		if k < MinImagesPerClass {
			return nil, errorf(CodeBadArgument, "class %q has %d image%s: add at least %d", classes[c], k, plural(k), MinImagesPerClass)
		}
		folds = min(folds, k)
	}
	o := finetune.Options{Seed: 1, Start: t.ex.KnownRows(classes)}.Defaults()
	total := (folds + 1) * o.Epochs
	var cvProgress func(done, total int) bool
	var trainProgress func(epoch int, loss float64) bool
	if progress != nil {
		cvProgress = func(done, _ int) bool { progress(done, total); return true }
		trainProgress = func(epoch int, _ float64) bool { progress(folds*o.Epochs+epoch, total); return true }
	}
	acc, err := finetune.CrossValidate(rows, t.dim, labels, len(classes), folds, o, cvProgress)
	if err != nil {
		return nil, &Error{CodeInternal, err}
	}
	head, err := finetune.Train(rows, t.dim, labels, len(classes), o, trainProgress)
	if err != nil {
		return nil, &Error{CodeInternal, err}
	}
	secs := time.Since(start).Seconds()
	prov := finetune.HeadProvenance("images taught in the page", o, n, n, folds, acc, secs)
	prov.Trainer = "cifarnet page (WebAssembly)"
	prov.Device = "browser"
	prov.Created = time.Now().UTC().Format(time.RFC3339)
	f, err := t.ex.NewFile(head, classes, t.name, t.data, prov)
	if err != nil {
		return nil, &Error{CodeInternal, err}
	}
	var buf bytes.Buffer
	if err := models.Encode(&buf, f); err != nil {
		return nil, &Error{CodeInternal, fmt.Errorf("the new weight file: %w", err)}
	}
	return &Taught{File: buf.Bytes(), Name: taughtName(classes), Classes: classes, Accuracy: acc,
		Folds: folds, Images: n, Seconds: secs, Known: o.Start.Names()}, nil
}

// checkClasses trims the names and refuses too few, too many, empty, too
// long and duplicate ones (ignoring case: "Cat" and "cat" would confuse).
func checkClasses(names []string) ([]string, error) {
	if len(names) < MinTeachClasses || len(names) > MaxTeachClasses {
		return nil, errorf(CodeBadArgument, "%d class%s: name %d to %d classes", len(names), pluralES(len(names)), MinTeachClasses, MaxTeachClasses)
	}
	out := make([]string, len(names))
	seen := map[string]int{}
	for i, n := range names {
		n = strings.TrimSpace(n)
		switch {
		case n == "":
			return nil, errorf(CodeBadArgument, "class %d has no name", i+1)
		case len([]rune(n)) > MaxClassName:
			return nil, errorf(CodeBadArgument, "the name of class %d is longer than %d characters", i+1, MaxClassName)
		}
		key := strings.ToLower(n)
		if j, ok := seen[key]; ok {
			return nil, errorf(CodeBadArgument, "classes %d and %d are both called %q: give each class its own name", j+1, i+1, n)
		}
		seen[key] = i
		out[i] = n
	}
	return out, nil
}

// fileWord lowers s and turns each run of characters other than a–z and
// 0–9 into one dash. (A loop, not regexp: the package would add about
// 100 kB to the module.)
func fileWord(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if ('a' <= r && r <= 'z') || ('0' <= r && r <= '9') {
			b.WriteRune(r)
			dash = false
		} else if !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	return b.String()
}

// taughtName makes a file name from the class names, e.g.
// taught-cat-dog.cnw.
func taughtName(classes []string) string {
	var parts []string
	for _, c := range classes {
		if s := strings.Trim(fileWord(c), "-"); s != "" {
			parts = append(parts, s)
		}
	}
	name := strings.Join(parts, "-")
	if len(name) > 60 {
		name = strings.TrimRight(name[:60], "-")
	}
	if name == "" {
		name = "classes"
	}
	return "taught-" + name + ".cnw"
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func pluralES(n int) string {
	if n == 1 {
		return ""
	}
	return "es"
}
