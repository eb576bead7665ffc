package cifar

import (
	"testing"
)

// smoothSet holds n images of smooth colour gradients, which JPEG at a
// high quality keeps nearly exact, as it does photos.
func smoothSet(n int) *Set {
	s := &Set{Images: make([]byte, n*ImageSize), Labels: make([]uint8, n)}
	for i := range n {
		s.Labels[i] = uint8(i)
		img := s.Image(i)
		for c := range Channels {
			for y := range Side {
				for x := range Side {
					img[c*PlaneSize+y*Side+x] = byte(30 + 3*x + (2+c)*y + i%20)
				}
			}
		}
	}
	return s
}

// jpegDiffs runs one epoch with the JPEG augmentation alone and returns
// each image's mean absolute difference from its source, by label.
func jpegDiffs(t *testing.T, s *Set, a JPEGAugment, workers int) []float64 {
	t.Helper()
	l := NewLoader(s, 50, Augment{JPEG: a}, identity.mean, identity.std, 3, workers)
	diffs := make([]float64, s.Len())
	for _, b := range collect(t, l, 1) {
		for i := range b.N {
			got := toBytes(b.X[i*ImageSize : (i+1)*ImageSize])
			src := s.Image(int(b.Y[i]))
			var sum int
			for k, v := range got {
				sum += max(int(v)-int(src[k]), int(src[k])-int(v))
			}
			diffs[b.Y[i]] = float64(sum) / ImageSize
		}
	}
	return diffs
}

func mean(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

func TestAugmentJPEG(t *testing.T) {
	s := smoothSet(200)
	high := jpegDiffs(t, s, JPEGAugment{Prob: 1, MinQuality: 95, MaxQuality: 95}, 2)
	low := jpegDiffs(t, s, JPEGAugment{Prob: 1, MinQuality: 5, MaxQuality: 5}, 2)
	for i, d := range high {
		if d == 0 || d > 3 {
			t.Fatalf("image %d at quality 95: mean |Δ| = %.2f, want a small non-zero change", i, d)
		}
	}
	if mean(low) < 2*mean(high) {
		t.Errorf("quality 5 changes images by %.2f on average, quality 95 by %.2f: want clearly more", mean(low), mean(high))
	}
	t.Logf("mean |Δ|: quality 95 %.2f, quality 5 %.2f", mean(high), mean(low))

	half := jpegDiffs(t, s, JPEGAugment{Prob: 0.5, MinQuality: 30, MaxQuality: 90}, 3)
	changed := 0
	for _, d := range half {
		if d > 0 {
			changed++
		}
	}
	if changed < 60 || changed > 140 {
		t.Errorf("probability 0.5 re-encoded %d of 200 images", changed)
	}
	for i, d := range jpegDiffs(t, s, JPEGAugment{Prob: 0.5, MinQuality: 30, MaxQuality: 90}, 1) {
		if d != half[i] {
			t.Fatalf("image %d: 1 worker gives mean |Δ| %.3f, 3 workers %.3f", i, d, half[i])
		}
	}
}

// Turning the JPEG augmentation off must leave a recipe's other random
// augmentations exactly as they were.
func TestAugmentJPEGOffKeepsDraws(t *testing.T) {
	s := numberedSet(120)
	aug := Augment{Translate: 2, Flip: true}
	off := aug
	off.JPEG = JPEGAugment{MinQuality: 10, MaxQuality: 90}
	if !equalBatches(collect(t, NewLoader(s, 40, aug, identity.mean, identity.std, 4, 2), 1),
		collect(t, NewLoader(s, 40, off, identity.mean, identity.std, 4, 2), 1)) {
		t.Error("a JPEG augmentation with probability 0 changed the batches")
	}
}

func TestJPEGAugmentValidate(t *testing.T) {
	for _, a := range []JPEGAugment{
		{Prob: -0.1}, {Prob: 1.5},
		{Prob: 0.5, MinQuality: 0, MaxQuality: 90},
		{Prob: 0.5, MinQuality: 50, MaxQuality: 101},
		{Prob: 0.5, MinQuality: 80, MaxQuality: 40},
	} {
		if a.Validate() == nil {
			t.Errorf("%+v: accepted", a)
		}
	}
	for _, a := range []JPEGAugment{{}, {Prob: 0.5, MinQuality: 40, MaxQuality: 95}, {Prob: 1, MinQuality: 75, MaxQuality: 75}} {
		if err := a.Validate(); err != nil {
			t.Errorf("%+v: %v", a, err)
		}
	}
}
