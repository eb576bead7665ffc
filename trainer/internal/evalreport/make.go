package evalreport

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/models/atomicfile"
	"github.com/cifarnet-go/cifarnet/trainer/internal/cifar"
	"github.com/cifarnet-go/cifarnet/trainer/internal/evaluate"
	"github.com/cifarnet-go/cifarnet/trainer/internal/imagefolder"
	"github.com/cifarnet-go/cifarnet/trainer/internal/pathtext"
)

// Config says what to evaluate and how.
type Config struct {
	Model string // weight file
	Data  string // CIFAR-10 folder or image folder
	// Run is the training run folder whose metrics.csv gives the curves
	// ("": the model's folder, if it holds one).
	Run           string
	Workers       int
	BatchSize     int
	LatencyImages int  // 0 skips the batch-1 pass
	TTA           bool // also measure with the model's test-time augmentations
	Record        bool // write the accuracies into the weight file's provenance
	Limit         int  // score only the first Limit test images (0: all)
	Resampled     int  // also measure on images enlarged this many times and resized back (0 skips)
	// ValSplit and SplitSeed draw the class-distribution plot's split when
	// the run's config.json does not say.
	ValSplit  float64
	SplitSeed int64
	Log       io.Writer // progress lines
}

// Evaluation is a finished evaluation, ready to be written.
type Evaluation struct {
	Report   *evaluate.Report
	Recorded bool // the accuracies were written into the weight file
	cfg      Config
	metrics  *evaluate.Metrics
	history  *History
	train    *cifar.Set // nil for an image folder
}

// Make evaluates cfg.Model on cfg.Data's test images (an image folder's
// val/ or test/ part, or all of it): the accuracy pass, test-time
// augmentation and the resized copy as asked, the run's training history.
func Make(cfg Config) (*Evaluation, error) {
	f, err := models.ReadFile(cfg.Model)
	if err != nil {
		return nil, err
	}
	model, err := models.NewModel(f)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", cfg.Model, err)
	}
	var dataInfo *evaluate.DataInfo
	var train, test *cifar.Set
	if imagefolder.Is(cfg.Data) {
		if dataInfo, test, err = folderTestSet(cfg.Data, model); err != nil {
			return nil, err
		}
	} else {
		if dataInfo, err = evaluate.DescribeData(cfg.Data); err != nil {
			return nil, err
		}
		if train, test, err = cifar.Load(cfg.Data); err != nil {
			return nil, err
		}
	}

	// The run folder gives training curves and the split that was used.
	history, runCfg, err := ReadRun(cfg.Run, cfg.Model)
	if err != nil {
		return nil, err
	}
	if runCfg != nil {
		cfg.ValSplit, cfg.SplitSeed = runCfg.Recipe.ValSplit, runCfg.Recipe.SplitSeed
	}

	latency := cfg.LatencyImages
	if latency == 0 {
		latency = -1 // evaluate.Options: negative skips the batch-1 pass
	}
	if cfg.Limit > 0 && cfg.Limit < test.Len() {
		test = &cifar.Set{Images: test.Images[:cfg.Limit*cifar.ImageSize], Labels: test.Labels[:cfg.Limit], Classes: test.Classes}
	}
	fmt.Fprintf(cfg.Log, "evaluating %s on %d test images with %d workers\n", filepath.Base(cfg.Model), test.Len(), cfg.Workers)
	res, err := evaluate.Run(model, test, evaluate.Options{Workers: cfg.Workers, BatchSize: cfg.BatchSize, LatencyImages: latency, TTA: cfg.TTA, Log: cfg.Log})
	if err != nil {
		return nil, err
	}
	meta := &model.Meta
	if cfg.Record {
		if meta, err = RecordAccuracy(cfg.Model, res); err != nil {
			return nil, err
		}
	}
	modelInfo, err := evaluate.DescribeModel(cfg.Model, meta)
	if err != nil {
		return nil, err
	}
	report := evaluate.NewReport(modelInfo, dataInfo, res)
	if cfg.Resampled > 0 {
		rs, err := evaluate.Resampled(test, cfg.Resampled)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(cfg.Log, "  the same images enlarged %d× and resized back, as photos are:\n", cfg.Resampled)
		rres, err := evaluate.Run(model, rs, evaluate.Options{Workers: cfg.Workers, BatchSize: cfg.BatchSize, LatencyImages: -1, Log: cfg.Log})
		if err != nil {
			return nil, err
		}
		report.Resampled = &evaluate.ResampledResult{Factor: cfg.Resampled, Metrics: rres.Metrics}
	}
	if history != nil {
		report.Training = Summarize(pathtext.Of(history.File), history.Epochs)
	}
	return &Evaluation{Report: report, Recorded: cfg.Record, cfg: cfg, metrics: res.Metrics, history: history, train: train}, nil
}

// Write writes the report folder dir: the plots, JSON and Markdown.
func (ev *Evaluation) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	var err error
	if ev.Report.Plots, err = Plots(dir, ev.metrics, ev.history, ev.train, ev.cfg.ValSplit, ev.cfg.SplitSeed); err != nil {
		return err
	}
	js, err := ev.Report.JSON()
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, JSONFile), js); err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, MarkdownFile), ev.Report.Markdown())
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
