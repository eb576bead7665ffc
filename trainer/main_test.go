package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/models/modeltest"
	"github.com/cifarnet-go/cifarnet/trainer/internal/backend"
	"github.com/cifarnet-go/cifarnet/trainer/internal/cifar"
	"github.com/cifarnet-go/cifarnet/trainer/internal/download"
)

// trainer runs the command line and returns its exit status and output.
func trainer(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}} {
		code, out, _ := trainer(t, args...)
		if code != 0 || !strings.Contains(out, "usage: trainer COMMAND") {
			t.Errorf("%v: status %d, output %q", args, code, out)
		}
		for _, c := range commands {
			if !strings.Contains(out, c.name+"   ") || !strings.Contains(out, c.summary) {
				t.Errorf("%v does not list %s", args, c.name)
			}
		}
	}
	if code, _, errOut := trainer(t); code != 2 || !strings.Contains(errOut, "commands:") {
		t.Errorf("no arguments: status %d, stderr %q; want 2 and the command list", code, errOut)
	}
}

func TestCommandHelp(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"info", "-h"}, []string{"usage: trainer info [flags] MODEL", "--json\n"}},
		{[]string{"info", "--help"}, []string{"usage: trainer info"}},
		{[]string{"help", "info"}, []string{"usage: trainer info"}},
		{[]string{"download", "-h"}, []string{"usage: trainer download [flags]", "--data DIR", `(default "data")`, "--url URL", "--md5 digest", download.DefaultMD5, "--force\n"}},
		{[]string{"devices", "-h"}, []string{"usage: trainer devices\n", "trainer train --device"}},
		{[]string{"train", "-h"}, []string{"--device DEVICE", `(default "auto")`, "cuda:N"}},
	} {
		code, out, errOut := trainer(t, tc.args...)
		if code != 0 || errOut != "" {
			t.Errorf("%v: status %d, stderr %q", tc.args, code, errOut)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v: output lacks %q:\n%s", tc.args, w, out)
			}
		}
	}
}

// TestEveryCommandHasAnExample: each subcommand's -h shows how to run it.
func TestEveryCommandHasAnExample(t *testing.T) {
	for _, cmd := range commands {
		c := cmd.name
		code, out, _ := trainer(t, c, "-h")
		if code != 0 || !strings.Contains(out, "Example") || !strings.Contains(out, "\n  trainer "+c) {
			t.Errorf("trainer %s -h (status %d) shows no example:\n%s", c, code, out)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"nosuch"}, `trainer: unknown command "nosuch"`},
		{[]string{"help", "nosuch"}, `unknown command "nosuch"`},
		{[]string{"info"}, "trainer info: missing MODEL"},
		{[]string{"info", "a", "b"}, `trainer info: unexpected argument "b"`},
		{[]string{"info", "--nope", "a"}, "trainer info: flag provided but not defined: -nope"},
		{[]string{"download", "extra"}, `trainer download: unexpected argument "extra"`},
		{[]string{"devices", "extra"}, `trainer devices: unexpected argument "extra"`},
		{[]string{"train", "--recipe", "fast", "--device", "gpu"}, `trainer train: --device "gpu": want auto, cpu, cuda or cuda:N`},
		{[]string{"train", "--resume", "x", "--device", "cuda:one"}, `--device "cuda:one": want auto, cpu, cuda or cuda:N`},
		{[]string{"download", "--md5", "abc"}, `trainer download: --md5 "abc" is not 32 hexadecimal digits`},
	} {
		code, out, errOut := trainer(t, tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) || out != "" {
			t.Errorf("%v: status %d, stdout %q, stderr %q; want 2 and %q", tc.args, code, out, errOut, tc.want)
		}
	}
}

