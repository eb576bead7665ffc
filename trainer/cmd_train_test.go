package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/trainer/internal/backend"
	"github.com/cifarnet-go/cifarnet/trainer/internal/training"
)

// trainData locates CIFAR-10 for the train and export tests or skips.
func trainData(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("CIFAR10_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "shared", "cifar10", "cifar-10-batches-bin")
	}
	if _, err := os.Stat(filepath.Join(dir, "data_batch_1.bin")); err != nil {
		t.Skipf("CIFAR-10 not found at %s (set CIFAR10_DIR): %v", dir, err)
	}
	return dir
}

// tinyRecipeFile writes a copy of keras-reference with a small inline
// network, as a user would, and returns its path.
func tinyRecipeFile(t *testing.T) string {
	t.Helper()
	r, err := training.LoadRecipe("keras-reference")
	if err != nil {
		t.Fatal(err)
	}
	r.Name, r.Preset, r.Limit, r.Batch = "tiny", "", 320, 64
	r.Spec = &models.Spec{
		Name:  "tiny32",
		Input: models.Shape{C: 3, H: 32, W: 32},
		Layers: []models.Layer{
			{Name: "conv", Type: models.Conv2D, Filters: 8, Kernel: 3, Stride: 2, Padding: 1, Bias: true},
			{Name: "bn", Type: models.BatchNorm},
			{Name: "relu", Type: models.ReLU},
			{Name: "gap", Type: models.GlobalAvgPool},
			{Name: "fc", Type: models.Linear, Units: 10, Bias: true},
			{Name: "softmax", Type: models.Softmax},
		},
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tiny.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestTrainResumeExport(t *testing.T) {
	data := trainData(t)
	recipe := tinyRecipeFile(t)
	runs := filepath.Join(t.TempDir(), "runs")
	code, out, errOut := trainer(t, "train", "--recipe", recipe, "--data", data, "--runs", runs, "--epochs", "2", "--lr", "0.01", "--workers", "1")
	if code != 0 {
		t.Fatalf("train: status %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "epoch 2/2: loss") || !strings.Contains(out, "finished after 2 epochs") {
		t.Errorf("train output lacks the epoch lines or summary:\n%s%s", out, errOut)
	}
	entries, _ := os.ReadDir(runs)
	if len(entries) != 1 || !strings.HasSuffix(entries[0].Name(), "-tiny") {
		t.Fatalf("run folders %v, want one named <time>-tiny", entries)
	}
	dir := filepath.Join(runs, entries[0].Name())
	cfg, err := training.ReadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Recipe.Epochs != 2 || cfg.Recipe.Optimizer.LR != 0.01 || cfg.Overrides["optimizer.lr"] != "0.01" ||
		!strings.HasPrefix(cfg.Command, "trainer train --recipe ") {
		t.Errorf("config.json does not record the overrides and command: %+v", cfg)
	}
	// --device auto: whatever it chose is in config.json and the run's header.
	if cfg.Device == "" || !strings.Contains(errOut, " batches on "+cfg.Device+" (") {
		t.Errorf("config.json device %q, not the one the log names:\n%s", cfg.Device, errOut)
	}

	// Train one epoch more, on the CPU.
	code, out, errOut = trainer(t, "train", "--resume", dir, "--epochs", "3", "--device", "cpu")
	if code != 0 || !strings.Contains(errOut, "resuming") || !strings.Contains(errOut, "on cpu (") {
		t.Fatalf("resume: status %d\n%s%s", code, out, errOut)
	}
	if cfg.Device != "cpu" && !strings.Contains(errOut, "resuming on cpu (") {
		t.Errorf("resuming on the CPU a run begun on %s does not say so:\n%s", cfg.Device, errOut)
	}
	rows, err := training.ReadMetrics(dir)
	if err != nil || len(rows) != 3 {
		t.Fatalf("metrics after resuming: %d rows, %v", len(rows), err)
	}

	dst := filepath.Join(t.TempDir(), "zoo", "tiny", "tiny.cnw")
	if code, out, errOut := trainer(t, "export", "--out", dst, dir); code != 0 {
		t.Fatalf("export: status %d\n%s%s", code, out, errOut)
	}
	f, err := models.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	p := f.Meta.Provenance
	if p.Dataset != "CIFAR-10" || p.Recipe != "tiny" || p.Epochs < 1 || p.ValAccuracy <= 0 || p.Created == "" ||
		!strings.Contains(p.Command, "--recipe") || !strings.Contains(p.Device, "cpu (") {
		t.Errorf("exported provenance incomplete: %+v", p)
	}
	if _, err := models.NewModel(f); err != nil {
		t.Errorf("exported file not usable: %v", err)
	}
}

// TestTrainDevice checks --device's answers where the device is missing,
// which come before any data is read or run folder made.
func TestTrainDevice(t *testing.T) {
	runs := filepath.Join(t.TempDir(), "runs")
	train := func(device string) (int, string) {
		code, _, errOut := trainer(t, "train", "--recipe", "keras-reference", "--runs", runs, "--data", t.TempDir(), "--device", device)
		return code, errOut
	}
	withCUDA(t, nil)
	for _, d := range []string{"cuda", "cuda:1"} {
		code, errOut := train(d)
		if code != 1 || !strings.Contains(errOut, "built without CUDA") || !strings.Contains(errOut, "./build.sh cuda") ||
			strings.Count(errOut, "\n") != 1 {
			t.Errorf("--device %s in a CPU-only build: status %d, stderr %q", d, code, errOut)
		}
	}
	withCUDA(t, fakeCUDA{gpus: []backend.GPU{{Index: 0, Name: "NVIDIA H200"}}})
	if code, errOut := train("cuda:2"); code != 1 || !strings.Contains(errOut, "device cuda:2: no such GPU; this machine has cuda:0 (NVIDIA H200)") {
		t.Errorf("--device cuda:2 with one GPU: status %d, stderr %q", code, errOut)
	}
	if _, err := os.Stat(runs); err == nil {
		t.Error("a run folder was made for a device that is not there")
	}
}

func TestTrainUsageErrors(t *testing.T) {
	recipe := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(recipe, []byte(`{"name": "x", "learning_rate": 1}`), 0o644)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"train"}, 2, "--recipe or --resume is required"},
		{[]string{"train", "--recipe", "keras-reference", "--resume", "x"}, 2, "exclude each other"},
		{[]string{"train", "--resume", "x", "--lr", "0.1"}, 2, "only --epochs"},
		{[]string{"train", "--recipe", "keras-reference", "--batch", "big"}, 2, "not an integer"},
		{[]string{"train", "--recipe", "nope"}, 1, "unknown recipe"},
		{[]string{"train", "--recipe", recipe}, 1, `unknown field "learning_rate"`},
		{[]string{"train", "--recipe", "keras-reference", "--epochs", "0", "--data", t.TempDir()}, 1, "epochs 0"},
		{[]string{"export", "somewhere"}, 2, "--out is required"},
		{[]string{"export", "--out", filepath.Join(t.TempDir(), "x.cnw"), filepath.Join(t.TempDir(), "missing")}, 1, "no such file"},
	} {
		code, _, errOut := trainer(t, c.args...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: status %d, stderr %q; want %d and %q", c.args, code, errOut, c.code, c.want)
		}
	}
}
