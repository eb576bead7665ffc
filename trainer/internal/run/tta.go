package run

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/trainer/internal/cifar"
)

// validateTTA returns the validation accuracy of a weight file classified
// as the front end does, with models.Predictor.PredictTTA and the file's
// test-time augmentations, on Workers goroutines.
func (t *trainer) validateTTA(f *models.File) (float64, error) {
	m, err := models.NewModel(f)
	if err != nil {
		return 0, fmt.Errorf("validate with test-time augmentation: %w", err)
	}
	workers := max(t.o.Workers, 1)
	loader := cifar.NewEvalLoader(t.val, 256, t.mean, t.std, 1)
	batches := make(chan *cifar.Batch)
	var right atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			p := m.NewPredictor()
			for b := range batches {
				for i := range b.N {
					probs, err := p.PredictTTA(b.X[i*cifar.ImageSize : (i+1)*cifar.ImageSize])
					if err != nil {
						once.Do(func() { firstErr = err })
						break
					}
					best := 0
					for j, v := range probs {
						if v > probs[best] {
							best = j
						}
					}
					if best == int(b.Y[i]) {
						right.Add(1)
					}
				}
				loader.Release(b)
			}
		})
	}
	for b := range loader.Epoch(0) {
		batches <- b
	}
	close(batches)
	wg.Wait()
	if firstErr != nil {
		return 0, fmt.Errorf("validate with test-time augmentation: %w", firstErr)
	}
	return float64(right.Load()) / float64(t.val.Len()), nil
}
