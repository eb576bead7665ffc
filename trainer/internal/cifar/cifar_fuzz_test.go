package cifar

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoadFile: any file given as a CIFAR-10 batch loads into a set whose
// sizes and labels are consistent, or is refused with an error.
func FuzzLoadFile(f *testing.F) {
	rec := make([]byte, RecordSize)
	rec[0] = 3
	f.Add(rec)
	f.Add(append(append([]byte{}, rec...), rec...))
	f.Add(rec[:RecordSize-1])
	bad := append([]byte{}, rec...)
	bad[0] = 10
	f.Add(bad)
	f.Add([]byte{})
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "data_batch_1.bin")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := LoadFile(path)
		if err != nil {
			return
		}
		n := len(data) / RecordSize
		if len(data)%RecordSize != 0 || len(s.Labels) != n || len(s.Images) != n*ImageSize {
			t.Fatalf("%d bytes loaded as %d labels and %d image bytes", len(data), len(s.Labels), len(s.Images))
		}
		for i, l := range s.Labels {
			if int(l) >= NumClasses {
				t.Fatalf("label %d of image %d", l, i)
			}
		}
	})
}