// writeModel writes a weight file with random weights and provenance.
func writeModel(t *testing.T) (string, *models.File) {
	t.Helper()
	f := modeltest.RandomFile(models.CifarNetFast(), 1)
	f.Meta.Classes = models.CIFAR10Classes
	f.Meta.Provenance = models.Provenance{
		Dataset: "cifar10", Recipe: "fast", Epochs: 10, ValAccuracy: 0.9312, TestAccuracy: 0.9287,
		TrainSeconds: 754.4, Trainer: "v0.1", Created: "2026-01-02T03:04:05Z", Command: "trainer train --recipe fast",
		Device: "cuda:0 (NVIDIA H200)",
	}
	path := filepath.Join(t.TempDir(), "fast.cfw")
	if err := models.WriteFile(path, f); err != nil {
		t.Fatal(err)
	}
	return path, f
}

func TestInfo(t *testing.T) {
	path, f := writeModel(t)
	code, out, errOut := trainer(t, "info", path)
	if code != 0 {
		t.Fatalf("status %d, stderr %q", code, errOut)
	}
	trainable, _ := f.Meta.Spec.TrainableParams()
	shapes, _ := f.Meta.Spec.Shapes()
	for _, want := range []string{
		path, "float32", "cifarnet-fast", "3×32×32",
		thousands(int64(trainable)) + " trainable",
		"airplane, automobile", "mean 0.",
		"group2.conv1", "conv2d", "10", "64×31×31",
		"93.12%", "92.87%", "12m34s", "trainer train --recipe fast", "2026-01-02T03:04:05Z",
		"cuda:0 (NVIDIA H200)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("info output lacks %q:\n%s", want, out)
		}
	}
	// Every layer appears with its output shape.
	for i, l := range f.Meta.Spec.Layers {
		if !strings.Contains(out, l.Name) || !strings.Contains(out, shapeText(shapes[i])) {
			t.Errorf("layer %s (%v) missing", l.Name, shapes[i])
		}
	}

	code, out, _ = trainer(t, "info", "--json", path)
	var meta models.Meta
	if code != 0 {
		t.Fatalf("--json: status %d", code)
	}
	if err := json.Unmarshal([]byte(out), &meta); err != nil {
		t.Fatalf("--json output does not parse: %v\n%s", err, out)
	}
	if meta.Spec.Name != "cifarnet-fast" || len(meta.Spec.Layers) != len(f.Meta.Spec.Layers) || meta.Provenance.TestAccuracy != 0.9287 {
		t.Errorf("--json gave %+v", meta)
	}
}

func TestInfoFailures(t *testing.T) {
	path, _ := writeModel(t)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	corrupt := filepath.Join(t.TempDir(), "corrupt.cfw")
	data[len(data)-100] ^= 0xff
	os.WriteFile(corrupt, data, 0o644)
	for _, p := range []string{filepath.Join(t.TempDir(), "missing.cfw"), corrupt} {
		code, out, errOut := trainer(t, "info", p)
		if code != 1 || !strings.HasPrefix(errOut, "trainer info: ") || !strings.Contains(errOut, p) || out != "" {
			t.Errorf("%s: status %d, stdout %q, stderr %q; want 1 and an error naming the file", p, code, out, errOut)
		}
	}
}

