package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

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

func runBaselines(e *env, args []string) error {
	fs := e.flags("[flags]", `Trains the classical reference classifiers on flattened pixels (3072
features, standardised with training-set statistics) and scores them on the
test set: multinomial logistic regression and a linear SVM (Crammer–Singer
hinge), both by mini-batch SGD, and a random forest. By default they train on
the same stratified split the CNN recipes train on (80 %, seed 42). Prints
test accuracy, macro-F1, training time and inference time per image next to
the CNN's row when --model is given, and writes baselines.json and
baselines.md into --out.

Examples:
  trainer baselines --data data --model models/zoo/cifarnet-fast/cifarnet-fast.cnw
  trainer baselines --only logreg,svm --train-limit 5000   # a quick look`)
	data := dataFlag(fs)
	out := fs.String("out", filepath.Join("runs", "baselines"), "write baselines.json and baselines.md into `DIR`")
	overwrite := fs.Bool("overwrite", false, "replace baselines.json and baselines.md when --out already holds them")
	modelPath := fs.String("model", "", "also evaluate the CNN weight file `MODEL` on the test set, for comparison")
	only := fs.String("only", strings.Join(baselines.Names, ","), "`LIST` of classifiers to run, comma-separated: "+strings.Join(baselines.Names, ", "))
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
	chosen, err := baselines.ParseNames(*only)
	if err != nil {
		return usagef("--only: %v", err)
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
	forest := baselines.DefaultForestConfig()
	forest.Trees, forest.MaxDepth, forest.MaxFeatures, forest.Workers = *trees, *maxDepth, *maxFeatures, *workers
	suite := baselines.Suite{
		Names: chosen, ValSplit: *valSplit, SplitSeed: *splitSeed,
		TrainLimit: *trainLimit, TestLimit: *testLimit,
		Seed: *seed, Epochs: *epochs, Forest: forest, Workers: *workers,
		Model: model, ModelPath: *modelPath, Log: e.stderr,
	}
	report, err := suite.Run(e.ctx, all, testSet, dataInfo)
	if err != nil {
		return err
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
