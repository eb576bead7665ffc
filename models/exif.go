package models

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
)

// EXIF orientation tag values (TIFF tag 0x0112). Each names the transform
// that turns the stored pixels into the picture as it should be shown.
const (
	OrientNormal     = 1 // as stored
	OrientFlipH      = 2 // mirrored left to right
	OrientRotate180  = 3
	OrientFlipV      = 4 // mirrored top to bottom
	OrientTranspose  = 5 // mirrored along the main diagonal
	OrientRotate90   = 6 // rotated 90° clockwise (most portrait phone photos)
	OrientTransverse = 7 // mirrored along the anti-diagonal
	OrientRotate270  = 8 // rotated 90° counter-clockwise
)

const tagOrientation = 0x0112

var exifHeader = []byte("Exif\x00\x00")

// ExifOrientation returns the EXIF orientation (1–8) recorded in a JPEG,
// PNG (eXIf chunk) or WebP (EXIF chunk) file, or OrientNormal when there
// is none or the metadata is malformed. It reads only the first IFD and
// follows no IFD links, so crafted offsets cannot make it loop; every
// read is bounds-checked, so it never panics.
func ExifOrientation(data []byte) int {
	var tiff []byte
	switch {
	case bytes.HasPrefix(data, []byte{0xFF, 0xD8}):
		tiff = jpegExif(data)
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		tiff = pngExif(data)
	case len(data) >= 12 && string(data[:4]) == "RIFF" && string(data[8:12]) == "WEBP":
		tiff = webpExif(data)
	}
	return tiffOrientation(tiff)
}

// jpegExif returns the TIFF payload of the first APP1 "Exif" segment,
// scanning the marker segments that precede the first scan.
func jpegExif(data []byte) []byte {
	i := 2 // past SOI
	for i+4 <= len(data) {
		if data[i] != 0xFF {
			return nil // lost sync with the marker stream
		}
		marker := data[i+1]
		switch {
		case marker == 0xFF: // fill byte
			i++
			continue
		case marker == 0x01 || marker >= 0xD0 && marker <= 0xD8: // TEM, RSTn, SOI: no length
			i += 2
			continue
		case marker == 0xDA || marker == 0xD9: // SOS, EOI: metadata comes before these
			return nil
		}
		n := int(binary.BigEndian.Uint16(data[i+2:]))
		end := i + 2 + n
		if n < 2 || end > len(data) {
			return nil
		}
		if seg := data[i+4 : end]; marker == 0xE1 && bytes.HasPrefix(seg, exifHeader) {
			return seg[len(exifHeader):]
		}
		i = end
	}
	return nil
}

// pngExif returns the payload of the eXIf chunk, which must precede IDAT.
func pngExif(data []byte) []byte {
	i := 8 // past the signature
	for i+8 <= len(data) {
		n := uint64(binary.BigEndian.Uint32(data[i:]))
		typ := string(data[i+4 : i+8])
		if typ == "IDAT" || typ == "IEND" {
			return nil
		}
		if uint64(i)+8+n > uint64(len(data)) {
			return nil
		}
		body := data[i+8 : i+8+int(n)]
		if typ == "eXIf" {
			return bytes.TrimPrefix(body, exifHeader) // some writers keep the JPEG prefix
		}
		i += 8 + int(n) + 4 // length, type, data, CRC
	}
	return nil
}

// webpExif returns the payload of the EXIF chunk of an extended WebP file.
func webpExif(data []byte) []byte {
	i := 12 // past "RIFF", size, "WEBP"
	for i+8 <= len(data) {
		n := uint64(binary.LittleEndian.Uint32(data[i+4:]))
		if uint64(i)+8+n > uint64(len(data)) {
			return nil
		}
		body := data[i+8 : i+8+int(n)]
		if string(data[i:i+4]) == "EXIF" {
			return bytes.TrimPrefix(body, exifHeader)
		}
		i += 8 + int(n) + int(n&1) // chunks are padded to an even size
	}
	return nil
}

