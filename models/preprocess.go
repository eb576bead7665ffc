package models

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"slices"

	// Decoders for the supported formats register themselves with package image.
	_ "image/gif"
	_ "image/jpeg"
	_ "image/png"

	_ "golang.org/x/image/bmp"
	_ "golang.org/x/image/webp"
)

// MaxImagePixels is the largest image (width × height) DecodeImage and
// ImageFromRGBA accept. A decoded image takes 1.5 (JPEG's 4:2:0 Y'CbCr) to
// 8 (16-bit RGBA PNG) bytes per pixel, so the limit keeps one image under
// about 320 MB, which a browser tab running 32-bit WebAssembly (4 GB of
// address space, often much less on phones) can afford. It admits every
// 12–24 MP phone photo and 33 MP 8K frames; full-resolution 48–50 MP
// sensor output must be scaled down first. It also stops decompression
// bombs (a few KB of PNG claiming 100000×100000 pixels) before any pixel
// memory is allocated, since it is checked against the file's header.
const MaxImagePixels = 40_000_000

// Background is the colour transparent pixels are composited onto. It is
// white, as in a browser page, and fixed so that the trainer, the tests and
// every front end agree on what a transparent image means: treat it as
// read-only.
var Background = color.NRGBA{R: 255, G: 255, B: 255, A: 255}

// supportedFormats are the format names DecodeImage accepts; other formats
// registered with package image by other imports are refused.
var supportedFormats = []string{"png", "jpeg", "gif", "bmp", "webp"}

// Errors returned by DecodeImage, for use with errors.Is.
var (
	ErrUnsupportedFormat = errors.New("unsupported image format (supported: PNG, JPEG, GIF, BMP, WebP)")
	ErrImageTooLarge     = fmt.Errorf("image has more than %d pixels", MaxImagePixels)
	ErrCorruptImage      = errors.New("image file is corrupt or truncated")
)

