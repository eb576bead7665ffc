package models

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/draw"
	"strings"
	"testing"
)

// Six well-separated colours named A–F, for 16×16 blocks that survive JPEG.
var blockColors = map[byte]color.NRGBA{
	'A': {255, 0, 0, 255},
	'B': {0, 255, 0, 255},
	'C': {0, 0, 255, 255},
	'D': {255, 255, 0, 255},
	'E': {255, 0, 255, 255},
	'F': {0, 255, 255, 255},
}

// stored is the pattern as written to the file, one string per block row.
var stored = []string{"ABC", "DEF"}

// displayed is how each orientation must show the stored pattern, written
// out by hand from the EXIF specification's definitions.
var displayed = map[int][]string{
	1: {"ABC", "DEF"},
	2: {"CBA", "FED"},     // mirrored left to right
	3: {"FED", "CBA"},     // rotated 180°
	4: {"DEF", "ABC"},     // mirrored top to bottom
	5: {"AD", "BE", "CF"}, // transposed
	6: {"DA", "EB", "FC"}, // rotated 90° clockwise
	7: {"FC", "EB", "DA"}, // transversed
	8: {"CF", "BE", "AD"}, // rotated 90° counter-clockwise
}

const blockSize = 16

func blockImage(rows []string) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, blockSize*len(rows[0]), blockSize*len(rows)))
	for by, row := range rows {
		for bx := range len(row) {
			r := image.Rect(bx*blockSize, by*blockSize, (bx+1)*blockSize, (by+1)*blockSize)
			draw.Draw(m, r, image.NewUniform(blockColors[row[bx]]), image.Point{}, draw.Src)
		}
	}
	return m
}

// readBlocks names the colour at the centre of each block of img.
func readBlocks(t *testing.T, img image.Image) []string {
	t.Helper()
	b := img.Bounds()
	if b.Dx()%blockSize != 0 || b.Dy()%blockSize != 0 {
		t.Fatalf("bounds %v are not whole blocks", b)
	}
	var rows []string
	for by := range b.Dy() / blockSize {
		var row []byte
		for bx := range b.Dx() / blockSize {
			got := rgbAt(img, b.Min.X+bx*blockSize+blockSize/2, b.Min.Y+by*blockSize+blockSize/2)
			name := byte('?')
			for n, c := range blockColors {
				if near(got, [3]uint8{c.R, c.G, c.B}, 48) {
					name = n
				}
			}
			row = append(row, name)
		}
		rows = append(rows, string(row))
	}
	return rows
}

type byteOrder interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

// exifTIFF builds a TIFF structure whose IFD0 holds two other tags and then
// the orientation, as cameras write it.
func exifTIFF(order byteOrder, orientation uint16) []byte {
	var b []byte
	if order == binary.LittleEndian {
		b = append(b, "II*\x00"...)
	} else {
		b = append(b, "MM\x00*"...)
	}
	b = order.AppendUint32(b, 8) // IFD0 right after the header
	b = order.AppendUint16(b, 3) // entries
	entry := func(tag, typ uint16, count uint32, value []byte) {
		b = order.AppendUint16(b, tag)
		b = order.AppendUint16(b, typ)
		b = order.AppendUint32(b, count)
		b = append(b, value...)
	}
	entry(0x010F, 2, 4, []byte("Go\x00\x00"))         // Make, ASCII in place
	entry(0x0110, 2, 21, order.AppendUint32(nil, 50)) // Model, ASCII at offset 50
	entry(tagOrientation, 3, 1, order.AppendUint16(nil, orientation))
	b = append(b, 0, 0) // pad the SHORT's value field
	b = order.AppendUint32(b, 0)
	return append(b, "Go test camera model\x00"...)
}

