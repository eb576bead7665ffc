package models

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/draw"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
)

// encode writes img in one of the formats Go can encode.
func encode(t testing.TB, format string, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	var err error
	switch format {
	case "png":
		err = png.Encode(&buf, img)
	case "jpeg":
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 100})
	case "gif":
		err = gif.Encode(&buf, img, nil)
	case "bmp":
		err = bmp.Encode(&buf, img)
	default:
		t.Fatalf("cannot encode %s", format)
	}
	if err != nil {
		t.Fatalf("encoding %s: %v", format, err)
	}
	return buf.Bytes()
}

func readTestImage(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "images", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// rgbAt returns the 8-bit RGB of a pixel, composited onto nothing.
func rgbAt(img image.Image, x, y int) [3]uint8 {
	c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
	return [3]uint8{c.R, c.G, c.B}
}

func near(a, b [3]uint8, tol int) bool {
	for i := range a {
		if d := int(a[i]) - int(b[i]); d < -tol || d > tol {
			return false
		}
	}
	return true
}

// losslessColor is the pixel formula of testdata/images/lossless.webp.
func losslessColor(x, y int) color.NRGBA {
	return color.NRGBA{uint8(40 * x), uint8(60 * y), uint8(255 - 10*(x+y)), 255}
}

func losslessImage() *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, 6, 4))
	for y := range 4 {
		for x := range 6 {
			m.SetNRGBA(x, y, losslessColor(x, y))
		}
	}
	return m
}

func TestDecodeImageFormats(t *testing.T) {
	pattern := losslessImage()
	// GIF needs a palette holding the pattern's colours to be lossless.
	var pal color.Palette
	for y := range 4 {
		for x := range 6 {
			pal = append(pal, losslessColor(x, y))
		}
	}
	paletted := image.NewPaletted(pattern.Rect, pal)
	draw.Draw(paletted, paletted.Rect, pattern, image.Point{}, draw.Src)

	tests := []struct {
		name, format string
		data         []byte
		tol          int // per-channel tolerance for lossy formats
	}{
		{"png", "png", encode(t, "png", pattern), 0},
		{"gif", "gif", encode(t, "gif", paletted), 0},
		{"bmp", "bmp", encode(t, "bmp", pattern), 0},
		// 4:2:0 chroma subsampling smears a 6×4 pattern of distinct colours.
		{"jpeg", "jpeg", encode(t, "jpeg", pattern), 40},
		{"webp lossless", "webp", readTestImage(t, "lossless.webp"), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, format, err := DecodeImage(tt.data)
			if err != nil {
				t.Fatal(err)
			}
			if format != tt.format {
				t.Errorf("format %q, want %q", format, tt.format)
			}
			if got := img.Bounds().Size(); got != image.Pt(6, 4) {
				t.Fatalf("size %v, want 6×4", got)
			}
			for y := range 4 {
				for x := range 6 {
					c := losslessColor(x, y)
					want := [3]uint8{c.R, c.G, c.B}
					if got := rgbAt(img, x, y); !near(got, want, tt.tol) {
						t.Errorf("pixel (%d, %d) = %v, want %v ± %d", x, y, got, want, tt.tol)
					}
				}
			}
		})
	}
}

func TestDecodeLossyWebPWithAlpha(t *testing.T) {
	img, format, err := DecodeImage(readTestImage(t, "lossy_alpha.webp"))
	if err != nil {
		t.Fatal(err)
	}
	if format != "webp" {
		t.Errorf("format %q, want webp", format)
	}
	if _, ok := img.(*image.NYCbCrA); !ok {
		t.Fatalf("decoded to %T, want *image.NYCbCrA (lossy with alpha)", img)
	}
	// Quadrants: opaque red, half-transparent blue over white, opaque black
	// and white. libwebp's dwebp gives (255, 1, 0), (2, 0, 255), (0, 0, 0)
	// and (255, 255, 255); without the video-range expansion black decodes
	// near (16, 16, 16) and red near (239, 15, 15).
	m := ModelInput(img, 32)
	for _, q := range []struct {
		x, y int
		want [3]uint8
	}{
		{4, 4, [3]uint8{255, 1, 0}},
		{28, 4, [3]uint8{128, 127, 255}},
		{4, 28, [3]uint8{0, 0, 0}},
		{28, 28, [3]uint8{255, 255, 255}},
	} {
		if got := rgbAt(m, q.x, q.y); !near(got, q.want, 3) {
			t.Errorf("pixel (%d, %d) = %v, want %v ± 3", q.x, q.y, got, q.want)
		}
	}
}

