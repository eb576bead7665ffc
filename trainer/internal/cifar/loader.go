package cifar

import (
	"iter"
	"math/rand/v2"
	"sync"
)

// Augment selects the random training augmentations.
type Augment struct {
	// Crop is the padding of a pad-and-random-crop: the image is padded
	// with Crop black pixels on each side and a random 32×32 window is
	// cut out, as torchvision's RandomCrop(32, padding=Crop) applied
	// before normalisation. 0 turns it off.
	Crop int
	// Flip mirrors half of the images horizontally (after the crop).
	Flip bool
	// Translate is the padding of a random translation: like Crop, but
	// the image is padded by reflection (PyTorch's 'reflect' mode, the
	// edge pixel not repeated), as airbench does, so no black borders
	// appear. 0 turns it off; it excludes Crop.
	Translate int
	// AlternateFlip, with Flip, replaces random flips by airbench's
	// alternating flips: each image is mirrored in every other epoch,
	// starting from a random half of the images in epoch 1, so that
	// over any two epochs every image is seen both ways.
	AlternateFlip bool
	// JPEG re-encodes a share of the images first (see JPEGAugment).
	JPEG JPEGAugment
}

// Batch is a mini-batch of normalised images in NCHW order.
type Batch struct {
	X     []float32 // N×3×32×32
	Y     []uint8   // N labels
	N     int       // images in this batch; the last one of an epoch may be short
	Index int       // position of the batch within its epoch
}

// Loader produces the batches of one epoch at a time, preparing them in
// background goroutines. The batches of an epoch depend only on the seed
// and the epoch number, never on the number of workers.
type Loader struct {
	set     *Set
	size    int
	aug     Augment
	shuffle bool
	seed    int64
	workers int
	lut     [Channels][256]float32 // byte → normalised value per channel
	free    chan *Batch            // released batches for reuse

	// DropLast leaves out the last batch of an epoch when it would be
	// short, so that every step sees the same number of images. Set it
	// before the first Epoch call.
	DropLast bool
}

// NewLoader returns a training loader: each epoch visits every image once
// in an order shuffled by (seed, epoch), with the augmentations aug, and
// normalises pixels v/255 with (v/255 - mean) / std. The last batch of an
// epoch holds the remainder when the set size is not a multiple of
// batchSize. std must be positive; workers < 1 means 1.
func NewLoader(s *Set, batchSize int, aug Augment, mean, std [3]float32, seed int64, workers int) *Loader {
	workers = max(workers, 1)
	l := &Loader{
		set:     s,
		size:    max(batchSize, 1),
		aug:     Augment{Crop: max(aug.Crop, 0), Flip: aug.Flip, Translate: max(aug.Translate, 0), AlternateFlip: aug.AlternateFlip, JPEG: aug.JPEG},
		shuffle: true,
		seed:    seed,
		workers: workers,
		free:    make(chan *Batch, 2*workers+4),
	}
	for c := range Channels {
		for v := range 256 {
			l.lut[c][v] = (float32(v)/255 - mean[c]) / std[c]
		}
	}
	return l
}

// NewEvalLoader returns a loader for evaluation: images in set order, no
// augmentation, the same normalisation as training.
func NewEvalLoader(s *Set, batchSize int, mean, std [3]float32, workers int) *Loader {
	l := NewLoader(s, batchSize, Augment{}, mean, std, 0, workers)
	l.shuffle = false
	return l
}

// Batches is the number of batches in an epoch.
func (l *Loader) Batches() int {
	if l.DropLast {
		return l.set.Len() / l.size
	}
	return (l.set.Len() + l.size - 1) / l.size
}

// Epoch returns the batches of the given epoch in order. Stopping the loop
// early stops the workers. Pass each batch to Release once done with it so
// that its buffers are reused; a batch must not be used after Release.
func (l *Loader) Epoch(epoch int) iter.Seq[*Batch] {
	return func(yield func(*Batch) bool) {
		nb := l.Batches()
		if nb == 0 {
			return
		}
		order := l.order(epoch)
		workers := min(l.workers, nb)
		// Worker w prepares batches w, w+W, w+2W, … and hands them over
		// on its own channel, so reading the channels in turn gives the
		// batches in order without any reordering buffer.
		outs := make([]chan *Batch, workers)
		done := make(chan struct{})
		var wg sync.WaitGroup
		for w := range outs {
			outs[w] = make(chan *Batch, 1)
			wg.Go(func() {
				src := rand.NewPCG(0, 0) // reseeded for every batch
				rng := rand.New(src)
				coder := newJPEGCoder()
				for b := w; b < nb; b += workers {
					batch := l.fill(l.get(), order, epoch, b, src, rng, coder)
					select {
					case outs[w] <- batch:
					case <-done:
						l.Release(batch)
						return
					}
				}
			})
		}
		defer func() {
			close(done)
			wg.Wait()
			for _, ch := range outs {
				select {
				case b := <-ch:
					l.Release(b)
				default:
				}
			}
		}()
		for b := range nb {
			if !yield(<-outs[b%workers]) {
				return
			}
		}
	}
}

// Release returns a batch's buffers for reuse by later batches.
func (l *Loader) Release(b *Batch) {
	if b == nil {
		return
	}
	b.X, b.Y = b.X[:cap(b.X)], b.Y[:cap(b.Y)]
	select {
	case l.free <- b:
	default: // enough spares already
	}
}