// withJPEGExif inserts an APP1 Exif segment (and an unrelated APP1 before
// it, as XMP would be) right after the SOI marker.
func withJPEGExif(jpg, tiff []byte) []byte {
	segment := func(payload []byte) []byte {
		s := []byte{0xFF, 0xE1}
		s = binary.BigEndian.AppendUint16(s, uint16(2+len(payload)))
		return append(s, payload...)
	}
	out := append([]byte{}, jpg[:2]...)
	out = append(out, segment([]byte("http://ns.adobe.com/xap/1.0/\x00<x/>"))...)
	out = append(out, segment(append(bytes.Clone(exifHeader), tiff...))...)
	return append(out, jpg[2:]...)
}

// withPNGChunk inserts a chunk right after IHDR.
func withPNGChunk(png []byte, typ string, data []byte) []byte {
	chunk := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	chunk = append(chunk, typ...)
	chunk = append(chunk, data...)
	chunk = binary.BigEndian.AppendUint32(chunk, crc32.ChecksumIEEE(chunk[4:]))
	const ihdrEnd = 8 + 4 + 4 + 13 + 4
	out := append([]byte{}, png[:ihdrEnd]...)
	out = append(out, chunk...)
	return append(out, png[ihdrEnd:]...)
}

// extendedWebP wraps a simple lossless WebP (one VP8L chunk) in the
// extended format with an EXIF chunk after the image, as the spec orders it.
func extendedWebP(t testing.TB, simple []byte, w, h int, tiff []byte) []byte {
	if string(simple[12:16]) != "VP8L" {
		t.Fatalf("not a simple lossless WebP: %q", simple[12:16])
	}
	vp8x := []byte("VP8X")
	vp8x = binary.LittleEndian.AppendUint32(vp8x, 10)
	vp8x = append(vp8x, 1<<3, 0, 0, 0) // EXIF flag
	vp8x = append(vp8x, byte(w-1), byte((w-1)>>8), byte((w-1)>>16))
	vp8x = append(vp8x, byte(h-1), byte((h-1)>>8), byte((h-1)>>16))
	exif := []byte("EXIF")
	exif = binary.LittleEndian.AppendUint32(exif, uint32(len(tiff)))
	exif = append(exif, tiff...)
	if len(tiff)%2 == 1 {
		exif = append(exif, 0)
	}
	body := append([]byte("WEBP"), vp8x...)
	body = append(body, simple[12:]...)
	body = append(body, exif...)
	out := binary.LittleEndian.AppendUint32([]byte("RIFF"), uint32(len(body)))
	return append(out, body...)
}

func TestDecodeImageAppliesJPEGOrientation(t *testing.T) {
	jpg := encode(t, "jpeg", blockImage(stored))
	if got := readBlocks(t, mustDecode(t, jpg)); !equalRows(got, stored) {
		t.Fatalf("plain JPEG reads %v, want %v", got, stored)
	}
	for _, order := range []byteOrder{binary.LittleEndian, binary.BigEndian} {
		for o := 1; o <= 8; o++ {
			data := withJPEGExif(jpg, exifTIFF(order, uint16(o)))
			if got := ExifOrientation(data); got != o {
				t.Errorf("%v orientation %d: ExifOrientation = %d", order, o, got)
			}
			if got := readBlocks(t, mustDecode(t, data)); !equalRows(got, displayed[o]) {
				t.Errorf("%v orientation %d: decoded %v, want %v", order, o, got, displayed[o])
			}
		}
	}
}