// tiffOrientation reads tag 0x0112 from IFD0 of a TIFF structure.
func tiffOrientation(t []byte) int {
	if len(t) < 8 {
		return OrientNormal
	}
	var order binary.ByteOrder
	switch string(t[:4]) {
	case "II*\x00":
		order = binary.LittleEndian
	case "MM\x00*":
		order = binary.BigEndian
	default:
		return OrientNormal
	}
	ifd := uint64(order.Uint32(t[4:]))
	size := uint64(len(t))
	if ifd < 8 || ifd+2 > size {
		return OrientNormal
	}
	entries := uint64(order.Uint16(t[ifd:]))
	for k := range entries {
		e := ifd + 2 + 12*k
		if e+12 > size {
			return OrientNormal
		}
		if order.Uint16(t[e:]) != tagOrientation {
			continue
		}
		const typeShort = 3
		if order.Uint16(t[e+2:]) != typeShort || order.Uint32(t[e+4:]) == 0 {
			return OrientNormal
		}
		// A single SHORT sits in the first two bytes of the value field.
		if v := int(order.Uint16(t[e+8:])); v >= OrientNormal && v <= OrientRotate270 {
			return v
		}
		return OrientNormal
	}
	return OrientNormal
}

// Orient returns img as it should be displayed under EXIF orientation o.
// For OrientNormal (and values outside 1–8) it returns img itself;
// otherwise a view with bounds starting at (0, 0) that remaps coordinates
// without copying pixels. ModelInput recognises the view and resamples the
// stored pixels directly, so a rotated 12-megapixel photo costs no copy.
func Orient(img image.Image, o int) image.Image {
	if o <= OrientNormal || o > OrientRotate270 {
		return img
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if o >= OrientTranspose {
		w, h = h, w
	}
	return &oriented{src: img, o: o, w: w, h: h}
}

// oriented is an image seen through an EXIF orientation.
type oriented struct {
	src  image.Image
	o    int
	w, h int // displayed size
}

func (v *oriented) ColorModel() color.Model { return v.src.ColorModel() }
func (v *oriented) Bounds() image.Rectangle { return image.Rect(0, 0, v.w, v.h) }

func (v *oriented) At(x, y int) color.Color {
	if !(image.Point{x, y}.In(v.Bounds())) {
		return v.src.ColorModel().Convert(color.Transparent)
	}
	sb := v.src.Bounds()
	sx, sy := sourcePoint(v.o, x, y, sb.Dx(), sb.Dy())
	return v.src.At(sb.Min.X+sx, sb.Min.Y+sy)
}

// sourcePoint maps displayed pixel (x, y) to the stored pixel it shows,
// for stored pixels of size w×h with origin (0, 0).
func sourcePoint(o, x, y, w, h int) (sx, sy int) {
	switch o {
	case OrientFlipH:
		return w - 1 - x, y
	case OrientRotate180:
		return w - 1 - x, h - 1 - y
	case OrientFlipV:
		return x, h - 1 - y
	case OrientTranspose:
		return y, x
	case OrientRotate90:
		return y, h - 1 - x
	case OrientTransverse:
		return w - 1 - y, h - 1 - x
	case OrientRotate270:
		return w - 1 - y, x
	}
	return x, y
}

// sourceRect maps a rectangle of displayed pixels (origin (0, 0)) to the
// rectangle of stored pixels it shows.
func sourceRect(o int, r image.Rectangle, w, h int) image.Rectangle {
	x0, y0 := sourcePoint(o, r.Min.X, r.Min.Y, w, h)
	x1, y1 := sourcePoint(o, r.Max.X-1, r.Max.Y-1, w, h)
	return image.Rect(min(x0, x1), min(y0, y1), max(x0, x1)+1, max(y0, y1)+1)
}

// orientSquare applies orientation o to a square image with origin (0, 0),
// returning a new image (or m itself for OrientNormal).
func orientSquare(m *image.NRGBA, o int) *image.NRGBA {
	if o <= OrientNormal || o > OrientRotate270 {
		return m
	}
	n := m.Rect.Dx()
	out := image.NewNRGBA(m.Rect)
	for y := range n {
		for x := range n {
			sx, sy := sourcePoint(o, x, y, n, n)
			copy(out.Pix[out.PixOffset(x, y):][:4], m.Pix[m.PixOffset(sx, sy):][:4])
		}
	}
	return out
}
