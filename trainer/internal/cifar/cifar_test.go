package cifar

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cifarnet-go/cifarnet/models"
)

// realDataDir locates the shared copy of CIFAR-10 beside the repository,
// or CIFAR10_DIR, and skips the test when neither exists.
func realDataDir(tb testing.TB) string {
	tb.Helper()
	if d := os.Getenv("CIFAR10_DIR"); d != "" {
		return d
	}
	wd, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			dir := filepath.Join(d, "..", "shared", "cifar10", DirName)
			if _, err := os.Stat(filepath.Join(dir, TestFile)); err != nil {
				tb.Skipf("CIFAR-10 not found at %s (set CIFAR10_DIR to run this test)", dir)
			}
			return dir
		}
		if filepath.Dir(d) == d {
			tb.Skip("repository root not found; set CIFAR10_DIR to run this test")
		}
	}
}

// writeBatch writes records with the given labels; image i is filled with
// the byte i+1 so that records can be told apart.
func writeBatch(t *testing.T, path string, labels []byte) {
	t.Helper()
	var buf []byte
	for i, y := range labels {
		rec := make([]byte, RecordSize)
		rec[0] = y
		for k := 1; k < RecordSize; k++ {
			rec[k] = byte(i + 1)
		}
		buf = append(buf, rec...)
	}
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadReal(t *testing.T) {
	dir := realDataDir(t)
	train, test, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if train.Len() != 50000 || test.Len() != 10000 {
		t.Fatalf("got %d train and %d test images, want 50000 and 10000", train.Len(), test.Len())
	}
	if len(train.Images) != 50000*ImageSize || len(test.Images) != 10000*ImageSize {
		t.Fatalf("image buffers hold %d and %d bytes", len(train.Images), len(test.Images))
	}
	for c, n := range train.ClassCounts() {
		if n != 5000 {
			t.Errorf("train class %d has %d images, want 5000", c, n)
		}
	}
	for c, n := range test.ClassCounts() {
		if n != 1000 {
			t.Errorf("test class %d has %d images, want 1000", c, n)
		}
	}
	if !slices.Equal(train.Classes, models.CIFAR10Classes) || !slices.Equal(test.Classes, models.CIFAR10Classes) {
		t.Errorf("classes %v, want %v", train.Classes, models.CIFAR10Classes)
	}
	// Load accepts the parent folder too.
	if d, err := FindDir(filepath.Dir(dir)); err != nil || d != filepath.Clean(dir) {
		t.Errorf("FindDir(parent) = %q, %v; want %q", d, err, dir)
	}

	// The first image of data_batch_1 is the official one: a frog (6).
	if train.Labels[0] != 6 {
		t.Errorf("first training label %d, want 6 (frog)", train.Labels[0])
	}
	// Images are kept byte for byte: compare against the file.
	raw, err := os.ReadFile(filepath.Join(dir, TestFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 1234, 9999} {
		rec := raw[i*RecordSize : (i+1)*RecordSize]
		if test.Labels[i] != rec[0] || !slices.Equal(test.Image(i), rec[1:]) {
			t.Errorf("test image %d differs from the file", i)
		}
	}
}

func TestLoadRealCorrupt(t *testing.T) {
	src := filepath.Join(realDataDir(t), "data_batch_1.bin")
	raw, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()

	short := filepath.Join(tmp, "short.bin")
	if err := os.WriteFile(short, raw[:len(raw)-1], 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = LoadFile(short)
	if err == nil || !strings.Contains(err.Error(), short) || !strings.Contains(err.Error(), "30729999") {
		t.Errorf("truncated file: error %v, want one naming %s and its size", err, short)
	}

	bad := filepath.Join(tmp, "badlabel.bin")
	corrupt := slices.Clone(raw)
	corrupt[17*RecordSize] = 10
	if err := os.WriteFile(bad, corrupt, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = LoadFile(bad)
	if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "record 17 ") {
		t.Errorf("bad label: error %v, want one naming %s and record 17", err, bad)
	}
}

func TestLoadSynthetic(t *testing.T) {
	dir := t.TempDir()
	writeBatch(t, filepath.Join(dir, "data_batch_1.bin"), []byte{3, 1, 4})
	if _, _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "data_batch_2.bin") || !strings.Contains(err.Error(), TestFile) {
		t.Errorf("missing files: error %v, want one listing data_batch_2.bin and %s", err, TestFile)
	}
	for i, name := range TrainFiles[1:] {
		writeBatch(t, filepath.Join(dir, name), []byte{byte(i)})
	}
	writeBatch(t, filepath.Join(dir, TestFile), []byte{9, 8})

	train, test, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint8{3, 1, 4, 0, 1, 2, 3}; !slices.Equal(train.Labels, want) {
		t.Errorf("train labels %v, want %v", train.Labels, want)
	}
	if test.Len() != 2 || test.Image(1)[0] != 2 || test.Image(1)[ImageSize-1] != 2 {
		t.Errorf("test set: %d images, image 1 starts with %d", test.Len(), test.Image(1)[0])
	}
	if train.Image(1)[0] != 2 || train.Image(3)[0] != 1 {
		t.Errorf("train images out of order")
	}
	if !slices.Equal(train.Classes, models.CIFAR10Classes) {
		t.Errorf("without %s classes are %v, want the standard names", MetaFile, train.Classes)
	}

	names := "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n\n"
	if err := os.WriteFile(filepath.Join(dir, MetaFile), []byte(names), 0o644); err != nil {
		t.Fatal(err)
	}
	if s, err := LoadFile(filepath.Join(dir, TestFile)); err != nil || s.Classes[9] != "j" {
		t.Errorf("classes from %s: %v, %v", MetaFile, s, err)
	}
	if err := os.WriteFile(filepath.Join(dir, MetaFile), []byte("a\nb\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Load(dir); err == nil || !strings.Contains(err.Error(), MetaFile) {
		t.Errorf("two class names: error %v, want one naming %s", err, MetaFile)
	}
	if _, _, err := Load(t.TempDir()); err == nil {
		t.Error("empty folder: no error")
	}
}

// syntheticSet has n images; image i holds i in its first two bytes, the
// rest of each plane a pattern, and label i%10.
func syntheticSet(n int) *Set {
	s := &Set{Images: make([]byte, n*ImageSize), Labels: make([]uint8, n), Classes: models.CIFAR10Classes}
	for i := range n {
		img := s.Image(i)
		for k := range img {
			img[k] = byte(k*7 + i)
		}
		img[0], img[1] = byte(i), byte(i>>8)
		s.Labels[i] = uint8(i % 10)
	}
	return s
}

func TestSplit(t *testing.T) {
	s := syntheticSet(1000) // 100 per class
	train, val, err := Split(s, 0.25, 42)
	if err != nil {
		t.Fatal(err)
	}
	if train.Len() != 750 || val.Len() != 250 {
		t.Fatalf("split sizes %d/%d, want 750/250", train.Len(), val.Len())
	}
	for c, n := range val.ClassCounts() {
		if n != 25 {
			t.Errorf("val class %d has %d images, want 25", c, n)
		}
	}
	// Disjoint, complete, labels still with their images, order kept.
	seen := make(map[int]bool)
	for _, part := range []*Set{train, val} {
		prev := -1
		for i := range part.Len() {
			id := int(part.Image(i)[0]) | int(part.Image(i)[1])<<8
			if seen[id] {
				t.Fatalf("image %d in both sets", id)
			}
			seen[id] = true
			if int(part.Labels[i]) != id%10 || !slices.Equal(part.Image(i), s.Image(id)) {
				t.Fatalf("image %d lost its label or pixels", id)
			}
			if id <= prev {
				t.Fatalf("order not kept: %d after %d", id, prev)
			}
			prev = id
		}
	}
	if len(seen) != 1000 {
		t.Fatalf("%d distinct images after split, want 1000", len(seen))
	}

	_, val2, _ := Split(s, 0.25, 42)
	_, val3, _ := Split(s, 0.25, 43)
	if !slices.Equal(val.Labels, val2.Labels) || !slices.Equal(val.Images, val2.Images) {
		t.Error("same seed gave a different split")
	}
	if slices.Equal(val.Images, val3.Images) {
		t.Error("different seeds gave the same split")
	}
	if tr, va, err := Split(s, 0, 1); err != nil || tr.Len() != 1000 || va.Len() != 0 {
		t.Errorf("fraction 0: %d/%d, %v", tr.Len(), va.Len(), err)
	}
	for _, f := range []float64{-0.1, 1, math.NaN()} {
		if _, _, err := Split(s, f, 1); err == nil {
			t.Errorf("fraction %g: no error", f)
		}
	}
}

func TestSplitReal(t *testing.T) {
	train, _, err := Load(realDataDir(t))
	if err != nil {
		t.Fatal(err)
	}
	tr, val, err := Split(train, 0.1, 7)
	if err != nil {
		t.Fatal(err)
	}
	for c := range NumClasses {
		if n, m := tr.ClassCounts()[c], val.ClassCounts()[c]; n != 4500 || m != 500 {
			t.Errorf("class %d split %d/%d, want 4500/500", c, n, m)
		}
	}
}

func TestStats(t *testing.T) {
	s := &Set{Images: make([]byte, 2*ImageSize), Labels: make([]uint8, 2)}
	// Red: all 0 in one image, all 255 in the other → mean 0.5, std 0.5.
	// Green: 51 everywhere → mean 0.2, std 0. Blue: half 0, half 102 in
	// each image → mean 0.2, std 0.2.
	for i := range 2 {
		img := s.Image(i)
		for k := range PlaneSize {
			img[k] = byte(255 * i)
			img[PlaneSize+k] = 51
			img[2*PlaneSize+k] = byte(102 * (k % 2))
		}
	}
	mean, std := Stats(s)
	want := [2][3]float32{{0.5, 0.2, 0.2}, {0.5, 0, 0.2}}
	for c := range 3 {
		if math.Abs(float64(mean[c]-want[0][c])) > 1e-6 || math.Abs(float64(std[c]-want[1][c])) > 1e-6 {
			t.Errorf("channel %d: mean %g std %g, want %g %g", c, mean[c], std[c], want[0][c], want[1][c])
		}
	}
}

func TestStatsReal(t *testing.T) {
	train, _, err := Load(realDataDir(t))
	if err != nil {
		t.Fatal(err)
	}
	mean, std := Stats(train)
	// The well-known statistics of the official pixels; this copy is
	// JPEG-derived, so allow a little slack.
	wantMean := [3]float32{0.4914, 0.4822, 0.4465}
	wantStd := [3]float32{0.2470, 0.2435, 0.2616}
	for c := range 3 {
		if math.Abs(float64(mean[c]-wantMean[c])) > 0.005 || math.Abs(float64(std[c]-wantStd[c])) > 0.005 {
			t.Errorf("channel %d: mean %.4f std %.4f, want about %.4f %.4f", c, mean[c], std[c], wantMean[c], wantStd[c])
		}
	}
	t.Logf("mean %v std %v", mean, std)
}

func BenchmarkLoad(b *testing.B) {
	dir := realDataDir(b)
	b.SetBytes(60000 * RecordSize)
	for b.Loop() {
		if _, _, err := Load(dir); err != nil {
			b.Fatal(err)
		}
	}
}

// TestFindDirSaysWhatToDo: a folder without the data says how to get it.
func TestFindDirSaysWhatToDo(t *testing.T) {
	dir := t.TempDir()
	_, err := FindDir(dir)
	if err == nil || !strings.Contains(err.Error(), "trainer download --data "+dir) || !strings.Contains(err.Error(), "--data") {
		t.Errorf("FindDir(empty folder): %v", err)
	}
}