func TestDecodeImageAppliesPNGAndWebPOrientation(t *testing.T) {
	pngData := encode(t, "png", blockImage(stored))
	webp := readTestImage(t, "lossless.webp")
	for o := 1; o <= 8; o++ {
		tiff := exifTIFF(binary.BigEndian, uint16(o))
		t.Run(fmt.Sprint("png/", o), func(t *testing.T) {
			data := withPNGChunk(pngData, "eXIf", tiff)
			if got := readBlocks(t, mustDecode(t, data)); !equalRows(got, displayed[o]) {
				t.Errorf("orientation %d: decoded %v, want %v", o, got, displayed[o])
			}
		})
		t.Run(fmt.Sprint("webp/", o), func(t *testing.T) {
			data := extendedWebP(t, webp, 6, 4, tiff)
			img := mustDecode(t, data)
			// Compare against Orient applied to the plain file's pixels.
			want := Orient(mustDecode(t, webp), o)
			if img.Bounds() != want.Bounds() {
				t.Fatalf("orientation %d: bounds %v, want %v", o, img.Bounds(), want.Bounds())
			}
			for y := range want.Bounds().Dy() {
				for x := range want.Bounds().Dx() {
					if g, w := rgbAt(img, x, y), rgbAt(want, x, y); g != w {
						t.Fatalf("orientation %d: pixel (%d, %d) = %v, want %v", o, x, y, g, w)
					}
				}
			}
		})
	}
}

