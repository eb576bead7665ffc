package main

import (
	"bytes"
	"encoding/json"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/models/modeltest"
	"github.com/cifarnet-go/cifarnet/trainer/internal/cifar"
	"github.com/cifarnet-go/cifarnet/trainer/internal/evalreport"
	"github.com/cifarnet-go/cifarnet/trainer/internal/evaluate"
	"github.com/cifarnet-go/cifarnet/trainer/internal/training"
)

// syntheticCIFAR writes a small data set in the official binary layout:
// perTrain images in each training batch and nTest in the test batch.
// Images are noise except for three bright rows of the red plane whose
// position gives the class, so that even a linear model on pixels
// separates the classes.
func syntheticCIFAR(t *testing.T, perTrain, nTest int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), cifar.DirName)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	write := func(name string, n int) {
		buf := make([]byte, 0, n*cifar.RecordSize)
		for i := range n {
			c := i % cifar.NumClasses
			buf = append(buf, byte(c))
			for p := range cifar.ImageSize {
				v := rng.IntN(160)
				if row := p / cifar.Side; row >= 3*c && row < 3*c+3 {
					v = 200 + rng.IntN(56)
				}
				buf = append(buf, byte(v))
			}
		}
		if err := os.WriteFile(filepath.Join(dir, name), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range cifar.TrainFiles {
		write(f, perTrain)
	}
	write(cifar.TestFile, nTest)
	meta := strings.Join(models.CIFAR10Classes, "\n") + "\n\n"
	if err := os.WriteFile(filepath.Join(dir, cifar.MetaFile), []byte(meta), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// tinyModelFile writes a small random network on CIFAR input into dir.
func tinyModelFile(t *testing.T, dir string) string {
	t.Helper()
	spec := &models.Spec{Name: "tiny32", Input: models.Shape{C: 3, H: 32, W: 32}, Layers: []models.Layer{
		{Name: "conv", Type: models.Conv2D, Filters: 4, Kernel: 3, Stride: 2, Padding: 1, Bias: true},
		{Name: "relu", Type: models.ReLU},
		{Name: "gap", Type: models.GlobalAvgPool},
		{Name: "fc", Type: models.Linear, Units: 10, Bias: true},
		{Name: "softmax", Type: models.Softmax},
	}}
	f := modeltest.RandomFile(spec, 5)
	f.Meta.Provenance = models.Provenance{Recipe: "tiny", Epochs: 3, ValAccuracy: 0.5, TrainSeconds: 12}
	path := filepath.Join(dir, training.BestFile)
	if err := models.WriteFile(path, f); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeRunFiles gives a model folder the metrics.csv and config.json of a
// training run.
func writeRunFiles(t *testing.T, dir string) {
	t.Helper()
	csv := "epoch,train_loss,train_acc,val_loss,val_acc,lr,epoch_seconds,images_per_second\n" +
		"1,2.1,0.25,1.9,0.31,0.01,4.000,1000.0\n" +
		"2,1.7,0.40,1.6,0.42,0.01,4.000,1000.0\n" +
		"3,1.5,0.48,1.5,0.45,0.001,4.000,1000.0\n"
	if err := os.WriteFile(filepath.Join(dir, training.MetricsFile), []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := `{"recipe": {"name": "tiny", "val_split": 0.25, "split_seed": 7}}`
	if err := os.WriteFile(filepath.Join(dir, training.ConfigFile), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestEval(t *testing.T) {
	data := syntheticCIFAR(t, 40, 60)
	modelDir := t.TempDir()
	model := tinyModelFile(t, modelDir)
	writeRunFiles(t, modelDir)
	out := filepath.Join(t.TempDir(), "report")

	code, stdout, stderr := trainer(t, "eval", "--data", data, "--out", out, "--latency-images", "10", model)
	if code != 0 {
		t.Fatalf("status %d, stderr %s", code, stderr)
	}
	for _, want := range []string{"accuracy", "macro-F1", "batch 64", "batch 1", "resampled", "airplane", "wrote report.json"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	rep := readReport(t, out)
	if rep.Result.Metrics.N != 60 || rep.Model.Spec != "tiny32" || rep.Data.JPEGDerived || rep.Model.Provenance.Recipe != "tiny" {
		t.Errorf("report.json: %d images, spec %q, jpeg %v, provenance %+v", rep.Result.Metrics.N, rep.Model.Spec, rep.Data.JPEGDerived, rep.Model.Provenance)
	}
	if rep.Resampled == nil || rep.Resampled.Factor != 4 || rep.Resampled.Metrics.N != 60 {
		t.Errorf("report.json resampled pass: %+v", rep.Resampled)
	}
	if rep.Training == nil || rep.Training.Epochs != 3 || rep.Training.BestValAcc != 0.45 || rep.Training.BestEpoch != 3 {
		t.Errorf("training summary %+v", rep.Training)
	}
	md, err := os.ReadFile(filepath.Join(out, evalreport.MarkdownFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{evalreport.ConfusionPlot, evalreport.CurvesPlot, evalreport.DistributionPlot, evalreport.MeanIntensityPlot} {
		if !strings.Contains(string(md), "("+p+")") {
			t.Errorf("report.md does not show %s", p)
		}
		b, err := os.ReadFile(filepath.Join(out, p))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := png.Decode(bytes.NewReader(b)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}

// --record writes the measured accuracies, with and without test-time
// augmentation, into the weight file and changes nothing else in it.
func TestEvalRecord(t *testing.T) {
	data := syntheticCIFAR(t, 20, 50)
	model := tinyModelFile(t, t.TempDir())
	before, err := models.ReadFile(model)
	if err != nil {
		t.Fatal(err)
	}
	before.Meta.Inference.TTA = []string{models.TTAFlip, models.TTATranslate}
	if err := models.WriteFile(model, before); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	code, stdout, stderr := trainer(t, "eval", "--data", data, "--out", out, "--latency-images", "0", "--record", model)
	if code != 0 {
		t.Fatalf("status %d, stderr %s", code, stderr)
	}
	if !strings.Contains(stdout, "with TTA") {
		t.Errorf("summary lacks the TTA accuracy:\n%s", stdout)
	}
	rep := readReport(t, out)
	if rep.Result.TTA == nil || rep.Result.TTA.Metrics.N != 50 {
		t.Fatalf("report.json has no TTA pass over the 50 images: %+v", rep.Result.TTA)
	}
	after, err := models.ReadFile(model)
	if err != nil {
		t.Fatal(err)
	}
	p := after.Meta.Provenance
	if p.TestAccuracy != rep.Result.Metrics.Accuracy || p.TestAccuracyTT != rep.Result.TTA.Metrics.Accuracy {
		t.Errorf("provenance test accuracy %v / TTA %v, report %v / %v",
			p.TestAccuracy, p.TestAccuracyTT, rep.Result.Metrics.Accuracy, rep.Result.TTA.Metrics.Accuracy)
	}
	if p.Recipe != "tiny" || p.Epochs != 3 || p.TrainSeconds != 12 {
		t.Errorf("recording lost the rest of the provenance: %+v", p)
	}
	if rep.Model.Provenance.TestAccuracy != p.TestAccuracy {
		t.Errorf("report describes the file before recording: %+v", rep.Model.Provenance)
	}
	if len(after.Tensors) != len(before.Tensors) {
		t.Fatalf("%d tensors after recording, %d before", len(after.Tensors), len(before.Tensors))
	}
	for name, tb := range before.Tensors {
		if ta := after.Tensors[name]; ta == nil || !slices.Equal(ta.Data, tb.Data) {
			t.Fatalf("tensor %s changed by recording", name)
		}
	}
}

// readReport reads the report.json eval wrote into dir.
func readReport(t *testing.T, dir string) evaluate.Report {
	t.Helper()
	var rep evaluate.Report
	js, err := os.ReadFile(filepath.Join(dir, evalreport.JSONFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(js, &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

// A run trained on every image (val_split 0) logs NaN validation metrics;
// the report must still be written, without them.
func TestEvalRunWithoutValidation(t *testing.T) {
	data := syntheticCIFAR(t, 20, 30)
	dir := t.TempDir()
	model := tinyModelFile(t, dir)
	csv := "epoch,train_loss,train_acc,val_loss,val_acc,lr,epoch_seconds,images_per_second\n" +
		"1,2.1,0.25,NaN,NaN,0.01,4.000,1000.0\n" +
		"2,1.7,0.40,NaN,NaN,0.01,4.000,1000.0\n"
	if err := os.WriteFile(filepath.Join(dir, training.MetricsFile), []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if code, _, stderr := trainer(t, "eval", "--data", data, "--out", out, "--latency-images", "0", "--resampled", "0", model); code != 0 {
		t.Fatalf("status %d, stderr %s", code, stderr)
	}
	rep := readReport(t, out)
	if tr := rep.Training; tr == nil || tr.Epochs != 2 || tr.FinalTrain != 0.40 || tr.FinalVal != 0 || tr.BestValAcc != 0 {
		t.Errorf("training summary %+v", rep.Training)
	}
	md, err := os.ReadFile(filepath.Join(out, evalreport.MarkdownFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "no validation set") || strings.Contains(string(md), "NaN") {
		t.Errorf("report.md training section:\n%s", md)
	}
}

// Without --out the report goes to a new folder under --runs, never
// beside the model (whose committed report it would replace); without a
// metrics.csv there are no training curves. An --out that already holds a
// report is refused unless --overwrite.
func TestEvalDefaultsToNewFolder(t *testing.T) {
	data := syntheticCIFAR(t, 20, 30)
	dir := t.TempDir()
	model := tinyModelFile(t, dir)
	runs := t.TempDir()
	if code, _, stderr := trainer(t, "eval", "--data", data, "--runs", runs, "--latency-images", "0", "--resampled", "0", model); code != 0 {
		t.Fatalf("status %d, stderr %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, evalreport.MarkdownFile)); err == nil {
		t.Errorf("%s written beside the model", evalreport.MarkdownFile)
	}
	made, err := filepath.Glob(filepath.Join(runs, "eval-*"))
	if err != nil || len(made) != 1 {
		t.Fatalf("report folders under --runs: %v (%v), want one", made, err)
	}
	out := made[0]
	for _, f := range []string{evalreport.JSONFile, evalreport.MarkdownFile, evalreport.ConfusionPlot, evalreport.DistributionPlot, evalreport.MeanIntensityPlot} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("%s not written in the report folder: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(out, evalreport.CurvesPlot)); err == nil {
		t.Error("training curves drawn without a metrics.csv")
	}
	js, _ := os.ReadFile(filepath.Join(out, evalreport.JSONFile))
	if strings.Contains(string(js), `"single"`) {
		t.Error("--latency-images 0 still ran the batch-1 pass")
	}

	before, _ := os.ReadFile(filepath.Join(out, evalreport.MarkdownFile))
	code, _, stderr := trainer(t, "eval", "--data", data, "--out", out, "--latency-images", "0", "--resampled", "0", model)
	if code != 1 || !strings.Contains(stderr, "--overwrite") {
		t.Errorf("eval into a folder holding a report: status %d, stderr %q; want 1 naming --overwrite", code, stderr)
	}
	if after, _ := os.ReadFile(filepath.Join(out, evalreport.MarkdownFile)); string(after) != string(before) {
		t.Error("the refused eval changed the existing report")
	}
	if code, _, stderr := trainer(t, "eval", "--data", data, "--out", out, "--overwrite", "--latency-images", "0", "--resampled", "0", model); code != 0 {
		t.Errorf("eval --overwrite: status %d, stderr %s", code, stderr)
	}
}

// TestEvalLimit scores a subset and says what each pass is doing.
func TestEvalLimit(t *testing.T) {
	data := syntheticCIFAR(t, 20, 30)
	model := tinyModelFile(t, t.TempDir())
	code, stdout, stderr := trainer(t, "eval", "--data", data, "--out", t.TempDir(), "--limit", "7", "--latency-images", "3", "--resampled", "0", model)
	if code != 0 {
		t.Fatalf("status %d, stderr %s", code, stderr)
	}
	if !strings.Contains(stderr, "on 7 test images") || !strings.Contains(stderr, "accuracy, batches of 64: done in") || !strings.Contains(stderr, "batch-1 timing: 3 images") {
		t.Errorf("progress lines:\n%s", stderr)
	}
	if !strings.Contains(stdout, "/7)") {
		t.Errorf("summary does not score 7 images:\n%s", stdout)
	}
}

func TestEvalErrors(t *testing.T) {
	data := syntheticCIFAR(t, 10, 10)
	model := tinyModelFile(t, t.TempDir())
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"eval"}, 2, "missing MODEL"},
		{[]string{"eval", "--workers", "0", model}, 2, "--workers"},
		{[]string{"eval", "--val-split", "1", model}, 2, "--val-split"},
		{[]string{"eval", "--resampled", "-1", model}, 2, "--resampled"},
		{[]string{"eval", "--limit", "-1", model}, 2, "--limit"},
		{[]string{"eval", "--data", data, "--run", t.TempDir(), model}, 2, "metrics.csv"},
		{[]string{"eval", "--data", data, filepath.Join(t.TempDir(), "none.cnw")}, 1, "none.cnw"},
		{[]string{"eval", "--data", t.TempDir(), model}, 1, "no CIFAR-10"},
	} {
		code, _, stderr := trainer(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: status %d, stderr %q; want %d and %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
}
