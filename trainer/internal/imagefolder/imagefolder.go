// Package imagefolder reads image-folder data sets, torchvision's
// ImageFolder convention: DIR/<class name>/<image files>, any sizes, or
// DIR/train/<class>/… with DIR/val/<class>/… (or test) beside it.
package imagefolder

import (
	"errors"
	"fmt"
	"image"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/trainer/internal/cifar"
)

// MaxClasses bounds the number of class folders.
const MaxClasses = 1000

// Exts are the image file extensions read (case-insensitive).
var Exts = []string{".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp"}

// Set is a list of image files with their class labels.
type Set struct {
	Classes []string // folder names, sorted
	Files   []string
	Labels  []int
}

// Len is the number of images.
func (s *Set) Len() int { return len(s.Files) }

// Is reports whether dir looks like an image folder: it has a
// sub-folder holding an image file, directly or under train/.
func Is(dir string) bool {
	for _, d := range []string{dir, filepath.Join(dir, "train")} {
		entries, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if e.IsDir() {
				if files, _ := images(filepath.Join(d, e.Name())); len(files) > 0 {
					return true
				}
			}
		}
	}
	return false
}

// Load reads the layout of dir. With DIR/train it returns the training
// set and DIR/val (or DIR/test) as the held-out set, which must have the
// same classes; otherwise all of dir as train and a nil held-out set.
func Load(dir string) (train, held *Set, err error) {
	if st, err := os.Stat(filepath.Join(dir, "train")); err == nil && st.IsDir() {
		if train, err = read(filepath.Join(dir, "train")); err != nil {
			return nil, nil, err
		}
		for _, name := range []string{"val", "test"} {
			d := filepath.Join(dir, name)
			if st, err := os.Stat(d); err == nil && st.IsDir() {
				if held, err = read(d); err != nil {
					return nil, nil, err
				}
				if !slices.Equal(held.Classes, train.Classes) {
					return nil, nil, fmt.Errorf("imagefolder: %s has classes %q, train has %q", d, held.Classes, train.Classes)
				}
				return train, held, nil
			}
		}
		return train, nil, nil
	}
	train, err = read(dir)
	return train, nil, err
}

// read lists DIR/<class>/<images>.
func read(dir string) (*Set, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("imagefolder: %w", err)
	}
	s := &Set{}
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		files, err := images(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("imagefolder: class %q (%s) has no images (%s)", e.Name(), filepath.Join(dir, e.Name()), strings.Join(Exts, " "))
		}
		s.Classes = append(s.Classes, e.Name())
		for _, f := range files {
			s.Files = append(s.Files, f)
			s.Labels = append(s.Labels, len(s.Classes)-1)
		}
	}
	switch {
	case len(s.Classes) == 0:
		return nil, fmt.Errorf("imagefolder: %s has no class folders (want %s/<class>/<images>)", dir, dir)
	case len(s.Classes) == 1:
		return nil, fmt.Errorf("imagefolder: %s has one class folder (%q): a classifier needs at least two", dir, s.Classes[0])
	case len(s.Classes) > MaxClasses:
		return nil, fmt.Errorf("imagefolder: %s has %d class folders, at most %d", dir, len(s.Classes), MaxClasses)
	}
	return s, nil
}

// images lists the image files in dir (not its sub-folders), sorted.
func images(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("imagefolder: %w", err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if e.Type()&fs.ModeType != 0 && e.Type()&fs.ModeSymlink == 0 {
			continue // devices, pipes
		}
		if slices.Contains(Exts, strings.ToLower(filepath.Ext(e.Name()))) {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out, nil
}

// ErrTooFew is returned by Split for a class too small to hold any out.
var ErrTooFew = errors.New("too few images")

// Split holds out about frac of each class (at least one image), chosen
// by seed. Every class needs at least two images.
func (s *Set) Split(frac float64, seed uint64) (train, held *Set, err error) {
	if frac <= 0 || frac >= 1 {
		return nil, nil, fmt.Errorf("imagefolder: hold-out share %g: want between 0 and 1", frac)
	}
	byClass := make([][]int, len(s.Classes))
	for i, l := range s.Labels {
		byClass[l] = append(byClass[l], i)
	}
	rng := rand.New(rand.NewPCG(seed, 0x1f))
	train = &Set{Classes: s.Classes}
	held = &Set{Classes: s.Classes}
	for c, idx := range byClass {
		if len(idx) < 2 {
			return nil, nil, fmt.Errorf("imagefolder: class %q has %d image: %w (at least 2: one to train on, one to check)", s.Classes[c], len(idx), ErrTooFew)
		}
		rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		k := max(1, int(float64(len(idx))*frac+0.5))
		for n, i := range idx {
			dst := train
			if n < k {
				dst = held
			}
			dst.Files = append(dst.Files, s.Files[i])
			dst.Labels = append(dst.Labels, s.Labels[i])
		}
	}
	return train, held, nil
}

// Pixels decodes every image and reduces it to size×size as the page
// does (models.DecodeImage, models.ModelInput), returning the images'
// planar RGB bytes back to back and their labels. An unreadable file
// stops it with an error naming the file, or, with skip, is left out and
// listed in skipped.
func (s *Set) Pixels(size int, skip bool) (pix []byte, labels []int, skipped []string, err error) {
	plane := size * size
	for i, path := range s.Files {
		data, err := os.ReadFile(path)
		if err == nil && len(data) == 0 {
			err = errors.New("empty file")
		}
		var img image.Image
		if err == nil {
			img, _, err = models.DecodeImage(data)
		}
		if err != nil {
			if !skip {
				return nil, nil, nil, fmt.Errorf("imagefolder: %s: %w", path, err)
			}
			skipped = append(skipped, path)
			continue
		}
		at := len(pix)
		pix = append(pix, make([]byte, 3*plane)...)
		cifar.Planes(pix[at:], img, size)
		labels = append(labels, s.Labels[i])
	}
	return pix, labels, skipped, nil
}