func TestDownloadAlreadyPresent(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("unexpected request %s", r.URL)
		http.Error(w, "no", http.StatusTeapot)
	}))
	defer srv.Close()
	dir := t.TempDir()
	batches := filepath.Join(dir, cifar.DirName)
	os.Mkdir(batches, 0o755)
	for _, f := range download.OfficialFiles {
		// Sparse files of the official sizes: cheap, and enough for the
		// presence check.
		if err := os.WriteFile(filepath.Join(batches, f.Name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(filepath.Join(batches, f.Name), f.Size); err != nil {
			t.Fatal(err)
		}
	}
	for _, data := range []string{dir, batches} {
		code, out, errOut := trainer(t, "download", "--url", srv.URL, "--data", data)
		if code != 0 || !strings.Contains(out, "already in "+batches) {
			t.Errorf("--data %s: status %d, stdout %q, stderr %q", data, code, out, errOut)
		}
	}
}

func TestDownloadFailure(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	code, _, errOut := trainer(t, "download", "--url", srv.URL, "--data", t.TempDir())
	if code != 1 || !strings.HasPrefix(errOut, "trainer download: ") || !strings.Contains(errOut, "404") {
		t.Errorf("status %d, stderr %q; want 1 and the 404", code, errOut)
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -1234: "-1,234"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

// fakeCUDA is a CUDASupport with made-up GPUs; it opens nothing.
type fakeCUDA struct {
	gpus []backend.GPU
	err  error
}

func (f fakeCUDA) GPUs() ([]backend.GPU, error) { return f.gpus, f.err }

func (f fakeCUDA) Open(int, backend.Config) (backend.Backend, error) {
	return nil, errors.New("fake GPUs do not open")
}

// withCUDA sets backend.CUDA for a test.
func withCUDA(t *testing.T, c backend.CUDASupport) {
	old := backend.CUDA
	backend.CUDA = c
	t.Cleanup(func() { backend.CUDA = old })
}

func TestDevices(t *testing.T) {
	cpu := "\ncpu   " + backend.CPUDevice().Name + "\n"
	for _, c := range []struct {
		name string
		cuda backend.CUDASupport
		want string
	}{
		{"CPU-only build", nil, "cuda  none: this trainer was built without CUDA; build the GPU trainer with ./build.sh cuda (bin/trainer-cuda) on a GPU host" + cpu},
		{"no driver", fakeCUDA{err: errors.New("no CUDA driver:\nlibcuda.so.1 not found")}, "cuda  none: no CUDA driver:; libcuda.so.1 not found" + cpu},
		{"no GPU", fakeCUDA{}, "cuda  none: no GPU found" + cpu},
	} {
		withCUDA(t, c.cuda)
		code, out, errOut := trainer(t, "devices")
		if code != 0 || out != c.want || errOut != "" {
			t.Errorf("%s: status %d, stdout %q, stderr %q; want 0 and %q", c.name, code, out, errOut, c.want)
		}
	}
	withCUDA(t, fakeCUDA{gpus: []backend.GPU{
		{Index: 0, Name: "NVIDIA H200", MemoryBytes: 150 << 30, ComputeCapability: "9.0", CUDAVersion: "13.0", Driver: "580.65.06"},
		{Index: 1, Name: "NVIDIA T4", MemoryBytes: 15 << 30, ComputeCapability: "7.5", CUDAVersion: "12.2"},
	}})
	code, out, errOut := trainer(t, "devices")
	want := "cuda:0  NVIDIA H200, 150.0 GiB, compute capability 9.0, CUDA 13.0, driver 580.65.06\n" +
		"cuda:1  NVIDIA T4, 15.0 GiB, compute capability 7.5, CUDA 12.2\n" +
		"cpu     " + backend.CPUDevice().Name + "\n"
	if code != 0 || out != want || errOut != "" {
		t.Errorf("two GPUs: status %d, stdout %q, stderr %q; want 0 and %q", code, out, errOut, want)
	}
}

// TestFlagsAfterArguments: flags typed after the positional arguments are
// taken as flags, and "--" ends them.
func TestFlagsAfterArguments(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	data := fs.String("data", "", "")
	limit := fs.Int("limit", 0, "")
	if err := parseInterspersed(fs, []string{"a.cnw", "--data", "d", "b.cnw", "--limit=3", "--", "--c"}); err != nil {
		t.Fatal(err)
	}
	if *data != "d" || *limit != 3 || !slices.Equal(fs.Args(), []string{"a.cnw", "b.cnw", "--c"}) {
		t.Fatalf("data %q limit %d args %q", *data, *limit, fs.Args())
	}
	code, _, errOut := trainer(t, "eval", "../models/zoo/keras-cnn/keras-cnn.int8.cnw", "--data", filepath.Join(t.TempDir(), "none"))
	if code == 0 || strings.Contains(errOut, "unexpected argument") || !strings.Contains(errOut, "trainer download") {
		t.Fatalf("eval MODEL --data: status %d, %s", code, errOut)
	}
}
