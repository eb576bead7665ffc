package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/cifarnet-go/cifarnet/trainer/internal/evalreport"
	"github.com/cifarnet-go/cifarnet/trainer/internal/evaluate"
)

func runEval(e *env, args []string) error {
	fs := e.flags("[flags] MODEL", `Evaluates the weight file MODEL on the CIFAR-10 test set: accuracy, macro-F1,
per-class precision/recall/F1, confusion matrix, and inference time per image
at batch 64 and batch 1. Writes report.json, report.md and PNG plots
(confusion matrix, training curves when the run's metrics.csv is known, class
distribution of the train/validation split, mean intensity per class and
channel) into a new folder under --runs (or into --out, which must not already
hold these files unless --overwrite is given), and prints a summary. When MODEL asks for test-time
augmentation it is also measured with it, as the browser classifies. --record
writes the measured test accuracies into MODEL's provenance (rewritten
atomically), so that trainer info and the web page show them.

Examples:
  trainer eval --data data models/zoo/cifarnet-fast/cifarnet-fast.cnw
  trainer eval --data data --limit 1000 --latency-images 0 runs/<run>/final.cnw   # a quick look
  trainer eval --data my-photos runs/<time>-teach/final.cnw   # a taught model on its image folder`)
	data := dataFlag(fs)
	out := fs.String("out", "", "write the report and plots into `DIR` (default: a new folder eval-<time>-<model> under --runs)")
	runs := fs.String("runs", "runs", "`DIR` in which the default report folder is created")
	overwrite := fs.Bool("overwrite", false, "replace report files that --out already holds")
	runDir := fs.String("run", "", "training run `DIR` whose metrics.csv gives the training curves (default: MODEL's folder, if it holds one)")
	workers := fs.Int("workers", runtime.GOMAXPROCS(0), "`N` goroutines running the model, one predictor each")
	batch := fs.Int("batch", evaluate.DefaultBatchSize, "`N` images per batch in the accuracy pass")
	latency := fs.Int("latency-images", evaluate.DefaultLatencyImages, "`N` images also classified one at a time to time batch-1 inference (0 skips it)")
	valSplit := fs.Float64("val-split", 0.2, "validation `FRACTION` for the class-distribution plot, when the run's config.json does not say")
	splitSeed := fs.Int64("split-seed", 42, "`SEED` of that split, when the run's config.json does not say")
	tta := fs.Bool("tta", true, "also measure accuracy with the test-time augmentations MODEL names")
	record := fs.Bool("record", false, "write the test accuracies into MODEL's provenance")
	limit := fs.Int("limit", 0, "score only the first `N` test images (0: all 10,000), for a quick look")
	resample := fs.Int("resampled", 4, "also measure accuracy on the test images enlarged `N`× and resized back by the page's preprocessing, as in a photo (0 skips it)")
	if err := e.parse(fs, args); err != nil {
		return err
	}
	pos, err := positional(fs, "MODEL")
	if err != nil {
		return err
	}
	switch {
	case *workers < 1:
		return usagef("--workers %d: must be at least 1", *workers)
	case *batch < 1:
		return usagef("--batch %d: must be at least 1", *batch)
	case *latency < 0:
		return usagef("--latency-images %d: must not be negative", *latency)
	case *resample < 0:
		return usagef("--resampled %d: must not be negative", *resample)
	case *limit < 0:
		return usagef("--limit %d: must not be negative", *limit)
	case !(*valSplit >= 0 && *valSplit < 1):
		return usagef("--val-split %g: must be in [0, 1)", *valSplit)
	}
	modelPath := pos[0]
	reportFiles := []string{evalreport.JSONFile, evalreport.MarkdownFile, evalreport.ConfusionPlot, evalreport.CurvesPlot, evalreport.DistributionPlot, evalreport.MeanIntensityPlot}
	if *out == "" {
		stem := strings.TrimSuffix(filepath.Base(modelPath), filepath.Ext(modelPath))
		*out = filepath.Join(*runs, "eval-"+time.Now().UTC().Format("20060102T150405Z")+"-"+stem)
		if _, err := os.Stat(*out); err == nil {
			return fmt.Errorf("eval: report folder %s already exists; wait a second or pass --out", *out)
		}
	} else if err := refuseOverwrite(*overwrite, *out, reportFiles...); err != nil {
		return err
	}

	ev, err := evalreport.Make(evalreport.Config{
		Model: modelPath, Data: *data, Run: *runDir,
		Workers: *workers, BatchSize: *batch, LatencyImages: *latency, TTA: *tta,
		Record: *record, Limit: *limit, Resampled: *resample,
		ValSplit: *valSplit, SplitSeed: *splitSeed, Log: e.stderr,
	})
	if errors.Is(err, evalreport.ErrNoHistory) {
		return &usageError{err}
	}
	if err != nil {
		return err
	}
	if ev.Recorded {
		fmt.Fprintf(e.stderr, "recorded the test accuracy in %s\n", modelPath)
	}
	if err := ev.Write(*out); err != nil {
		return err
	}
	if err := ev.Report.WriteSummary(e.stdout); err != nil {
		return err
	}
	if ev.Report.Data.JPEGDerived {
		fmt.Fprintln(e.stdout, "\nnote: the test set is the JPEG-derived copy; accuracy is close to, not equal to, a published CIFAR-10 figure")
	}
	fmt.Fprintf(e.stdout, "\nwrote %s, %s and %d plots in %s\n", evalreport.JSONFile, evalreport.MarkdownFile, len(ev.Report.Plots), *out)
	return nil
}