// DecodeImage decodes a PNG, JPEG, GIF (first frame), BMP or WebP file and
// returns the image as it should be displayed, with any EXIF orientation
// applied (see Orient), and the format name. The header is checked before
// decoding: an image of more than MaxImagePixels pixels is refused with
// ErrImageTooLarge without allocating its pixels.
func DecodeImage(data []byte) (image.Image, string, error) {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if errors.Is(err, image.ErrFormat) || err == nil && !slices.Contains(supportedFormats, format) {
		return nil, "", ErrUnsupportedFormat
	}
	if err != nil {
		return nil, format, fmt.Errorf("reading %s header: %w: %w", format, ErrCorruptImage, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, format, fmt.Errorf("%s header declares %d×%d pixels: %w", format, cfg.Width, cfg.Height, ErrCorruptImage)
	}
	if !withinPixelLimit(cfg.Width, cfg.Height) {
		return nil, format, fmt.Errorf("%s of %d×%d pixels: %w", format, cfg.Width, cfg.Height, ErrImageTooLarge)
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, format, fmt.Errorf("decoding %s: %w: %w", format, ErrCorruptImage, err)
	}
	if format == "webp" {
		expandVideoRange(img)
	}
	return Orient(img, ExifOrientation(data)), format, nil
}

// expandVideoRange rescales, in place, the Y'CbCr planes of a lossy WebP
// frame from the limited ("video") range VP8 uses (Y in 16–235, chroma in
// 16–240) to the full range image.YCbCr assumes; x/image/webp returns them
// unconverted (golang/go#40173), which greys blacks and dims whites. After
// this the standard full-range conversion gives libwebp's BT.601 colours
// within a level. Lossless WebP decodes to NRGBA and is left alone.
func expandVideoRange(img image.Image) {
	var m *image.YCbCr
	switch v := img.(type) {
	case *image.YCbCr:
		m = v
	case *image.NYCbCrA:
		m = &v.YCbCr
	default:
		return
	}
	var luma, chroma [256]uint8
	for v := range 256 {
		luma[v] = uint8(min(max((float64(v)-16)*255/219+0.5, 0), 255))
		chroma[v] = uint8(min(max((float64(v)-128)*255/224+128.5, 0), 255))
	}
	for i, v := range m.Y {
		m.Y[i] = luma[v]
	}
	for i, v := range m.Cb {
		m.Cb[i] = chroma[v]
	}
	for i, v := range m.Cr {
		m.Cr[i] = chroma[v]
	}
}

// withinPixelLimit reports whether a width×height image (both positive)
// has at most MaxImagePixels pixels, without overflowing.
func withinPixelLimit(width, height int) bool {
	return width <= MaxImagePixels/height
}

// ImageFromRGBA wraps non-premultiplied RGBA pixels stored row by row, as
// in a browser canvas's ImageData, without copying them.
func ImageFromRGBA(pix []byte, width, height int) (*image.NRGBA, error) {
	if width <= 0 || height <= 0 {
		return nil, fmt.Errorf("image size %d×%d must be positive", width, height)
	}
	if !withinPixelLimit(width, height) {
		return nil, fmt.Errorf("image of %d×%d pixels: %w", width, height, ErrImageTooLarge)
	}
	if len(pix) != 4*width*height {
		return nil, fmt.Errorf("%d bytes of RGBA pixels for a %d×%d image, want %d", len(pix), width, height, 4*width*height)
	}
	return &image.NRGBA{Pix: pix, Stride: 4 * width, Rect: image.Rect(0, 0, width, height)}, nil
}

// PreprocessImage decodes an image file and turns it into the network
// input: the normalised CHW tensor and the size×size picture it was made
// from (for display).
func PreprocessImage(data []byte, input Shape, norm Normalization) (tensor []float32, modelInput *image.NRGBA, err error) {
	if input.C != 3 || input.H <= 0 || input.H != input.W {
		return nil, nil, fmt.Errorf("preprocessing makes square RGB inputs, spec wants %v", input)
	}
	if len(norm.Mean) != 3 || len(norm.Std) != 3 {
		return nil, nil, fmt.Errorf("normalization needs 3 means and stds, has %d and %d", len(norm.Mean), len(norm.Std))
	}
	img, _, err := DecodeImage(data)
	if err != nil {
		return nil, nil, err
	}
	modelInput = ModelInput(img, input.H)
	return Normalize(modelInput, norm, nil), modelInput, nil
}

// Normalize converts an opaque RGB image to planar CHW float32 values
// (v/255 − mean[c]) / std[c], as torchvision's ToTensor and Normalize do.
// Alpha is ignored. The result is stored in dst when its capacity suffices,
// without allocating. norm must hold at least 3 means and stds (weight
// files are validated for that); Normalize panics otherwise.
func Normalize(img *image.NRGBA, norm Normalization, dst []float32) []float32 {
	b := img.Rect
	w, h := b.Dx(), b.Dy()
	plane := w * h
	if cap(dst) >= 3*plane {
		dst = dst[:3*plane]
	} else {
		dst = make([]float32, 3*plane)
	}
	// One table per channel turns each pixel into a lookup, computed with
	// the same float32 operations as the formula.
	var lut [3][256]float32
	for c := range 3 {
		mean, std := norm.Mean[c], norm.Std[c]
		for v := range 256 {
			lut[c][v] = (float32(v)/255 - mean) / std
		}
	}
	r, g, bl := dst[:plane], dst[plane:2*plane], dst[2*plane:]
	for y := range h {
		row := img.Pix[y*img.Stride:]
		out := y * w
		for x := range w {
			p := row[4*x : 4*x+3 : 4*x+3]
			r[out+x] = lut[0][p[0]]
			g[out+x] = lut[1][p[1]]
			bl[out+x] = lut[2][p[2]]
		}
	}
	return dst
}

// ModelInput turns any image into the size×size opaque RGB picture the
// network sees: transparent pixels are composited onto Background, every
// colour model is converted to 8-bit RGB, the centred square of side
// min(width, height) is kept, and it is resized with an area-averaging box
// filter (exact fractional pixel coverage, so downscaling is antialiased;
// upscaling replicates pixels with blended edges). Averaging is done in
// 16-bit integers and rounded once, so a size×size image comes out
// unchanged. An empty image gives a plain Background picture.
//
// Common decoder outputs (*image.YCbCr, *image.NYCbCrA, *image.RGBA,
// *image.NRGBA, *image.Gray, *image.Paletted) and views returned by Orient
// are read directly; other images go through RGBA64At or At. Each source
// pixel of the square is read once.
//
// size comes from a validated spec; ModelInput panics if it is not positive.
func ModelInput(img image.Image, size int) *image.NRGBA {
	if size <= 0 {
		panic(fmt.Sprintf("models.ModelInput: size %d must be positive", size))
	}
	orientation := OrientNormal
	src := img
	if v, ok := img.(*oriented); ok {
		src, orientation = v.src, v.o
	}
	b := img.Bounds()
	side := min(b.Dx(), b.Dy())
	bg := newBackground(Background)
	if side <= 0 {
		out := image.NewNRGBA(image.Rect(0, 0, size, size))
		r, g, bb := bg.rgb8()
		for i := 0; i < len(out.Pix); i += 4 {
			out.Pix[i], out.Pix[i+1], out.Pix[i+2], out.Pix[i+3] = r, g, bb, 255
		}
		return out
	}
	// The centred square in displayed coordinates, then the stored pixels
	// it shows. Box resampling commutes with the mirrors and quarter turns
	// of an orientation, so the small result is oriented afterwards.
	x0, y0 := (b.Dx()-side)/2, (b.Dy()-side)/2
	square := image.Rect(x0, y0, x0+side, y0+side)
	sb := src.Bounds()
	if orientation != OrientNormal {
		square = sourceRect(orientation, square, sb.Dx(), sb.Dy())
	}
	square = square.Add(sb.Min)

	rs := newResampler(side, size)
	rs.run(src, square, bg)
	return orientSquare(rs.result(), orientation)
}

// background holds the compositing colour in 16 bits per channel.
type background struct{ r, g, b uint32 }

func newBackground(c color.Color) background {
	r, g, b, _ := c.RGBA()
	return background{r, g, b}
}

func (bg background) rgb8() (uint8, uint8, uint8) {
	return uint8(bg.r >> 8), uint8(bg.g >> 8), uint8(bg.b >> 8)
}

// over composites an alpha-premultiplied 16-bit colour onto the background.
func (bg background) over(r, g, b, a uint32) (uint32, uint32, uint32) {
	if a >= 0xffff {
		return min(r, 0xffff), min(g, 0xffff), min(b, 0xffff)
	}
	t := 0xffff - a
	// min guards against invalid premultiplied colours (channel > alpha).
	return min(r+(bg.r*t+0x7fff)/0xffff, 0xffff),
		min(g+(bg.g*t+0x7fff)/0xffff, 0xffff),
		min(b+(bg.b*t+0x7fff)/0xffff, 0xffff)
}

// tap is the share of source pixel src that falls in output pixel dst.
// Both axes are measured in units of 1/size of a source pixel (equivalently
// 1/side of an output pixel), so shares are exact integers and each output
// pixel's shares sum to side.
type tap struct {
	src, dst int
	w        uint64
}

// taps lists the overlaps of side source pixels with size output pixels,
// ordered by source index.
func taps(side, size int) []tap {
	out := make([]tap, 0, side+size)
	i, j := 0, 0
	for i < side && j < size {
		srcEnd, dstEnd := (i+1)*size, (j+1)*side
		lo := max(i*size, j*side)
		hi := min(srcEnd, dstEnd)
		out = append(out, tap{src: i, dst: j, w: uint64(hi - lo)})
		if srcEnd <= dstEnd {
			i++
		}
		if dstEnd <= srcEnd {
			j++
		}
	}
	return out
}

// resampler area-averages a side×side square of source pixels onto a
// size×size grid, one source row at a time.
type resampler struct {
	side, size int
	xs, ys     []tap
	nextY      int      // first vertical tap not yet applied
	row        []uint32 // the current source row, composited RGB in 16 bits
	hsum       []uint64 // the current row summed into size RGB columns
	acc        []uint64 // size×size RGB sums
}

func newResampler(side, size int) *resampler {
	return &resampler{
		side: side,
		size: size,
		xs:   taps(side, size),
		ys:   taps(side, size),
		row:  make([]uint32, 3*side),
		hsum: make([]uint64, 3*size),
		acc:  make([]uint64, 3*size*size),
	}
}

// addRow adds r.row, source row sy of the square, to the sums.
func (r *resampler) addRow(sy int) {
	clear(r.hsum)
	row, hsum := r.row, r.hsum
	for _, t := range r.xs {
		s, d := row[3*t.src:3*t.src+3:3*t.src+3], hsum[3*t.dst:3*t.dst+3:3*t.dst+3]
		d[0] += t.w * uint64(s[0])
		d[1] += t.w * uint64(s[1])
		d[2] += t.w * uint64(s[2])
	}
	for ; r.nextY < len(r.ys) && r.ys[r.nextY].src == sy; r.nextY++ {
		t := r.ys[r.nextY]
		acc := r.acc[3*r.size*t.dst : 3*r.size*(t.dst+1)]
		for k, v := range hsum {
			acc[k] += t.w * v
		}
	}
}

// result rounds the averages to 8 bits.
func (r *resampler) result() *image.NRGBA {
	out := image.NewNRGBA(image.Rect(0, 0, r.size, r.size))
	// Each sum holds side² shares of 16-bit values; 16-bit v is 8-bit v·257.
	div := uint64(r.side) * uint64(r.side) * 257
	for i := range r.size * r.size {
		a, p := r.acc[3*i:3*i+3:3*i+3], out.Pix[4*i:4*i+4:4*i+4]
		p[0] = uint8((a[0] + div/2) / div)
		p[1] = uint8((a[1] + div/2) / div)
		p[2] = uint8((a[2] + div/2) / div)
		p[3] = 0xff
	}
	return out
}

// run feeds the pixels of square (inside src's bounds) through the
// resampler, converting and compositing them on the way.
func (r *resampler) run(src image.Image, square image.Rectangle, bg background) {
	x0, x1 := square.Min.X, square.Max.X
	row := r.row
	switch m := src.(type) {
	case *image.YCbCr:
		ctab := chromaColumns(m, x0, x1)
		for y := square.Min.Y; y < square.Max.Y; y++ {
			ycbcrRow(row, m.Y[m.YOffset(x0, y):][:x1-x0], m.Cb, m.Cr, m.COffset(m.Rect.Min.X, y), ctab)
			r.addRow(y - square.Min.Y)
		}
	case *image.NYCbCrA:
		ctab := chromaColumns(&m.YCbCr, x0, x1)
		for y := square.Min.Y; y < square.Max.Y; y++ {
			ycbcrRow(row, m.Y[m.YOffset(x0, y):][:x1-x0], m.Cb, m.Cr, m.COffset(m.Rect.Min.X, y), ctab)
			for i, a := range m.A[m.AOffset(x0, y):][:x1-x0] {
				if a == 0xff {
					continue
				}
				// Premultiply exactly as color.NYCbCrA.RGBA does.
				a16 := uint32(a) * 0x101
				p := row[3*i : 3*i+3 : 3*i+3]
				p[0], p[1], p[2] = bg.over(p[0]*a16/0xffff, p[1]*a16/0xffff, p[2]*a16/0xffff, a16)
			}
			r.addRow(y - square.Min.Y)
		}
	case *image.RGBA:
		for y := square.Min.Y; y < square.Max.Y; y++ {
			pix := m.Pix[m.PixOffset(x0, y):][:4*(x1-x0)]
			for i := range x1 - x0 {
				p := pix[4*i : 4*i+4 : 4*i+4]
				row[3*i], row[3*i+1], row[3*i+2] = bg.over(
					uint32(p[0])*0x101, uint32(p[1])*0x101, uint32(p[2])*0x101, uint32(p[3])*0x101)
			}
			r.addRow(y - square.Min.Y)
		}
	case *image.NRGBA:
		for y := square.Min.Y; y < square.Max.Y; y++ {
			pix := m.Pix[m.PixOffset(x0, y):][:4*(x1-x0)]
			for i := range x1 - x0 {
				p := pix[4*i : 4*i+4 : 4*i+4]
				cr, cg, cb := uint32(p[0])*0x101, uint32(p[1])*0x101, uint32(p[2])*0x101
				if a := uint32(p[3]); a != 0xff {
					// Premultiply exactly as color.NRGBA.RGBA does.
					cr, cg, cb = bg.over(cr*a/0xff, cg*a/0xff, cb*a/0xff, a*0x101)
				}
				row[3*i], row[3*i+1], row[3*i+2] = cr, cg, cb
			}
			r.addRow(y - square.Min.Y)
		}
	case *image.Gray:
		for y := square.Min.Y; y < square.Max.Y; y++ {
			pix := m.Pix[m.PixOffset(x0, y):][:x1-x0]
			for i, v := range pix {
				v16 := uint32(v) * 0x101
				row[3*i], row[3*i+1], row[3*i+2] = v16, v16, v16
			}
			r.addRow(y - square.Min.Y)
		}
	case *image.Paletted:
		// Indices beyond the palette (invalid files) show the background.
		var lut [256][3]uint32
		for i := range lut {
			lut[i] = [3]uint32{bg.r, bg.g, bg.b}
		}
		for i, c := range m.Palette[:min(len(m.Palette), 256)] {
			lut[i][0], lut[i][1], lut[i][2] = bg.over(c.RGBA())
		}
		for y := square.Min.Y; y < square.Max.Y; y++ {
			pix := m.Pix[m.PixOffset(x0, y):][:x1-x0]
			for i, v := range pix {
				c := &lut[v]
				row[3*i], row[3*i+1], row[3*i+2] = c[0], c[1], c[2]
			}
			r.addRow(y - square.Min.Y)
		}
	case image.RGBA64Image:
		for y := square.Min.Y; y < square.Max.Y; y++ {
			for i := range x1 - x0 {
				c := m.RGBA64At(x0+i, y)
				row[3*i], row[3*i+1], row[3*i+2] = bg.over(uint32(c.R), uint32(c.G), uint32(c.B), uint32(c.A))
			}
			r.addRow(y - square.Min.Y)
		}
	default:
		for y := square.Min.Y; y < square.Max.Y; y++ {
			for i := range x1 - x0 {
				row[3*i], row[3*i+1], row[3*i+2] = bg.over(m.At(x0+i, y).RGBA())
			}
			r.addRow(y - square.Min.Y)
		}
	}
}

// chromaColumns returns, for each column of [x0, x1), its offset in the
// chroma planes relative to the start of a chroma row. COffset is a row
// term plus a column term for every subsampling ratio.
func chromaColumns(m *image.YCbCr, x0, x1 int) []int {
	tab := make([]int, x1-x0)
	for i := range tab {
		tab[i] = m.COffset(x0+i, m.Rect.Min.Y)
	}
	return tab
}

// ycbcrRow converts one row of JFIF Y'CbCr pixels to RGB in 16 bits:
// pixel i has luma y[i] and chroma cb[c], cr[c] with c = cbase + ctab[i].
// It uses the full-precision coefficients libjpeg and browsers use, so
// that it rounds to the same 8-bit values as color.YCbCrToRGB (give or take
// one level). color.YCbCr.RGBA is not used: it scales chroma by 256/257
// instead of 1, pulling saturated colours up to 0.4% towards grey.
func ycbcrRow(dst []uint32, y, cb, cr []uint8, cbase int, ctab []int) {
	dst = dst[:3*len(y)]
	ctab = ctab[:len(y)]
	for i, yv := range y {
		c := cbase + ctab[i]
		// Coefficients are scaled by 257·256: 257 maps 8 bits onto 16, and
		// 256 keeps 8 fraction bits until the final shift; +128 rounds.
		yy := int32(yv)*(257*256) + 128
		cb1, cr1 := int32(cb[c])-128, int32(cr[c])-128
		d := dst[3*i : 3*i+3 : 3*i+3]
		d[0] = shift16(yy + 92240*cr1)             // 1.402
		d[1] = shift16(yy - 22641*cb1 - 46984*cr1) // 0.344136, 0.714136
		d[2] = shift16(yy + 116583*cb1)            // 1.772
	}
}

// shift16 drops the 8 fraction bits of v and clamps it to [0, 0xffff],
// without branches (random chroma would defeat the branch predictor).
func shift16(v int32) uint32 { return uint32(min(max(v>>8, 0), 0xffff)) }
