package main

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/cifarnet-go/cifarnet/models/atomicfile"

	"gonum.org/v1/plot/vg"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/trainer/internal/cifar"
	"github.com/cifarnet-go/cifarnet/trainer/internal/evaluate"
	"github.com/cifarnet-go/cifarnet/trainer/internal/pathtext"
	"github.com/cifarnet-go/cifarnet/trainer/internal/plots"
	"github.com/cifarnet-go/cifarnet/trainer/internal/training"
)

// Files written by eval, in --out.
const (
	evalJSON          = "report.json"
	evalMarkdown      = "report.md"
	plotConfusion     = "confusion_matrix.png"
	plotCurves        = "training_curves.png"
	plotDistribution  = "class_distribution.png"
	plotMeanIntensity = "class_mean_intensity.png"
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
atomically), so that trainer info and the web page show them.`)
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
	reportFiles := []string{evalJSON, evalMarkdown, plotConfusion, plotCurves, plotDistribution, plotMeanIntensity}
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
	dataInfo, err := evaluate.DescribeData(*data)
	if err != nil {
		return err
	}
	train, test, err := cifar.Load(*data)
	if err != nil {
		return err
	}

	// The run folder gives training curves and the split that was used.
	history, runCfg, err := readRun(*runDir, modelPath)
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
		if meta, err = recordAccuracy(modelPath, res); err != nil {
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
		report.Training = summarizeHistory(pathtext.Of(absPath(history.file)), history.epochs)
	}

	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	if report.Plots, err = evalPlots(*out, res.Metrics, history, train, *valSplit, *splitSeed); err != nil {
		return err
	}
	js, err := report.JSON()
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(*out, evalJSON), js); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(*out, evalMarkdown), report.Markdown()); err != nil {
		return err
	}
	if err := report.WriteSummary(e.stdout); err != nil {
		return err
	}
	if dataInfo.JPEGDerived {
		fmt.Fprintln(e.stdout, "\nnote: the test set is the JPEG-derived copy; accuracy is close to, not equal to, a published CIFAR-10 figure")
	}
	fmt.Fprintf(e.stdout, "\nwrote %s, %s and %d plots in %s\n", evalJSON, evalMarkdown, len(report.Plots), *out)
	return nil
}

// recordAccuracy rewrites the weight file at path with the test
// accuracies of res in its provenance and returns its new metadata. The
// file is read afresh (the model evaluated may have folded its tensors)
// and keeps its dtype.
func recordAccuracy(path string, res *evaluate.Result) (*models.Meta, error) {
	f, err := models.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	p := &f.Meta.Provenance
	p.TestAccuracy = res.Metrics.Accuracy
	p.TestAccuracyTT = 0
	if res.TTA != nil {
		p.TestAccuracyTT = res.TTA.Metrics.Accuracy
	}
	if err := models.WriteFile(path, f); err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	return &f.Meta, nil
}

// runHistory is a run's metrics.csv.
type runHistory struct {
	file   string
	epochs []training.EpochMetrics
}

// readRun reads the training history and config of the run folder dir, or
// of the model's folder when dir is empty and that folder holds a
// metrics.csv. Naming a folder without a history is an error.
func readRun(dir, modelPath string) (*runHistory, *training.Config, error) {
	explicit := dir != ""
	if !explicit {
		dir = filepath.Dir(modelPath)
		if _, err := os.Stat(filepath.Join(dir, training.MetricsFile)); err != nil {
			return nil, nil, nil
		}
	}
	epochs, err := training.ReadMetrics(dir)
	if err != nil {
		return nil, nil, err
	}
	if len(epochs) == 0 {
		if explicit {
			return nil, nil, &usageError{fmt.Errorf("--run %s: no %s with epochs there", dir, training.MetricsFile)}
		}
		return nil, nil, nil
	}
	h := &runHistory{file: filepath.Join(dir, training.MetricsFile), epochs: epochs}
	cfg, err := training.ReadConfig(dir)
	if err != nil {
		cfg = nil // curves without the split: the flags' defaults apply
	}
	return h, cfg, nil
}

// summarizeHistory condenses a run's epochs for the report.
func summarizeHistory(file string, h []training.EpochMetrics) *evaluate.TrainingSummary {
	s := &evaluate.TrainingSummary{File: file, Epochs: len(h)}
	found := false
	for _, e := range h {
		if !math.IsNaN(e.ValAcc) && (!found || e.ValAcc > s.BestValAcc) {
			s.BestValAcc, s.BestEpoch, found = e.ValAcc, e.Epoch, true
		}
		s.TrainSeconds += e.EpochSeconds
	}
	last := h[len(h)-1]
	s.FinalTrain = last.TrainAcc
	if !math.IsNaN(last.ValAcc) { // NaN: trained without a validation set
		s.FinalVal = last.ValAcc
	}
	return s
}

// evalPlots draws the report's charts into dir and lists them.
func evalPlots(dir string, m *evaluate.Metrics, h *runHistory, train *cifar.Set, valSplit float64, seed int64) ([]evaluate.Plot, error) {
	var out []evaluate.Plot
	save := func(title, file string, fig *plots.Figure, w, ht vg.Length) error {
		png, err := fig.PNG(w, ht)
		if err != nil {
			return fmt.Errorf("plot %s: %w", file, err)
		}
		if err := atomicfile.WriteFile(filepath.Join(dir, file), png); err != nil {
			return err
		}
		out = append(out, evaluate.Plot{Title: title, File: file})
		return nil
	}
	classes := make([]string, len(m.PerClass))
	for i, c := range m.PerClass {
		classes[i] = c.Class
	}

	fig, err := plots.ConfusionMatrix(fmt.Sprintf("Confusion matrix, test set (accuracy %.2f %%)", 100*m.Accuracy), m.Confusion, classes)
	if err != nil {
		return nil, err
	}
	if err := save("Confusion matrix", plotConfusion, fig, 9*vg.Inch, 7.5*vg.Inch); err != nil {
		return nil, err
	}

	if h != nil {
		n := len(h.epochs)
		ep, tl, vl, ta, va := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
		for i, e := range h.epochs {
			ep[i], tl[i], vl[i], ta[i], va[i] = float64(e.Epoch), e.TrainLoss, e.ValLoss, e.TrainAcc, e.ValAcc
		}
		fig, err := plots.TrainingCurves(ep, tl, vl, ta, va)
		if err != nil {
			return nil, err
		}
		if err := save("Training curves", plotCurves, fig, 11*vg.Inch, 4.2*vg.Inch); err != nil {
			return nil, err
		}
	}

	trainPart, valPart, err := cifar.Split(train, valSplit, seed)
	if err != nil {
		return nil, err
	}
	series := []plots.Series{{Name: fmt.Sprintf("train (%d)", trainPart.Len()), Values: counts(trainPart, len(classes))}}
	if valPart.Len() > 0 {
		series = append(series, plots.Series{Name: fmt.Sprintf("validation (%d)", valPart.Len()), Values: counts(valPart, len(classes))})
	}
	title := fmt.Sprintf("Class distribution of the training split (%.0f %% validation, seed %d)", 100*valSplit, seed)
	if fig, err = plots.GroupedBars(title, "images", classes, series); err != nil {
		return nil, err
	}
	if err := save("Class distribution of the train/validation split", plotDistribution, fig, 9*vg.Inch, 4.5*vg.Inch); err != nil {
		return nil, err
	}

	means := evaluate.ClassChannelMeans(train)
	rgb := []plots.Series{
		{Name: "red", Color: color.NRGBA{215, 48, 39, 255}},
		{Name: "green", Color: color.NRGBA{26, 152, 80, 255}},
		{Name: "blue", Color: color.NRGBA{49, 104, 189, 255}},
	}
	for c := range rgb {
		rgb[c].Values = make([]float64, len(classes))
		for y := range classes {
			if y < len(means) {
				rgb[c].Values[y] = means[y][c]
			}
		}
	}
	title = fmt.Sprintf("Mean pixel intensity per class and channel (%d training images)", train.Len())
	if fig, err = plots.GroupedBars(title, "mean pixel value (0–255)", classes, rgb); err != nil {
		return nil, err
	}
	if err := save("Mean pixel intensity per class and channel", plotMeanIntensity, fig, 9*vg.Inch, 4.5*vg.Inch); err != nil {
		return nil, err
	}
	return out, nil
}

// counts returns the images per class of s as floats, for bar charts.
func counts(s *cifar.Set, k int) []float64 {
	out := make([]float64, k)
	for y, n := range s.ClassCounts() {
		if y < k {
			out[y] = float64(n)
		}
	}
	return out
}
