package models

import (
	"fmt"
	"slices"
)

// Test-time augmentations a weight file can ask for (Meta.Inference.TTA).
const (
	TTAFlip      = "flip"      // average with the horizontal mirror image
	TTATranslate = "translate" // also average views shifted by one pixel
)

// PredictTTA classifies one normalised CHW image with the test-time
// augmentations of the model's metadata, combining views as airbench does:
// logits are averaged over the image and its mirror; with translate, that
// average counts half and the mirrored pair of each of the two views shifted
// one pixel diagonally (reflect padding) a quarter each. Without
// augmentations it is Predict. The returned slice is reused by the next call.
func (p *Predictor) PredictTTA(x []float32) ([]float32, error) {
	return p.PredictTTAFirst(x, nil)
}

// PredictTTAFirst is PredictTTA that runs the image itself, the first
// view, on its own and hands first its prediction (what Predict returns)
// before running the others, so that a caller can show an answer while
// they run. The result is PredictTTA's exactly: the views' logits are
// added in the same order. first's slice is valid only during the call;
// without augmentations first is not called. With first nil the views
// run as one batch.
func (p *Predictor) PredictTTAFirst(x []float32, first func(plain []float32)) ([]float32, error) {
	n, err := p.m.TTAViews()
	if err != nil {
		return nil, err
	}
	if n == 1 {
		return p.Predict(x)
	}
	sum := p.ttaSum()
	if first == nil {
		err = p.addViews(x, 0, n, sum)
	} else if err = p.addViews(x, 0, 1, sum); err == nil {
		first(p.probs[:p.m.classes]) // the first view is x unchanged: Predict(x)
		err = p.addViews(x, 1, n, sum)
	}
	if err != nil {
		return nil, err
	}
	p.m.FinishTTA(sum)
	return sum, nil
}

// TTAViews is the number of views the model's test-time augmentations
// make of an image: 1 without any, 2 for flip, 3 for translate, 6 for both.
func (m *Model) TTAViews() (int, error) {
	flip, translate, err := m.ttaOptions()
	if err != nil {
		return 0, err
	}
	n := 1
	if flip {
		n *= 2
	}
	if translate {
		n *= 3
	}
	return n, nil
}

func (m *Model) ttaOptions() (flip, translate bool, err error) {
	for _, t := range m.Meta.Inference.TTA {
		switch t {
		case TTAFlip:
			flip = true
		case TTATranslate:
			translate = true
		default:
			return false, false, fmt.Errorf("predict: unknown test-time augmentation %q", t)
		}
	}
	return flip, translate, nil
}

// PredictTTAPart runs part of PredictTTA, so that the views of one image
// can be computed on several workers at once: of the TTAViews() views, in
// PredictTTA's order, part number part of parts (contiguous, as even as
// can be) goes through the network, and the weighted sum of their logits
// is returned. Adding the parts' sums in part order and passing the total
// to FinishTTA gives PredictTTA's probabilities up to float rounding
// (exactly them for parts = 1). The returned slice is reused by the next
// call.
func (p *Predictor) PredictTTAPart(x []float32, part, parts int) ([]float32, error) {
	n, err := p.m.TTAViews()
	if err != nil {
		return nil, err
	}
	if parts < 1 || parts > n || part < 0 || part >= parts {
		return nil, fmt.Errorf("predict: part %d of %d, but there are %d views", part, parts, n)
	}
	sum := p.ttaSum()
	if err := p.addViews(x, part*n/parts, (part+1)*n/parts, sum); err != nil {
		return nil, err
	}
	return sum, nil
}

// ttaSum is the zeroed buffer the views' weighted logits are added into.
func (p *Predictor) ttaSum() []float32 {
	c := p.m.classes
	if cap(p.sum) < c {
		p.sum = make([]float32, c)
	}
	sum := p.sum[:c]
	clear(sum)
	return sum
}

// addViews runs views [lo, hi) of PredictTTA's views of x through the
// network as one batch and adds their weighted logits to sum, in view
// order.
func (p *Predictor) addViews(x []float32, lo, hi int, sum []float32) error {
	flip, translate, err := p.m.ttaOptions()
	if err != nil {
		return err
	}
	in := p.m.Meta.Spec.Input
	size := in.Size()
	if len(x) != size {
		return fmt.Errorf("predict: input has %d values, want %v = %d", len(x), in, size)
	}
	// Views: the image, then its shifts by (-1,-1) and (+1,+1); each
	// followed by its mirror when flipping.
	views := [3][2]int{{0, 0}, {-1, -1}, {1, 1}}
	weights := [3]float32{0.5, 0.25, 0.25}
	if !translate {
		weights[0] = 1
	}
	per := 1
	if flip {
		per = 2
	}
	if cap(p.views) < (hi-lo)*size {
		p.views = make([]float32, (hi-lo)*size)
	}
	buf := p.views[:(hi-lo)*size]
	for i := lo; i < hi; i++ {
		v, k := i/per, i%per
		dst := buf[(i-lo)*size : (i-lo+1)*size]
		switch {
		case k == 0:
			shift(x, dst, in, views[v][0], views[v][1])
		case i > lo: // the view before is the same shift, unmirrored
			mirror(buf[(i-lo-1)*size:(i-lo)*size], dst, in)
		default: // a part that starts with a mirrored view
			shift(x, dst, in, views[v][0], views[v][1])
			mirrorInPlace(dst, in)
		}
	}
	if _, err := p.PredictBatch(buf, hi-lo); err != nil {
		return err
	}
	c := p.m.classes
	logits := p.Logits()
	for i := lo; i < hi; i++ {
		w := weights[i/per] / float32(per)
		row := logits[(i-lo)*c : (i-lo+1)*c]
		for j := range sum {
			sum[j] += w * row[j]
		}
	}
	return nil
}

// EndsWithSoftmax reports whether the network's last layer is a softmax,
// the step FinishTTA applies (for a host that adds the parts itself).
func (m *Model) EndsWithSoftmax() bool { return m.softmax }

// FinishTTA turns the summed weighted logits of PredictTTAPart into
// probabilities in place: a softmax when the network ends with one.
func (m *Model) FinishTTA(sum []float32) {
	if m.softmax {
		softmax(sum)
	}
}

// shift copies src to dst moved by (dy, dx) pixels: dst(y, x) =
// src(y+dy, x+dx), reflecting at the borders like PyTorch's reflect padding.
func shift(src, dst []float32, s Shape, dy, dx int) {
	reflect := func(i, n int) int {
		if i < 0 {
			return -i
		}
		if i >= n {
			return 2*(n-1) - i
		}
		return i
	}
	for c := 0; c < s.C; c++ {
		plane := src[c*s.H*s.W : (c+1)*s.H*s.W]
		out := dst[c*s.H*s.W : (c+1)*s.H*s.W]
		for y := 0; y < s.H; y++ {
			row := plane[reflect(y+dy, s.H)*s.W:]
			for x := 0; x < s.W; x++ {
				out[y*s.W+x] = row[reflect(x+dx, s.W)]
			}
		}
	}
}

// mirror writes the horizontal mirror image of src to dst.
func mirror(src, dst []float32, s Shape) {
	for r := 0; r < s.C*s.H; r++ {
		a, b := src[r*s.W:(r+1)*s.W], dst[r*s.W:(r+1)*s.W]
		for x := range a {
			b[s.W-1-x] = a[x]
		}
	}
}

// mirrorInPlace mirrors every row of v horizontally.
func mirrorInPlace(v []float32, s Shape) {
	for r := 0; r < s.C*s.H; r++ {
		slices.Reverse(v[r*s.W : (r+1)*s.W])
	}
}