// withPNGHeader rewrites the IHDR width and height of a PNG file and its CRC.
func withPNGHeader(data []byte, w, h uint32) []byte {
	out := bytes.Clone(data)
	ihdr := out[8:] // length, "IHDR", 13 bytes of data, CRC
	binary.BigEndian.PutUint32(ihdr[8:], w)
	binary.BigEndian.PutUint32(ihdr[12:], h)
	binary.BigEndian.PutUint32(ihdr[21:], crc32.ChecksumIEEE(ihdr[4:21]))
	return out
}

// withJPEGSize rewrites the frame size in the SOF0 segment of a JPEG file.
func withJPEGSize(t *testing.T, data []byte, w, h uint16) []byte {
	out := bytes.Clone(data)
	i := bytes.Index(out, []byte{0xFF, 0xC0})
	if i < 0 {
		t.Fatal("no SOF0 segment")
	}
	binary.BigEndian.PutUint16(out[i+5:], h)
	binary.BigEndian.PutUint16(out[i+7:], w)
	return out
}

func TestDecodeImageRefusesBombs(t *testing.T) {
	small := image.NewNRGBA(image.Rect(0, 0, 8, 8))
	gifData := encode(t, "gif", small)
	binary.LittleEndian.PutUint16(gifData[6:], 65535) // logical screen width
	binary.LittleEndian.PutUint16(gifData[8:], 65535)
	bmpData := encode(t, "bmp", small)
	binary.LittleEndian.PutUint32(bmpData[18:], 50000) // BITMAPINFOHEADER width
	binary.LittleEndian.PutUint32(bmpData[22:], 50000)
	webpData := bytes.Clone(readTestImage(t, "lossless.webp"))
	// VP8L header after the signature byte: 14 bits width−1, 14 bits height−1.
	bits := binary.LittleEndian.Uint32(webpData[21:])
	binary.LittleEndian.PutUint32(webpData[21:], bits|(1<<28-1)) // 16384×16384

	tests := []struct {
		name string
		data []byte
	}{
		{"png 100000×100000", withPNGHeader(encode(t, "png", small), 100000, 100000)},
		{"png 40000001×1", withPNGHeader(encode(t, "png", small), MaxImagePixels+1, 1)},
		{"jpeg 65535×65535", withJPEGSize(t, encode(t, "jpeg", small), 65535, 65535)},
		{"gif 65535×65535", gifData},
		{"bmp 50000×50000", bmpData},
		{"webp 16384×16384", webpData},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			img, _, err := DecodeImage(tt.data)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrImageTooLarge) {
				t.Fatalf("got %v, %v; want ErrImageTooLarge", img, err)
			}
			// Decoding would need gigabytes; reading the header needs kilobytes.
			if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
				t.Errorf("allocated %d bytes before refusing", n)
			}
		})
	}
}

func TestPixelLimitBoundary(t *testing.T) {
	for _, tt := range []struct {
		w, h int
		ok   bool
	}{
		{MaxImagePixels, 1, true},
		{1, MaxImagePixels, true},
		{8000, 5000, true},
		{8000, 5001, false},
		{MaxImagePixels + 1, 1, false},
		{math.MaxInt, 2, false},
		{math.MaxInt32, math.MaxInt32, false},
	} {
		if got := withinPixelLimit(tt.w, tt.h); got != tt.ok {
			t.Errorf("withinPixelLimit(%d, %d) = %v, want %v", tt.w, tt.h, got, tt.ok)
		}
	}
}

