package main

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cifarnet-go/cifarnet/models"
)

// shapeImage draws one of three shapes (0 disc, 1 square, 2 cross) in a
// random colour, size and place on a random noisy background: classes no
// CIFAR-10 model was trained on.
func shapeImage(rng *rand.Rand, shape, size int) image.Image {
	m := image.NewNRGBA(image.Rect(0, 0, size, size))
	bg := color.NRGBA{uint8(rng.IntN(256)), uint8(rng.IntN(256)), uint8(rng.IntN(256)), 255}
	fg := color.NRGBA{255 - bg.R, 255 - bg.G, 255 - bg.B, 255}
	r := float64(size) * (0.2 + 0.15*rng.Float64())
	cx := float64(size)*0.3 + rng.Float64()*float64(size)*0.4
	cy := float64(size)*0.3 + rng.Float64()*float64(size)*0.4
	for y := range size {
		for x := range size {
			dx, dy := float64(x)-cx, float64(y)-cy
			var in bool
			switch shape {
			case 0:
				in = math.Hypot(dx, dy) < r
			case 1:
				in = math.Abs(dx) < r && math.Abs(dy) < r
			case 2:
				in = (math.Abs(dx) < r/3 && math.Abs(dy) < r) || (math.Abs(dy) < r/3 && math.Abs(dx) < r)
			}
			c := bg
			if in {
				c = fg
			}
			n := rng.IntN(41) - 20
			m.SetNRGBA(x, y, color.NRGBA{clamp(int(c.R) + n), clamp(int(c.G) + n), clamp(int(c.B) + n), 255})
		}
	}
	return m
}

func clamp(v int) uint8 { return uint8(min(255, max(0, v))) }

// shapeFolder writes per images of each shape class under dir/<class>.
func shapeFolder(t *testing.T, dir string, per int, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	for c, name := range []string{"disc", "square", "cross"} {
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		for i := range per {
			f, err := os.Create(filepath.Join(dir, name, name+"-"+string(rune('a'+i%26))+string(rune('a'+i/26))+".png"))
			if err != nil {
				t.Fatal(err)
			}
			if err := png.Encode(f, shapeImage(rng, c, 48+rng.IntN(80))); err != nil {
				t.Fatal(err)
			}
			f.Close()
		}
	}
}

