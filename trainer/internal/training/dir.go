// Package training is one training run: its recipe, its folder (config.json,
// metrics.csv, checkpoints), the training loop and resuming after an
// interruption.
package training

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/cifarnet-go/cifarnet/models/atomicfile"
)

// Files of a run folder.
const (
	ConfigFile  = "config.json" // Config: everything needed to reproduce the run
	MetricsFile = "metrics.csv" // one row per completed epoch
	BestFile    = "best.cnw"    // weights of the best epoch by the checkpoint monitor
	FinalFile   = "final.cnw"   // weights at the end of training (best restored if asked)
	// The last checkpoint is a weight file and a state file; the previous
	// pair is kept until the new one is complete.
	LastWeights = "last.cnw"
	LastState   = "last.state"
	prevWeights = "prev.cnw"
	prevState   = "prev.state"
)

// Config is written to config.json when a run starts.
type Config struct {
	Recipe       Recipe    `json:"recipe"`        // resolved: file plus overrides
	RecipeSource string    `json:"recipe_source"` // name or path given to --recipe
	Overrides    Overrides `json:"overrides,omitempty"`
	Data         string    `json:"data"`           // absolute path of the data set
	Init         string    `json:"init,omitempty"` // absolute path of the weight file the run started from
	Workers      int       `json:"workers"`
	Command      string    `json:"command"` // command line that started the run
	// Device is where the command that created the run trained (an ID
	// --device accepts: "cpu", "cuda:0"); resumes may use others, which
	// the checkpoint and the weight files' provenance record.
	Device     string `json:"device,omitempty"`
	DeviceName string `json:"device_name,omitempty"` // e.g. "NVIDIA H200"
	Commit     string `json:"commit,omitempty"`
	GoVersion  string `json:"go_version"`
	Created    string `json:"created"` // UTC, RFC 3339
}

// createDir makes a new run folder runs/<UTC timestamp>-<name>, adding a
// suffix if that exists already.
func createDir(runs, name string, now time.Time) (string, error) {
	if err := os.MkdirAll(runs, 0o755); err != nil {
		return "", fmt.Errorf("create runs folder: %w", err)
	}
	base := filepath.Join(runs, now.UTC().Format("20060102T150405Z")+"-"+name)
	dir := base
	for i := 2; ; i++ {
		err := os.Mkdir(dir, 0o755)
		if err == nil {
			return dir, nil
		}
		if !errors.Is(err, fs.ErrExist) || i > 100 {
			return "", fmt.Errorf("create run folder: %w", err)
		}
		dir = fmt.Sprintf("%s-%d", base, i)
	}
}

// writeFileAtomic writes a file through a synced temporary file in the
// same folder and a rename (see package atomicfile).
func writeFileAtomic(path string, write func(w io.Writer) error) error {
	return atomicfile.Write(path, write)
}

func writeConfig(dir string, c *Config) error {
	return writeFileAtomic(filepath.Join(dir, ConfigFile), func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(c)
	})
}

// ReadConfig reads a run folder's config.json.
func ReadConfig(dir string) (*Config, error) {
	data, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		return nil, fmt.Errorf("read run config: %w", err)
	}
	var c Config
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Join(dir, ConfigFile), err)
	}
	return &c, nil
}

// EpochMetrics is one row of metrics.csv.
type EpochMetrics struct {
	Epoch           int
	TrainLoss       float64
	TrainAcc        float64
	ValLoss         float64
	ValAcc          float64
	LR              float64
	EpochSeconds    float64
	ImagesPerSecond float64
}

var metricsHeader = []string{"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "epoch_seconds", "images_per_second"}

func (m EpochMetrics) record() []string {
	f := func(x float64) string {
		if math.IsNaN(x) {
			return "" // no validation set
		}
		return strconv.FormatFloat(x, 'g', 8, 64)
	}
	return []string{strconv.Itoa(m.Epoch), f(m.TrainLoss), f(m.TrainAcc), f(m.ValLoss), f(m.ValAcc),
		f(m.LR), strconv.FormatFloat(m.EpochSeconds, 'f', 3, 64), strconv.FormatFloat(m.ImagesPerSecond, 'f', 1, 64)}
}

// appendMetrics appends a row to metrics.csv, creating it with its header,
// and syncs it.
func appendMetrics(dir string, m EpochMetrics) error {
	path := filepath.Join(dir, MetricsFile)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("append metrics: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("append metrics: %w", err)
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	if st.Size() == 0 {
		w.Write(metricsHeader)
	}
	w.Write(m.record())
	w.Flush()
	if _, err := f.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("append metrics: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("append metrics: %w", err)
	}
	return f.Close()
}

// ReadMetrics reads metrics.csv; a missing file is no epochs. A torn last
// line (a crash while appending) is ignored.
func ReadMetrics(dir string) ([]EpochMetrics, error) {
	data, err := os.ReadFile(filepath.Join(dir, MetricsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read metrics: %w", err)
	}
	if i := bytes.LastIndexByte(data, '\n'); i != len(data)-1 {
		data = data[:i+1]
	}
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = len(metricsHeader)
	rows, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("read metrics: %w", err)
	}
	var out []EpochMetrics
	for i, row := range rows {
		if i == 0 {
			continue // header
		}
		var v [8]float64
		for j, s := range row {
			if s == "" {
				v[j] = math.NaN() // no validation set
				continue
			}
			if v[j], err = strconv.ParseFloat(s, 64); err != nil {
				return nil, fmt.Errorf("read metrics: line %d: %w", i+1, err)
			}
		}
		out = append(out, EpochMetrics{int(v[0]), v[1], v[2], v[3], v[4], v[5], v[6], v[7]})
	}
	return out, nil
}

// truncateMetrics rewrites metrics.csv keeping the first epochs rows.
func truncateMetrics(dir string, epochs int) error {
	rows, err := ReadMetrics(dir)
	if err != nil {
		return err
	}
	var keep []EpochMetrics
	for _, m := range rows {
		if m.Epoch <= epochs {
			keep = append(keep, m)
		}
	}
	if len(keep) < epochs {
		return fmt.Errorf("metrics.csv has %d of the %d epochs of the checkpoint", len(keep), epochs)
	}
	return writeFileAtomic(filepath.Join(dir, MetricsFile), func(w io.Writer) error {
		cw := csv.NewWriter(w)
		cw.Write(metricsHeader)
		for _, m := range keep {
			cw.Write(m.record())
		}
		cw.Flush()
		return cw.Error()
	})
}