func (l *Loader) get() *Batch {
	select {
	case b := <-l.free:
		return b
	default:
		return &Batch{X: make([]float32, l.size*ImageSize), Y: make([]uint8, l.size)}
	}
}

// order is the sequence in which the epoch visits the images.
func (l *Loader) order(epoch int) []int32 {
	order := make([]int32, l.set.Len())
	for i := range order {
		order[i] = int32(i)
	}
	if l.shuffle {
		rng := rand.New(rand.NewPCG(uint64(l.seed)^streamShuffle, uint64(epoch)))
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	}
	return order
}

// fill prepares batch number b of the epoch into batch. Its random draws
// come from rng, reseeded through src by (seed, epoch, b) alone, which is
// what makes the result independent of which worker runs it.
func (l *Loader) fill(batch *Batch, order []int32, epoch, b int, src *rand.PCG, rng *rand.Rand, coder *jpegCoder) *Batch {
	idx := order[b*l.size : min((b+1)*l.size, len(order))]
	n := len(idx)
	batch.N, batch.Index = n, b
	batch.X, batch.Y = batch.X[:n*ImageSize], batch.Y[:n]
	augment := l.aug.Crop > 0 || l.aug.Flip || l.aug.Translate > 0 || l.aug.JPEG.Prob > 0
	src.Seed(uint64(l.seed)^streamAugment, uint64(epoch)<<32|uint64(b))
	for i, j := range idx {
		batch.Y[i] = l.set.Labels[j]
		dst := batch.X[i*ImageSize : (i+1)*ImageSize]
		img := l.set.Image(int(j))
		if !augment {
			l.normalize(dst, img)
			continue
		}
		img = coder.maybeReencode(img, l.aug.JPEG, rng)
		var dx, dy int
		if p := max(l.aug.Crop, l.aug.Translate); p > 0 {
			dx, dy = rng.IntN(2*p+1)-p, rng.IntN(2*p+1)-p
		}
		var flip bool
		if l.aug.AlternateFlip {
			flip = l.aug.Flip && AlternateFlip(l.seed, int(j), epoch)
		} else {
			flip = l.aug.Flip && rng.IntN(2) == 1
		}
		if l.aug.Translate > 0 {
			l.translate(dst, img, dx, dy, flip)
		} else {
			l.transform(dst, img, dx, dy, flip)
		}
	}
	return batch
}

// AlternateFlip reports whether image i of the training set is mirrored in
// the given epoch under alternating flips: a hash of (seed, i) picks the
// parity, so epoch 1 mirrors a random half of the images and each image
// changes orientation from one epoch to the next.
func AlternateFlip(seed int64, i, epoch int) bool {
	z := (uint64(seed) ^ streamFlip) + uint64(i)*0x9e3779b97f4a7c15 // splitmix64
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	z ^= z >> 31
	return (z+uint64(epoch))&1 == 0
}

func (l *Loader) normalize(dst []float32, src []byte) {
	for c := range Channels {
		lut := &l.lut[c]
		d, s := dst[c*PlaneSize:(c+1)*PlaneSize], src[c*PlaneSize:(c+1)*PlaneSize]
		for k, v := range s {
			d[k] = lut[v]
		}
	}
}

// reflect maps a coordinate outside 0..Side-1 back inside by mirroring at
// the border without repeating the edge pixel (PyTorch's 'reflect'
// padding); |offset| < Side.
func reflect(i int) int {
	if i < 0 {
		return -i
	}
	if i >= Side {
		return 2*(Side-1) - i
	}
	return i
}

// translate is transform with reflection instead of black: out(y, x) =
// in(r(y+dy), r(x'+dx)), a crop of the reflect-padded image.
func (l *Loader) translate(dst []float32, src []byte, dx, dy int, flip bool) {
	for c := range Channels {
		lut := &l.lut[c]
		plane := src[c*PlaneSize : (c+1)*PlaneSize]
		for y := range Side {
			row := dst[c*PlaneSize+y*Side : c*PlaneSize+(y+1)*Side]
			srow := plane[reflect(y+dy)*Side : (reflect(y+dy)+1)*Side]
			for x := range row {
				sx := x
				if flip {
					sx = Side - 1 - x
				}
				row[x] = lut[srow[reflect(sx+dx)]]
			}
		}
	}
}

// transform writes out(y, x) = in(y+dy, x'+dx) with x' = 31-x when flipped
// and x otherwise; pixels outside the source are black. This is a crop of
// the zero-padded image at offset (dy+pad, dx+pad) followed by a mirror.
func (l *Loader) transform(dst []float32, src []byte, dx, dy int, flip bool) {
	for c := range Channels {
		lut := &l.lut[c]
		black := lut[0]
		plane := src[c*PlaneSize : (c+1)*PlaneSize]
		for y := range Side {
			row := dst[c*PlaneSize+y*Side : c*PlaneSize+(y+1)*Side]
			sy := y + dy
			if sy < 0 || sy >= Side {
				for x := range row {
					row[x] = black
				}
				continue
			}
			srow := plane[sy*Side : (sy+1)*Side]
			for x := range row {
				sx := x
				if flip {
					sx = Side - 1 - x
				}
				sx += dx
				if sx < 0 || sx >= Side {
					row[x] = black
				} else {
					row[x] = lut[srow[sx]]
				}
			}
		}
	}
}
