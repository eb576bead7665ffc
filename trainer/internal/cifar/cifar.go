// Package cifar reads CIFAR-10 in its official binary layout and turns it
// into shuffled, augmented, normalised mini-batches for training.
package cifar

import (
	"bufio"
	"errors"
	"fmt"
	"image"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cifarnet-go/cifarnet/models"
)

// Layout of the binary files: each record is one label byte followed by
// the red, green and blue planes, each 32×32 row-major.
const (
	Side       = 32
	Channels   = 3
	PlaneSize  = Side * Side
	ImageSize  = Channels * PlaneSize // bytes of one image
	RecordSize = 1 + ImageSize        // bytes of one record
	NumClasses = 10
)

// File and folder names of the official release.
const (
	// DirName is the folder the official archive unpacks to.
	DirName = "cifar-10-batches-bin"
	// MetaFile holds the class names, one a line.
	MetaFile = "batches.meta.txt"
	// TestFile is the test batch.
	TestFile = "test_batch.bin"
)

// TrainFiles are the five training batches in order.
var TrainFiles = []string{
	"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
	"data_batch_4.bin", "data_batch_5.bin",
}

// Set is a labelled set of images held as in the files: image i occupies
// Images[i*ImageSize:(i+1)*ImageSize], the R, G and B planes in turn.
type Set struct {
	Images  []byte
	Labels  []uint8
	Classes []string
}

// Len is the number of images.
func (s *Set) Len() int { return len(s.Labels) }

// Planes reduces img to side×side as the page does (models.ModelInput)
// and writes its R, G and B planes into dst (3·side·side bytes), the
// layout of a set's images.
func Planes(dst []byte, img image.Image, side int) {
	m := models.ModelInput(img, side)
	plane := side * side
	for p := range plane {
		dst[p], dst[plane+p], dst[2*plane+p] = m.Pix[4*p], m.Pix[4*p+1], m.Pix[4*p+2]
	}
}

// Image returns the CHW bytes of image i; the slice aliases the set.
func (s *Set) Image(i int) []byte {
	return s.Images[i*ImageSize : (i+1)*ImageSize : (i+1)*ImageSize]
}

// ClassCounts returns how many images each class has: one count per class
// name, more if some label lies beyond the names.
func (s *Set) ClassCounts() []int {
	var all [256]int
	for _, y := range s.Labels {
		all[y]++
	}
	n := len(s.Classes)
	for y := len(all) - 1; y >= n; y-- {
		if all[y] != 0 {
			n = y + 1
			break
		}
	}
	return slices.Clone(all[:n])
}

// FindDir returns the folder that holds the batch files: dir itself, or
// dir/cifar-10-batches-bin, so that callers may name either.
func FindDir(dir string) (string, error) {
	for _, d := range []string{dir, filepath.Join(dir, DirName)} {
		if _, err := os.Stat(filepath.Join(d, TrainFiles[0])); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("cifar: no CIFAR-10 binary files in %s or %s: fetch them with \"trainer download --data %s\", or name the folder that holds data_batch_1.bin with --data", dir, filepath.Join(dir, DirName), dir)
}

// Load reads the five training batches and the test batch. dir is the
// folder holding them or the folder that holds cifar-10-batches-bin.
func Load(dir string) (train, test *Set, err error) {
	dir, err = FindDir(dir)
	if err != nil {
		return nil, nil, err
	}
	var missing []string
	for _, name := range slices.Concat(TrainFiles, []string{TestFile}) {
		if _, err := os.Stat(filepath.Join(dir, name)); errors.Is(err, fs.ErrNotExist) {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return nil, nil, fmt.Errorf("cifar: %s lacks %s", dir, strings.Join(missing, ", "))
	}
	classes, err := readClasses(dir)
	if err != nil {
		return nil, nil, err
	}
	paths := make([]string, len(TrainFiles))
	for i, name := range TrainFiles {
		paths[i] = filepath.Join(dir, name)
	}
	if train, err = loadFiles(paths, classes); err != nil {
		return nil, nil, err
	}
	if test, err = loadFiles([]string{filepath.Join(dir, TestFile)}, classes); err != nil {
		return nil, nil, err
	}
	return train, test, nil
}

// LoadFile reads one batch file. Class names come from batches.meta.txt
// beside it when present.
func LoadFile(path string) (*Set, error) {
	classes, err := readClasses(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	return loadFiles([]string{path}, classes)
}

// loadFiles reads the given batch files into one set. Sizes are checked
// first so that the set is allocated once; each file is read whole into a
// shared scratch buffer.
func loadFiles(paths []string, classes []string) (*Set, error) {
	files := make([]*os.File, len(paths))
	defer func() {
		for _, f := range files {
			if f != nil {
				f.Close()
			}
		}
	}()
	sizes := make([]int64, len(paths))
	var total, largest int64
	for i, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("cifar: %w", err)
		}
		files[i] = f
		st, err := f.Stat()
		if err != nil {
			return nil, fmt.Errorf("cifar: %w", err)
		}
		if st.Size()%RecordSize != 0 {
			return nil, fmt.Errorf("cifar: %s: size %d bytes is not a multiple of the %d-byte record", p, st.Size(), RecordSize)
		}
		sizes[i] = st.Size()
		total += st.Size()
		largest = max(largest, st.Size())
	}
	n := int(total / RecordSize)
	set := &Set{Images: make([]byte, n*ImageSize), Labels: make([]uint8, n), Classes: classes}
	scratch := make([]byte, largest)
	at := 0
	for i, f := range files {
		buf := scratch[:sizes[i]]
		if _, err := io.ReadFull(f, buf); err != nil {
			return nil, fmt.Errorf("cifar: read %s: %w", paths[i], err)
		}
		for r := 0; r < len(buf)/RecordSize; r++ {
			rec := buf[r*RecordSize : (r+1)*RecordSize]
			if int(rec[0]) >= NumClasses {
				return nil, fmt.Errorf("cifar: %s: record %d has label %d, want 0–%d", paths[i], r, rec[0], NumClasses-1)
			}
			set.Labels[at] = rec[0]
			copy(set.Images[at*ImageSize:], rec[1:])
			at++
		}
	}
	return set, nil
}

// readClasses reads batches.meta.txt in dir, ignoring blank lines (the
// official file ends with one); without the file the standard names apply.
func readClasses(dir string) ([]string, error) {
	path := filepath.Join(dir, MetaFile)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return models.CIFAR10Classes, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cifar: %w", err)
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if name := strings.TrimSpace(sc.Text()); name != "" {
			names = append(names, name)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cifar: read %s: %w", path, err)
	}
	if len(names) != NumClasses {
		return nil, fmt.Errorf("cifar: %s: %d class names, want %d", path, len(names), NumClasses)
	}
	return names, nil
}
