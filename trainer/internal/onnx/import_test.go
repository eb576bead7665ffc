package onnx

import (
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/models/modeltest"
	"github.com/cifarnet-go/cifarnet/trainer/internal/onnx/onnxpb"
)

// The PyTorch fixture, written by testdata/pytorch/make_model.py.
const (
	torchModel    = "testdata/pytorch/tiny_cifarnet.onnx"
	torchInputs   = "testdata/pytorch/inputs.f32"
	torchExpected = "testdata/pytorch/expected.json"
)

func TestImportPyTorch(t *testing.T) {
	data, err := os.ReadFile(torchModel)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(torchInputs)
	if err != nil {
		t.Fatal(err)
	}
	var expected struct {
		Shape         []int     `json:"shape"`
		Probabilities []float32 `json:"probabilities"`
	}
	js, err := os.ReadFile(torchExpected)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(js, &expected); err != nil {
		t.Fatal(err)
	}

	f, err := Import(data, ImportOptions{Name: "tiny-cifarnet"})
	if err != nil {
		t.Fatal(err)
	}
	n := expected.Shape[0]
	got := modeltest.Predict(t, f, float32sOf(raw), n)
	d := maxDiff(t, expected.Probabilities, got)
	if d > tolerance {
		t.Errorf("imported model's probabilities differ from PyTorch's by %g", d)
	}
	t.Logf("max |Δp| against PyTorch = %.3g over %d images", d, n)

	m := f.Meta
	if !slices.Equal(m.Classes, models.CIFAR10Classes) || m.Normalization.Std[2] != 0.2616 {
		t.Errorf("metadata not imported: classes %v, normalisation %v", m.Classes, m.Normalization)
	}
	if m.Spec.Name != "tiny-cifarnet" || !strings.Contains(m.Provenance.Notes, "pytorch 1.13") {
		t.Errorf("spec name %q, notes %q", m.Spec.Name, m.Provenance.Notes)
	}
	// Every kind of layer in the network arrives, with PyTorch's names.
	types := map[string]int{}
	names := map[string]bool{}
	for _, l := range m.Spec.Layers {
		types[l.Type]++
		names[l.Name] = true
	}
	for typ, want := range map[string]int{
		models.Conv2D: 5, models.LeakyReLU: 5, models.Add: 2, models.MaxPool: 2, models.BatchNorm: 1,
		models.GELU: 1, models.GlobalAvgPool: 1, models.Flatten: 1, models.Linear: 1, models.Softmax: 1,
	} {
		if types[typ] != want {
			t.Errorf("%d %s layers, want %d (layers %v)", types[typ], typ, want, types)
		}
	}
	for _, name := range []string{"stem", "block1.conv1", "block2" /* the add */, "bn", "gelu", "fc"} {
		if !names[name] {
			t.Errorf("no layer named %q in %v", name, names)
		}
	}

	// The weight file round-trips through the models package's encoder.
	var buf strings.Builder
	if err := models.Encode(&buf, f); err != nil {
		t.Fatal(err)
	}
}

// TestImportOptions checks that options supply what metadata lacks, and
// override what it has.
func TestImportOptions(t *testing.T) {
	m := exportedModel(t)
	m.MetadataProps = nil
	data, _ := proto.Marshal(m)
	if _, err := Import(data, ImportOptions{}); !errors.Is(err, ErrNoClasses) {
		t.Errorf("no metadata, no options: error %v, want ErrNoClasses", err)
	}
	classes := strings.Split("a,b,c,d,e,f,g,h,i,j", ",")
	if _, err := Import(data, ImportOptions{Classes: classes}); !errors.Is(err, ErrNoNormalization) {
		t.Errorf("no normalisation: error %v, want ErrNoNormalization", err)
	}
	norm := &models.Normalization{Mean: []float32{0.5, 0.5, 0.5}, Std: []float32{0.2, 0.2, 0.2}}
	f, err := Import(data, ImportOptions{Classes: classes, Normalization: norm})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f.Meta.Classes, classes) || !slices.Equal(f.Meta.Normalization.Std, norm.Std) {
		t.Errorf("options not applied: %v %v", f.Meta.Classes, f.Meta.Normalization)
	}
	if _, err := Import(data, ImportOptions{Classes: classes[:3], Normalization: norm}); err == nil || !strings.Contains(err.Error(), "3 class names for 10 outputs") {
		t.Errorf("3 classes for 10 outputs: error %v", err)
	}
}

