package modeltest

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/cifarnet-go/cifarnet/models"
)

func specs(t *testing.T) []*models.Spec {
	t.Helper()
	all := []*models.Spec{TinySpec()}
	for _, name := range models.PresetNames() {
		s, err := models.Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, s)
	}
	return all
}

func TestRandomFileIsValidAndDeterministic(t *testing.T) {
	for _, spec := range specs(t) {
		t.Run(spec.Name, func(t *testing.T) {
			a := RandomFile(spec, 1)
			if err := a.Validate(); err != nil {
				t.Fatal(err)
			}
			if a.Meta.DType != models.Float32 || a.Meta.Provenance.Notes != "random weights for tests" {
				t.Errorf("meta = %+v", a.Meta)
			}
			if !reflect.DeepEqual(a, RandomFile(spec, 1)) {
				t.Error("same seed gave different files")
			}
			b := RandomFile(spec, 2)
			for name, ta := range a.Tensors {
				if reflect.DeepEqual(ta.Data, b.Tensors[name].Data) {
					t.Errorf("seeds 1 and 2 gave the same %s", name)
				}
			}
		})
	}
}

func TestRandomFileDistributions(t *testing.T) {
	spec, err := models.Preset("cifarnet")
	if err != nil {
		t.Fatal(err)
	}
	f := RandomFile(spec, 7)
	params, _ := spec.Params()
	for _, p := range params {
		d := f.Tensors[p.Name].Data
		mean, std := moments(d)
		lo, hi := minMax(d)
		switch {
		case len(p.Shape) >= 2:
			want := math.Sqrt(2 / float64(p.Size()/p.Shape[0]))
			if math.Abs(mean) > 4*want/math.Sqrt(float64(len(d))) || math.Abs(std-want) > 0.2*want {
				t.Errorf("%s: mean %g std %g, want He std %g", p.Name, mean, std, want)
			}
		case strings.HasSuffix(p.Name, ".running_var"), strings.HasSuffix(p.Name, ".weight"):
			if lo < 0.5 || hi > 1.5 || hi-lo < 0.1 {
				t.Errorf("%s: range [%g, %g], want spread within [0.5, 1.5]", p.Name, lo, hi)
			}
		default:
			if std == 0 || math.Abs(mean) > 0.2 || std > 0.3 {
				t.Errorf("%s: mean %g std %g, want ~N(0, 0.1)", p.Name, mean, std)
			}
		}
	}
	if !reflect.DeepEqual(f.Meta.Classes, models.CIFAR10Classes) {
		t.Errorf("classes = %v", f.Meta.Classes)
	}
}

func TestRandomFileDoesNotShareSpec(t *testing.T) {
	spec := TinySpec()
	f := RandomFile(spec, 1)
	spec.Layers[0].Name = "changed"
	if f.Meta.Spec.Layers[0].Name != "conv1" {
		t.Error("file shares the caller's layer slice")
	}
}

func TestRandomFilePanicsOnInvalidSpec(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic for an invalid spec")
		}
	}()
	RandomFile(&models.Spec{Name: "empty", Input: models.Shape{C: 3, H: 8, W: 8}}, 1)
}

func moments(d []float32) (mean, std float64) {
	for _, v := range d {
		mean += float64(v)
	}
	mean /= float64(len(d))
	for _, v := range d {
		std += (float64(v) - mean) * (float64(v) - mean)
	}
	return mean, math.Sqrt(std / float64(len(d)))
}

func minMax(d []float32) (lo, hi float32) {
	lo, hi = d[0], d[0]
	for _, v := range d {
		lo, hi = min(lo, v), max(hi, v)
	}
	return lo, hi
}
