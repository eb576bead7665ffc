package models

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestPresetParameterCountsAndShapes(t *testing.T) {
	for _, tc := range []struct {
		name      string
		min, max  int // trainable parameters
		minFLOPs  int64
		maxFLOPs  int64
		numLayers int
	}{
		// Keras reports exactly 815,530 trainable parameters for the
		// first reference system's network.
		{"keras-cnn", 815530, 815530, 70e6, 90e6, 31},
		// The second reference system's CifarNet: about 3.5 M (±10 %).
		{"cifarnet", 3.15e6, 3.85e6, 300e6, 450e6, 0},
		// airbench94's network has 1.97 M parameters and ~0.24 GFLOP.
		{"cifarnet-fast", 1.9e6, 2.05e6, 0.2e9, 0.28e9, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Preset(tc.name)
			if err != nil {
				t.Fatal(err)
			}
			n, err := s.TrainableParams()
			if err != nil {
				t.Fatal(err)
			}
			if n < tc.min || n > tc.max {
				t.Errorf("trainable parameters = %d, want %d..%d", n, tc.min, tc.max)
			}
			out, _ := s.Output()
			if out != (Shape{10, 1, 1}) {
				t.Errorf("output shape %v, want 10×1×1", out)
			}
			f, _ := s.FLOPs()
			if f < tc.minFLOPs || f > tc.maxFLOPs {
				t.Errorf("FLOPs = %d, want %d..%d", f, tc.minFLOPs, tc.maxFLOPs)
			}
			if tc.numLayers > 0 && len(s.Layers) != tc.numLayers {
				t.Errorf("%d layers, want %d", len(s.Layers), tc.numLayers)
			}
			if s.Layers[len(s.Layers)-1].Type != Softmax {
				t.Error("preset does not end in softmax")
			}
			t.Logf("%s: %d trainable parameters, %.3f GFLOP", tc.name, n, float64(f)/1e9)
		})
	}
	if _, err := Preset("nope"); err == nil || !strings.Contains(err.Error(), "keras-cnn") {
		t.Errorf("unknown preset error %v should list the presets", err)
	}
}

func TestKerasCNNShapes(t *testing.T) {
	s := KerasCNN()
	shapes, err := s.Shapes()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Shape{
		"block1.conv1": {32, 32, 32}, "block1.pool": {32, 16, 16},
		"block2.pool": {64, 8, 8}, "block3.pool": {128, 4, 4},
		"flatten": {2048, 1, 1}, "fc1": {256, 1, 1}, "fc2": {10, 1, 1},
	}
	for i, l := range s.Layers {
		if w, ok := want[l.Name]; ok && shapes[i] != w {
			t.Errorf("%s: shape %v, want %v", l.Name, shapes[i], w)
		}
	}
}

func TestSpecJSONRoundTrip(t *testing.T) {
	for _, name := range PresetNames() {
		s, _ := Preset(name)
		data, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseSpec(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		again, _ := json.Marshal(back)
		if string(again) != string(data) {
			t.Errorf("%s: JSON round trip changed the spec", name)
		}
	}
}

func TestSpecErrorsNameTheLayer(t *testing.T) {
	in := Shape{3, 8, 8}
	for _, tc := range []struct {
		what   string
		layers []Layer
		want   string // substring of the error
	}{
		{"unknown type", []Layer{{Name: "x", Type: "conv3d"}}, `"x"): unknown layer type "conv3d"`},
		{"no type", []Layer{{Name: "x"}}, `"x"): layer has no type`},
		{"no name", []Layer{{Type: ReLU}}, "needs a name"},
		{"reserved name", []Layer{{Name: InputName, Type: ReLU}}, "needs a name"},
		{"duplicate", []Layer{{Name: "a", Type: ReLU}, {Name: "a", Type: ReLU}}, `layer 1 ("a"): duplicate`},
		{"zero filters", []Layer{{Name: "c", Type: Conv2D, Kernel: 3}}, `"c"): filters must be`},
		{"kernel too big", []Layer{{Name: "c", Type: Conv2D, Filters: 2, Kernel: 9}}, `"c"): kernel 9 larger`},
		{"padding ≥ kernel", []Layer{{Name: "c", Type: Conv2D, Filters: 2, Kernel: 3, Padding: 3}}, `"c"): kernel 3, stride 0, padding 3`},
		{"pool too big", []Layer{{Name: "p", Type: MaxPool, Kernel: 16}}, `"p"): pool kernel 16`},
		{"linear on map", []Layer{{Name: "fc", Type: Linear, Units: 10}}, `"fc"): linear needs a vector`},
		{"add unknown", []Layer{{Name: "a", Type: Add, From: "ghost"}}, `"a"): from "ghost"`},
		{"add later layer", []Layer{{Name: "a", Type: Add, From: "b"}, {Name: "b", Type: ReLU}}, `"a"): from "b"`},
		{"add shape", []Layer{{Name: "c", Type: Conv2D, Filters: 4, Kernel: 1}, {Name: "a", Type: Add, From: InputName}}, `"a"): adds "input" of shape 3×8×8`},
		{"bad alpha", []Layer{{Name: "l", Type: LeakyReLU, Alpha: 2}}, `"l"): alpha`},
		{"bad rate", []Layer{{Name: "d", Type: Dropout, Rate: 1}}, `"d"): rate`},
	} {
		t.Run(tc.what, func(t *testing.T) {
			s := &Spec{Name: "t", Input: in, Layers: tc.layers}
			_, err := s.Shapes()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
			var le *LayerError
			if tc.what != "no layers" && !errors.As(err, &le) {
				t.Errorf("error %T is not a *LayerError", err)
			}
		})
	}
	if _, err := (&Spec{Name: "t", Input: in}).Shapes(); err == nil {
		t.Error("a spec without layers was accepted")
	}
	if _, err := (&Spec{Name: "t", Layers: []Layer{{Name: "r", Type: ReLU}}}).Shapes(); err == nil {
		t.Error("a spec without an input shape was accepted")
	}
	if _, err := (&Spec{Name: "t", Input: Shape{3, 1 << 20, 1 << 20}, Layers: []Layer{{Name: "r", Type: ReLU}}}).Shapes(); err == nil {
		t.Error("a spec with an absurd input shape was accepted")
	}
	if _, err := ParseSpec([]byte(`{"name": "x", "layers": [`)); err == nil {
		t.Error("malformed JSON was accepted")
	}
}
