package evaluate

import (
	"math"
	"slices"
	"testing"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-12 }

// TestComputeHandExample checks every number against a hand-worked case:
//
//	truth: 0 0 0 1 1 2 2 2 3
//	pred:  0 0 1 1 1 2 2 0 2
//
// Class 3 occurs once and is never predicted, so its precision is 0/0.
func TestComputeHandExample(t *testing.T) {
	truth := []int{0, 0, 0, 1, 1, 2, 2, 2, 3}
	pred := []int{0, 0, 1, 1, 1, 2, 2, 0, 2}
	m, err := Compute(truth, pred, []string{"a", "b", "c", "d"})
	if err != nil {
		t.Fatal(err)
	}
	wantCM := [][]int{
		{2, 1, 0, 0},
		{0, 2, 0, 0},
		{1, 0, 2, 0},
		{0, 0, 1, 0},
	}
	for i := range wantCM {
		if !slices.Equal(m.Confusion[i], wantCM[i]) {
			t.Errorf("confusion row %d = %v, want %v", i, m.Confusion[i], wantCM[i])
		}
	}
	if m.N != 9 || m.Correct != 6 || !near(m.Accuracy, 6.0/9) {
		t.Errorf("n %d correct %d accuracy %g, want 9, 6, 0.6667", m.N, m.Correct, m.Accuracy)
	}
	want := []ClassMetrics{
		{"a", 2.0 / 3, 2.0 / 3, 2.0 / 3, 3, 3},
		{"b", 2.0 / 3, 1, 0.8, 2, 3},
		{"c", 2.0 / 3, 2.0 / 3, 2.0 / 3, 3, 3},
		{"d", 0, 0, 0, 1, 0},
	}
	for i, w := range want {
		g := m.PerClass[i]
		if g.Class != w.Class || !near(g.Precision, w.Precision) || !near(g.Recall, w.Recall) ||
			!near(g.F1, w.F1) || g.Support != w.Support || g.Predicted != w.Predicted {
			t.Errorf("class %d = %+v, want %+v", i, g, w)
		}
	}
	if wantF1 := (2.0/3 + 0.8 + 2.0/3 + 0) / 4; !near(m.MacroF1, wantF1) {
		t.Errorf("macro-F1 %g, want %g", m.MacroF1, wantF1)
	}
}

// A class predicted but absent has precision 0 and recall 0 (0/0), and a
// class neither present nor predicted scores 0 everywhere; nothing is NaN.
func TestComputeZeroDivision(t *testing.T) {
	m, err := Compute([]int{0, 0}, []int{0, 1}, []string{"x", "y", "z"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range m.PerClass {
		for _, v := range []float64{c.Precision, c.Recall, c.F1} {
			if math.IsNaN(v) {
				t.Fatalf("class %s has NaN: %+v", c.Class, c)
			}
		}
	}
	if y := m.PerClass[1]; y.Precision != 0 || y.Recall != 0 || y.F1 != 0 || y.Predicted != 1 {
		t.Errorf("predicted-only class: %+v", y)
	}
	if x := m.PerClass[0]; !near(x.Precision, 1) || !near(x.Recall, 0.5) || !near(x.F1, 2.0/3) {
		t.Errorf("class x: %+v", x)
	}
	if !near(m.MacroF1, 2.0/9) {
		t.Errorf("macro-F1 %g, want 2/9", m.MacroF1)
	}

	empty, err := Compute(nil, nil, []string{"x"})
	if err != nil || empty.Accuracy != 0 || empty.MacroF1 != 0 {
		t.Errorf("empty input: %+v, %v", empty, err)
	}
}

func TestComputeRejectsBadInput(t *testing.T) {
	classes := []string{"a", "b"}
	for name, c := range map[string]struct{ truth, pred []int }{
		"length mismatch":  {[]int{0, 1}, []int{0}},
		"label too large":  {[]int{2}, []int{0}},
		"negative predict": {[]int{0}, []int{-1}},
	} {
		if _, err := Compute(c.truth, c.pred, classes); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := Compute(nil, nil, nil); err == nil {
		t.Error("no classes: no error")
	}
}

func TestArgmax(t *testing.T) {
	nan := float32(math.NaN())
	got := Argmax([]float32{
		0.1, 0.7, 0.2,
		0.5, 0.5, 0, // tie: lower index
		nan, -1, -2, // NaN never wins
	}, 3)
	if want := []int{1, 0, 1}; !slices.Equal(got, want) {
		t.Errorf("Argmax = %v, want %v", got, want)
	}
}

func TestCorrect(t *testing.T) {
	scores := []float32{
		0.1, 0.7, 0.2, // predicts 1
		0.5, 0.5, 0, // tie: predicts 0
		0, 0, 1, // predicts 2
	}
	if got := Correct(scores, []uint8{1, 1, 2}, 3); got != 2 {
		t.Errorf("Correct = %d, want 2", got)
	}
	if got := Correct(scores, []uint8{0, 0, 0}, 3); got != 1 {
		t.Errorf("Correct = %d, want 1", got)
	}
}
