package cifar

import (
	"math"
	"slices"
	"testing"
)

var identity = struct{ mean, std [3]float32 }{[3]float32{0, 0, 0}, [3]float32{1, 1, 1}}

// collect runs one epoch and copies out its batches.
func collect(t *testing.T, l *Loader, epoch int) []Batch {
	t.Helper()
	var out []Batch
	for b := range l.Epoch(epoch) {
		out = append(out, Batch{X: slices.Clone(b.X), Y: slices.Clone(b.Y), N: b.N, Index: b.Index})
		l.Release(b)
	}
	return out
}

func equalBatches(a, b []Batch) bool {
	return slices.EqualFunc(a, b, func(x, y Batch) bool {
		return x.N == y.N && x.Index == y.Index && slices.Equal(x.X, y.X) && slices.Equal(x.Y, y.Y)
	})
}

// pixel recovers the byte behind a value normalised with mean 0, std 1.
func pixel(v float32) int { return int(math.Round(float64(v) * 255)) }

func TestLoaderEpochCoversEveryImageOnce(t *testing.T) {
	s := syntheticSet(1003)
	l := NewLoader(s, 100, Augment{}, identity.mean, identity.std, 1, 3)
	if l.Batches() != 11 {
		t.Fatalf("Batches() = %d, want 11", l.Batches())
	}
	batches := collect(t, l, 0)
	if len(batches) != 11 || batches[10].N != 3 || len(batches[10].X) != 3*ImageSize || len(batches[10].Y) != 3 {
		t.Fatalf("got %d batches, last with N=%d; want 11, last holding the 3 left over", len(batches), batches[len(batches)-1].N)
	}
	seen := make([]int, s.Len())
	var order []int
	for bi, b := range batches {
		if b.Index != bi {
			t.Fatalf("batch %d has Index %d", bi, b.Index)
		}
		for i := range b.N {
			img := b.X[i*ImageSize : (i+1)*ImageSize]
			id := pixel(img[0]) | pixel(img[1])<<8
			seen[id]++
			order = append(order, id)
			if int(b.Y[i]) != id%10 {
				t.Fatalf("image %d carries label %d, want %d", id, b.Y[i], id%10)
			}
			for k, v := range img {
				if pixel(v) != int(s.Image(id)[k]) {
					t.Fatalf("image %d pixel %d is %d, want %d", id, k, pixel(v), s.Image(id)[k])
				}
			}
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("image %d seen %d times in an epoch", id, n)
		}
	}
	if slices.IsSorted(order) {
		t.Error("training epoch is not shuffled")
	}
	other := collect(t, l, 1)
	if equalBatches(batches, other) {
		t.Error("epochs 0 and 1 have the same order")
	}
}

func TestLoaderDeterministic(t *testing.T) {
	s := syntheticSet(517)
	aug := Augment{Crop: 4, Flip: true}
	mean, std := [3]float32{0.5, 0.4, 0.3}, [3]float32{0.2, 0.25, 0.3}
	ref := collect(t, NewLoader(s, 64, aug, mean, std, 9, 1), 3)
	for _, workers := range []int{2, 5, 16} {
		got := collect(t, NewLoader(s, 64, aug, mean, std, 9, workers), 3)
		if !equalBatches(ref, got) {
			t.Errorf("%d workers give different batches from 1 worker", workers)
		}
	}
	again := NewLoader(s, 64, aug, mean, std, 9, 4)
	collect(t, again, 0) // an earlier epoch must not change epoch 3
	if !equalBatches(ref, collect(t, again, 3)) {
		t.Error("epoch 3 differs after running epoch 0 first")
	}
	if equalBatches(ref, collect(t, NewLoader(s, 64, aug, mean, std, 10, 4), 3)) {
		t.Error("seeds 9 and 10 give the same batches")
	}
}

func TestLoaderNormalisation(t *testing.T) {
	s := &Set{Images: make([]byte, ImageSize), Labels: []uint8{4}}
	img := s.Image(0)
	for c := range Channels {
		for k := range PlaneSize {
			img[c*PlaneSize+k] = byte(k)
		}
	}
	mean, std := [3]float32{0.4914, 0.4822, 0.4465}, [3]float32{0.2470, 0.2435, 0.2616}
	b := collect(t, NewEvalLoader(s, 8, mean, std, 2), 0)
	if len(b) != 1 || b[0].N != 1 || b[0].Y[0] != 4 {
		t.Fatalf("eval of one image: %+v", b)
	}
	for c := range Channels {
		for _, v := range []int{0, 1, 128, 255} {
			want := (float32(v)/255 - mean[c]) / std[c]
			if got := b[0].X[c*PlaneSize+v]; math.Abs(float64(got-want)) > 1e-6 {
				t.Errorf("channel %d byte %d → %g, want %g", c, v, got, want)
			}
		}
	}
}

func TestEvalLoaderKeepsOrder(t *testing.T) {
	s := syntheticSet(250)
	l := NewEvalLoader(s, 64, identity.mean, identity.std, 3)
	var ids []int
	for b := range l.Epoch(5) {
		for i := range b.N {
			if !slices.Equal(toBytes(b.X[i*ImageSize:(i+1)*ImageSize]), s.Image(len(ids))) {
				t.Fatalf("eval image %d altered", len(ids))
			}
			ids = append(ids, len(ids))
		}
		l.Release(b)
	}
	if len(ids) != 250 {
		t.Fatalf("eval epoch yielded %d images, want 250", len(ids))
	}
}

