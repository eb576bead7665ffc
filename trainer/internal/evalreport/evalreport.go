// Package evalreport is the eval command's work: it evaluates a weight
// file (Make) and writes the report folder (Write): the
// model's test results as report.json and report.md, the charts
// (confusion matrix, training curves, class distribution, mean intensity),
// the training history of the run it came from, and the accuracies
// recorded into the weight file.
package evalreport

import (
	"errors"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"

	"gonum.org/v1/plot/vg"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/models/atomicfile"
	"github.com/cifarnet-go/cifarnet/trainer/internal/cifar"
	"github.com/cifarnet-go/cifarnet/trainer/internal/evaluate"
	"github.com/cifarnet-go/cifarnet/trainer/internal/plots"
	"github.com/cifarnet-go/cifarnet/trainer/internal/training"
)

// Files the eval command writes into its report folder.
const (
	JSONFile          = "report.json"
	MarkdownFile      = "report.md"
	ConfusionPlot     = "confusion_matrix.png"
	CurvesPlot        = "training_curves.png"
	DistributionPlot  = "class_distribution.png"
	MeanIntensityPlot = "class_mean_intensity.png"
)

// RecordAccuracy rewrites the weight file at path with the test
// accuracies of res in its provenance and returns its new metadata. The
// file is read afresh (the model evaluated may have folded its tensors)
// and keeps its dtype.
func RecordAccuracy(path string, res *evaluate.Result) (*models.Meta, error) {
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

// History is a run's metrics.csv.
type History struct {
	File   string
	Epochs []training.EpochMetrics
}

// ErrNoHistory is ReadRun's error for a named run folder without epochs.
var ErrNoHistory = errors.New("no training history")

// ReadRun reads the training history and config of the run folder dir, or
// of the model's folder when dir is empty and that folder holds a
// metrics.csv. Naming a folder without a history is an error.
func ReadRun(dir, modelPath string) (*History, *training.Config, error) {
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
			return nil, nil, fmt.Errorf("%w: --run %s has no %s with epochs", ErrNoHistory, dir, training.MetricsFile)
		}
		return nil, nil, nil
	}
	h := &History{File: filepath.Join(dir, training.MetricsFile), Epochs: epochs}
	cfg, err := training.ReadConfig(dir)
	if err != nil {
		cfg = nil // curves without the split: the flags' defaults apply
	}
	return h, cfg, nil
}

// Summarize condenses a run's epochs for the report.
func Summarize(file string, h []training.EpochMetrics) *evaluate.TrainingSummary {
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

// Plots draws the report's charts into dir and lists them.
func Plots(dir string, m *evaluate.Metrics, h *History, train *cifar.Set, valSplit float64, seed int64) ([]evaluate.Plot, error) {
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
	if err := save("Confusion matrix", ConfusionPlot, fig, 9*vg.Inch, 7.5*vg.Inch); err != nil {
		return nil, err
	}

	if h != nil {
		n := len(h.Epochs)
		ep, tl, vl, ta, va := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
		for i, e := range h.Epochs {
			ep[i], tl[i], vl[i], ta[i], va[i] = float64(e.Epoch), e.TrainLoss, e.ValLoss, e.TrainAcc, e.ValAcc
		}
		fig, err := plots.TrainingCurves(ep, tl, vl, ta, va)
		if err != nil {
			return nil, err
		}
		if err := save("Training curves", CurvesPlot, fig, 11*vg.Inch, 4.2*vg.Inch); err != nil {
			return nil, err
		}
	}

	// The training set's charts need a CIFAR-10 training set.
	if train == nil {
		return out, nil
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
	if err := save("Class distribution of the train/validation split", DistributionPlot, fig, 9*vg.Inch, 4.5*vg.Inch); err != nil {
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
	if err := save("Mean pixel intensity per class and channel", MeanIntensityPlot, fig, 9*vg.Inch, 4.5*vg.Inch); err != nil {
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
