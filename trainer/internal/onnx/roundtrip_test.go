package onnx

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/models/modeltest"
	"github.com/cifarnet-go/cifarnet/trainer/internal/onnx/onnxpb"
)

func TestRoundTrip(t *testing.T) {
	for name, spec := range testSpecs(t) {
		t.Run(name, func(t *testing.T) {
			f := modeltest.RandomFile(spec, 1)
			f.Meta.Provenance.Recipe = "test-recipe"
			f.Meta.Inference.TTA = []string{"flip"}
			data, err := Export(f)
			if err != nil {
				t.Fatal(err)
			}
			g, err := Import(data, ImportOptions{})
			if err != nil {
				t.Fatal(err)
			}
			const n = 4
			x := inputs(t, f, n)
			if d := maxDiff(t, modeltest.Predict(t, f, x, n), modeltest.Predict(t, g, x, n)); d > tolerance {
				t.Errorf("imported model's probabilities differ by %g", d)
			}
			m := g.Meta
			if m.Spec.Name != spec.Name || m.Spec.Input != spec.Input {
				t.Errorf("spec %q input %v, want %q %v", m.Spec.Name, m.Spec.Input, spec.Name, spec.Input)
			}
			if !slices.Equal(m.Classes, f.Meta.Classes) || !slices.Equal(m.Normalization.Mean, f.Meta.Normalization.Mean) ||
				!slices.Equal(m.Normalization.Std, f.Meta.Normalization.Std) {
				t.Errorf("metadata: classes %v normalisation %v, want %v %v", m.Classes, m.Normalization, f.Meta.Classes, f.Meta.Normalization)
			}
			if m.Provenance.Recipe != "test-recipe" || !strings.Contains(m.Provenance.Notes, "imported from ONNX (produced by cifarnet)") ||
				!slices.Equal(m.Inference.TTA, []string{"flip"}) {
				t.Errorf("provenance %+v, inference %+v", m.Provenance, m.Inference)
			}
			for _, l := range m.Spec.Layers {
				if l.Type == models.Dropout {
					t.Errorf("dropout layer %q survived the round trip", l.Name)
				}
			}
			// Re-exporting the import gives the same graph size: nothing
			// accumulates (extra flattens, projections) on the way.
			again, err := ExportModel(g)
			if err != nil {
				t.Fatal(err)
			}
			first, _ := ExportModel(f)
			if len(again.Graph.Node) != len(first.Graph.Node) {
				t.Errorf("re-export has %d nodes, first export %d", len(again.Graph.Node), len(first.Graph.Node))
			}
		})
	}
}

func TestExportNameClash(t *testing.T) {
	spec := modeltest.TinySpec()
	spec.Layers[2].Name = ProbabilitiesOut // relu1, read later by an add
	spec.Layers[5].From = ProbabilitiesOut
	_, err := Export(modeltest.RandomFile(spec, 1))
	if err == nil || !strings.Contains(err.Error(), `two ONNX values would be called "probabilities"`) {
		t.Errorf("error %v", err)
	}
}

// TestExportStructure checks the parts of an export that runtimes rely on:
// versions, the input and output, the operators and the metadata.
func TestExportStructure(t *testing.T) {
	m, err := ExportModel(modeltest.RandomFile(models.CifarNetFast(), 1))
	if err != nil {
		t.Fatal(err)
	}
	if m.GetIrVersion() != 8 || len(m.OpsetImport) != 1 || m.OpsetImport[0].GetVersion() != 17 || m.OpsetImport[0].GetDomain() != "" {
		t.Errorf("IR version %d, opsets %v; want 8 and the default domain at 17", m.GetIrVersion(), m.OpsetImport)
	}
	dims := func(vi *onnxpb.ValueInfoProto) string {
		var s []string
		for _, d := range vi.GetType().GetTensorType().GetShape().GetDim() {
			if p := d.GetDimParam(); p != "" {
				s = append(s, p)
			} else {
				s = append(s, fmt.Sprint(d.GetDimValue()))
			}
		}
		return vi.GetName() + strings.Join(s, "×")
	}
	if in, out := dims(m.Graph.Input[0]), dims(m.Graph.Output[0]); in != "inputbatch×3×32×32" || out != "probabilitiesbatch×10" {
		t.Errorf("input %s, output %s", in, out)
	}
	ops := map[string]int{}
	for _, n := range m.Graph.Node {
		ops[n.GetOpType()]++
	}
	// 7 convs; of the 6 batchnorms, the 3 after a max-pool stay and the 3
	// right after a conv fold into it; 7 GELUs of 5 nodes each.
	want := map[string]int{"Conv": 7, "MaxPool": 4, "BatchNormalization": 3, "Div": 7, "Erf": 7, "Add": 7, "Mul": 14,
		"Flatten": 1, "Gemm": 1, "Softmax": 1}
	if !maps.Equal(ops, want) {
		t.Errorf("operators %v, want %v", ops, want)
	}
	props := map[string]string{}
	for _, p := range m.MetadataProps {
		props[p.GetKey()] = p.GetValue()
	}
	if !strings.HasPrefix(props[MetaClasses], `["airplane","automobile"`) || !strings.Contains(props[MetaNormalization], `"mean":[0.4914,`) {
		t.Errorf("metadata_props %v", props)
	}
}
