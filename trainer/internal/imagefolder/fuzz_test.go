package imagefolder

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// FuzzPixels writes the fuzzer's bytes as one picture of an image folder
// beside a good one and reads the folder as training does: Pixels never
// panics; a file it cannot read is skipped (with skip) or named in the
// error (without), and every image it keeps is one size×size RGB plane
// set with its label.
func FuzzPixels(f *testing.F) {
	good, err := os.ReadFile("../../../static/samples/cat.png")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good, ".png")
	f.Add(good[:len(good)/2], ".png")
	f.Add([]byte{}, ".jpg")
	f.Add([]byte("GIF89a\x01\x00\x01\x00"), ".gif")
	f.Add([]byte("BM"), ".bmp")
	f.Add([]byte("RIFF\x10\x00\x00\x00WEBPVP8 "), ".webp")
	f.Fuzz(func(t *testing.T, data []byte, ext string) {
		if !slices.Contains(Exts, ext) {
			ext = ".png"
		}
		dir := t.TempDir()
		for _, p := range []struct {
			name string
			data []byte
		}{
			{filepath.Join(dir, "a", "fuzz"+ext), data},
			{filepath.Join(dir, "b", "good.png"), good},
		} {
			if err := os.MkdirAll(filepath.Dir(p.name), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p.name, p.data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		train, held, err := Load(dir)
		if err != nil || held != nil || train.Len() != 2 {
			t.Fatalf("Load: %v, held %v, %d files", err, held, train.Len())
		}
		const size = 8
		pix, labels, skipped, err := train.Pixels(size, true)
		if err != nil {
			t.Fatalf("Pixels with skip: %v", err)
		}
		if len(labels)+len(skipped) != 2 || len(pix) != 3*size*size*len(labels) || !slices.Contains(labels, 1) {
			t.Fatalf("kept %d (labels %v), skipped %v, %d bytes", len(labels), labels, skipped, len(pix))
		}
		_, _, _, strictErr := train.Pixels(size, false)
		if (len(skipped) == 1) != (strictErr != nil) {
			t.Fatalf("skipped %v, without skip: %v", skipped, strictErr)
		}
		if strictErr != nil && !bytes.Contains([]byte(strictErr.Error()), []byte("fuzz"+ext)) {
			t.Fatalf("error does not name the file: %v", strictErr)
		}
	})
}
