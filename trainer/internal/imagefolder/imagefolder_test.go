package imagefolder

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func touch(t *testing.T, paths ...string) {
	for _, p := range paths {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLayouts(t *testing.T) {
	flat := t.TempDir()
	touch(t, filepath.Join(flat, "b", "1.JPG"), filepath.Join(flat, "b", "2.png"), filepath.Join(flat, "b", "notes.txt"),
		filepath.Join(flat, "a", "1.webp"), filepath.Join(flat, "a", "2.bmp"), filepath.Join(flat, "a", "3.gif"),
		filepath.Join(flat, ".hidden", "x.png"))
	train, held, err := Load(flat)
	if err != nil || held != nil {
		t.Fatalf("flat: %v, held %v", err, held)
	}
	if strings.Join(train.Classes, ",") != "a,b" || train.Len() != 5 || !Is(flat) {
		t.Errorf("flat: classes %v, %d files", train.Classes, train.Len())
	}
	tr, ho, err := train.Split(0.2, 1)
	if err != nil {
		t.Fatal(err)
	}
	// At least one of each class held out, the rest trained on.
	if ho.Len() != 2 || tr.Len() != 3 || ho.Labels[0] == ho.Labels[1] {
		t.Errorf("split: %d train, %d held (%v)", tr.Len(), ho.Len(), ho.Labels)
	}

	split := t.TempDir()
	touch(t, filepath.Join(split, "train", "x", "1.png"), filepath.Join(split, "train", "y", "1.png"),
		filepath.Join(split, "test", "x", "2.png"), filepath.Join(split, "test", "y", "2.png"))
	if train, held, err = Load(split); err != nil || held == nil || held.Len() != 2 || train.Len() != 2 || !Is(split) {
		t.Errorf("train/test: %v, %v, %v", train, held, err)
	}
	touch(t, filepath.Join(split, "val", "z", "1.png"), filepath.Join(split, "val", "x", "1.png"))
	if _, _, err := Load(split); err == nil || !strings.Contains(err.Error(), "has classes") {
		t.Errorf("val with other classes: %v", err)
	}
	if Is(t.TempDir()) {
		t.Error("an empty folder is an image folder")
	}
	one := t.TempDir()
	touch(t, filepath.Join(one, "only", "1.png"))
	if _, _, err := Load(one); err == nil || !strings.Contains(err.Error(), "at least two") {
		t.Errorf("one class: %v", err)
	}
}
