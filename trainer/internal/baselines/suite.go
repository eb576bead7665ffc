package baselines

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/trainer/internal/cifar"
	"github.com/cifarnet-go/cifarnet/trainer/internal/evaluate"
)

// Names are the classifiers a suite can run, in the order it runs them.
var Names = []string{"logreg", "svm", "forest"}

// ParseNames checks a comma-separated list of classifier names and returns
// them in run order.
func ParseNames(list string) ([]string, error) {
	want := map[string]bool{}
	for _, n := range strings.Split(list, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if !slices.Contains(Names, n) {
			return nil, fmt.Errorf("unknown classifier %q (have %s)", n, strings.Join(Names, ", "))
		}
		want[n] = true
	}
	var out []string
	for _, n := range Names {
		if want[n] {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no classifier named")
	}
	return out, nil
}

// Suite is one comparison: the chosen classifiers trained on a split of
// the training set and scored on the test set, and optionally a CNN
// weight file scored beside them.
type Suite struct {
	Names      []string // from Names
	ValSplit   float64  // fraction of the training set held out, stratified
	SplitSeed  int64
	TrainLimit int // train on the first N images of the split (0: all)
	TestLimit  int // score the first N test images (0: all)
	Seed       uint64
	Epochs     int          // SGD epochs of logistic regression and the SVM
	Forest     ForestConfig // its Seed is set from Seed
	Workers    int          // goroutines running the CNN

	Model     *models.Model // nil: no CNN row
	ModelPath string

	Log io.Writer // one line per classifier as it starts and ends
}

// Run trains and scores the suite on the training set all and the test
// set test, which data describes.
func (s Suite) Run(ctx context.Context, all, test *cifar.Set, data *evaluate.DataInfo) (*Report, error) {
	trainSet, valSet, err := cifar.Split(all, s.ValSplit, s.SplitSeed)
	if err != nil {
		return nil, err
	}
	train := FromSet(trainSet, s.TrainLimit)
	val := FromSet(valSet, 0)
	scored := FromSet(test, s.TestLimit)

	training := fmt.Sprintf("%d images of the stratified %.0f/%.0f split of the training set (seed %d)",
		train.Len(), 100*(1-s.ValSplit), 100*s.ValSplit, s.SplitSeed)
	if s.ValSplit == 0 {
		training = fmt.Sprintf("%d images of the training set", train.Len())
	}
	if s.TrainLimit > 0 {
		training += fmt.Sprintf(", the first %d only", s.TrainLimit)
	}
	report := &Report{
		Created:  time.Now().UTC().Format(time.RFC3339),
		Data:     data,
		Host:     evaluate.ThisHost(),
		Features: "the 3072 pixel values of each image, standardised per feature with training-set statistics (the forest splits the raw bytes, which gives the same trees)",
		Training: training,
	}
	for _, name := range s.Names {
		c, err := s.classifier(name)
		if err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("baselines: %w", err)
		}
		fmt.Fprintf(s.Log, "training %s on %d images (%s)...\n", c.Name(), train.Len(), c.Describe())
		res, err := Run(c, train, val, scored, test.Classes)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(s.Log, "  test accuracy %.2f %%, %.1f s\n", 100*res.Accuracy, res.TrainSeconds)
		report.Results = append(report.Results, res)
	}
	if s.Model != nil {
		fmt.Fprintf(s.Log, "evaluating %s on %d test images...\n", s.ModelPath, scored.Len())
		row, err := cnnRow(s.Model, s.ModelPath, test, s.TestLimit, s.Workers)
		if err != nil {
			return nil, err
		}
		report.Results = append(report.Results, row)
	}
	return report, nil
}

// classifier makes the classifier called name with the suite's settings.
func (s Suite) classifier(name string) (Classifier, error) {
	linear := func(cfg LinearConfig) LinearConfig {
		cfg.Epochs, cfg.Seed = s.Epochs, s.Seed
		return cfg
	}
	switch name {
	case "logreg":
		return NewLogisticRegression(linear(DefaultLogisticConfig())), nil
	case "svm":
		return NewLinearSVM(linear(DefaultSVMConfig())), nil
	case "forest":
		f := s.Forest
		f.Seed = s.Seed
		return NewRandomForest(f), nil
	}
	return nil, fmt.Errorf("baselines: unknown classifier %q", name)
}

// cnnRow evaluates a CNN with the evaluate package and presents it as a
// row of the comparison; its training time and validation accuracy come
// from the weight file's provenance.
func cnnRow(m *models.Model, path string, test *cifar.Set, limit, workers int) (*Result, error) {
	if limit > 0 && limit < test.Len() {
		test = &cifar.Set{Images: test.Images[:limit*cifar.ImageSize], Labels: test.Labels[:limit], Classes: test.Classes}
	}
	res, err := evaluate.Run(m, test, evaluate.Options{Workers: workers, LatencyImages: -1})
	if err != nil {
		return nil, err
	}
	p := m.Meta.Provenance
	row := &Result{
		Name:         fmt.Sprintf("CNN %s (%s)", m.Meta.Spec.Name, filepath.Base(path)),
		Config:       fmt.Sprintf("recipe %q, %d epochs, %s weights", p.Recipe, p.Epochs, m.Meta.DType),
		TrainSeconds: p.TrainSeconds,
		MsPerImage:   1000 / res.Batched.ImagesPerSecond,
		Accuracy:     res.Metrics.Accuracy,
		MacroF1:      res.Metrics.MacroF1,
		Metrics:      res.Metrics,
	}
	if p.ValAccuracy > 0 {
		v := p.ValAccuracy
		row.ValAccuracy = &v
	}
	return row, nil
}
