package baselines

import (
	"fmt"
	"slices"
)

// Classifier is a model trained on one dataset and applied to others.
type Classifier interface {
	// Name is the short name used in tables.
	Name() string
	// Describe lists the hyperparameters, for reports.
	Describe() string
	Fit(train *Dataset) error
	// Predict returns the predicted class of every example of d (its
	// labels are ignored).
	Predict(d *Dataset) ([]int, error)
}

// LogisticRegression is multinomial (softmax) logistic regression on
// standardised features.
type LogisticRegression struct{ m linearModel }

// DefaultLogisticConfig are settings chosen on the CIFAR-10 validation
// split (not the test set).
func DefaultLogisticConfig() LinearConfig {
	return LinearConfig{Epochs: 20, BatchSize: 256, LearnRate: 0.002, Momentum: 0.9, L2: 0.01, Seed: 1}
}

// NewLogisticRegression returns an untrained model.
func NewLogisticRegression(cfg LinearConfig) *LogisticRegression {
	return &LogisticRegression{linearModel{cfg: cfg, loss: softmaxLoss}}
}

func (l *LogisticRegression) Name() string { return "logistic regression" }

func (l *LogisticRegression) Describe() string {
	return "multinomial, " + l.m.cfg.String()
}

func (l *LogisticRegression) Fit(d *Dataset) error { return l.m.fit(d) }

func (l *LogisticRegression) Predict(d *Dataset) ([]int, error) { return l.m.predict(d) }

// Objective returns the regularised training objective after each epoch.
func (l *LogisticRegression) Objective() []float64 { return slices.Clone(l.m.losses) }

// LinearSVM is a multiclass linear support vector machine with the
// Crammer–Singer hinge loss, on standardised features.
type LinearSVM struct{ m linearModel }

// DefaultSVMConfig are settings chosen on the CIFAR-10 validation split
// (not the test set).
func DefaultSVMConfig() LinearConfig {
	return LinearConfig{Epochs: 20, BatchSize: 256, LearnRate: 0.0005, Momentum: 0.9, L2: 0.01, Seed: 1}
}

// NewLinearSVM returns an untrained model.
func NewLinearSVM(cfg LinearConfig) *LinearSVM {
	return &LinearSVM{linearModel{cfg: cfg, loss: crammerSingerLoss}}
}

func (s *LinearSVM) Name() string { return "linear SVM" }

func (s *LinearSVM) Describe() string {
	return "Crammer–Singer hinge, " + s.m.cfg.String()
}

func (s *LinearSVM) Fit(d *Dataset) error { return s.m.fit(d) }

func (s *LinearSVM) Predict(d *Dataset) ([]int, error) { return s.m.predict(d) }

// Objective returns the regularised training objective after each epoch.
func (s *LinearSVM) Objective() []float64 { return slices.Clone(s.m.losses) }

func (c LinearConfig) String() string {
	return fmt.Sprintf("SGD %d epochs, batch %d, lr %g cosine, momentum %g, L2 %g, seed %d",
		c.Epochs, c.BatchSize, c.LearnRate, c.Momentum, c.L2, c.Seed)
}
