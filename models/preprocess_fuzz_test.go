package models

import (
	"bytes"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// FuzzPreprocess feeds arbitrary bytes to the page's whole input path
// (decode with EXIF orientation, crop, resize, normalise): it must return
// an error or a finite 3×32×32 tensor, never panic, and refuse
// decompression bombs from the header rather than allocate them.
func FuzzPreprocess(f *testing.F) {
	small := image.NewNRGBA(image.Rect(0, 0, 5, 3))
	for i := range small.Pix {
		small.Pix[i] = uint8(i * 37)
	}
	var b bytes.Buffer
	if err := png.Encode(&b, small); err != nil {
		f.Fatal(err)
	}
	f.Add(b.Bytes())
	b.Reset()
	if err := jpeg.Encode(&b, small, nil); err != nil {
		f.Fatal(err)
	}
	f.Add(b.Bytes())
	b.Reset()
	pal := image.NewPaletted(image.Rect(0, 0, 4, 4), color.Palette{color.Black, color.White})
	if err := gif.Encode(&b, pal, nil); err != nil {
		f.Fatal(err)
	}
	f.Add(b.Bytes())
	for _, name := range []string{"testdata/images/lossless.webp", "testdata/images/lossy_alpha.webp", "../static/samples/cat.png"} {
		data, err := os.ReadFile(filepath.FromSlash(name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte{})
	f.Add([]byte("BM"))
	norm := Normalization{Mean: []float32{0.4914, 0.4822, 0.4465}, Std: []float32{0.247, 0.243, 0.261}}
	in := Shape{C: 3, H: 32, W: 32}
	f.Fuzz(func(t *testing.T, data []byte) {
		x, pic, err := PreprocessImage(data, in, norm)
		if err != nil {
			if x != nil || pic != nil {
				t.Fatalf("error %v with a result", err)
			}
			return
		}
		if len(x) != in.Size() || pic.Rect.Dx() != 32 || pic.Rect.Dy() != 32 {
			t.Fatalf("%d values, picture %v", len(x), pic.Rect)
		}
		for i, v := range x {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) || v < -3 || v > 3 {
				t.Fatalf("value %d is %g: outside what normalised pixels can be", i, v)
			}
		}
	})
}
