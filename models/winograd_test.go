package models

import (
	"testing"
	"time"
)

func referenceModel(t testing.TB, spec *Spec) *Model {
	params, _ := spec.Params()
	stream := referenceStream{1}
	f := &File{Meta: Meta{Spec: *spec, Classes: CIFAR10Classes, DType: Float32,
		Normalization: Normalization{Mean: []float32{0, 0, 0}, Std: []float32{1, 1, 1}}},
		Tensors: map[string]*Tensor{}}
	for _, p := range params {
		data := make([]float32, p.Size())
		for i := range data {
			data[i] = referenceValue(p, stream.uniform())
		}
		f.Tensors[p.Name] = &Tensor{Name: p.Name, Shape: p.Shape, Data: data}
	}
	m, err := NewModel(f)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// BenchmarkWinogradVsDirect runs cifarnet-fast on one image with and
// without Winograd, interleaved, and reports the best time of each and
// their ratio: a side-by-side comparison that tolerates a noisy machine.
func BenchmarkWinogradVsDirect(b *testing.B) {
	spec := CifarNetFast()
	defer func(saved bool) { winogradEnabled = saved }(winogradEnabled)
	winogradEnabled = false
	direct := referenceModel(b, spec).NewPredictor()
	winogradEnabled = true
	wino := referenceModel(b, spec).NewPredictor()
	x := make([]float32, spec.Input.Size())
	bestD, bestW := time.Duration(1<<62), time.Duration(1<<62)
	for b.Loop() {
		t := time.Now()
		direct.Predict(x)
		bestD = min(bestD, time.Since(t))
		t = time.Now()
		wino.Predict(x)
		bestW = min(bestW, time.Since(t))
	}
	b.ReportMetric(float64(bestD.Microseconds())/1e3, "direct-ms")
	b.ReportMetric(float64(bestW.Microseconds())/1e3, "winograd-ms")
	b.ReportMetric(float64(bestD)/float64(bestW), "speedup")
}