func TestDecodeImageErrors(t *testing.T) {
	photo := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for i := range photo.Pix {
		photo.Pix[i] = uint8(i * 7)
	}
	pngData := encode(t, "png", photo)
	jpegData := encode(t, "jpeg", photo)
	// Importing x/image/tiff registers TIFF with package image, as any
	// dependency might; DecodeImage must still refuse it.
	var tiffData bytes.Buffer
	if err := tiff.Encode(&tiffData, photo, nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrUnsupportedFormat},
		{"text", []byte("this is not an image, just some text"), ErrUnsupportedFormat},
		{"random", randomBytes(1000), ErrUnsupportedFormat},
		{"tiff", tiffData.Bytes(), ErrUnsupportedFormat},
		{"png truncated", pngData[:len(pngData)/2], ErrCorruptImage},
		{"png header only", pngData[:20], ErrCorruptImage},
		{"png zero width", withPNGHeader(pngData, 0, 48), ErrCorruptImage},
		{"jpeg truncated", jpegData[:len(jpegData)/2], ErrCorruptImage},
		{"jpeg header only", jpegData[:10], ErrCorruptImage},
		{"webp truncated", readTestImage(t, "lossless.webp")[:40], ErrCorruptImage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, _, err := DecodeImage(tt.data)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, %v; want %v", img, err, tt.want)
			}
			t.Log(err)
		})
	}
}

