// Package finetune teaches a trained network new classes with few images:
// the network up to its classifier is kept as a feature extractor, and a
// new linear head is trained on its features (softmax regression). It is
// the one implementation behind `trainer train --init W.cnw --freeze
// head-only` and the page's teach mode (the WebAssembly module), so both
// produce the same weight file from the same images.
package finetune

import (
	"crypto/sha256"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cifarnet-go/cifarnet/models"
)

// MaxClasses bounds the new class list.
const MaxClasses = 1000

// Extractor computes a base model's features.
type Extractor struct {
	Base *models.File
	Head string // the base's classifier layer, replaced by the new head
	m    *models.Model
	p    *models.Predictor
}

// NewExtractor prepares base (a decoded weight file) for feature
// extraction.
func NewExtractor(base *models.File) (*Extractor, error) {
	m, err := models.NewModel(base)
	if err != nil {
		return nil, fmt.Errorf("finetune: base model: %w", err)
	}
	head, err := m.HeadLayer()
	if err != nil {
		return nil, fmt.Errorf("finetune: base model: %w", err)
	}
	return &Extractor{Base: base, Head: head, m: m, p: m.NewPredictor()}, nil
}

// Features returns one row of dim features for each of the n normalised
// CHW images in x, computed in batches.
func (e *Extractor) Features(x []float32, n int) (rows []float32, dim int, err error) {
	per := e.m.InputSize()
	if n <= 0 || len(x) != n*per {
		return nil, 0, fmt.Errorf("finetune: %d values for %d images of %d", len(x), n, per)
	}
	const batch = 32
	for at := 0; at < n; at += batch {
		k := min(batch, n-at)
		f, d, err := e.p.Features(x[at*per:(at+k)*per], k, e.Head)
		if err != nil {
			return nil, 0, fmt.Errorf("finetune: %w", err)
		}
		if rows == nil {
			dim = d
			rows = make([]float32, 0, n*d)
		}
		rows = append(rows, f...)
	}
	return rows, dim, nil
}

// KnownRows returns the start of a head for classes (Options.Start): the
// base model's own classifier rows for the classes whose names it already
// has (ignoring case and surrounding space), so that a class the base
// learnt from thousands of images does not start again from a few. A
// base class that two of the new names match starts neither (they would
// start alike and stay close). It is nil when no name matches.
func (e *Extractor) KnownRows(classes []string) *Start {
	wt := e.Base.Tensors[e.Head+".weight"]
	if wt == nil || len(wt.Shape) != 2 || len(e.Base.Meta.Classes) != wt.Shape[0] {
		return nil
	}
	dim := wt.Shape[1]
	bias := e.Base.Tensors[e.Head+".bias"]
	st := &Start{Head: Head{W: make([]float32, len(classes)*dim), B: make([]float32, len(classes)), Dim: dim},
		Known: make([]bool, len(classes)), From: make([]string, len(classes))}
	match := make([]int, len(classes))
	uses := map[int]int{}
	for c, name := range classes {
		match[c] = slices.IndexFunc(e.Base.Meta.Classes, func(b string) bool {
			return strings.EqualFold(strings.TrimSpace(b), strings.TrimSpace(name))
		})
		uses[match[c]]++
	}
	found := false
	for c, k := range match {
		if k < 0 || uses[k] > 1 {
			continue
		}
		copy(st.W[c*dim:(c+1)*dim], wt.Data[k*dim:(k+1)*dim])
		if bias != nil {
			st.B[c] = bias.Data[k]
		}
		st.Known[c], st.From[c], found = true, e.Base.Meta.Classes[k], true
	}
	if !found {
		return nil
	}
	return st
}

// Options are the head's training settings. The zero value is usable:
// Defaults fills what is unset.
type Options struct {
	Epochs      int     // full passes over the features (default 150)
	LR          float64 // Adam's learning rate (default 0.01)
	WeightDecay float64 // L2 penalty on the weights (default 0.03; negative: none)
	Seed        uint64
	// Start, when not nil, gives the rows some classes start from (the
	// base model's own rows for the classes it already knows: KnownRows):
	// class c starts from row c of Start where Start.Known[c], and
	// StartDecay pulls it back toward that row instead of toward zero.
	Start      *Start
	StartDecay float64 // L2 pull of a known class's row to its start (default 10)
}

// Start is a head's starting point for the classes in Known; From names
// the base model's class each came from.
type Start struct {
	Head
	Known []bool
	From  []string
}

