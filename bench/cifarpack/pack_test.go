package main

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cifarDir is the data set: $CIFAR10_DIR or ../shared's copy.
func cifarDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("CIFAR10_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "cifar10", "cifar-10-batches-bin")
	}
	if _, err := os.Stat(filepath.Join(dir, trainFiles[0])); err != nil {
		t.Skipf("no CIFAR-10 at %s (set CIFAR10_DIR): %v", dir, err)
	}
	return dir
}

// subset copies the first n records of each training file (and the test
// file with test) into a temporary folder.
func subset(t *testing.T, src string, n int, test bool) string {
	t.Helper()
	dir := t.TempDir()
	names := append([]string(nil), trainFiles...)
	if test {
		names = append(names, testFile)
	}
	for _, name := range append(names, "batches.meta.txt") {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(name, ".bin") {
			b = b[:n*record]
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// roundTrip packs dir, unpacks it and returns the unpacked folder.
func roundTrip(t *testing.T, dir string, test bool, quality int) (string, Stats) {
	t.Helper()
	pack := filepath.Join(t.TempDir(), "cifar.pack")
	st, err := PackDir(dir, pack, test, quality)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	files, err := UnpackFile(pack, out)
	if err != nil {
		t.Fatal(err)
	}
	want := append([]string(nil), trainFiles...)
	if test {
		want = append(want, testFile)
	}
	if strings.Join(files, " ") != strings.Join(want, " ") {
		t.Fatalf("unpacked %v, want %v", files, want)
	}
	return out, st
}

// TestRoundTrip packs the first 200 images of each training file and
// checks the unpacked layout, labels and pixels.
func TestRoundTrip(t *testing.T) {
	const n = 200
	dir := subset(t, cifarDir(t), n, true)
	out, st := roundTrip(t, dir, true, DefaultQuality)
	if st.Images != 6*n {
		t.Errorf("%d images packed, want %d", st.Images, 6*n)
	}
	t.Logf("%d images: %d bytes (%.0f an image); mean |Δ| %.3f, max %d, %.1f%% unchanged",
		st.Images, st.Bytes, float64(st.Bytes)/float64(st.Images), st.MeanAbs(), st.MaxAbs, 100*float64(st.Exact)/float64(st.Values))
	var sum, values int64
	for _, name := range append(append([]string(nil), trainFiles...), testFile) {
		orig, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(orig) {
			t.Fatalf("%s: %d bytes, want %d", name, len(got), len(orig))
		}
		for i := range n {
			a, b := orig[i*record:(i+1)*record], got[i*record:(i+1)*record]
			if a[0] != b[0] {
				t.Fatalf("%s: image %d: label %d, want %d", name, i, b[0], a[0])
			}
			for j := 1; j < record; j++ {
				d := int(a[j]) - int(b[j])
				sum += int64(max(d, -d))
				if max(d, -d) > 64 {
					t.Fatalf("%s: image %d: value %d is %d, was %d", name, i, j, b[j], a[j])
				}
			}
			values += pixels
		}
	}
	// The data set's pixels come from quality-75 JPEGs: re-encoding at 75
	// changes them by well under a grey level on average.
	mean := float64(sum) / float64(values)
	if mean > 0.5 || mean != st.MeanAbs() {
		t.Errorf("mean |Δ| %.3f (pack said %.3f), want ≤ 0.5 and the same", mean, st.MeanAbs())
	}
	meta, err := os.ReadFile(filepath.Join(out, "batches.meta.txt"))
	if err != nil || !bytes.Equal(meta, mustRead(t, filepath.Join(dir, "batches.meta.txt"))) {
		t.Errorf("batches.meta.txt: %q, %v", meta, err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSynthetic round-trips generated images (smooth gradients with noise)
// without the data set: layout, labels, the default meta file, the error
// bound of a JPEG, and the detection of a damaged pack.
func TestSynthetic(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 37
	for _, name := range trainFiles {
		b := make([]byte, n*record)
		for i := range n {
			r := b[i*record : (i+1)*record]
			r[0] = byte(rng.IntN(10))
			for c := range 3 {
				for p := range plane {
					v := 40*c + 3*(p%side) + 2*(p/side) + rng.IntN(9)
					r[1+c*plane+p] = byte(min(v, 255))
				}
			}
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, st := roundTrip(t, dir, false, 90)
	if st.MeanAbs() > 4 || st.Images != 5*n {
		t.Errorf("%d images, mean |Δ| %.2f", st.Images, st.MeanAbs())
	}
	for _, name := range trainFiles {
		orig, got := mustRead(t, filepath.Join(dir, name)), mustRead(t, filepath.Join(out, name))
		for i := range n {
			if got[i*record] != orig[i*record] {
				t.Fatalf("%s: image %d: label %d, want %d", name, i, got[i*record], orig[i*record])
			}
		}
	}
	if meta := string(mustRead(t, filepath.Join(out, "batches.meta.txt"))); meta != defaultMeta {
		t.Errorf("batches.meta.txt without one to pack: %q", meta)
	}

	// Damage: one flipped byte in the middle fails the CRC.
	pack := filepath.Join(t.TempDir(), "p")
	if _, err := PackDir(dir, pack, false, 90); err != nil {
		t.Fatal(err)
	}
	b := mustRead(t, pack)
	b[len(b)/2] ^= 1
	if err := os.WriteFile(pack, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := UnpackFile(pack, t.TempDir()); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("damaged pack: %v", err)
	}
	if _, err := PackDir(dir, pack, true, 90); err == nil {
		t.Error("pack with -test and no test_batch.bin succeeded")
	}
}

func TestCommandLine(t *testing.T) {
	var out, errb bytes.Buffer
	for _, c := range []struct {
		args []string
		code int
	}{
		{nil, 2},
		{[]string{"pack"}, 2},
		{[]string{"unpack", "-in", "x"}, 2},
		{[]string{"frobnicate"}, 2},
		{[]string{"help"}, 0},
		{[]string{"unpack", "-in", "/nonexistent", "-out", t.TempDir()}, 1},
		{[]string{"pack", "-data", t.TempDir(), "-out", filepath.Join(t.TempDir(), "p"), "-quality", "0"}, 1},
	} {
		if code := run(c.args, &out, &errb); code != c.code {
			t.Errorf("cifarpack %q: exit %d, want %d; stderr %s", c.args, code, c.code, errb.String())
		}
	}
}
