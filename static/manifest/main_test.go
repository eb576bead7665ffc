package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/models/modeltest"
	"github.com/cifarnet-go/cifarnet/server/app"
)

func writeModel(t *testing.T, dir, name, created string) {
	t.Helper()
	f := modeltest.RandomFile(modeltest.TinySpec(), 1)
	f.Meta.Provenance.Created = created
	f.Meta.Provenance.TestAccuracy = 0.5
	if err := models.WriteFile(filepath.Join(dir, name), f); err != nil {
		t.Fatal(err)
	}
}

func TestBuild(t *testing.T) {
	dir := t.TempDir()
	writeModel(t, dir, "old.cnw", "2024-01-01T00:00:00Z")
	writeModel(t, dir, "new.cnw", "2025-01-01T00:00:00Z")
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a model"), 0o644)
	os.WriteFile(filepath.Join(dir, ".tmp-123.cnw"), []byte("half written"), 0o644)

	list, err := build(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Models) != 2 || list.Models[0].File != "new.cnw" || !list.Models[0].Latest || list.Models[1].Latest ||
		!list.Models[0].Default || list.Models[1].Default {
		t.Fatalf("newest first, newest latest and default: got %+v", list.Models)
	}
	m := list.Models[0]
	fi, _ := os.Stat(filepath.Join(dir, "new.cnw"))
	params, _ := modeltest.TinySpec().TrainableParams()
	if m.URL != "models/new.cnw" || m.Size != fi.Size() || m.Spec != "tiny" || m.TrainableParams != params ||
		m.DType != models.Float32 || m.Provenance == nil || m.Provenance.TestAccuracy != 0.5 {
		t.Errorf("entry %+v", m)
	}

	os.WriteFile(filepath.Join(dir, app.DefaultFile), []byte("old.cnw\n"), 0o644)
	list, err = build(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !list.Models[0].Latest || list.Models[0].Default || !list.Models[1].Default || list.Models[1].Latest {
		t.Errorf("DEFAULT naming old.cnw: %+v", list.Models)
	}
	os.WriteFile(filepath.Join(dir, app.DefaultFile), []byte("missing.cnw\n"), 0o644)
	if _, err := build(dir); err == nil {
		t.Error("a DEFAULT naming a missing model is accepted")
	}
	os.Remove(filepath.Join(dir, app.DefaultFile))

	// The file reads back as the server's type.
	out := filepath.Join(dir, "manifest.json")
	if err := writeJSON(out, list); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var back app.ModelList
	if err := json.Unmarshal(data, &back); err != nil || len(back.Models) != 2 {
		t.Fatalf("read back: %v, %+v", err, back)
	}
}

func TestBuildRefusesBrokenModel(t *testing.T) {
	dir := t.TempDir()
	writeModel(t, dir, "good.cnw", "")
	os.WriteFile(filepath.Join(dir, "bad.cnw"), []byte("CIFARNET but not really"), 0o644)
	if _, err := build(dir); err == nil || !strings.Contains(err.Error(), "bad.cnw") {
		t.Errorf("broken model: err %v, want one naming bad.cnw", err)
	}
}

func TestBuildEmpty(t *testing.T) {
	list, err := build(filepath.Join(t.TempDir(), "none"))
	if err != nil || list.Models == nil || len(list.Models) != 0 {
		t.Errorf("missing directory: %+v, %v; want an empty list", list, err)
	}
}

// writeReport writes a trainer eval report.json for file into folder.
func writeReport(t *testing.T, folder, file string, withTTA bool) {
	t.Helper()
	metrics := func(base float64) map[string]any {
		var pc []map[string]any
		for i, c := range []string{"cat", "dog"} {
			pc = append(pc, map[string]any{"class": c, "recall": base + float64(i)/10, "support": 50, "precision": 0.9})
		}
		return map[string]any{"n": 100, "correct": 60, "accuracy": base, "per_class": pc, "confusion": [][]int{{1}}}
	}
	result := map[string]any{"metrics": metrics(0.5)}
	if withTTA {
		result["tta"] = map[string]any{"augmentations": []string{"flip"}, "metrics": metrics(0.6)}
	}
	r := map[string]any{
		"created": "2025-01-02T00:00:00Z",
		"model":   map[string]any{"file": file, "sha256": "abc", "dtype": "float32", "params": 1},
		"data":    map[string]any{"jpeg_derived": true, "note": "JPEG copy"},
		"result":  result,
		"host":    map[string]any{"os": "linux"},
	}
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(folder, "report.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// A zoo folder's report.json becomes NAME.report.json beside each of its
// weight files in the site, cut down to what the model card shows, and
// the listing links it; a model without a report gets none.
func TestWriteReports(t *testing.T) {
	zoo, dir := t.TempDir(), t.TempDir()
	for _, id := range []string{"a", "b"} {
		os.MkdirAll(filepath.Join(zoo, id), 0o755)
		writeModel(t, filepath.Join(zoo, id), id+".cnw", "2024-01-01T00:00:00Z")
		writeModel(t, dir, id+".cnw", "2024-01-01T00:00:00Z")
	}
	writeModel(t, filepath.Join(zoo, "a"), "a.int8.cnw", "2024-01-01T00:00:00Z")
	writeModel(t, dir, "a.int8.cnw", "2024-01-01T00:00:00Z")
	writeReport(t, filepath.Join(zoo, "a"), "a.cnw", true)

	if err := writeReports(dir, zoo); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a.report.json", "a.int8.report.json"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		var c CardReport
		if err := json.Unmarshal(data, &c); err != nil {
			t.Fatal(err)
		}
		if c.Measured != "a.cnw" || c.DType != "float32" || c.TestImages != 100 || c.Accuracy != 0.5 || c.AccuracyTTA != 0.6 ||
			c.TestNote != "JPEG copy" || len(c.TTA) != 1 || len(c.PerClass) != 2 ||
			c.PerClass[1].Class != "dog" || c.PerClass[1].Accuracy != 0.6 || c.PerClass[1].AccuracyTTA == nil ||
			*c.PerClass[1].AccuracyTTA != 0.7 || c.PerClass[1].Images != 50 {
			t.Errorf("%s: %+v", name, c)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "b.report.json")); err == nil {
		t.Error("b has no report.json in the zoo, but got b.report.json")
	}
	list, err := build(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range list.Models {
		want := ""
		if strings.HasPrefix(m.File, "a.") {
			want = "models/" + strings.TrimSuffix(m.File, ".cnw") + ".report.json"
		}
		if m.Report != want {
			t.Errorf("%s: report %q, want %q", m.File, m.Report, want)
		}
	}

	// Without TTA figures there are none per class; a report without
	// metrics is refused.
	writeReport(t, filepath.Join(zoo, "b"), "b.cnw", false)
	if err := writeReports(dir, zoo); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "b.report.json"))
	if strings.Contains(string(data), "accuracy_tta") {
		t.Errorf("b without TTA: %s", data)
	}
	os.WriteFile(filepath.Join(zoo, "b", "report.json"), []byte(`{"model": {"file": "b.cnw"}}`), 0o644)
	if err := writeReports(dir, zoo); err == nil || !strings.Contains(err.Error(), "no model or test metrics") {
		t.Errorf("a report without metrics: %v", err)
	}
}
