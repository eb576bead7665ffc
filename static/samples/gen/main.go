// Command gen writes the page's sample images: the first CIFAR-10 test image
// of each class, as a 32×32 PNG named after its class, into static/samples.
//
// Run it once from the repository root; the PNGs are committed:
//
//	go run ./static/samples/gen [-data ../shared/cifar10/cifar-10-batches-bin] [-out static/samples]
package main

import (
	"bufio"
	"flag"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/cifarnet-go/cifarnet/models/atomicfile"
)

const (
	side       = 32
	recordSize = 1 + 3*side*side // label byte, then R, G and B planes
)

func main() {
	data := flag.String("data", defaultDataDir(), "CIFAR-10 binary directory (holds test_batch.bin and batches.meta.txt)")
	out := flag.String("out", filepath.Join("static", "samples"), "output directory")
	flag.Parse()
	if err := run(*data, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func defaultDataDir() string {
	if d := os.Getenv("CIFAR10_DIR"); d != "" {
		return d
	}
	return filepath.Join("..", "shared", "cifar10", "cifar-10-batches-bin")
}

func run(dataDir, outDir string) error {
	meta, err := os.ReadFile(filepath.Join(dataDir, "batches.meta.txt"))
	if err != nil {
		return fmt.Errorf("read class names: %w", err)
	}
	classes := strings.Fields(string(meta))
	if len(classes) != 10 {
		return fmt.Errorf("batches.meta.txt lists %d classes, want 10", len(classes))
	}
	f, err := os.Open(filepath.Join(dataDir, "test_batch.bin"))
	if err != nil {
		return fmt.Errorf("open test batch: %w", err)
	}
	defer f.Close()

	r := bufio.NewReader(f)
	rec := make([]byte, recordSize)
	written := make(map[int]bool, len(classes))
	for i := 0; len(written) < len(classes); i++ {
		if _, err := io.ReadFull(r, rec); err != nil {
			return fmt.Errorf("read record %d: %w", i, err)
		}
		label := int(rec[0])
		if label >= len(classes) {
			return fmt.Errorf("record %d: label %d out of range", i, label)
		}
		if written[label] {
			continue
		}
		path := filepath.Join(outDir, classes[label]+".png")
		if err := writePNG(path, toImage(rec[1:])); err != nil {
			return err
		}
		fmt.Printf("%s: test image %d\n", path, i)
		written[label] = true
	}
	return nil
}

// toImage converts planar RGB bytes to an opaque image.
func toImage(planes []byte) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, side, side))
	const n = side * side
	for p := 0; p < n; p++ {
		img.Pix[4*p+0] = planes[p]
		img.Pix[4*p+1] = planes[n+p]
		img.Pix[4*p+2] = planes[2*n+p]
		img.Pix[4*p+3] = 0xff
	}
	return img
}

// writePNG writes the image atomically (see package atomicfile).
func writePNG(path string, img image.Image) error {
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	return atomicfile.Write(path, func(w io.Writer) error { return enc.Encode(w, img) })
}
