package onnx

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/models/modeltest"
)

// ortDir holds run.js and, once installed, node_modules/onnxruntime-node.
const ortDir = "testdata/ort"

// ortInstallHint is the command that installs ONNX Runtime for the tests,
// run from the repository root (.ci/run does).
const ortInstallHint = "ONNXRUNTIME_NODE_INSTALL_CUDA=skip npm install --no-save --prefix trainer/internal/onnx/testdata/ort onnxruntime-node@1.30.0"

// requireORT skips the test when node or onnxruntime-node is missing,
// unless CIFARNET_ONNXRUNTIME=1 (as in CI), where that is a failure.
func requireORT(t *testing.T) {
	t.Helper()
	_, errNode := exec.LookPath("node")
	_, errORT := os.Stat(filepath.Join(ortDir, "node_modules", "onnxruntime-node", "package.json"))
	if errNode == nil && errORT == nil {
		return
	}
	msg := "ONNX Runtime tests need node and onnxruntime-node; install it from the repository root with\n\t" + ortInstallHint
	if errNode != nil {
		msg = "node is not on PATH; " + msg
	}
	if os.Getenv("CIFARNET_ONNXRUNTIME") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg + "\n(set CIFARNET_ONNXRUNTIME=1 to make this a failure)")
}

// ortResult is what run.js prints.
type ortResult struct {
	Input  string `json:"input"`
	Output string `json:"output"`
	Dims   []int  `json:"dims"`
}

// runORT runs the ONNX model data on n images x with ONNX Runtime.
func runORT(t *testing.T, data []byte, x []float32, n int, in models.Shape) (ortResult, []float32) {
	t.Helper()
	dir := t.TempDir()
	model, input, output := filepath.Join(dir, "model.onnx"), filepath.Join(dir, "input.f32"), filepath.Join(dir, "output.f32")
	if err := os.WriteFile(model, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(input, float32Bytes(x), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", "run.js", model, input,
		fmt.Sprint(n), fmt.Sprint(in.C), fmt.Sprint(in.H), fmt.Sprint(in.W), output)
	cmd.Dir = ortDir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("node run.js: %v\n%s", err, stderr.String())
	}
	var res ortResult
	if err := json.Unmarshal(stdout, &res); err != nil {
		t.Fatalf("run.js printed %q: %v", stdout, err)
	}
	raw, err := os.ReadFile(output)
	if err != nil {
		t.Fatal(err)
	}
	return res, float32sOf(raw)
}

// TestONNXRuntime runs every exported network with ONNX Runtime, the
// reference ONNX implementation, on real CIFAR-10 test images.
func TestONNXRuntime(t *testing.T) {
	requireORT(t)
	if cifarDir(t) == "" {
		t.Log("CIFAR-10 not found (set CIFAR10_DIR): using noise images")
	}
	for name, spec := range testSpecs(t) {
		t.Run(name, func(t *testing.T) {
			f := modeltest.RandomFile(spec, 3)
			data, err := Export(f)
			if err != nil {
				t.Fatal(err)
			}
			const n = 16
			x := inputs(t, f, n)
			want := modeltest.Predict(t, f, x, n)
			res, got := runORT(t, data, x, n, spec.Input)
			classes := len(f.Meta.Classes)
			if res.Input != InputName || res.Output != ProbabilitiesOut || !slices.Equal(res.Dims, []int{n, classes}) {
				t.Errorf("ONNX Runtime saw input %q, output %q of dims %v; want %q, %q, [%d %d]",
					res.Input, res.Output, res.Dims, InputName, ProbabilitiesOut, n, classes)
			}
			d := maxDiff(t, want, got)
			if d > tolerance {
				t.Errorf("ONNX Runtime probabilities differ from the models package's by %g", d)
			}
			t.Logf("max |Δp| = %.3g over %d images", d, n)
		})
	}
}

func float32Bytes(x []float32) []byte {
	b := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

func float32sOf(b []byte) []float32 {
	x := make([]float32, len(b)/4)
	for i := range x {
		x[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return x
}