// TestTeachShapes fine-tunes the shipped model's head on three generated
// shape classes (20 images each for training, 20 held out) and checks the
// file it writes: new classes, the base in its provenance, readable by
// info, and far better than chance on new images of the same shapes.
func TestTeachShapes(t *testing.T) {
	dir := t.TempDir()
	shapeFolder(t, filepath.Join(dir, "train"), 20, 1)
	shapeFolder(t, filepath.Join(dir, "val"), 20, 2)
	out := filepath.Join(dir, "shapes.cnw")
	base := filepath.Join("..", "models", "zoo", "cifarnet-fast", "cifarnet-fast.int8.cnw")
	code, stdout, stderr := trainer(t, "train", "--init", base, "--freeze", "head-only", "--data", dir, "--out", out)
	if code != 0 {
		t.Fatalf("status %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "wrote "+out+": 3 classes, trained on 60 images") {
		t.Errorf("stdout %q", stdout)
	}
	f, err := models.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	p := f.Meta.Provenance
	if !slices.Equal(f.Meta.Classes, []string{"cross", "disc", "square"}) || !strings.HasPrefix(p.BaseModel, "cifarnet-fast.int8.cnw sha256:") || p.Recipe != "head-only" {
		t.Errorf("classes %v, provenance %+v", f.Meta.Classes, p)
	}
	t.Logf("held-out accuracy on generated shapes: %.3f", p.ValAccuracy)
	if p.ValAccuracy < 0.8 {
		t.Errorf("held-out accuracy %.3f on three shapes: want ≥ 0.8 (chance 0.33)", p.ValAccuracy)
	}
	if code, info, _ := trainer(t, "info", out); code != 0 || !strings.Contains(info, "cross, disc, square") || !strings.Contains(info, "head-only") {
		t.Errorf("info: status %d:\n%s", code, info)
	}
	// eval takes the image folder too: its val/ part, with the model's
	// classes matched by name, at the accuracy train reported.
	code, evalOut, stderr := trainer(t, "eval", "--data", dir, "--out", t.TempDir(), "--latency-images", "0", "--resampled", "0", out)
	if code != 0 {
		t.Fatalf("eval on the image folder: status %d: %s", code, stderr)
	}
	if want := fmt.Sprintf("(%d/60)", int(math.Round(p.ValAccuracy*60))); !strings.Contains(evalOut, want) {
		t.Errorf("eval on the folder's 60 held-out images does not say %s:\n%s", want, evalOut)
	}
	// Never replaces a file.
	if code, _, stderr := trainer(t, "train", "--init", base, "--freeze", "head-only", "--data", dir, "--out", out); code == 0 || !strings.Contains(stderr, "exists") {
		t.Errorf("second run onto %s: status %d, %s", out, code, stderr)
	}
}

func TestTeachErrors(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join("..", "models", "zoo", "cifarnet-fast", "cifarnet-fast.int8.cnw")
	one := filepath.Join(dir, "one")
	shapeFolder(t, one, 1, 3) // one image per class: nothing to hold out
	bad := filepath.Join(dir, "bad")
	shapeFolder(t, bad, 3, 4)
	if err := os.WriteFile(filepath.Join(bad, "disc", "broken.png"), []byte("not a png"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	shapeFolder(t, empty, 2, 5)
	if err := os.MkdirAll(filepath.Join(empty, "nothing"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--init", base, "--data", dir}, "--init needs --freeze head-only or none"},
		{[]string{"--init", base, "--freeze", "all", "--data", bad}, "want head-only or none"},
		{[]string{"--init", base, "--freeze", "none", "--recipe", "fast", "--data", bad}, "names a network"},
		{[]string{"--init", base, "--freeze", "none", "--recipe", "nosuch", "--data", bad}, "unknown recipe"},
		{[]string{"--init", base, "--freeze", "none", "--resume", dir, "--data", bad}, "--resume RUN alone"},
		{[]string{"--init", base, "--freeze", "head-only", "--data", t.TempDir()}, "is not an image folder"},
		{[]string{"--init", base, "--freeze", "head-only", "--data", one}, "has 1 image"},
		{[]string{"--init", base, "--freeze", "head-only", "--data", bad}, "broken.png"},
		{[]string{"--init", base, "--freeze", "head-only", "--data", empty}, `class "nothing"`},
		{[]string{"--init", base, "--freeze", "head-only", "--recipe", "fast", "--data", bad}, "no --recipe or recipe flags"},
		{[]string{"--init", "nonexistent.cnw", "--freeze", "head-only", "--data", bad}, "nonexistent.cnw"},
	} {
		code, _, stderr := trainer(t, append([]string{"train", "--runs", t.TempDir()}, c.args...)...)
		if code == 0 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: status %d, stderr %q; want an error with %q", c.args, code, stderr, c.want)
		}
	}
	// --skip-unreadable goes on without the broken file.
	out := filepath.Join(dir, "ok.cnw")
	code, stdout, stderr := trainer(t, "train", "--init", base, "--freeze", "head-only", "--data", bad, "--skip-unreadable", "--out", out)
	if code != 0 || !strings.Contains(stdout, "skipped 1 unreadable") || !strings.Contains(stderr, "broken.png") {
		t.Errorf("--skip-unreadable: status %d, %q, %q", code, stdout, stderr)
	}
}

// TestFinetuneEveryLayer: --freeze none trains the head first, then every
// layer from it in an ordinary run folder; the weight file it keeps names
// the folder's classes, the recipe and the original base model.
func TestFinetuneEveryLayer(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "shapes")
	shapeFolder(t, data, 12, 6)
	base := filepath.Join("..", "models", "zoo", "cifarnet-fast", "cifarnet-fast.int8.cnw")
	runs := filepath.Join(dir, "runs")
	out := filepath.Join(dir, "shapes.cnw")
	code, stdout, stderr := trainer(t, "train", "--init", base, "--freeze", "none", "--data", data,
		"--runs", runs, "--epochs", "2", "--batch", "8", "--workers", "1", "--out", out)
	if code != 0 {
		t.Fatalf("status %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "fine-tuned for 2 epochs") || !strings.Contains(stderr, "epoch 2/2") {
		t.Errorf("output:\n%s\n%s", stdout, stderr)
	}
	f, err := models.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	p := f.Meta.Provenance
	if !slices.Equal(f.Meta.Classes, []string{"cross", "disc", "square"}) || p.Recipe != "finetune" ||
		!strings.HasPrefix(p.BaseModel, "cifarnet-fast.int8.cnw sha256:") || p.Dataset != "image folder shapes" || p.Epochs < 1 {
		t.Errorf("classes %v, provenance %+v", f.Meta.Classes, p)
	}
	// The head-only result it started from stays beside the run.
	heads, _ := filepath.Glob(filepath.Join(runs, "*-teach", "final.cnw"))
	finals, _ := filepath.Glob(filepath.Join(runs, "*-finetune", "final.cnw"))
	if len(heads) != 1 || len(finals) != 1 {
		t.Errorf("runs hold %v and %v", heads, finals)
	}
	// The whole network was trained: weights far from the head changed.
	start, err := models.ReadFile(heads[0])
	if err != nil {
		t.Fatal(err)
	}
	name := f.Meta.Spec.Layers[0].Name + ".weight"
	if slices.Equal(start.Tensors[name].Data, f.Tensors[name].Data) {
		t.Errorf("%s did not change", name)
	}
	if code, _, _ := trainer(t, "train", "--init", base, "--freeze", "none", "--data", data, "--runs", runs, "--out", out); code == 0 {
		t.Error("an existing --out was replaced")
	}
}
