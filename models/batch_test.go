package models

import (
	"fmt"
	"math"
	"testing"
)

// TestPredictBatchMatchesSingleImages checks that images side by side in
// one matrix product (convBatch, up to convGroup at a time) get the logits
// each gets alone, on every preset, with Winograd and with im2col, for a
// batch of six (test-time augmentation's) and one spanning two groups.
func TestPredictBatchMatchesSingleImages(t *testing.T) {
	defer func(saved bool) { winogradEnabled = saved }(winogradEnabled)
	for _, wino := range []bool{false, true} {
		winogradEnabled = wino
		for _, preset := range PresetNames() {
			spec, err := Preset(preset)
			if err != nil {
				t.Fatal(err)
			}
			m := referenceModel(t, spec)
			size, classes := m.InputSize(), m.Classes()
			for _, n := range []int{6, convGroup + 3} {
				t.Run(fmt.Sprintf("%s/winograd=%v/n=%d", preset, wino, n), func(t *testing.T) {
					x := make([]float32, n*size)
					for i := range x {
						x[i] = float32(math.Sin(float64(i)*0.37 + 2))
					}
					single := m.NewPredictor()
					want := make([]float32, 0, n*classes)
					for b := range n {
						if _, err := single.Predict(x[b*size : (b+1)*size]); err != nil {
							t.Fatal(err)
						}
						want = append(want, single.Logits()...)
					}
					batch := m.NewPredictor()
					if _, err := batch.PredictBatch(x, n); err != nil {
						t.Fatal(err)
					}
					got := batch.Logits()
					worst := 0.0
					for i := range want {
						worst = max(worst, math.Abs(float64(got[i]-want[i])))
					}
					if worst > 1e-5 {
						t.Errorf("batch logits differ from single-image ones by up to %g", worst)
					}
				})
			}
		}
	}
}
