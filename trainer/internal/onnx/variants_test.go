package onnx

import (
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/models/modeltest"
	"github.com/cifarnet-go/cifarnet/trainer/internal/onnx/onnxpb"
)

// TestImportVariants imports equivalent graphs written differently from
// Export's (as other exporters write them) and checks that each gives the
// original network's probabilities.
func TestImportVariants(t *testing.T) {
	f := modeltest.RandomFile(modeltest.TinySpec(), 6)
	for _, tc := range []struct {
		name   string
		mutate func(t *testing.T, m *onnxpb.ModelProto)
	}{
		{"batchnorm not folded", func(t *testing.T, m *onnxpb.ModelProto) {
			unfold(t, m, f, "conv2", "bn2", models.DefaultBatchNormEps)
		}},
		{"projection batchnorm not folded", func(t *testing.T, m *onnxpb.ModelProto) {
			unfold(t, m, f, "res2.proj", "res2.proj_bn", models.DefaultBatchNormEps)
		}},
		{"GELU as (x·½)·(1+erf(x·1/√2))", func(t *testing.T, m *onnxpb.ModelProto) {
			m.Graph.Initializer = append(m.Graph.Initializer, floatTensor("inv_sqrt2", nil, []float32{0.70710677}))
			div := nodeByName(t, m, "gelu/div")
			div.OpType, div.Input[1] = ptr("Mul"), "inv_sqrt2"
			mul, last := nodeByName(t, m, "gelu/mul"), nodeByName(t, m, "gelu")
			mul.Input = []string{div.Input[0], "gelu.half"}
			last.Input = []string{"gelu/mul", "gelu/add"}
		}},
		{"Gemm without transB, with alpha", func(t *testing.T, m *onnxpb.ModelProto) {
			fc := nodeByName(t, m, "fc")
			fc.Attribute = []*onnxpb.AttributeProto{floatAttr("alpha", 2)}
			w := f.Tensors["fc.weight"]
			out, in := w.Shape[0], w.Shape[1]
			wt := make([]float32, len(w.Data))
			for o := range out {
				for i := range in {
					wt[i*out+o] = w.Data[o*in+i] / 2
				}
			}
			setInitializer(t, m, floatTensor("fc.weight", []int{in, out}, wt))
		}},
		{"identity and dropout in a residual block", func(t *testing.T, m *onnxpb.ModelProto) {
			var nodes []*onnxpb.NodeProto
			for _, n := range m.Graph.Node {
				nodes = append(nodes, n)
				if n.GetName() == "relu1" {
					nodes = append(nodes,
						&onnxpb.NodeProto{OpType: ptr("Identity"), Input: []string{"relu1"}, Output: []string{"relu1/id"}},
						&onnxpb.NodeProto{OpType: ptr("Dropout"), Input: []string{"relu1/id"}, Output: []string{"relu1/drop"}})
				}
			}
			m.Graph.Node = nodes
			nodeByName(t, m, "conv2").Input[0] = "relu1/drop"
			nodeByName(t, m, "res1").Input[1] = "relu1/id"
		}},
		{"initializers listed as inputs, fixed batch size", func(t *testing.T, m *onnxpb.ModelProto) {
			for _, init := range m.Graph.Initializer {
				m.Graph.Input = append(m.Graph.Input, valueInfo(init.GetName()))
			}
			m.Graph.Input[0].Type.GetTensorType().Shape.Dim[0] = dimValue(1)
		}},
		{"no names", func(t *testing.T, m *onnxpb.ModelProto) {
			for _, n := range m.Graph.Node {
				n.Name = nil
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ExportModel(f)
			if err != nil {
				t.Fatal(err)
			}
			tc.mutate(t, m)
			data, err := proto.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			g, err := Import(data, ImportOptions{})
			if err != nil {
				t.Fatal(err)
			}
			const n = 3
			x := inputs(t, f, n)
			if d := maxDiff(t, modeltest.Predict(t, f, x, n), modeltest.Predict(t, g, x, n)); d > tolerance {
				t.Errorf("probabilities differ by %g", d)
			}
		})
	}
}

// unfold replaces the exported conv node (with batchnorm bn folded in) by
// the original convolution and a BatchNormalization node.
func unfold(t *testing.T, m *onnxpb.ModelProto, f *models.File, conv, bn string, eps float64) {
	t.Helper()
	raw := conv + "/raw"
	nodeByName(t, m, conv) // fails the test if there is none
	var nodes []*onnxpb.NodeProto
	for _, n := range m.Graph.Node {
		nodes = append(nodes, n)
		if n.GetName() != conv {
			continue
		}
		n.Input = n.Input[:2] // the folded bias goes; the spec's convs here have none
		n.Output = []string{raw}
		in := []string{raw}
		for _, s := range []string{".weight", ".bias", ".running_mean", ".running_var"} {
			tn := f.Tensors[bn+s]
			m.Graph.Initializer = append(m.Graph.Initializer, floatTensor(tn.Name, tn.Shape, tn.Data))
			in = append(in, tn.Name)
		}
		nodes = append(nodes, &onnxpb.NodeProto{OpType: ptr("BatchNormalization"), Name: ptr(bn), Input: in,
			Output: []string{conv}, Attribute: []*onnxpb.AttributeProto{floatAttr("epsilon", float32(eps))}})
	}
	m.Graph.Node = nodes
	w := f.Tensors[conv+".weight"]
	setInitializer(t, m, floatTensor(w.Name, w.Shape, w.Data))
}

// setInitializer replaces the initializer of the same name.
func setInitializer(t *testing.T, m *onnxpb.ModelProto, tp *onnxpb.TensorProto) {
	t.Helper()
	i := slices.IndexFunc(m.Graph.Initializer, func(x *onnxpb.TensorProto) bool { return x.GetName() == tp.GetName() })
	if i < 0 {
		t.Fatalf("no initializer %q", tp.GetName())
	}
	m.Graph.Initializer[i] = tp
}