// exportedModel is the tiny spec with random weights, exported.
func exportedModel(t testing.TB) *onnxpb.ModelProto {
	t.Helper()
	m, err := ExportModel(modeltest.RandomFile(modeltest.TinySpec(), 4))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// nodeByName finds a node of the exported model.
func nodeByName(t *testing.T, m *onnxpb.ModelProto, name string) *onnxpb.NodeProto {
	t.Helper()
	for _, n := range m.Graph.Node {
		if n.GetName() == name {
			return n
		}
	}
	t.Fatalf("no node %q", name)
	return nil
}

func TestImportErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(t *testing.T, m *onnxpb.ModelProto)
		want   []string
	}{
		{"unsupported ops listed together", func(t *testing.T, m *onnxpb.ModelProto) {
			nodeByName(t, m, "relu1").OpType = ptr("Sigmoid")
			nodeByName(t, m, "gap").OpType = ptr("ReduceMean")
			nodeByName(t, m, "act2").OpType = ptr("Sigmoid")
		}, []string{"unsupported ONNX operators: ReduceMean, Sigmoid (2 nodes)", "supported: Add, BatchNormalization"}},
		{"custom domain", func(t *testing.T, m *onnxpb.ModelProto) {
			nodeByName(t, m, "relu1").Domain = ptr("com.microsoft")
		}, []string{"unsupported ONNX operators: com.microsoft.Relu"}},
		{"dynamic height", func(t *testing.T, m *onnxpb.ModelProto) {
			m.Graph.Input[0].Type.GetTensorType().Shape.Dim[2] = dimParam("height")
		}, []string{`dynamic shapes are not supported: input "input" dimension 2 is "height"`}},
		{"unknown rank", func(t *testing.T, m *onnxpb.ModelProto) {
			m.Graph.Input[0].Type.GetTensorType().Shape = nil
		}, []string{"known rank-4 shape"}},
		{"old opset", func(t *testing.T, m *onnxpb.ModelProto) {
			m.OpsetImport[0].Version = ptr(int64(7))
		}, []string{"opset 7 is not supported"}},
		{"grouped conv", func(t *testing.T, m *onnxpb.ModelProto) {
			n := nodeByName(t, m, "conv1")
			for _, a := range n.Attribute {
				if a.GetName() == "group" {
					a.I = ptr(int64(2))
				}
			}
		}, []string{`node "conv1" (Conv): group 2`}},
		{"asymmetric pads", func(t *testing.T, m *onnxpb.ModelProto) {
			n := nodeByName(t, m, "conv2")
			for _, a := range n.Attribute {
				if a.GetName() == "pads" {
					a.Ints = []int64{1, 1, 0, 0}
				}
			}
		}, []string{`node "conv2" (Conv): pads [1 1 0 0]`}},
		{"weights as an input", func(t *testing.T, m *onnxpb.ModelProto) {
			m.Graph.Input = append(m.Graph.Input, valueInfo("w2", dimValue(4)))
			nodeByName(t, m, "conv2").Input[1] = "w2"
		}, []string{"graph has 2 inputs besides initializers"}},
		{"add of a constant", func(t *testing.T, m *onnxpb.ModelProto) {
			nodeByName(t, m, "res1").Input[1] = "gelu.one"
		}, []string{`node "res1" (Add) has 1 non-constant operands`}},
		{"stray Mul", func(t *testing.T, m *onnxpb.ModelProto) {
			nodeByName(t, m, "relu1").OpType = ptr("Mul")
		}, []string{"relu1 (Mul)", "only as parts of the exact GELU"}},
		{"undefined value", func(t *testing.T, m *onnxpb.ModelProto) {
			nodeByName(t, m, "conv2").Input[0] = "nowhere"
		}, []string{`reads "nowhere" before anything defines it`}},
		{"external data", func(t *testing.T, m *onnxpb.ModelProto) {
			m.Graph.Initializer[0].DataLocation = onnxpb.TensorProto_EXTERNAL.Enum()
		}, []string{"external data is not supported"}},
		{"short tensor", func(t *testing.T, m *onnxpb.ModelProto) {
			m.Graph.Initializer[0].RawData = m.Graph.Initializer[0].RawData[4:]
		}, []string{"needs 108 values, has 107"}},
		{"two outputs", func(t *testing.T, m *onnxpb.ModelProto) {
			m.Graph.Output = append(m.Graph.Output, m.Graph.Output[0])
		}, []string{"graph has 2 outputs"}},
		{"softmax not last", func(t *testing.T, m *onnxpb.ModelProto) {
			nodeByName(t, m, "relu1").OpType = ptr("Softmax")
		}, []string{"softmax is supported only as the last operation"}},
		{"bad metadata", func(t *testing.T, m *onnxpb.ModelProto) {
			m.MetadataProps[0].Value = ptr("[1, 2")
		}, []string{`metadata_props "classes"`}},
		{"no graph", func(t *testing.T, m *onnxpb.ModelProto) {
			m.Graph = nil
		}, []string{"no graph"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := exportedModel(t)
			tc.mutate(t, m)
			data, err := proto.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Import(data, ImportOptions{})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	if _, err := Import([]byte("not a protobuf \xff\xff"), ImportOptions{}); err == nil || !strings.Contains(err.Error(), "not an ONNX model") {
		t.Errorf("garbage: error %v", err)
	}
}
