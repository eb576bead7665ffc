package evaluate

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/trainer/internal/pathtext"
)

// ModelInfo identifies the evaluated weight file.
type ModelInfo struct {
	File          string               `json:"file"` // base name
	Path          string               `json:"path"`
	SHA256        string               `json:"sha256"`
	Bytes         int64                `json:"bytes"`
	Spec          string               `json:"spec"`
	DType         models.DType         `json:"dtype"`
	Params        int                  `json:"params"` // trainable
	FLOPs         int64                `json:"flops"`  // per image, forward pass
	Classes       []string             `json:"classes"`
	Normalization models.Normalization `json:"normalization"`
	Provenance    models.Provenance    `json:"provenance"`
}

// DescribeModel fingerprints the weight file at path, whose header is meta.
func DescribeModel(path string, meta *models.Meta) (*ModelInfo, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("fingerprint model: %w", err)
	}
	sum := sha256.Sum256(data)
	params, err := meta.Spec.TrainableParams()
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", path, err)
	}
	flops, err := meta.Spec.FLOPs()
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", path, err)
	}
	info := &ModelInfo{
		File: filepath.Base(path), Path: pathtext.Of(path), SHA256: hex.EncodeToString(sum[:]), Bytes: int64(len(data)),
		Spec: meta.Spec.Name, DType: meta.DType, Params: params, FLOPs: flops,
		Classes: meta.Classes, Normalization: meta.Normalization, Provenance: meta.Provenance,
	}
	return info, nil
}

// Host describes the machine the speeds were measured on.
type Host struct {
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	CPUs      int    `json:"cpus"`
	GoVersion string `json:"go_version"`
}

// ThisHost describes the running machine.
func ThisHost() Host {
	return Host{runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version()}
}

// TrainingSummary condenses a run's metrics.csv.
type TrainingSummary struct {
	File   string `json:"file"`
	Epochs int    `json:"epochs"`
	// BestValAcc is the highest validation accuracy, at BestEpoch; both,
	// and FinalVal, are 0 when the run had no validation set.
	BestValAcc   float64 `json:"best_val_acc"`
	BestEpoch    int     `json:"best_epoch"`
	FinalTrain   float64 `json:"final_train_acc"`
	FinalVal     float64 `json:"final_val_acc"`
	TrainSeconds float64 `json:"train_seconds"` // sum of epoch_seconds
}

// Plot is one chart a report shows.
type Plot struct {
	Title string `json:"title"`
	File  string `json:"file"` // relative to the report
}

// Report is everything report.json holds.
type Report struct {
	Created  string           `json:"created"` // UTC, RFC 3339
	Model    *ModelInfo       `json:"model"`
	Data     *DataInfo        `json:"data"`
	Host     Host             `json:"host"`
	Result   *Result          `json:"result"`
	Training *TrainingSummary `json:"training,omitempty"`
	Plots    []Plot           `json:"plots,omitempty"`
	// Resampled is the accuracy on the test images as the page sees them
	// in a photo (see Resampled); nil when not measured.
	Resampled *ResampledResult `json:"resampled,omitempty"`
}

// ResampledResult is the accuracy on a Resampled test set.
type ResampledResult struct {
	Factor  int      `json:"factor"`
	Metrics *Metrics `json:"metrics"`
}

// NewReport assembles a report stamped with the current time.
func NewReport(model *ModelInfo, data *DataInfo, res *Result) *Report {
	return &Report{
		Created: time.Now().UTC().Format(time.RFC3339),
		Model:   model, Data: data, Host: ThisHost(), Result: res,
	}
}

// JSON encodes the report, indented.
func (r *Report) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode report: %w", err)
	}
	return append(b, '\n'), nil
}

