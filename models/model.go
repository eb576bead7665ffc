package models

import "errors"

// Model is a validated network with batchnorm folded into its convolutions,
// ready for inference. It is immutable and safe for concurrent use; each
// goroutine runs it through its own Predictor.
type Model struct {
	Meta Meta
}

// NewModel validates f and prepares it for inference.
func NewModel(f *File) (*Model, error) { return nil, errors.New("models: NewModel: not implemented yet") }

// Predictor runs a Model with buffers allocated once; not safe for
// concurrent use.
type Predictor struct{ m *Model }

// NewPredictor returns a Predictor for m.
func (m *Model) NewPredictor() *Predictor { return &Predictor{m: m} }

// Predict classifies one normalised CHW image and returns the class
// probabilities. The returned slice is reused by the next call.
func (p *Predictor) Predict(x []float32) ([]float32, error) {
	return nil, errors.New("models: Predict: not implemented yet")
}

// PredictBatch classifies n images stored back to back and returns n rows
// of probabilities. The returned slice is reused by the next call.
func (p *Predictor) PredictBatch(x []float32, n int) ([]float32, error) {
	return nil, errors.New("models: PredictBatch: not implemented yet")
}

// Logits returns the pre-softmax scores of the last call.
func (p *Predictor) Logits() []float32 { return nil }
