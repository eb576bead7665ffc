package cifar

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"math/rand/v2"
)

// JPEGAugment re-encodes a share of the training images as JPEG at a
// random quality and decodes them through models.ModelInput, the page's
// own path for a JPEG photo, before the geometric augmentations. The
// training pixels are a quality-75 JPEG copy (4:2:0 chroma) while users'
// photos are not: varying the strength of the artefacts, and moving their
// 8×8 grid with the translation that follows, keeps the network from
// depending on exactly the artefacts of the training copy.
type JPEGAugment struct {
	Prob       float64 // share of the images re-encoded; 0 turns it off
	MinQuality int     // quality range, drawn uniformly, within 1..100
	MaxQuality int
}

// Validate reports a JPEGAugment that would fail or do nothing useful.
func (a JPEGAugment) Validate() error {
	if a.Prob < 0 || a.Prob > 1 {
		return fmt.Errorf("jpeg probability %g: must be in [0, 1]", a.Prob)
	}
	if a.Prob > 0 && (a.MinQuality < 1 || a.MaxQuality > 100 || a.MinQuality > a.MaxQuality) {
		return fmt.Errorf("jpeg quality %d..%d: must be a range within 1..100", a.MinQuality, a.MaxQuality)
	}
	return nil
}

// jpegCoder is one loader worker's reusable state for JPEGAugment.
type jpegCoder struct {
	rgba *image.RGBA
	buf  bytes.Buffer
	out  []byte // CHW
}

func newJPEGCoder() *jpegCoder {
	return &jpegCoder{rgba: image.NewRGBA(image.Rect(0, 0, Side, Side)), out: make([]byte, ImageSize)}
}

// maybeReencode returns img (CHW bytes) re-encoded as a JPEG with
// probability a.Prob, or img itself. It draws from rng only when a.Prob
// is positive, so that turning it off leaves the other augmentations'
// draws as they were.
func (j *jpegCoder) maybeReencode(img []byte, a JPEGAugment, rng *rand.Rand) []byte {
	if a.Prob <= 0 {
		return img
	}
	q := a.MinQuality + rng.IntN(a.MaxQuality-a.MinQuality+1)
	if rng.Float64() >= a.Prob {
		return img
	}
	out, err := j.reencode(img, q)
	if err != nil {
		// Encoding an in-memory 32×32 RGBA image cannot fail; should
		// it ever, the image trains as it is rather than stopping a run.
		return img
	}
	return out
}

// reencode encodes the CHW image at quality q and decodes it again.
func (j *jpegCoder) reencode(img []byte, q int) ([]byte, error) {
	pix := j.rgba.Pix
	for p := range PlaneSize {
		pix[4*p], pix[4*p+1], pix[4*p+2], pix[4*p+3] = img[p], img[PlaneSize+p], img[2*PlaneSize+p], 255
	}
	j.buf.Reset()
	if err := jpeg.Encode(&j.buf, j.rgba, &jpeg.Options{Quality: q}); err != nil {
		return nil, fmt.Errorf("jpeg augment: encode: %w", err)
	}
	dec, err := jpeg.Decode(&j.buf)
	if err != nil {
		return nil, fmt.Errorf("jpeg augment: decode: %w", err)
	}
	Planes(j.out, dec, Side)
	return j.out, nil
}