// Names lists the base model's classes the head starts from (none for a
// nil Start).
func (s *Start) Names() []string {
	if s == nil {
		return nil
	}
	var out []string
	for c, k := range s.Known {
		if k {
			out = append(out, s.From[c])
		}
	}
	return out
}

// Defaults returns o with unset fields filled in. The values were chosen
// by measurement: three CIFAR-10 trios (cat/dog/horse, airplane/
// automobile/ship, bird/deer/frog) of 20 training images per class on the
// shipped model's features, 200 held-out images per class, over weight
// decay 0.001–0.1, 50–300 epochs and lr 0.003–0.01: all within 1.5
// points, these the best (91.3 % on average). StartDecay: seven trios of
// classes the shipped model knows, two draws of 20 images each, over
// 0.03–10: the pull of 10 kept the base's own accuracy on the three
// classes (within 1 point, once above) where 0.03 lost 3–6 points of it
// on the hard trios (bench/RESULTS.md, eighth session).
func (o Options) Defaults() Options {
	if o.Epochs <= 0 {
		o.Epochs = 150
	}
	if o.LR <= 0 {
		o.LR = 0.01
	}
	if o.WeightDecay < 0 {
		o.WeightDecay = 0
	} else if o.WeightDecay == 0 {
		o.WeightDecay = 0.03
	}
	if o.StartDecay <= 0 {
		o.StartDecay = 10
	}
	return o
}

// Head is a trained linear classifier on features: logits = W·f + B, W
// one row of dim weights per class.
type Head struct {
	W   []float32
	B   []float32
	Dim int
}

// Predict returns the class whose logit is highest for one row of Dim
// features (the first on ties).
func (h *Head) Predict(row []float32) int {
	best, arg := float32(0), -1
	for c := range h.B {
		s := h.B[c]
		for j, v := range row[:h.Dim] {
			s += h.W[c*h.Dim+j] * v
		}
		if arg < 0 || s > best {
			best, arg = s, c
		}
	}
	return arg
}