// Markdown renders the report for people: summary, per-class scores,
// confusion matrix and the plots, linked by their relative paths.
func (r *Report) Markdown() []byte {
	var b bytes.Buffer
	m := r.Result.Metrics
	fmt.Fprintf(&b, "# Evaluation of `%s`\n\n", r.Model.File)
	if r.Data != nil && r.Data.JPEGDerived {
		fmt.Fprintf(&b, "> **Note.** %s\n\n", r.Data.Note)
	}
	b.WriteString("| | |\n|---|---|\n")
	row := func(k, format string, a ...any) { fmt.Fprintf(&b, "| %s | %s |\n", k, fmt.Sprintf(format, a...)) }
	row("Model", "`%s`: spec `%s`, %s, %s trainable parameters, %.1f MFLOPs per image",
		r.Model.File, r.Model.Spec, r.Model.DType, groupDigits(r.Model.Params), float64(r.Model.FLOPs)/1e6)
	row("sha256", "`%s`", r.Model.SHA256)
	if p := r.Model.Provenance; p.Recipe != "" || p.Command != "" {
		row("Provenance", "recipe `%s`, %d epochs, created %s", p.Recipe, p.Epochs, p.Created)
		if p.TrainSeconds > 0 {
			row("Training time", "%.1f min in epochs", p.TrainSeconds/60)
		}
		if p.WallSeconds > 0 {
			row("Wall time", "%.1f min for the whole train command", p.WallSeconds/60)
		}
		if p.Device != "" {
			row("Trained on", "%s", p.Device)
		}
		if p.Command != "" {
			row("Reproduce", "`%s`", p.Command)
		}
	}
	if r.Data != nil {
		row("Test data", "`%s` (md5 `%s`)", r.Data.TestFile, r.Data.TestMD5)
	}
	row("**Accuracy**", "**%.2f %%** (%d / %d)", 100*m.Accuracy, m.Correct, m.N)
	row("**Macro-F1**", "**%.4f**", m.MacroF1)
	if t := r.Result.TTA; t != nil {
		row("**Accuracy with TTA**", "**%.2f %%** (%d / %d; %s), macro-F1 %.4f, %.3f ms/image per core",
			100*t.Metrics.Accuracy, t.Metrics.Correct, t.Metrics.N, strings.Join(t.Augmentations, ", "), t.Metrics.MacroF1, t.Speed.MsPerImage)
	}
	if rs := r.Resampled; rs != nil {
		row("Accuracy through the page's resize", "%.2f %% (test images enlarged %d× with Catmull-Rom, then resized to 32×32 by models.ModelInput as the page does)",
			100*rs.Metrics.Accuracy, rs.Factor)
	}
	sp := r.Result.Batched
	row(fmt.Sprintf("Inference, batch %d", sp.BatchSize), "%.3f ms/image per core, %.0f images/s on %d workers",
		sp.MsPerImage, sp.ImagesPerSecond, sp.Workers)
	if s := r.Result.Single; s != nil {
		row("Inference, batch 1", "%.3f ms/image per core, %.0f images/s on %d workers (first %d images; %d disagree with the batched pass)",
			s.MsPerImage, s.ImagesPerSecond, s.Workers, s.Images, r.Result.SingleDisagreements)
	}
	row("Host", "%s/%s, %d CPUs, %s", r.Host.OS, r.Host.Arch, r.Host.CPUs, r.Host.GoVersion)
	row("Created", "%s", r.Created)

	b.WriteString("\n## Per-class scores\n\n| Class | Precision | Recall | F1 | Support | Predicted |\n|---|---:|---:|---:|---:|---:|\n")
	for _, c := range m.PerClass {
		fmt.Fprintf(&b, "| %s | %.3f | %.3f | %.3f | %d | %d |\n", c.Class, c.Precision, c.Recall, c.F1, c.Support, c.Predicted)
	}
	fmt.Fprintf(&b, "| **macro average** | | | **%.3f** | %d | |\n", m.MacroF1, m.N)
	b.WriteString("\nA class never predicted has precision 0 (not undefined), so it lowers the macro average.\n")

	b.WriteString("\n## Confusion matrix\n\nRows are the true class, columns the predicted class.\n\n| true \\ predicted |")
	for _, c := range m.PerClass {
		fmt.Fprintf(&b, " %s |", c.Class)
	}
	b.WriteString("\n|---|" + strings.Repeat("---:|", len(m.PerClass)) + "\n")
	for t, rowCounts := range m.Confusion {
		fmt.Fprintf(&b, "| **%s** |", m.PerClass[t].Class)
		for p, n := range rowCounts {
			if p == t {
				fmt.Fprintf(&b, " **%d** |", n)
			} else {
				fmt.Fprintf(&b, " %d |", n)
			}
		}
		b.WriteString("\n")
	}

	if t := r.Training; t != nil {
		b.WriteString("\n## Training\n\n| | |\n|---|---|\n")
		row("History", "`%s`, %d epochs", t.File, t.Epochs)
		if t.BestValAcc > 0 {
			row("Best validation accuracy", "%.2f %% (epoch %d)", 100*t.BestValAcc, t.BestEpoch)
		}
		if t.BestValAcc > 0 {
			row("Final accuracy", "train %.2f %%, validation %.2f %%", 100*t.FinalTrain, 100*t.FinalVal)
		} else {
			row("Final accuracy", "train %.2f %% (trained on every training image, no validation set)", 100*t.FinalTrain)
		}
		row("Training time", "%.0f s", t.TrainSeconds)
	}
	if len(r.Plots) > 0 {
		b.WriteString("\n## Plots\n")
		for _, p := range r.Plots {
			fmt.Fprintf(&b, "\n### %s\n\n![%s](%s)\n", p.Title, p.Title, p.File)
		}
	}
	return b.Bytes()
}

