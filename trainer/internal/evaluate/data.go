package evaluate

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/cifarnet-go/cifarnet/trainer/internal/cifar"
	"github.com/cifarnet-go/cifarnet/trainer/internal/pathtext"
)

// JPEGTestMD5 is the md5 of test_batch.bin in the JPEG-derived copy of
// CIFAR-10 kept at ../shared (see its README): same layout, order and
// labels as the official release, but pixels decoded from JPEGs.
const JPEGTestMD5 = "bbc27b2c0baa4d5ebdd8aaf5e09a5573"

// DataInfo identifies the test data a report was measured on.
type DataInfo struct {
	Dir      string `json:"dir"`
	TestFile string `json:"test_file"`
	TestMD5  string `json:"test_md5"`
	// JPEGDerived is true for the known JPEG-derived copy, whose accuracy
	// is close to but not the same as a published CIFAR-10 test accuracy.
	JPEGDerived bool   `json:"jpeg_derived"`
	Note        string `json:"note"`
}

// DescribeData fingerprints the test batch in dir (the batch folder or the
// folder holding cifar-10-batches-bin).
func DescribeData(dir string) (*DataInfo, error) {
	d, err := cifar.FindDir(dir)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(d, cifar.TestFile)
	sum, err := md5File(path)
	if err != nil {
		return nil, err
	}
	info := &DataInfo{Dir: pathtext.Of(d), TestFile: pathtext.Of(path), TestMD5: sum}
	if sum == JPEGTestMD5 {
		info.JPEGDerived = true
		info.Note = "This test set is the JPEG-derived copy of CIFAR-10 (pixels decoded from quality-75 JPEGs, " +
			"mean PSNR about 29.5 dB against the originals): accuracy here is close to, but not the same as, " +
			"a published CIFAR-10 test accuracy."
	} else {
		info.Note = "test_batch.bin is not the known JPEG-derived copy; presumably the official release."
	}
	return info, nil
}

func md5File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("fingerprint test data: %w", err)
	}
	defer f.Close()
	h := md5.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("fingerprint test data %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ClassChannelMeans returns, for every class of s, the mean pixel value
// (0–255) of each colour plane. A class without images gets zeros.
func ClassChannelMeans(s *cifar.Set) [][cifar.Channels]float64 {
	k := len(s.Classes)
	for _, y := range s.Labels {
		k = max(k, int(y)+1)
	}
	sums := make([][cifar.Channels]uint64, k)
	counts := make([]int, k)
	for i := range s.Len() {
		img := s.Image(i)
		y := s.Labels[i]
		counts[y]++
		for c := range cifar.Channels {
			var sum uint64
			for _, v := range img[c*cifar.PlaneSize : (c+1)*cifar.PlaneSize] {
				sum += uint64(v)
			}
			sums[y][c] += sum
		}
	}
	out := make([][cifar.Channels]float64, k)
	for y := range out {
		if counts[y] == 0 {
			continue
		}
		for c := range cifar.Channels {
			out[y][c] = float64(sums[y][c]) / float64(counts[y]*cifar.PlaneSize)
		}
	}
	return out
}
