package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/models/atomicfile"
	"github.com/cifarnet-go/cifarnet/trainer/internal/cifar"
	"github.com/cifarnet-go/cifarnet/trainer/internal/evalreport"
	"github.com/cifarnet-go/cifarnet/trainer/internal/evaluate"
	"github.com/cifarnet-go/cifarnet/trainer/internal/imagefolder"
	"github.com/cifarnet-go/cifarnet/trainer/internal/pathtext"
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

	f, err := models.ReadFile(modelPath)
	if err != nil {
		return err
	}
	model, err := models.NewModel(f)
	if err != nil {
		return fmt.Errorf("model %s: %w", modelPath, err)
	}
	var dataInfo *evaluate.DataInfo
	var train, test *cifar.Set // train: nil for an image folder
	if imagefolder.Is(*data) {
		if dataInfo, test, err = folderTestSet(*data, model); err != nil {
			return err
		}
	} else {
		if dataInfo, err = evaluate.DescribeData(*data); err != nil {
			return err
		}
		if train, test, err = cifar.Load(*data); err != nil {
			return err
		}
	}

	// The run folder gives training curves and the split that was used.
	history, runCfg, err := evalreport.ReadRun(*runDir, modelPath)
	if errors.Is(err, evalreport.ErrNoHistory) {
		return &usageError{err}
	}
	if err != nil {
		return err
	}
	if runCfg != nil {
		*valSplit, *splitSeed = runCfg.Recipe.ValSplit, runCfg.Recipe.SplitSeed
	}

	latencyImages := *latency
	if latencyImages == 0 {
		latencyImages = -1 // Options: negative skips the batch-1 pass
	}
	if *limit > 0 && *limit < test.Len() {
		test = &cifar.Set{Images: test.Images[:*limit*cifar.ImageSize], Labels: test.Labels[:*limit], Classes: test.Classes}
	}
	fmt.Fprintf(e.stderr, "evaluating %s on %d test images with %d workers\n", filepath.Base(modelPath), test.Len(), *workers)
	res, err := evaluate.Run(model, test, evaluate.Options{Workers: *workers, BatchSize: *batch, LatencyImages: latencyImages, TTA: *tta, Log: e.stderr})
	if err != nil {
		return err
	}
	meta := &model.Meta
	if *record {
		if meta, err = evalreport.RecordAccuracy(modelPath, res); err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "recorded the test accuracy in %s\n", modelPath)
	}
	modelInfo, err := evaluate.DescribeModel(modelPath, meta)
	if err != nil {
		return err
	}
	report := evaluate.NewReport(modelInfo, dataInfo, res)
	if *resample > 0 {
		rs, err := evaluate.Resampled(test, *resample)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "  the same images enlarged %d× and resized back, as photos are:\n", *resample)
		rres, err := evaluate.Run(model, rs, evaluate.Options{Workers: *workers, BatchSize: *batch, LatencyImages: -1, Log: e.stderr})
		if err != nil {
			return err
		}
		report.Resampled = &evaluate.ResampledResult{Factor: *resample, Metrics: rres.Metrics}
	}
	if history != nil {
		report.Training = evalreport.Summarize(pathtext.Of(history.File), history.Epochs)
	}

	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	if report.Plots, err = evalreport.Plots(*out, res.Metrics, history, train, *valSplit, *splitSeed); err != nil {
		return err
	}
	js, err := report.JSON()
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(*out, evalreport.JSONFile), js); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(*out, evalreport.MarkdownFile), report.Markdown()); err != nil {
		return err
	}
	if err := report.WriteSummary(e.stdout); err != nil {
		return err
	}
	if dataInfo.JPEGDerived {
		fmt.Fprintln(e.stdout, "\nnote: the test set is the JPEG-derived copy; accuracy is close to, not equal to, a published CIFAR-10 figure")
	}
	fmt.Fprintf(e.stdout, "\nwrote %s, %s and %d plots in %s\n", evalreport.JSONFile, evalreport.MarkdownFile, len(report.Plots), *out)
	return nil
}

// folderTestSet reads an image folder (its val/ or test/ part when it has
// train/) as the test set, its class folders matched to the model's
// classes by name.
func folderTestSet(dir string, m *models.Model) (*evaluate.DataInfo, *cifar.Set, error) {
	all, held, err := imagefolder.Load(dir)
	if err != nil {
		return nil, nil, err
	}
	part := dir
	if held != nil {
		all, part = held, filepath.Join(dir, "val or test")
	}
	in := m.Meta.Spec.Input
	if len(m.Meta.Classes) > 256 {
		return nil, nil, fmt.Errorf("eval: the model has %d classes; image folders are evaluated for up to 256", len(m.Meta.Classes))
	}
	if in.C != 3 || in.H != 32 || in.W != 32 {
		return nil, nil, fmt.Errorf("eval: model input %v: image folders are evaluated at 3×32×32", in)
	}
	index := map[string]int{}
	for i, c := range m.Meta.Classes {
		index[c] = i
	}
	for _, c := range all.Classes {
		if _, ok := index[c]; !ok {
			return nil, nil, fmt.Errorf("eval: %s has class %q, which the model does not know (its classes: %s)", dir, c, strings.Join(m.Meta.Classes, ", "))
		}
	}
	pix, labels, _, err := all.Pixels(32, false)
	if err != nil {
		return nil, nil, err
	}
	set := &cifar.Set{Images: pix, Labels: make([]uint8, len(labels)), Classes: m.Meta.Classes}
	for i, l := range labels {
		set.Labels[i] = uint8(index[all.Classes[l]])
	}
	info := &evaluate.DataInfo{Dir: pathtext.Of(dir), TestFile: pathtext.Of(dir),
		Note: fmt.Sprintf("image folder %s: %d images of %d classes, reduced to 32×32 as the page does", part, len(labels), len(all.Classes))}
	return info, set, nil
}
