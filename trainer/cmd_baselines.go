package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/cifarnet-go/cifarnet/models/atomicfile"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/trainer/internal/baselines"
	"github.com/cifarnet-go/cifarnet/trainer/internal/cifar"
	"github.com/cifarnet-go/cifarnet/trainer/internal/evaluate"
)

// Files written by baselines, in --out.
const (
	baselinesJSON     = "baselines.json"
	baselinesMarkdown = "baselines.md"
)

// baselineNames are the classifiers --only may name, in run order.
var baselineNames = []string{"logreg", "svm", "forest"}

func runBaselines(e *env, args []string) error {
	fs := e.flags("[flags]", `Trains the classical reference classifiers on flattened pixels (3072
features, standardised with training-set statistics) and scores them on the
test set: multinomial logistic regression and a linear SVM (Crammer–Singer
hinge), both by mini-batch SGD, and a random forest. By default they train on
the same stratified split the CNN recipes train on (80 %, seed 42). Prints
test accuracy, macro-F1, training time and inference time per image next to
the CNN's row when --model is given, and writes baselines.json and
baselines.md into --out.`)
	data := dataFlag(fs)
	out := fs.String("out", filepath.Join("runs", "baselines"), "write baselines.json and baselines.md into `DIR`")
	overwrite := fs.Bool("overwrite", false, "replace baselines.json and baselines.md when --out already holds them")
	modelPath := fs.String("model", "", "also evaluate the CNN weight file `MODEL` on the test set, for comparison")
	only := fs.String("only", strings.Join(baselineNames, ","), "`LIST` of classifiers to run, comma-separated: "+strings.Join(baselineNames, ", "))
	valSplit := fs.Float64("val-split", 0.2, "`FRACTION` of the training images held out (stratified) for validation; 0 trains on all 50000")
	splitSeed := fs.Int64("split-seed", 42, "`SEED` of the validation split")
	trainLimit := fs.Int("train-limit", 0, "train on only the first `N` images of the training split (0: all)")
	testLimit := fs.Int("test-limit", 0, "score on only the first `N` test images (0: all)")
	seed := fs.Uint64("seed", 1, "`SEED` of the classifiers (SGD order, bootstrap samples, feature draws)")
	epochs := fs.Int("epochs", 20, "`N` SGD epochs of logistic regression and the SVM")
	trees := fs.Int("trees", baselines.DefaultForestConfig().Trees, "`N` trees in the random forest")
	maxDepth := fs.Int("max-depth", 0, "maximum `DEPTH` of the forest's trees (0: grow until pure)")
	maxFeatures := fs.Int("max-features", 0, "`N` features tried at each split of the forest (0: √3072 ≈ 55)")
	workers := fs.Int("workers", runtime.GOMAXPROCS(0), "`N` goroutines growing trees and running the CNN")
	if err := e.parse(fs, args); err != nil {
		return err
	}
	if _, err := positional(fs); err != nil {
		return err
	}
	chosen, err := parseBaselineNames(*only)
	if err != nil {
		return err
	}
	switch {
	case !(*valSplit >= 0 && *valSplit < 1):
		return usagef("--val-split %g: must be in [0, 1)", *valSplit)
	case *trainLimit < 0 || *testLimit < 0:
		return usagef("--train-limit and --test-limit must not be negative")
	case *epochs < 1:
		return usagef("--epochs %d: must be at least 1", *epochs)
	case *trees < 1:
		return usagef("--trees %d: must be at least 1", *trees)
	case *maxDepth < 0:
		return usagef("--max-depth %d: must not be negative", *maxDepth)
	case *maxFeatures < 0 || *maxFeatures > cifar.ImageSize:
		return usagef("--max-features %d: must be in 0..%d", *maxFeatures, cifar.ImageSize)
	case *workers < 1:
		return usagef("--workers %d: must be at least 1", *workers)
	}
	// Before minutes of training: the results must have somewhere to go.
	if err := refuseOverwrite(*overwrite, *out, baselinesJSON, baselinesMarkdown); err != nil {
		return err
	}

	// Read the model first: a bad path should fail before minutes of work.
	var model *models.Model
	if *modelPath != "" {
		f, err := models.ReadFile(*modelPath)
		if err != nil {
			return err
		}
		if model, err = models.NewModel(f); err != nil {
			return fmt.Errorf("model %s: %w", *modelPath, err)
		}
	}
	dataInfo, err := evaluate.DescribeData(*data)
	if err != nil {
		return err
	}
	all, testSet, err := cifar.Load(*data)
	if err != nil {
		return err
	}
	trainSet, valSet, err := cifar.Split(all, *valSplit, *splitSeed)
	if err != nil {
		return err
	}
	train := baselines.FromSet(trainSet, *trainLimit)
	val := baselines.FromSet(valSet, 0)
	test := baselines.FromSet(testSet, *testLimit)
	classes := testSet.Classes

	training := fmt.Sprintf("%d images of the stratified %.0f/%.0f split of the training set (seed %d)",
		train.Len(), 100*(1-*valSplit), 100*(*valSplit), *splitSeed)
	if *valSplit == 0 {
		training = fmt.Sprintf("%d images of the training set", train.Len())
	}
	if *trainLimit > 0 {
		training += fmt.Sprintf(", the first %d only (--train-limit)", *trainLimit)
	}
	report := &baselines.Report{
		Created:  time.Now().UTC().Format(time.RFC3339),
		Data:     dataInfo,
		Host:     evaluate.ThisHost(),
		Features: "the 3072 pixel values of each image, standardised per feature with training-set statistics (the forest splits the raw bytes, which gives the same trees)",
		Training: training,
	}

	linear := func(cfg baselines.LinearConfig) baselines.LinearConfig {
		cfg.Epochs, cfg.Seed = *epochs, *seed
		return cfg
	}
	forest := baselines.DefaultForestConfig()
	forest.Trees, forest.MaxDepth, forest.MaxFeatures, forest.Workers, forest.Seed = *trees, *maxDepth, *maxFeatures, *workers, *seed
	for _, name := range chosen {
		var c baselines.Classifier
		switch name {
		case "logreg":
			c = baselines.NewLogisticRegression(linear(baselines.DefaultLogisticConfig()))
		case "svm":
			c = baselines.NewLinearSVM(linear(baselines.DefaultSVMConfig()))
		case "forest":
			c = baselines.NewRandomForest(forest)
		}
		if err := e.ctx.Err(); err != nil {
			return fmt.Errorf("baselines: %w", err)
		}
		fmt.Fprintf(e.stderr, "training %s on %d images (%s)...\n", c.Name(), train.Len(), c.Describe())
		res, err := baselines.Run(c, train, val, test, classes)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "  test accuracy %.2f %%, %.1f s\n", 100*res.Accuracy, res.TrainSeconds)
		report.Results = append(report.Results, res)
	}

	if model != nil {
		fmt.Fprintf(e.stderr, "evaluating %s on %d test images...\n", *modelPath, testSet.Len())
		row, err := cnnRow(model, *modelPath, testSet, *testLimit, *workers)
		if err != nil {
			return err
		}
		report.Results = append(report.Results, row)
	}

	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("baselines: %w", err)
	}
	js, err := report.JSON()
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(*out, baselinesJSON), js); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(*out, baselinesMarkdown), report.Markdown()); err != nil {
		return err
	}
	if err := report.WriteTable(e.stdout); err != nil {
		return err
	}
	if dataInfo.JPEGDerived {
		fmt.Fprintln(e.stdout, "\nnote: the test set is the JPEG-derived copy; accuracies are close to, not equal to, published CIFAR-10 figures")
	}
	fmt.Fprintf(e.stdout, "\nwrote %s and %s in %s\n", baselinesJSON, baselinesMarkdown, *out)
	return nil
}

// parseBaselineNames checks a comma-separated --only list and returns the
// names in run order.
func parseBaselineNames(list string) ([]string, error) {
	want := map[string]bool{}
	for _, n := range strings.Split(list, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if !slices.Contains(baselineNames, n) {
			return nil, usagef("--only: unknown classifier %q (have %s)", n, strings.Join(baselineNames, ", "))
		}
		want[n] = true
	}
	var out []string
	for _, n := range baselineNames {
		if want[n] {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil, usagef("--only: no classifier named")
	}
	return out, nil
}

// cnnRow evaluates a CNN with the evaluate package and presents it as a
// row of the comparison; its training time and validation accuracy come
// from the weight file's provenance.
func cnnRow(m *models.Model, path string, test *cifar.Set, limit, workers int) (*baselines.Result, error) {
	if limit > 0 && limit < test.Len() {
		test = &cifar.Set{Images: test.Images[:limit*cifar.ImageSize], Labels: test.Labels[:limit], Classes: test.Classes}
	}
	res, err := evaluate.Run(m, test, evaluate.Options{Workers: workers, LatencyImages: -1})
	if err != nil {
		return nil, err
	}
	p := m.Meta.Provenance
	row := &baselines.Result{
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
