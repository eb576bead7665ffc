package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/server/app"
)

// evalReport is the part of trainer eval's report.json the page's model
// card shows (trainer/internal/evaluate.Report; internal, so read here by
// field name).
type evalReport struct {
	Created string `json:"created"`
	Model   struct {
		File   string `json:"file"`
		SHA256 string `json:"sha256"`
		DType  string `json:"dtype"`
	} `json:"model"`
	Data struct {
		JPEGDerived bool   `json:"jpeg_derived"`
		Note        string `json:"note"`
	} `json:"data"`
	Result struct {
		Metrics *evalMetrics `json:"metrics"`
		TTA     *struct {
			Augmentations []string     `json:"augmentations"`
			Metrics       *evalMetrics `json:"metrics"`
		} `json:"tta"`
	} `json:"result"`
}

type evalMetrics struct {
	N        int     `json:"n"`
	Accuracy float64 `json:"accuracy"`
	PerClass []struct {
		Class   string  `json:"class"`
		Recall  float64 `json:"recall"`
		Support int     `json:"support"`
	} `json:"per_class"`
}

// CardReport is NAME.report.json: the test figures of a weight file for
// the page's model card, cut down from trainer eval's report.json.
type CardReport struct {
	// Measured is the weight file the figures are for: the file itself,
	// or, for an exported copy (NAME.int8.cnw), the file it came from.
	Measured    string      `json:"measured"`
	SHA256      string      `json:"sha256"`
	DType       string      `json:"dtype"`
	Evaluated   string      `json:"evaluated"` // when trainer eval ran, RFC 3339
	TestImages  int         `json:"test_images"`
	TestNote    string      `json:"test_note,omitempty"`
	Accuracy    float64     `json:"accuracy"`
	AccuracyTTA float64     `json:"accuracy_tta,omitempty"`
	TTA         []string    `json:"tta,omitempty"`
	PerClass    []ClassCard `json:"per_class"`
}

// ClassCard is one class's accuracy: the share of its test images
// classified as it (recall).
type ClassCard struct {
	Class       string   `json:"class"`
	Images      int      `json:"images"`
	Accuracy    float64  `json:"accuracy"`
	AccuracyTTA *float64 `json:"accuracy_tta,omitempty"`
}

// writeReports writes DIR/NAME.report.json for every weight file NAME.cnw
// of dir whose zoo folder (zoo/ID/ holding NAME.cnw) has a report.json.
// A folder's report measures its float32 file; its other files get the
// same figures, marked with the file they were measured on.
func writeReports(dir, zoo string) error {
	folders, err := filepath.Glob(filepath.Join(zoo, "*", "report.json"))
	if err != nil {
		return err
	}
	for _, rj := range folders {
		folder := filepath.Dir(rj)
		card, err := readReport(rj)
		if err != nil {
			return err
		}
		weights, err := filepath.Glob(filepath.Join(folder, "*"+models.FileExt))
		if err != nil {
			return err
		}
		for _, w := range weights {
			name := filepath.Base(w)
			if _, err := os.Stat(filepath.Join(dir, name)); errors.Is(err, fs.ErrNotExist) {
				continue
			} else if err != nil {
				return err
			}
			if err := writeJSON(filepath.Join(dir, app.ReportName(name)), card); err != nil {
				return err
			}
		}
	}
	return nil
}

func readReport(path string) (*CardReport, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r evalReport
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	m := r.Result.Metrics
	if m == nil || m.N == 0 || r.Model.File == "" {
		return nil, fmt.Errorf("%s: no model or test metrics", path)
	}
	c := &CardReport{
		Measured: r.Model.File, SHA256: r.Model.SHA256, DType: r.Model.DType, Evaluated: r.Created,
		TestImages: m.N, Accuracy: m.Accuracy, PerClass: make([]ClassCard, len(m.PerClass)),
	}
	if r.Data.JPEGDerived {
		c.TestNote = r.Data.Note
	}
	for i, pc := range m.PerClass {
		c.PerClass[i] = ClassCard{Class: pc.Class, Images: pc.Support, Accuracy: pc.Recall}
	}
	if t := r.Result.TTA; t != nil && t.Metrics != nil {
		if len(t.Metrics.PerClass) != len(m.PerClass) {
			return nil, fmt.Errorf("%s: %d classes with TTA, %d without", path, len(t.Metrics.PerClass), len(m.PerClass))
		}
		c.AccuracyTTA = t.Metrics.Accuracy
		c.TTA = t.Augmentations
		for i, pc := range t.Metrics.PerClass {
			if !strings.EqualFold(pc.Class, c.PerClass[i].Class) {
				return nil, fmt.Errorf("%s: class %d is %s with TTA, %s without", path, i, pc.Class, c.PerClass[i].Class)
			}
			acc := pc.Recall
			c.PerClass[i].AccuracyTTA = &acc
		}
	}
	return c, nil
}
