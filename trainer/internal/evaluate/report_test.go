package evaluate

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/models/modeltest"
	"github.com/cifarnet-go/cifarnet/trainer/internal/cifar"
)

// realDataDir locates the shared CIFAR-10 copy beside the repository, or
// CIFAR10_DIR, and skips the test when neither exists.
func realDataDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("CIFAR10_DIR"); d != "" {
		return d
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			dir := filepath.Join(d, "..", "shared", "cifar10", cifar.DirName)
			if _, err := os.Stat(filepath.Join(dir, cifar.TestFile)); err != nil {
				t.Skipf("CIFAR-10 not found at %s (set CIFAR10_DIR to run this test)", dir)
			}
			return dir
		}
		if filepath.Dir(d) == d {
			t.Skip("repository root not found; set CIFAR10_DIR to run this test")
		}
	}
}

func TestDescribeDataSynthetic(t *testing.T) {
	dir := filepath.Join(t.TempDir(), cifar.DirName)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{cifar.TrainFiles[0], cifar.TestFile} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("abc"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The parent folder is accepted as well as the batch folder.
	info, err := DescribeData(filepath.Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	// Written without the machine's absolute paths.
	if info.TestMD5 != "900150983cd24fb0d6963f7d28e17f72" || info.JPEGDerived || filepath.IsAbs(info.Dir) ||
		!strings.HasSuffix(info.Dir, filepath.Base(dir)) || filepath.IsAbs(info.TestFile) {
		t.Errorf("got %+v", info)
	}
	if _, err := DescribeData(t.TempDir()); err == nil {
		t.Error("folder without data: no error")
	}
}

func TestDescribeDataReal(t *testing.T) {
	info, err := DescribeData(realDataDir(t))
	if err != nil {
		t.Fatal(err)
	}
	if info.TestMD5 != JPEGTestMD5 || !info.JPEGDerived || !strings.Contains(info.Note, "JPEG") {
		t.Errorf("shared copy not recognised: %+v", info)
	}
}

func TestDescribeModel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.cnw")
	f := modeltest.RandomFile(models.CifarNetFast(), 3)
	if err := models.WriteFile(path, f); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	info, err := DescribeModel(path, &f.Meta)
	if err != nil {
		t.Fatal(err)
	}
	params, _ := f.Meta.Spec.TrainableParams()
	if info.SHA256 != hex.EncodeToString(sum[:]) || info.File != "m.cnw" || info.Spec != "cifarnet-fast" ||
		info.Params != params || info.Bytes != int64(len(data)) || info.DType != models.Float32 {
		t.Errorf("got %+v", info)
	}
	if _, err := DescribeModel(filepath.Join(t.TempDir(), "missing.cnw"), &f.Meta); err == nil {
		t.Error("missing file: no error")
	}
}

func TestReportJSONAndMarkdown(t *testing.T) {
	m, err := Compute([]int{0, 1, 1, 2}, []int{0, 1, 2, 2}, []string{"cat", "dog", "emu"})
	if err != nil {
		t.Fatal(err)
	}
	res := &Result{Metrics: m, Batched: Speed{BatchSize: 64, Images: 4, Workers: 2, MsPerImage: 0.5, ImagesPerSecond: 4000},
		Single: &Speed{BatchSize: 1, Images: 4, Workers: 2, MsPerImage: 0.7, ImagesPerSecond: 2800}}
	data := &DataInfo{Dir: "/d", TestFile: "/d/test_batch.bin", TestMD5: JPEGTestMD5, JPEGDerived: true, Note: "JPEG-derived copy"}
	r := NewReport(&ModelInfo{File: "best.cnw", SHA256: "ab12", Spec: "keras-cnn", DType: models.Float16, Params: 1234567}, data, res)
	r.Training = &TrainingSummary{File: "metrics.csv", Epochs: 3, BestValAcc: 0.8, BestEpoch: 2, FinalTrain: 0.9, FinalVal: 0.79, TrainSeconds: 30}
	r.Plots = []Plot{{Title: "Confusion matrix", File: "confusion_matrix.png"}}

	js, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatalf("report.json does not parse: %v", err)
	}
	if got := back["result"].(map[string]any)["metrics"].(map[string]any)["accuracy"]; got != 0.75 {
		t.Errorf("accuracy in JSON = %v, want 0.75", got)
	}
	if back["data"].(map[string]any)["jpeg_derived"] != true || back["model"].(map[string]any)["sha256"] != "ab12" {
		t.Errorf("JSON lacks data or model fingerprint: %s", js)
	}

	md := string(r.Markdown())
	for _, want := range []string{
		"# Evaluation of `best.cnw`",
		"JPEG-derived copy",
		"**75.00 %** (3 / 4)",
		"1 234 567 trainable parameters",
		"| dog | 1.000 | 0.500 | 0.667 | 2 | 1 |",
		"| **dog** | 0 | **1** | 1 |", // confusion row of the true class dog
		"Best validation accuracy | 80.00 % (epoch 2)",
		"![Confusion matrix](confusion_matrix.png)",
		"Inference, batch 64 | 0.500 ms/image",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}

	var out bytes.Buffer
	if err := r.WriteSummary(&out); err != nil {
		t.Fatal(err)
	}
	if s := out.String(); !strings.Contains(s, "accuracy") || !strings.Contains(s, "75.00 %") || !strings.Contains(s, "emu") {
		t.Errorf("summary:\n%s", s)
	}
}

func TestClassChannelMeans(t *testing.T) {
	s := &cifar.Set{Images: make([]byte, 3*cifar.ImageSize), Labels: []uint8{0, 0, 2}, Classes: []string{"a", "b", "c"}}
	fill := func(img, c int, v byte) {
		for i := range cifar.PlaneSize {
			s.Images[img*cifar.ImageSize+c*cifar.PlaneSize+i] = v
		}
	}
	fill(0, 0, 10)
	fill(1, 0, 30) // class a red: mean of 10 and 30
	fill(0, 2, 200)
	fill(2, 1, 255)
	got := ClassChannelMeans(s)
	want := [][3]float64{{20, 0, 100}, {0, 0, 0}, {0, 255, 0}}
	if len(got) != 3 {
		t.Fatalf("%d classes, want 3", len(got))
	}
	for y := range want {
		if got[y] != want[y] {
			t.Errorf("class %d: %v, want %v", y, got[y], want[y])
		}
	}
}