func mustDecode(t *testing.T, data []byte) image.Image {
	t.Helper()
	img, _, err := DecodeImage(data)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func equalRows(a, b []string) bool {
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

func TestOrientViewMatchesDefinition(t *testing.T) {
	img := blockImage(stored)
	for o := 1; o <= 8; o++ {
		if got := readBlocks(t, Orient(img, o)); !equalRows(got, displayed[o]) {
			t.Errorf("Orient(·, %d) shows %v, want %v", o, got, displayed[o])
		}
	}
	for _, o := range []int{0, -1, 9, 1000} {
		if Orient(img, o) != image.Image(img) {
			t.Errorf("Orient(·, %d) should return the image unchanged", o)
		}
	}
}

// TestModelInputOrientedMatchesCopy checks that ModelInput, which resamples
// the stored pixels and orients the small result, gives exactly what
// resampling a rotated copy gives, including crops with odd margins.
func TestModelInputOrientedMatchesCopy(t *testing.T) {
	for _, dims := range []image.Point{{37, 23}, {23, 37}, {40, 40}, {9, 4}} {
		for name, img := range randomImages(dims.X, dims.Y) {
			for o := 2; o <= 8; o++ {
				view := Orient(img, o)
				copied := image.NewRGBA64(view.Bounds())
				draw.Draw(copied, copied.Rect, view, image.Point{}, draw.Src)
				for _, size := range []int{3, 8, 32} {
					got := ModelInput(view, size)
					want := ModelInput(copied, size)
					tol := 0
					if strings.Contains(name, "YCbCr") {
						tol = 1 // the copy went through color.YCbCr.RGBA; see ycbcrRow
					}
					if d := maxDiff(got.Pix, want.Pix); d > tol {
						t.Fatalf("%s %v orientation %d → %d: differs from a rotated copy by %d", name, dims, o, size, d)
					}
				}
			}
		}
	}
}

func TestExifOrientationMalformed(t *testing.T) {
	jpg := encode(t, "jpeg", image.NewGray(image.Rect(0, 0, 8, 8)))
	good := exifTIFF(binary.LittleEndian, 6)
	if ExifOrientation(withJPEGExif(jpg, good)) != 6 {
		t.Fatal("well-formed seed not recognised")
	}
	for name, data := range malformedExif(jpg, good) {
		if got := ExifOrientation(data); got != OrientNormal {
			t.Errorf("%s: orientation %d, want %d", name, got, OrientNormal)
		}
		// A JPEG with broken metadata still decodes, unrotated.
		if img, _, err := DecodeImage(data); err == nil && img.Bounds() != image.Rect(0, 0, 8, 8) {
			t.Errorf("%s: decoded bounds %v", name, img.Bounds())
		}
	}
}

// malformedExif returns JPEG files whose Exif metadata is broken in ways
// that must all read as "no orientation".
func malformedExif(jpg, good []byte) map[string][]byte {
	patch := func(f func(t []byte)) []byte {
		t := bytes.Clone(good)
		f(t)
		return withJPEGExif(jpg, t)
	}
	le := binary.LittleEndian
	return map[string][]byte{
		"empty tiff":               withJPEGExif(jpg, nil),
		"tiff header only":         withJPEGExif(jpg, good[:8]),
		"truncated entry":          withJPEGExif(jpg, good[:8+2+12*2+6]),
		"bad byte order":           patch(func(t []byte) { copy(t, "XX*\x00") }),
		"ifd past end":             patch(func(t []byte) { le.PutUint32(t[4:], 1<<20) }),
		"ifd offset max":           patch(func(t []byte) { le.PutUint32(t[4:], 0xFFFFFFFF) }),
		"ifd inside header":        patch(func(t []byte) { le.PutUint32(t[4:], 2) }),
		"huge entry count, no tag": patch(func(t []byte) { le.PutUint16(t[8:], 0xFFFF); le.PutUint16(t[8+2+24:], 0x0113) }),
		"value zero":               patch(func(t []byte) { le.PutUint16(t[8+2+24+8:], 0) }),
		"value nine":               patch(func(t []byte) { le.PutUint16(t[8+2+24+8:], 9) }),
		"wrong type":               patch(func(t []byte) { le.PutUint16(t[8+2+24+2:], 4) }),
		"zero count":               patch(func(t []byte) { le.PutUint32(t[8+2+24+4:], 0) }),
		// The next-IFD link points back at IFD0: it is never followed.
		"ifd loop, no tag": patch(func(t []byte) { le.PutUint16(t[8+2+24:], 0x0113); le.PutUint32(t[8+2+36:], 8) }),
		"segment length past end": func() []byte {
			d := withJPEGExif(jpg, good)
			i := bytes.Index(d, exifHeader) - 2
			binary.BigEndian.PutUint16(d[i:], 0xFFFF)
			return d[:i+40]
		}(),
		"segment length one": func() []byte {
			d := withJPEGExif(jpg, good)
			binary.BigEndian.PutUint16(d[4:], 1) // the first APP1's length
			return d
		}(),
		"exif after scan": append(bytes.Clone(jpg[:len(jpg)-2]), withJPEGExif([]byte{0xFF, 0xD8}, good)[2:]...),
		"lost sync":       append([]byte{0xFF, 0xD8, 0x00, 0x00}, withJPEGExif(jpg, good)[2:]...),
	}
}

func FuzzOrientation(f *testing.F) {
	jpg := encode(f, "jpeg", image.NewGray(image.Rect(0, 0, 8, 8)))
	pngData := encode(f, "png", image.NewGray(image.Rect(0, 0, 8, 8)))
	webp := readTestImage(f, "lossless.webp")
	for o := uint16(1); o <= 8; o++ {
		f.Add(withJPEGExif(jpg, exifTIFF(binary.LittleEndian, o)))
		f.Add(withJPEGExif(jpg, exifTIFF(binary.BigEndian, o)))
	}
	f.Add(withPNGChunk(pngData, "eXIf", exifTIFF(binary.BigEndian, 6)))
	f.Add(extendedWebP(f, webp, 6, 4, exifTIFF(binary.LittleEndian, 8)))
	for _, d := range malformedExif(jpg, exifTIFF(binary.LittleEndian, 6)) {
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		o := ExifOrientation(data)
		if o < 1 || o > 8 {
			t.Fatalf("orientation %d outside 1–8", o)
		}
		// Orienting any image by it must keep every pixel.
		m := image.NewGray(image.Rect(0, 0, 3, 2))
		copy(m.Pix, []uint8{1, 2, 3, 4, 5, 6})
		v := Orient(m, o)
		sum := 0
		for y := range v.Bounds().Dy() {
			for x := range v.Bounds().Dx() {
				sum += int(color.GrayModel.Convert(v.At(x, y)).(color.Gray).Y)
			}
		}
		if sum != 21 || v.Bounds().Dx()*v.Bounds().Dy() != 6 {
			t.Fatalf("orientation %d lost pixels: bounds %v, sum %d", o, v.Bounds(), sum)
		}
	})
}
