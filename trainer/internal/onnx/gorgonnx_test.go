package onnx

import (
	"strings"
	"testing"

	onnxgo "github.com/owulveryck/onnx-go"
	"github.com/owulveryck/onnx-go/backend/x/gorgonnx"
	"gorgonia.org/tensor"

	"github.com/cifarnet-go/cifarnet/models/modeltest"
)

// gorgonnxCannotRun lists the networks onnx-go v0.5.0's gorgonnx backend
// cannot execute, and why.
var gorgonnxCannotRun = map[string]string{
	"cifarnet-fast": "gorgonnx has no Erf operator, which the exact GELU needs",
	"tiny":          "gorgonnx has no Erf operator, which the exact GELU needs",
}

// TestGorgonnx runs every exported network with a second, independent ONNX
// implementation: github.com/owulveryck/onnx-go's Gorgonia backend.
func TestGorgonnx(t *testing.T) {
	for name, spec := range testSpecs(t) {
		t.Run(name, func(t *testing.T) {
			f := modeltest.RandomFile(spec, 2)
			data, err := Export(f)
			if err != nil {
				t.Fatal(err)
			}
			const n = 2
			x := inputs(t, f, n)
			want := modeltest.Predict(t, f, x, n)

			backend := gorgonnx.NewGraph()
			model := onnxgo.NewModel(backend)
			if err := model.UnmarshalBinary(data); err != nil {
				t.Fatalf("onnx-go cannot load the export: %v", err)
			}
			in := spec.Input
			if err := model.SetInput(0, tensor.New(tensor.WithShape(n, in.C, in.H, in.W), tensor.WithBacking(x))); err != nil {
				t.Fatal(err)
			}
			err = backend.Run()
			if why, ok := gorgonnxCannotRun[name]; ok {
				// Check that the reason still holds before skipping.
				if err == nil || !strings.Contains(err.Error(), "Erf") {
					t.Fatalf("expected gorgonnx to fail for want of Erf, got error %v; update gorgonnxCannotRun", err)
				}
				t.Skipf("%s (%v)", why, err)
			}
			if err != nil {
				t.Fatalf("gorgonnx run: %v", err)
			}
			out, err := model.GetOutputTensors()
			if err != nil {
				t.Fatal(err)
			}
			got, ok := out[0].Data().([]float32)
			if !ok {
				t.Fatalf("output holds %T, want []float32", out[0].Data())
			}
			if d := maxDiff(t, want, got); d > tolerance {
				t.Errorf("gorgonnx probabilities differ from the models package's by %g", d)
			}
		})
	}
}
