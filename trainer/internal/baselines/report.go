package baselines

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/cifarnet-go/cifarnet/trainer/internal/evaluate"
)

// Result is one classifier's row of the comparison.
type Result struct {
	Name   string `json:"name"`
	Config string `json:"config"`
	// TrainImages is the size of the training set; TrainSeconds the wall
	// time of Fit (0 where not measured here, e.g. a CNN trained earlier).
	TrainImages  int     `json:"train_images"`
	TrainSeconds float64 `json:"train_seconds"`
	// MsPerImage is the wall time of classifying the whole test set with
	// all workers, divided by its size.
	MsPerImage float64 `json:"ms_per_image"`
	Accuracy   float64 `json:"accuracy"`
	MacroF1    float64 `json:"macro_f1"`
	// ValAccuracy is the accuracy on the held-out validation split; nil
	// when there was none.
	ValAccuracy *float64          `json:"val_accuracy,omitempty"`
	Metrics     *evaluate.Metrics `json:"metrics"`
}

// Run trains c on train and scores it on test (and on val when it is not
// nil), timing training and test-set inference.
func Run(c Classifier, train, val, test *Dataset, classes []string) (*Result, error) {
	start := time.Now()
	if err := c.Fit(train); err != nil {
		return nil, fmt.Errorf("%s: %w", c.Name(), err)
	}
	trainTime := time.Since(start)

	start = time.Now()
	pred, err := c.Predict(test)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Name(), err)
	}
	inferTime := time.Since(start)
	m, err := evaluate.Compute(test.Y, pred, classes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Name(), err)
	}
	r := &Result{
		Name: c.Name(), Config: c.Describe(),
		TrainImages: train.Len(), TrainSeconds: trainTime.Seconds(),
		MsPerImage: inferTime.Seconds() * 1000 / float64(max(test.Len(), 1)),
		Accuracy:   m.Accuracy, MacroF1: m.MacroF1, Metrics: m,
	}
	if val != nil && val.Len() > 0 {
		vp, err := c.Predict(val)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.Name(), err)
		}
		vm, err := evaluate.Compute(val.Y, vp, classes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.Name(), err)
		}
		r.ValAccuracy = &vm.Accuracy
	}
	return r, nil
}

// Report is what baselines.json holds.
type Report struct {
	Created  string             `json:"created"` // UTC, RFC 3339
	Data     *evaluate.DataInfo `json:"data"`
	Host     evaluate.Host      `json:"host"`
	Features string             `json:"features"`
	Training string             `json:"training"` // which images were trained on
	Results  []*Result          `json:"results"`
}

// JSON encodes the report, indented.
func (r *Report) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode baselines report: %w", err)
	}
	return append(b, '\n'), nil
}

// WriteTable prints the comparison as an aligned text table.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "classifier\ttest acc\tmacro-F1\tval acc\ttrain images\ttrain time\tms/image\t")
	for _, res := range r.Results {
		fmt.Fprintf(tw, "%s\t%.2f %%\t%.4f\t%s\t%s\t%s\t%.4f\t\n", res.Name, 100*res.Accuracy, res.MacroF1,
			valCell(res), imagesCell(res), trainCell(res), res.MsPerImage)
	}
	return tw.Flush()
}

// Markdown renders the report for people.
func (r *Report) Markdown() []byte {
	var b bytes.Buffer
	b.WriteString("# Classical baselines on CIFAR-10\n\n")
	if r.Data != nil && r.Data.JPEGDerived {
		fmt.Fprintf(&b, "> **Note.** %s\n\n", r.Data.Note)
	}
	fmt.Fprintf(&b, "Features: %s. Training: %s.\n\n", r.Features, r.Training)
	b.WriteString("| Classifier | Test accuracy | Macro-F1 | Validation accuracy | Training images | Training time | Inference ms/image |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|\n")
	for _, res := range r.Results {
		fmt.Fprintf(&b, "| %s | %.2f %% | %.4f | %s | %s | %s | %.4f |\n", res.Name, 100*res.Accuracy, res.MacroF1,
			valCell(res), imagesCell(res), trainCell(res), res.MsPerImage)
	}
	b.WriteString("\nInference time is the wall time of classifying the whole test set with all workers, per image. " +
		"For reference, published figures on raw CIFAR-10 pixels are roughly 39–41 % for logistic regression, " +
		"37–40 % for a linear SVM and 45–48 % for a random forest.\n\n## Settings\n\n")
	for _, res := range r.Results {
		fmt.Fprintf(&b, "- **%s**: %s\n", res.Name, res.Config)
	}
	fmt.Fprintf(&b, "\nMeasured on %s/%s, %d CPUs, %s, %s.\n", r.Host.OS, r.Host.Arch, r.Host.CPUs, r.Host.GoVersion, r.Created)
	return b.Bytes()
}

func valCell(r *Result) string {
	if r.ValAccuracy == nil {
		return "–"
	}
	return fmt.Sprintf("%.2f %%", 100*(*r.ValAccuracy))
}

func imagesCell(r *Result) string {
	if r.TrainImages == 0 {
		return "–"
	}
	return fmt.Sprint(r.TrainImages)
}

func trainCell(r *Result) string {
	if r.TrainSeconds == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f s", r.TrainSeconds)
}