// Train fits a softmax-regression head to the n rows of dim features and
// their labels (0 ≤ label < classes). The features are standardised while
// training and the standardisation is folded into W and B, so the head
// reads raw features. progress, when not nil, is called after each epoch
// with the mean cross-entropy; returning false stops training.
func Train(rows []float32, dim int, labels []int, classes int, o Options, progress func(epoch int, loss float64) bool) (*Head, error) {
	n := len(labels)
	switch {
	case classes < 2 || classes > MaxClasses:
		return nil, fmt.Errorf("finetune: %d classes: want 2 to %d", classes, MaxClasses)
	case dim <= 0 || n == 0 || len(rows) != n*dim:
		return nil, fmt.Errorf("finetune: %d feature values for %d images of %d", len(rows), n, dim)
	}
	for i, l := range labels {
		if l < 0 || l >= classes {
			return nil, fmt.Errorf("finetune: image %d has label %d of %d classes", i, l, classes)
		}
	}
	o = o.Defaults()
	// Standardise each feature.
	mean, inv := make([]float64, dim), make([]float64, dim)
	for i := range n {
		for j, v := range rows[i*dim : (i+1)*dim] {
			mean[j] += float64(v)
		}
	}
	for j := range mean {
		mean[j] /= float64(n)
	}
	for i := range n {
		for j, v := range rows[i*dim : (i+1)*dim] {
			d := float64(v) - mean[j]
			inv[j] += d * d
		}
	}
	for j := range inv {
		inv[j] = 1 / math.Sqrt(inv[j]/float64(n)+1e-6)
	}
	z := make([]float64, n*dim)
	for i := range n {
		for j, v := range rows[i*dim : (i+1)*dim] {
			z[i*dim+j] = (float64(v) - mean[j]) * inv[j]
		}
	}

	rng := rand.New(rand.NewPCG(o.Seed, 0x5eed))
	w := make([]float64, classes*dim)
	for i := range w {
		w[i] = rng.NormFloat64() * 0.01
	}
	b := make([]float64, classes)
	// anchor is what weight decay pulls toward: zero, or a known class's
	// starting row (in the standardised features' terms) with the pull
	// StartDecay.
	anchor := make([]float64, len(w))
	decay := make([]float64, classes)
	for c := range decay {
		decay[c] = o.WeightDecay
	}
	if st := o.Start; st != nil {
		if len(st.Known) != classes || st.Dim != dim || len(st.W) != classes*dim || len(st.B) != classes {
			return nil, fmt.Errorf("finetune: a start of %d classes × %d features for %d × %d", len(st.Known), st.Dim, classes, dim)
		}
		// W·f + b = (W/s)·((f−μ)·s) + (b + Σ W·μ).
		for c, known := range st.Known {
			if !known {
				continue
			}
			decay[c] = o.StartDecay
			b[c] = float64(st.B[c])
			for j := range dim {
				v := float64(st.W[c*dim+j])
				w[c*dim+j] = v / inv[j]
				anchor[c*dim+j] = w[c*dim+j]
				b[c] += v * mean[j]
			}
		}
	}
	gw, gb := make([]float64, len(w)), make([]float64, len(b))
	mw, vw := make([]float64, len(w)), make([]float64, len(w))
	mb, vb := make([]float64, len(b)), make([]float64, len(b))
	logits := make([]float64, classes)
	const beta1, beta2, eps = 0.9, 0.999, 1e-8
	for epoch := 1; epoch <= o.Epochs; epoch++ {
		clear(gw)
		clear(gb)
		loss := 0.0
		for i := range n {
			x := z[i*dim : (i+1)*dim]
			top := math.Inf(-1)
			for c := range classes {
				s := b[c]
				for j, v := range x {
					s += w[c*dim+j] * v
				}
				logits[c] = s
				top = max(top, s)
			}
			sum := 0.0
			for c := range logits {
				logits[c] = math.Exp(logits[c] - top)
				sum += logits[c]
			}
			loss -= math.Log(logits[labels[i]] / sum)
			for c := range classes {
				g := logits[c] / sum
				if c == labels[i] {
					g--
				}
				g /= float64(n)
				gb[c] += g
				row := gw[c*dim : (c+1)*dim]
				for j, v := range x {
					row[j] += g * v
				}
			}
		}
		for i := range gw {
			gw[i] += decay[i/dim] * (w[i] - anchor[i])
		}
		c1 := 1 - math.Pow(beta1, float64(epoch))
		c2 := 1 - math.Pow(beta2, float64(epoch))
		adam := func(p, g, m, v []float64) {
			for i := range p {
				m[i] = beta1*m[i] + (1-beta1)*g[i]
				v[i] = beta2*v[i] + (1-beta2)*g[i]*g[i]
				p[i] -= o.LR * (m[i] / c1) / (math.Sqrt(v[i]/c2) + eps)
			}
		}
		adam(w, gw, mw, vw)
		adam(b, gb, mb, vb)
		if progress != nil && !progress(epoch, loss/float64(n)) {
			break
		}
	}
	// Fold the standardisation: W·((f−μ)·s) + b = (W·s)·f + (b − Σ W·s·μ).
	h := &Head{W: make([]float32, len(w)), B: make([]float32, classes), Dim: dim}
	for c := range classes {
		shift := b[c]
		for j := range dim {
			ws := w[c*dim+j] * inv[j]
			h.W[c*dim+j] = float32(ws)
			shift -= ws * mean[j]
		}
		h.B[c] = float32(shift)
	}
	return h, nil
}

// NewFile returns the base weight file with its classifier replaced by
// head for the given classes: the spec's head layer gets len(classes)
// units and a bias, the file is float32, and the provenance names the
// base (its file name and SHA-256 of data, the base file's bytes).
func (e *Extractor) NewFile(head *Head, classes []string, baseName string, data []byte, prov models.Provenance) (*models.File, error) {
	if len(classes) < 2 || len(classes) > MaxClasses || len(head.B) != len(classes) || len(head.W) != len(classes)*head.Dim {
		return nil, fmt.Errorf("finetune: a head of %d biases and %d weights for %d classes", len(head.B), len(head.W), len(classes))
	}
	seen := map[string]bool{}
	for _, c := range classes {
		if c == "" || seen[c] {
			return nil, fmt.Errorf("finetune: class names must be distinct and non-empty: %q", classes)
		}
		seen[c] = true
	}
	base := e.Base
	f := &models.File{Meta: base.Meta, Tensors: map[string]*models.Tensor{}}
	f.Meta.Spec.Layers = slices.Clone(base.Meta.Spec.Layers)
	f.Meta.Classes = slices.Clone(classes)
	f.Meta.DType = models.Float32
	for i := range f.Meta.Spec.Layers {
		if l := &f.Meta.Spec.Layers[i]; l.Name == e.Head {
			l.Units, l.Bias = len(classes), true
		}
	}
	for name, t := range base.Tensors {
		if name == e.Head+".weight" || name == e.Head+".bias" {
			continue
		}
		f.Tensors[name] = t
	}
	f.Tensors[e.Head+".weight"] = &models.Tensor{Name: e.Head + ".weight", Shape: []int{len(classes), head.Dim}, Data: head.W}
	f.Tensors[e.Head+".bias"] = &models.Tensor{Name: e.Head + ".bias", Shape: []int{len(classes)}, Data: head.B}
	prov.BaseModel = fmt.Sprintf("%s sha256:%x", filepath.Base(baseName), sha256.Sum256(data))
	f.Meta.Provenance = prov
	if err := f.Validate(); err != nil {
		return nil, fmt.Errorf("finetune: the new file: %w", err)
	}
	return f, nil
}