// WriteSummary prints the headline numbers as a small table.
func (r *Report) WriteSummary(w io.Writer) error {
	m := r.Result.Metrics
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "model\t%s (%s, %s, %s params)\n", r.Model.File, r.Model.Spec, r.Model.DType, groupDigits(r.Model.Params))
	if r.Data != nil {
		data := r.Data.Dir
		if r.Data.JPEGDerived {
			data += " (JPEG-derived copy)"
		}
		fmt.Fprintf(tw, "test data\t%s\n", data)
	}
	fmt.Fprintf(tw, "accuracy\t%.2f %% (%d/%d)\n", 100*m.Accuracy, m.Correct, m.N)
	fmt.Fprintf(tw, "macro-F1\t%.4f\n", m.MacroF1)
	if t := r.Result.TTA; t != nil {
		fmt.Fprintf(tw, "with TTA\t%.2f %% (%d/%d; %s), macro-F1 %.4f, %.3f ms/image/core\n",
			100*t.Metrics.Accuracy, t.Metrics.Correct, t.Metrics.N, strings.Join(t.Augmentations, ", "), t.Metrics.MacroF1, t.Speed.MsPerImage)
	}
	if rs := r.Resampled; rs != nil {
		fmt.Fprintf(tw, "resampled\t%.2f %% (enlarged %d×, then the page's resize)\n", 100*rs.Metrics.Accuracy, rs.Factor)
	}
	sp := r.Result.Batched
	fmt.Fprintf(tw, "batch %d\t%.3f ms/image/core, %.0f images/s (%d workers)\n", sp.BatchSize, sp.MsPerImage, sp.ImagesPerSecond, sp.Workers)
	if s := r.Result.Single; s != nil {
		fmt.Fprintf(tw, "batch 1\t%.3f ms/image/core, %.0f images/s (%d workers, %d images)\n", s.MsPerImage, s.ImagesPerSecond, s.Workers, s.Images)
	}
	fmt.Fprintln(tw, "\nclass\tprecision\trecall\tF1\tsupport")
	for _, c := range m.PerClass {
		fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t%.3f\t%d\n", c.Class, c.Precision, c.Recall, c.F1, c.Support)
	}
	return tw.Flush()
}

// groupDigits writes n with thin thousands separators: 1 234 567.
func groupDigits(n int) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + groupDigits(-n)
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteRune(' ')
		}
		b.WriteRune(c)
	}
	return b.String()
}
