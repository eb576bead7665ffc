package models

import "fmt"

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
	tta := p.m.Meta.Inference.TTA
	flip, translate := false, false
	for _, t := range tta {
		switch t {
		case TTAFlip:
			flip = true
		case TTATranslate:
			translate = true
		default:
			return nil, fmt.Errorf("predict: unknown test-time augmentation %q", t)
		}
	}
	if !flip && !translate {
		return p.Predict(x)
	}
	in := p.m.Meta.Spec.Input
	size := in.Size()
	if len(x) != size {
		return nil, fmt.Errorf("predict: input has %d values, want %v = %d", len(x), in, size)
	}
	// Views: the image, then its shifts by (-1,-1) and (+1,+1); each
	// followed by its mirror when flipping.
	views := [3][2]int{{0, 0}, {-1, -1}, {1, 1}}
	weights := [3]float32{0.5, 0.25, 0.25}
	nviews := 3
	if !translate {
		nviews, weights[0] = 1, 1
	}
	per := 1
	if flip {
		per = 2
	}
	n := nviews * per
	if cap(p.views) < n*size {
		p.views = make([]float32, n*size)
	}
	buf := p.views[:n*size]
	for v, d := range views[:nviews] {
		dst := buf[v*per*size : (v*per+1)*size]
		shift(x, dst, in, d[0], d[1])
		if flip {
			mirror(dst, buf[(v*per+1)*size:(v*per+2)*size], in)
		}
	}
	if _, err := p.PredictBatch(buf, n); err != nil {
		return nil, err
	}
	c := p.m.classes
	logits := p.Logits()
	out := p.probs[:c] // row 0 of probs is free to overwrite now
	clear(out)
	for v := range nviews {
		w := weights[v] / float32(per)
		for k := 0; k < per; k++ {
			row := logits[(v*per+k)*c : (v*per+k+1)*c]
			for j := range out {
				out[j] += w * row[j]
			}
		}
	}
	if p.m.softmax {
		softmax(out)
	}
	return out, nil
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