// CrossValidate estimates how well a head trained on all n rows
// generalises when there are too few images to hold some out for good:
// the rows are split into folds stratified by label (every class in every
// fold), a head is trained on all folds but one and scored on that one,
// and the share of rows classified right over all folds is returned.
// Every class needs at least folds rows. progress, when not nil, is called
// after each epoch of each fold with the epochs done and the total.
func CrossValidate(rows []float32, dim int, labels []int, classes, folds int, o Options, progress func(done, total int) bool) (float64, error) {
	n := len(labels)
	if folds < 2 {
		return 0, fmt.Errorf("finetune: %d folds: want at least 2", folds)
	}
	if dim <= 0 || len(rows) != n*dim {
		return 0, fmt.Errorf("finetune: %d feature values for %d images of %d", len(rows), n, dim)
	}
	byClass := make([][]int, classes)
	for i, l := range labels {
		if l < 0 || l >= classes {
			return 0, fmt.Errorf("finetune: image %d has label %d of %d classes", i, l, classes)
		}
		byClass[l] = append(byClass[l], i)
	}
	fold := make([]int, n)
	rng := rand.New(rand.NewPCG(o.Seed, 0xf01d))
	for c, idx := range byClass {
		if len(idx) < folds {
			return 0, fmt.Errorf("finetune: class %d has %d images, fewer than the %d folds", c, len(idx), folds)
		}
		rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		for k, i := range idx {
			fold[i] = k % folds
		}
	}
	epochs := o.Defaults().Epochs
	correct := 0
	for f := range folds {
		var train []float32
		var trainLabels, held []int
		for i := range n {
			if fold[i] == f {
				held = append(held, i)
			} else {
				train = append(train, rows[i*dim:(i+1)*dim]...)
				trainLabels = append(trainLabels, labels[i])
			}
		}
		var each func(int, float64) bool
		if progress != nil {
			each = func(epoch int, _ float64) bool { return progress(f*epochs+epoch, folds*epochs) }
		}
		h, err := Train(train, dim, trainLabels, classes, o, each)
		if err != nil {
			return 0, fmt.Errorf("finetune: fold %d: %w", f+1, err)
		}
		for _, i := range held {
			if h.Predict(rows[i*dim:(i+1)*dim]) == labels[i] {
				correct++
			}
		}
	}
	return float64(correct) / float64(n), nil
}

// HeadProvenance is the provenance of a weight file made by NewFile from
// a head trained with o on trained images of dataset, its accuracy
// measured on held images (held-out or, with folds > 0, by folds-fold
// cross-validation), so that the trainer's and the page's files say the
// same things the same way. NewFile adds the base model.
func HeadProvenance(dataset string, o Options, trained, held, folds int, accuracy, seconds float64) models.Provenance {
	how := fmt.Sprintf("val_accuracy on %d held-out images", held)
	if folds > 0 {
		how = fmt.Sprintf("val_accuracy by %d-fold cross-validation over the %d images", folds, held)
	}
	notes := fmt.Sprintf("classifier head fine-tuned on %d images, backbone frozen; %s", trained, how)
	if o.Start != nil {
		notes += fmt.Sprintf("; started from the base model's rows for %s", strings.Join(o.Start.Names(), ", "))
	}
	return models.Provenance{
		Dataset: dataset, Recipe: "head-only", Epochs: o.Defaults().Epochs,
		ValAccuracy: accuracy, TrainSeconds: seconds, Notes: notes,
	}
}
