package cifar

import (
	"slices"
	"testing"
)

// numberedSet holds n images whose labels are their indices and whose
// pixels differ between images and positions.
func numberedSet(n int) *Set {
	s := &Set{Images: make([]byte, n*ImageSize), Labels: make([]uint8, n)}
	for i := range n {
		s.Labels[i] = uint8(i)
		img := s.Image(i)
		for k := range img {
			img[k] = byte(1 + (k*13+i*7)%250)
		}
	}
	return s
}

// TestAugmentTranslateAlternateFlip checks that every training image is a
// crop of its reflect-padded source within ±2 pixels, and that flips
// alternate: a random half in epoch 1, each image's orientation reversed
// in epoch 2 and back in epoch 3.
func TestAugmentTranslateAlternateFlip(t *testing.T) {
	const pad, n = 2, 200
	s := numberedSet(n)
	l := NewLoader(s, 50, Augment{Translate: pad, Flip: true, AlternateFlip: true}, identity.mean, identity.std, 5, 2)
	flipped := make([][]bool, 4) // by epoch, by image
	offsets := map[[2]int]bool{}
	for epoch := 1; epoch <= 3; epoch++ {
		flipped[epoch] = make([]bool, n)
		seen := 0
		for _, b := range collect(t, l, epoch) {
			for i := range b.N {
				got := toBytes(b.X[i*ImageSize : (i+1)*ImageSize])
				id := int(b.Y[i])
				found := false
				for oy := 0; oy <= 2*pad && !found; oy++ {
					for ox := 0; ox <= 2*pad && !found; ox++ {
						for _, flip := range []bool{false, true} {
							if slices.Equal(got, reference(s.Image(id), pad, oy, ox, flip, true)) {
								found, flipped[epoch][id] = true, flip
								offsets[[2]int{oy, ox}] = true
								break
							}
						}
					}
				}
				if !found {
					t.Fatalf("epoch %d: image %d is no reflect-padded crop of its source", epoch, id)
				}
				if flipped[epoch][id] != AlternateFlip(5, id, epoch) {
					t.Fatalf("epoch %d: image %d flipped %v, AlternateFlip says %v", epoch, id, flipped[epoch][id], !flipped[epoch][id])
				}
				seen++
			}
		}
		if seen != n {
			t.Fatalf("epoch %d: %d images, want %d", epoch, seen, n)
		}
	}
	first := 0
	for id := range n {
		if flipped[1][id] {
			first++
		}
		if flipped[2][id] == flipped[1][id] || flipped[3][id] != flipped[1][id] {
			t.Errorf("image %d flipped %v, %v, %v in epochs 1-3: does not alternate", id, flipped[1][id], flipped[2][id], flipped[3][id])
		}
	}
	if first < 70 || first > 130 {
		t.Errorf("%d of %d images flipped in epoch 1, want about half", first, n)
	}
	if len(offsets) != 25 {
		t.Errorf("%d distinct offsets over 600 images, want all 25 of ±%d", len(offsets), pad)
	}
	if !equalBatches(collect(t, l, 2), collect(t, NewLoader(s, 50, Augment{Translate: pad, Flip: true, AlternateFlip: true}, identity.mean, identity.std, 5, 1), 2)) {
		t.Error("translated epoch depends on the number of workers")
	}
}

func TestLoaderDropLast(t *testing.T) {
	s := numberedSet(230)
	l := NewLoader(s, 64, Augment{}, identity.mean, identity.std, 1, 2)
	if got := len(collect(t, l, 1)); got != 4 || l.Batches() != 4 {
		t.Errorf("%d batches (Batches %d), want 4 with the short one", got, l.Batches())
	}
	l.DropLast = true
	batches := collect(t, l, 1)
	if len(batches) != 3 || l.Batches() != 3 {
		t.Fatalf("%d batches (Batches %d) with DropLast, want 3", len(batches), l.Batches())
	}
	ids := map[uint8]bool{}
	for _, b := range batches {
		if b.N != 64 {
			t.Errorf("batch %d holds %d images with DropLast", b.Index, b.N)
		}
		for _, y := range b.Y[:b.N] {
			ids[y] = true
		}
	}
	if len(ids) != 192 {
		t.Errorf("%d distinct images in 3 batches of 64", len(ids))
	}
}
