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