func toBytes(x []float32) []byte {
	out := make([]byte, len(x))
	for i, v := range x {
		out[i] = byte(pixel(v))
	}
	return out
}

// reference crops the padded image at (oy, ox) and mirrors it, written
// the obvious way (build the padded image, then cut) to check the
// augmentation's index arithmetic: zero padding, or reflect padding when
// reflect is set.
func reference(src []byte, pad, oy, ox int, flip, reflect bool) []byte {
	w := Side + 2*pad
	source := func(i int) int { // index into the source for padded index i, -1 for zero
		i -= pad
		switch {
		case i >= 0 && i < Side:
			return i
		case !reflect:
			return -1
		case i < 0:
			return -i
		default:
			return 2*(Side-1) - i
		}
	}
	out := make([]byte, ImageSize)
	for c := range Channels {
		padded := make([]byte, w*w)
		for y := range w {
			for x := range w {
				if sy, sx := source(y), source(x); sy >= 0 && sx >= 0 {
					padded[y*w+x] = src[c*PlaneSize+sy*Side+sx]
				}
			}
		}
		for y := range Side {
			for x := range Side {
				v := padded[(y+oy)*w+x+ox]
				if flip {
					out[c*PlaneSize+y*Side+Side-1-x] = v
				} else {
					out[c*PlaneSize+y*Side+x] = v
				}
			}
		}
	}
	return out
}

func TestAugmentCropFlip(t *testing.T) {
	const pad = 4
	// Labels number the images, so each output names its source.
	s := &Set{Images: make([]byte, 256*ImageSize), Labels: make([]uint8, 256)}
	for i := range s.Len() {
		s.Labels[i] = uint8(i)
		img := s.Image(i)
		for k := range img {
			img[k] = byte(1 + (k*13+i)%250) // never 0, so padding shows
		}
	}
	l := NewLoader(s, 32, Augment{Crop: pad, Flip: true}, identity.mean, identity.std, 3, 2)
	flips := 0
	offsets := make(map[[2]int]bool)
	for b := range l.Epoch(0) {
		for i := range b.N {
			got := toBytes(b.X[i*ImageSize : (i+1)*ImageSize])
			src := s.Image(int(b.Y[i]))
			found := false
			for oy := 0; oy <= 2*pad && !found; oy++ {
				for ox := 0; ox <= 2*pad && !found; ox++ {
					for _, flip := range []bool{false, true} {
						if slices.Equal(got, reference(src, pad, oy, ox, flip, false)) {
							found = true
							offsets[[2]int{oy, ox}] = true
							if flip {
								flips++
							}
							break
						}
					}
				}
			}
			if !found {
				t.Fatalf("batch %d image %d (source %d) is no crop/flip of it", b.Index, i, b.Y[i])
			}
		}
		l.Release(b)
		if b.Index == 1 {
			break // 64 images are enough; also exercises stopping early
		}
	}
	if flips < 16 || flips > 48 {
		t.Errorf("%d of 64 images flipped, want about half", flips)
	}
	if len(offsets) < 20 {
		t.Errorf("only %d distinct crop offsets in 64 images", len(offsets))
	}
}

func TestTransformCorners(t *testing.T) {
	src := make([]byte, ImageSize)
	for k := range src {
		src[k] = byte(1 + k%200)
	}
	l := NewLoader(&Set{}, 1, Augment{}, identity.mean, identity.std, 0, 1)
	dst := make([]float32, ImageSize)
	for _, tc := range []struct {
		dx, dy int
		flip   bool
	}{{-4, -4, false}, {4, 4, true}, {0, 0, true}, {3, -2, false}, {-1, 4, true}} {
		l.transform(dst, src, tc.dx, tc.dy, tc.flip)
		want := reference(src, 4, tc.dy+4, tc.dx+4, tc.flip, false)
		if got := toBytes(dst); !slices.Equal(got, want) {
			t.Errorf("dx=%d dy=%d flip=%v: result differs from pad+crop+mirror", tc.dx, tc.dy, tc.flip)
		}
	}
}

func TestLoaderRecyclesBuffers(t *testing.T) {
	s := syntheticSet(6400)
	l := NewLoader(s, 64, Augment{Crop: 4, Flip: true}, identity.mean, identity.std, 1, 2)
	run := func() {
		for b := range l.Epoch(0) {
			l.Release(b)
		}
	}
	run()
	// 100 batches per epoch: a fixed overhead (order, channels,
	// goroutines) is fine, an allocation per batch is not.
	if allocs := testing.AllocsPerRun(3, run); allocs > 40 {
		t.Errorf("%.0f allocations per epoch of 100 batches", allocs)
	}
}

func BenchmarkLoaderEpoch(b *testing.B) {
	s := syntheticSet(10000)
	l := NewLoader(s, 128, Augment{Crop: 4, Flip: true}, identity.mean, identity.std, 1, 2)
	b.SetBytes(int64(s.Len() * ImageSize))
	b.ReportAllocs()
	for b.Loop() {
		for batch := range l.Epoch(0) {
			l.Release(batch)
		}
	}
}