func randomBytes(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestModelInputTransparency(t *testing.T) {
	tests := []struct {
		name string
		img  image.Image
		want [3]uint8
	}{
		// 255·(128/255) + 255·(127/255) = 255 for red; 255·(127/255) = 127 otherwise.
		{"half red NRGBA", uniform(color.NRGBA{255, 0, 0, 128}), [3]uint8{255, 127, 127}},
		{"half red RGBA", uniform(color.RGBA{128, 0, 0, 128}), [3]uint8{255, 127, 127}},
		{"half red NRGBA64", uniform(color.NRGBA64{0xffff, 0, 0, 0x8000}), [3]uint8{255, 127, 127}},
		{"quarter green NRGBA", uniform(color.NRGBA{0, 255, 0, 64}), [3]uint8{191, 255, 191}},
		{"transparent NRGBA", uniform(color.NRGBA{10, 20, 30, 0}), [3]uint8{255, 255, 255}},
		{"transparent RGBA", uniform(color.RGBA{}), [3]uint8{255, 255, 255}},
		{"transparent paletted", palettedUniform(color.NRGBA{0, 0, 0, 0}), [3]uint8{255, 255, 255}},
		{"half black paletted", palettedUniform(color.NRGBA{0, 0, 0, 128}), [3]uint8{127, 127, 127}},
		{"opaque NRGBA", uniform(color.NRGBA{1, 2, 3, 255}), [3]uint8{1, 2, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := ModelInput(tt.img, 8)
			for i := 0; i < len(m.Pix); i += 4 {
				got := [3]uint8{m.Pix[i], m.Pix[i+1], m.Pix[i+2]}
				if got != tt.want || m.Pix[i+3] != 255 {
					t.Fatalf("pixel %d = %v alpha %d, want %v alpha 255", i/4, got, m.Pix[i+3], tt.want)
				}
			}
		})
	}
}

// uniform returns a 16×16 image of colour c in the image type of c's model.
func uniform(c color.Color) image.Image {
	r := image.Rect(0, 0, 16, 16)
	var m draw.Image
	switch c.(type) {
	case color.NRGBA:
		m = image.NewNRGBA(r)
	case color.RGBA:
		m = image.NewRGBA(r)
	case color.NRGBA64:
		m = image.NewNRGBA64(r)
	case color.RGBA64:
		m = image.NewRGBA64(r)
	case color.Gray:
		m = image.NewGray(r)
	case color.Gray16:
		m = image.NewGray16(r)
	case color.CMYK:
		m = image.NewCMYK(r)
	default:
		panic("unsupported colour type")
	}
	for y := range 16 {
		for x := range 16 {
			m.Set(x, y, c)
		}
	}
	return m
}

func palettedUniform(c color.Color) image.Image {
	m := image.NewPaletted(image.Rect(0, 0, 16, 16), color.Palette{color.Black, c})
	for i := range m.Pix {
		m.Pix[i] = 1
	}
	return m
}

func TestModelInputColorModels(t *testing.T) {
	tests := []struct {
		name string
		img  image.Image
		want [3]uint8
	}{
		{"gray", uniform(color.Gray{77}), [3]uint8{77, 77, 77}},
		{"gray16 exact", uniform(color.Gray16{0x8080}), [3]uint8{128, 128, 128}},
		{"gray16 rounds down", uniform(color.Gray16{0x1234}), [3]uint8{18, 18, 18}},  // 4660/257 = 18.13
		{"gray16 rounds up", uniform(color.Gray16{0xfe00}), [3]uint8{253, 253, 253}}, // 65024/257 = 253.01
		{"gray16 rounds up 2", uniform(color.Gray16{0x07f0}), [3]uint8{8, 8, 8}},     // 2032/257 = 7.91
		{"cmyk red", uniform(color.CMYK{0, 255, 255, 0}), [3]uint8{255, 0, 0}},
		{"cmyk half key", uniform(color.CMYK{0, 0, 0, 128}), [3]uint8{127, 127, 127}},
		{"cmyk cyan", uniform(color.CMYK{255, 0, 0, 0}), [3]uint8{0, 255, 255}},
		{"rgba64", uniform(color.RGBA64{0xffff, 0x4000, 0x0101, 0xffff}), [3]uint8{255, 64, 1}}, // 16384/257 = 63.75
		{"nrgba64", uniform(color.NRGBA64{0x0000, 0xc000, 0xffff, 0xffff}), [3]uint8{0, 191, 255}},
		{"ycbcr grey", &image.YCbCr{
			Y: make16x16(128), Cb: make16x16(128), Cr: make16x16(128),
			YStride: 16, CStride: 16, SubsampleRatio: image.YCbCrSubsampleRatio444,
			Rect: image.Rect(0, 0, 16, 16),
		}, [3]uint8{128, 128, 128}},
		{"ycbcr red", &image.YCbCr{
			Y: make16x16(76), Cb: make16x16(85), Cr: make16x16(255),
			YStride: 16, CStride: 16, SubsampleRatio: image.YCbCrSubsampleRatio444,
			Rect: image.Rect(0, 0, 16, 16),
		}, [3]uint8{254, 0, 0}}, // color.YCbCrToRGB(76, 85, 255); Y + 1.402·127 = 254.05
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := ModelInput(tt.img, 4)
			if got := rgbAt(m, 1, 2); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func make16x16(v uint8) []uint8 { return bytes.Repeat([]byte{v}, 256) }

func TestModelInputCropsCentre(t *testing.T) {
	// 64×32: columns 16–47 are the centre square; paint them by position
	// and the sides a colour that must not leak in.
	for _, dims := range []image.Point{{64, 32}, {32, 64}} {
		m := image.NewNRGBA(image.Rect(0, 0, dims.X, dims.Y))
		off := image.Pt((dims.X-32)/2, (dims.Y-32)/2)
		for y := range dims.Y {
			for x := range dims.X {
				c := color.NRGBA{255, 0, 255, 255}
				if p := image.Pt(x, y).Sub(off); p.In(image.Rect(0, 0, 32, 32)) {
					c = color.NRGBA{uint8(8 * p.X), uint8(8 * p.Y), 7, 255}
				}
				m.SetNRGBA(x, y, c)
			}
		}
		out := ModelInput(m, 32)
		for y := range 32 {
			for x := range 32 {
				want := [3]uint8{uint8(8 * x), uint8(8 * y), 7}
				if got := rgbAt(out, x, y); got != want {
					t.Fatalf("%v: pixel (%d, %d) = %v, want %v", dims, x, y, got, want)
				}
			}
		}
	}
}

func TestModelInputCropsNonZeroOrigin(t *testing.T) {
	base := image.NewGray(image.Rect(0, 0, 100, 100))
	for i := range base.Pix {
		base.Pix[i] = uint8(i % 251)
	}
	sub := base.SubImage(image.Rect(10, 20, 74, 52)) // 64×32 at (10, 20)
	want := image.NewGray(image.Rect(0, 0, 32, 32))
	draw.Draw(want, want.Rect, base, image.Pt(10+16, 20), draw.Src)
	got := ModelInput(sub, 32)
	for y := range 32 {
		for x := range 32 {
			if g, w := got.Pix[got.PixOffset(x, y)], want.GrayAt(x, y).Y; g != w {
				t.Fatalf("pixel (%d, %d) = %d, want %d", x, y, g, w)
			}
		}
	}
}

func TestModelInputAveragesBlocks(t *testing.T) {
	// 64×64 made of 2×2 blocks whose four pixels average to an integer.
	m := image.NewNRGBA(image.Rect(0, 0, 64, 64))
	want := image.NewNRGBA(image.Rect(0, 0, 32, 32))
	for by := range 32 {
		for bx := range 32 {
			base := uint8(4*bx + by)
			deltas := [4]int{-3, 3, -1, 1}
			for k, d := range deltas {
				v := uint8(int(base) + 3 + d) // pixels base+0, +6, +2, +4: mean base+3
				m.SetNRGBA(2*bx+k%2, 2*by+k/2, color.NRGBA{v, 255 - v, uint8(bx * 8), 255})
			}
			v := base + 3
			want.SetNRGBA(bx, by, color.NRGBA{v, 255 - v, uint8(bx * 8), 255})
		}
	}
	got := ModelInput(m, 32)
	if !bytes.Equal(got.Pix, want.Pix) {
		t.Fatalf("2×2 block average wrong: first pixels %v, want %v", got.Pix[:16], want.Pix[:16])
	}
}

func TestModelInputFractionalCoverage(t *testing.T) {
	// 96→32 is exactly 3×3 per output pixel.
	m := image.NewGray(image.Rect(0, 0, 96, 96))
	for y := range 96 {
		for x := range 96 {
			m.SetGray(x, y, color.Gray{uint8(x + y)})
		}
	}
	got := ModelInput(m, 32)
	for y := range 32 {
		for x := range 32 {
			// Mean of x+y over the 3×3 block: (3x+1) + (3y+1).
			want := uint8(3*x + 1 + 3*y + 1)
			if g := got.Pix[got.PixOffset(x, y)]; g != want {
				t.Fatalf("pixel (%d, %d) = %d, want %d", x, y, g, want)
			}
		}
	}

	// 3→2: each output pixel covers one whole source pixel and half of the
	// middle one, so columns 0, 90, 200 give (0·1 + 90·½)/1.5 = 30 and
	// (200·1 + 90·½)/1.5 = 163.33.
	m3 := image.NewGray(image.Rect(0, 0, 3, 3))
	for y := range 3 {
		copy(m3.Pix[y*3:], []uint8{0, 90, 200})
	}
	got = ModelInput(m3, 2)
	if a, b := got.Pix[0], got.Pix[4]; a != 30 || b != 163 {
		t.Errorf("3→2 columns = %d, %d; want 30, 163", a, b)
	}
}

func TestModelInputIdentity(t *testing.T) {
	m := image.NewNRGBA(image.Rect(0, 0, 32, 32))
	r := rand.New(rand.NewPCG(3, 4))
	for i := range m.Pix {
		m.Pix[i] = byte(r.Uint32())
	}
	for i := 3; i < len(m.Pix); i += 4 {
		m.Pix[i] = 255
	}
	got := ModelInput(m, 32)
	if !bytes.Equal(got.Pix, m.Pix) {
		t.Fatal("32×32 image changed by ModelInput(·, 32)")
	}
	if got == m {
		t.Fatal("ModelInput returned its input; callers may modify the result")
	}
}

func TestModelInputUpscales(t *testing.T) {
	// 16→32: every source pixel becomes an exact 2×2 block.
	m := image.NewRGBA(image.Rect(0, 0, 16, 16))
	for y := range 16 {
		for x := range 16 {
			m.SetRGBA(x, y, color.RGBA{uint8(16 * x), uint8(16 * y), 99, 255})
		}
	}
	got := ModelInput(m, 32)
	for y := range 32 {
		for x := range 32 {
			want := [3]uint8{uint8(16 * (x / 2)), uint8(16 * (y / 2)), 99}
			if g := rgbAt(got, x, y); g != want {
				t.Fatalf("pixel (%d, %d) = %v, want %v", x, y, g, want)
			}
		}
	}
	// 2→3: the middle output pixel is half of each source pixel.
	m2 := image.NewGray(image.Rect(0, 0, 2, 2))
	copy(m2.Pix, []uint8{10, 100, 10, 100})
	got = ModelInput(m2, 3)
	if row := [3]uint8{got.Pix[0], got.Pix[4], got.Pix[8]}; row != [3]uint8{10, 55, 100} {
		t.Errorf("2→3 row = %v, want [10 55 100]", row)
	}
}

func TestModelInputEmpty(t *testing.T) {
	got := ModelInput(image.NewNRGBA(image.Rectangle{}), 4)
	if got.Rect != image.Rect(0, 0, 4, 4) {
		t.Fatalf("bounds %v", got.Rect)
	}
	for _, v := range got.Pix {
		if v != 255 {
			t.Fatal("empty image should give a white (Background) picture")
		}
	}
}

// generic hides an image's concrete type, forcing ModelInput's At path.
type generic struct{ image.Image }

// randomImages returns one image of each type ModelInput reads directly,
// with random pixels (alpha included) and a non-zero origin.
func randomImages(w, h int) map[string]image.Image {
	r := rand.New(rand.NewPCG(uint64(w), uint64(h)))
	fill := func(b []byte) {
		for i := range b {
			b[i] = byte(r.Uint32())
		}
	}
	rect := image.Rect(3, -2, 3+w, -2+h)
	imgs := map[string]image.Image{}

	nrgba := image.NewNRGBA(rect)
	fill(nrgba.Pix)
	for i := 3; i < len(nrgba.Pix); i += 4 {
		nrgba.Pix[i] = []byte{0, 255, 255, 128, byte(r.Uint32())}[r.IntN(5)]
	}
	imgs["NRGBA"] = nrgba
	rgba := image.NewRGBA(rect)
	draw.Draw(rgba, rect, nrgba, rect.Min, draw.Src) // valid premultiplied
	imgs["RGBA"] = rgba
	gray := image.NewGray(rect)
	fill(gray.Pix)
	imgs["Gray"] = gray
	for _, ratio := range []image.YCbCrSubsampleRatio{
		image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422, image.YCbCrSubsampleRatio420,
		image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410,
	} {
		m := image.NewNYCbCrA(rect, ratio)
		fill(m.Y)
		fill(m.Cb)
		fill(m.Cr)
		fill(m.A)
		imgs["YCbCr "+ratio.String()] = &m.YCbCr
		imgs["NYCbCrA "+ratio.String()] = m
	}
	pal := color.Palette{}
	for range 200 {
		pal = append(pal, color.NRGBA{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())})
	}
	paletted := image.NewPaletted(rect, pal)
	for i := range paletted.Pix {
		paletted.Pix[i] = byte(r.IntN(len(pal)))
	}
	imgs["Paletted"] = paletted
	rgba64 := image.NewNRGBA64(rect)
	fill(rgba64.Pix)
	imgs["NRGBA64"] = rgba64
	return imgs
}

func TestModelInputFastPathsMatchGeneric(t *testing.T) {
	for _, dims := range []image.Point{{37, 23}, {40, 40}, {7, 12}} {
		for name, img := range randomImages(dims.X, dims.Y) {
			// Y'CbCr fast paths convert more precisely than
			// color.YCbCr.RGBA (see ycbcrRow): allow one level.
			tol := 0
			if strings.Contains(name, "YCbCr") {
				tol = 1
			}
			for _, size := range []int{5, 8, 32} {
				fast := ModelInput(img, size)
				slow := ModelInput(generic{img}, size)
				if d := maxDiff(fast.Pix, slow.Pix); d > tol {
					t.Errorf("%s %v → %d: fast path differs from image.Image path by %d levels", name, dims, size, d)
				}
			}
		}
	}
}

func maxDiff(a, b []byte) int {
	d := 0
	for i := range a {
		d = max(d, int(a[i])-int(b[i]), int(b[i])-int(a[i]))
	}
	return d
}

func TestYCbCrRowMatchesJFIF(t *testing.T) {
	ys := make([]uint8, 256)
	for i := range ys {
		ys[i] = uint8(i)
	}
	ctab := make([]int, 256) // every pixel reads chroma sample 0
	row := make([]uint32, 3*256)
	worst := 0.0
	for cb := range 256 {
		for cr := range 256 {
			ycbcrRow(row, ys, []uint8{uint8(cb)}, []uint8{uint8(cr)}, 0, ctab)
			fcb, fcr := float64(cb)-128, float64(cr)-128
			for y := range 256 {
				fy := float64(y)
				want := [3]float64{fy + 1.402*fcr, fy - 0.344136*fcb - 0.714136*fcr, fy + 1.772*fcb}
				for c := range 3 {
					w := min(max(want[c], 0), 255) * 257
					worst = max(worst, math.Abs(float64(row[3*y+c])-w))
				}
			}
		}
	}
	// One 16-bit level is 1/257 of an 8-bit level.
	if worst > 1.5 {
		t.Errorf("ycbcrRow is %.2f 16-bit levels from the JFIF formula", worst)
	}
}

func TestNormalize(t *testing.T) {
	m := image.NewNRGBA(image.Rect(0, 0, 3, 2))
	for i := range 6 {
		m.Pix[4*i], m.Pix[4*i+1], m.Pix[4*i+2], m.Pix[4*i+3] = uint8(i), uint8(100+i), uint8(250+i%6), 255
	}
	norm := Normalization{Mean: []float32{0.5, 0.25, 0}, Std: []float32{0.5, 2, 0.1}}
	got := Normalize(m, norm, nil)
	if len(got) != 18 {
		t.Fatalf("len %d, want 3·2·3", len(got))
	}
	for c := range 3 {
		for i := range 6 {
			v := float64(m.Pix[4*i+c])
			want := (v/255 - float64(norm.Mean[c])) / float64(norm.Std[c])
			if g := float64(got[c*6+i]); math.Abs(g-want) > 1e-5 {
				t.Errorf("channel %d pixel %d = %g, want %g", c, i, g, want)
			}
		}
	}

	// A sub-image with a stride wider than its rows.
	big := image.NewNRGBA(image.Rect(0, 0, 5, 5))
	draw.Draw(big, image.Rect(1, 2, 4, 4), m, image.Point{}, draw.Src)
	sub := big.SubImage(image.Rect(1, 2, 4, 4)).(*image.NRGBA)
	if got2 := Normalize(sub, norm, nil); !equalFloats(got2, got) {
		t.Errorf("sub-image gives %v, want %v", got2, got)
	}
}

func equalFloats(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestNormalizeReusesDst(t *testing.T) {
	m := image.NewNRGBA(image.Rect(0, 0, 32, 32))
	norm := Normalization{Mean: []float32{0.4914, 0.4822, 0.4465}, Std: []float32{0.247, 0.243, 0.261}}
	dst := make([]float32, 5000)
	var out []float32
	if n := testing.AllocsPerRun(20, func() { out = Normalize(m, norm, dst) }); n != 0 {
		t.Errorf("%v allocations with a big-enough dst, want 0", n)
	}
	if len(out) != 3*32*32 || &out[0] != &dst[0] {
		t.Errorf("result does not reuse dst (len %d)", len(out))
	}
	if small := Normalize(m, norm, dst[:0:10]); len(small) != 3*32*32 {
		t.Errorf("small dst: len %d", len(small))
	}
}

func TestImageFromRGBA(t *testing.T) {
	pix := make([]byte, 4*3*2)
	pix[4*4+0] = 200 // pixel (1, 1)
	pix[4*4+3] = 255
	m, err := ImageFromRGBA(pix, 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	if c := m.NRGBAAt(1, 1); c != (color.NRGBA{200, 0, 0, 255}) {
		t.Errorf("pixel (1, 1) = %v", c)
	}
	for _, tt := range []struct {
		name string
		n    int
		w, h int
		want error
	}{
		{"short", 23, 3, 2, nil},
		{"long", 25, 3, 2, nil},
		{"zero width", 0, 0, 2, nil},
		{"negative", 8, -1, -2, nil},
		{"too large", 0, 1 << 20, 1 << 20, ErrImageTooLarge},
		{"overflow", 0, math.MaxInt / 2, 4, ErrImageTooLarge},
	} {
		_, err := ImageFromRGBA(make([]byte, tt.n), tt.w, tt.h)
		if err == nil || tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("%s: err %v, want an error (%v)", tt.name, err, tt.want)
		}
	}
}

func TestPreprocessImage(t *testing.T) {
	m := image.NewNRGBA(image.Rect(0, 0, 64, 48))
	for y := range 48 {
		for x := range 64 {
			m.SetNRGBA(x, y, color.NRGBA{uint8(x), uint8(y), 200, 255})
		}
	}
	norm := Normalization{Mean: []float32{0.5, 0.5, 0.5}, Std: []float32{0.25, 0.25, 0.25}}
	input := Shape{C: 3, H: 16, W: 16}
	tensor, pic, err := PreprocessImage(encode(t, "png", m), input, norm)
	if err != nil {
		t.Fatal(err)
	}
	want := ModelInput(m, 16)
	if !bytes.Equal(pic.Pix, want.Pix) {
		t.Error("model input differs from ModelInput of the decoded image")
	}
	if !equalFloats(tensor, Normalize(want, norm, nil)) {
		t.Error("tensor differs from Normalize of the model input")
	}

	for _, bad := range []struct {
		in   Shape
		norm Normalization
	}{
		{Shape{1, 16, 16}, norm},
		{Shape{3, 16, 8}, norm},
		{Shape{3, 0, 0}, norm},
		{input, Normalization{Mean: []float32{0.5}, Std: []float32{1}}},
	} {
		if _, _, err := PreprocessImage(encode(t, "png", m), bad.in, bad.norm); err == nil {
			t.Errorf("shape %v, norm %v: no error", bad.in, bad.norm)
		}
	}
	if _, _, err := PreprocessImage([]byte("nope"), input, norm); !errors.Is(err, ErrUnsupportedFormat) {
		t.Errorf("bad file: %v", err)
	}
}

func BenchmarkModelInput(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	photo := image.NewYCbCr(image.Rect(0, 0, 4000, 3000), image.YCbCrSubsampleRatio420)
	for _, p := range [][]byte{photo.Y, photo.Cb, photo.Cr} {
		for i := range p {
			p[i] = byte(r.Uint32())
		}
	}
	// Opaque, as most PNGs are; transparent pixels add a division each.
	square := image.NewNRGBA(image.Rect(0, 0, 1024, 1024))
	for i := range square.Pix {
		square.Pix[i] = byte(r.Uint32()) | byte(255*(i%4/3))
	}
	for _, bc := range []struct {
		name string
		img  image.Image
	}{
		{"YCbCr420_4000x3000", photo},
		{"YCbCr420_4000x3000_rotated", Orient(photo, OrientRotate90)},
		{"NRGBA_1024x1024", square},
	} {
		b.Run(bc.name, func(b *testing.B) {
			side := min(bc.img.Bounds().Dx(), bc.img.Bounds().Dy())
			b.SetBytes(int64(side * side)) // bytes/s reads as source pixels/s
			b.ReportAllocs()
			for b.Loop() {
				ModelInput(bc.img, 32)
			}
		})
	}
}
