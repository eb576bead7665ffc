package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cifarnet-go/cifarnet/trainer/internal/baselines"
)

func TestBaselines(t *testing.T) {
	data := syntheticCIFAR(t, 60, 100) // 300 training images
	model := tinyModelFile(t, t.TempDir())
	out := filepath.Join(t.TempDir(), "b")
	code, stdout, stderr := trainer(t, "baselines", "--data", data, "--out", out, "--model", model,
		"--trees", "5", "--epochs", "5", "--val-split", "0.2")
	if code != 0 {
		t.Fatalf("status %d, stderr %s", code, stderr)
	}
	for _, want := range []string{"logistic regression", "linear SVM", "random forest", "CNN tiny32 (best.cnw)", "ms/image"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("table lacks %q:\n%s", want, stdout)
		}
	}
	var rep baselines.Report
	js, err := os.ReadFile(filepath.Join(out, baselinesJSON))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(js, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 4 {
		t.Fatalf("%d rows, want 3 baselines and the CNN", len(rep.Results))
	}
	for _, r := range rep.Results[:3] {
		// The synthetic classes differ in their red plane: easy.
		if r.TrainImages != 240 || r.Accuracy < 0.9 || r.ValAccuracy == nil || r.Metrics.N != 100 {
			t.Errorf("%s: %d training images, accuracy %.3f, val %v", r.Name, r.TrainImages, r.Accuracy, r.ValAccuracy)
		}
	}
	if cnn := rep.Results[3]; cnn.TrainSeconds != 12 || cnn.ValAccuracy == nil || *cnn.ValAccuracy != 0.5 {
		t.Errorf("CNN row %+v", cnn)
	}
	if md, err := os.ReadFile(filepath.Join(out, baselinesMarkdown)); err != nil || !strings.Contains(string(md), "| random forest |") {
		t.Errorf("baselines.md: %v\n%s", err, md)
	}
}

func TestBaselinesOnlyAndLimits(t *testing.T) {
	data := syntheticCIFAR(t, 20, 30)
	out := t.TempDir()
	code, stdout, stderr := trainer(t, "baselines", "--data", data, "--out", out, "--only", "svm",
		"--val-split", "0", "--train-limit", "50", "--test-limit", "20", "--epochs", "2")
	if code != 0 {
		t.Fatalf("status %d, stderr %s", code, stderr)
	}
	if strings.Contains(stdout, "random forest") || !strings.Contains(stdout, "linear SVM") {
		t.Errorf("--only svm ran:\n%s", stdout)
	}
	var rep baselines.Report
	js, _ := os.ReadFile(filepath.Join(out, baselinesJSON))
	if err := json.Unmarshal(js, &rep); err != nil {
		t.Fatal(err)
	}
	if r := rep.Results[0]; r.TrainImages != 50 || r.Metrics.N != 20 || r.ValAccuracy != nil {
		t.Errorf("limits not applied: %d training, %d test images, val %v", r.TrainImages, r.Metrics.N, r.ValAccuracy)
	}
	// The same --out again: refused before any training, files kept.
	code, _, stderr = trainer(t, "baselines", "--data", data, "--out", out, "--only", "svm", "--epochs", "1")
	if code != 1 || !strings.Contains(stderr, "--overwrite") {
		t.Errorf("baselines into a folder holding results: status %d, stderr %q", code, stderr)
	}
	if again, _ := os.ReadFile(filepath.Join(out, baselinesJSON)); string(again) != string(js) {
		t.Error("the refused run changed baselines.json")
	}
}

func TestBaselinesUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"baselines", "--only", "knn"}, `unknown classifier "knn"`},
		{[]string{"baselines", "--only", ","}, "no classifier"},
		{[]string{"baselines", "--trees", "0"}, "--trees"},
		{[]string{"baselines", "--val-split", "-0.1"}, "--val-split"},
		{[]string{"baselines", "--max-features", "5000"}, "--max-features"},
		{[]string{"baselines", "extra"}, "unexpected argument"},
	} {
		code, _, stderr := trainer(t, tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: status %d, stderr %q; want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
}
