// Package baselines trains the classical reference classifiers that the
// CNNs are compared with, on flattened pixels: multinomial logistic
// regression, a linear SVM and a random forest.
package baselines

import (
	"fmt"
	"math"

	"github.com/cifarnet-go/cifarnet/trainer/internal/cifar"
)

// Dataset is a set of labelled examples with D features of 8 bits each,
// stored row by row: example i is X[i*D:(i+1)*D]. For CIFAR-10 the
// features are the 3072 pixels of an image in the files' CHW order.
type Dataset struct {
	X       []byte
	Y       []int
	D       int
	Classes int
}

// Len is the number of examples.
func (d *Dataset) Len() int { return len(d.Y) }

// Row returns the features of example i; the slice aliases the set.
func (d *Dataset) Row(i int) []byte { return d.X[i*d.D : (i+1)*d.D : (i+1)*d.D] }

// Validate checks that the sizes agree and the labels are in range.
func (d *Dataset) Validate() error {
	if d.D <= 0 {
		return fmt.Errorf("baselines: %d features", d.D)
	}
	if d.Classes < 2 {
		return fmt.Errorf("baselines: %d classes, need at least 2", d.Classes)
	}
	if len(d.X) != len(d.Y)*d.D {
		return fmt.Errorf("baselines: %d bytes for %d examples of %d features", len(d.X), len(d.Y), d.D)
	}
	for i, y := range d.Y {
		if y < 0 || y >= d.Classes {
			return fmt.Errorf("baselines: example %d has label %d outside 0..%d", i, y, d.Classes-1)
		}
	}
	return nil
}

// FromSet views a CIFAR set as a dataset of flattened images (no copy of
// the pixels). Limit > 0 keeps only the first limit images.
func FromSet(s *cifar.Set, limit int) *Dataset {
	n := s.Len()
	if limit > 0 && limit < n {
		n = limit
	}
	y := make([]int, n)
	for i := range y {
		y[i] = int(s.Labels[i])
	}
	classes := len(s.Classes)
	if classes == 0 {
		classes = cifar.NumClasses
	}
	return &Dataset{X: s.Images[:n*cifar.ImageSize], Y: y, D: cifar.ImageSize, Classes: classes}
}

// Standardizer maps each feature to zero mean and unit variance with
// statistics of the training set, as scikit-learn's StandardScaler does.
type Standardizer struct {
	Mean   []float32
	InvStd []float32 // 1/std, or 1 for a constant feature (which maps to 0)
}

// FitStandardizer computes per-feature statistics of d. Sums are exact
// integers, so the result does not depend on summation order.
func FitStandardizer(d *Dataset) *Standardizer {
	sum := make([]uint64, d.D)
	sq := make([]uint64, d.D)
	for i := range d.Len() {
		for f, v := range d.Row(i) {
			sum[f] += uint64(v)
			sq[f] += uint64(v) * uint64(v)
		}
	}
	s := &Standardizer{Mean: make([]float32, d.D), InvStd: make([]float32, d.D)}
	n := float64(max(d.Len(), 1))
	for f := range d.D {
		m := float64(sum[f]) / n
		v := float64(sq[f])/n - m*m
		s.Mean[f] = float32(m)
		s.InvStd[f] = 1
		if v > 1e-12 {
			s.InvStd[f] = float32(1 / math.Sqrt(v))
		}
	}
	return s
}

// Transform writes the standardised features of row into dst.
func (s *Standardizer) Transform(dst []float32, row []byte) {
	mean, inv := s.Mean[:len(row)], s.InvStd[:len(row)]
	dst = dst[:len(row)]
	for f, v := range row {
		dst[f] = (float32(v) - mean[f]) * inv[f]
	}
}
