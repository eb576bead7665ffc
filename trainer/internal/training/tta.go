package training

import (
	"fmt"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/trainer/internal/evaluate"
)

// validateTTA returns the validation accuracy of a weight file classified
// as the front end does, with models.Predictor.PredictTTA and the file's
// test-time augmentations.
func (t *trainer) validateTTA(f *models.File) (float64, error) {
	m, err := models.NewModel(f)
	if err != nil {
		return 0, fmt.Errorf("validate with test-time augmentation: %w", err)
	}
	res, err := evaluate.TTA(m, t.val, 0)
	if err != nil {
		return 0, fmt.Errorf("validate with test-time augmentation: %w", err)
	}
	return res.Metrics.Accuracy, nil
}
