package training

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/models/modeltest"
)

// crashAfterWeights runs saveCheckpoint as a process would that dies
// between writing a checkpoint's weights and its state.
func crashAfterWeights(t *testing.T, dir string, f *models.File, st *ckptState) {
	t.Helper()
	crash := errors.New("crash")
	defer func() {
		reached = func(string, ...any) {}
		if r := recover(); r != crash {
			t.Fatalf("saveCheckpoint did not reach its weights: %v", r)
		}
	}()
	reached = func(format string, a ...any) {
		if fmt.Sprintf(format, a...) == fmt.Sprintf("checkpoint %d.%d weights", st.Epoch, st.Batches) {
			panic(crash)
		}
	}
	saveCheckpoint(dir, f, st)
}

// TestCheckpointSurvivesTwoCrashes: a crash between a checkpoint's weights
// and its state, a resume, and the same crash at the next checkpoint (or a
// full disk there) must still leave the last complete checkpoint loadable.
// Rotating the stateless last.cnw over prev.cnw lost it.
func TestCheckpointSurvivesTwoCrashes(t *testing.T) {
	spec, err := models.Preset("keras-cnn")
	if err != nil {
		t.Fatal(err)
	}
	files := []*models.File{modeltest.RandomFile(spec, 1), modeltest.RandomFile(spec, 2), modeltest.RandomFile(spec, 3), modeltest.RandomFile(spec, 4)}
	for _, c := range []struct {
		name  string
		crash func(dir string)
	}{
		{"crash, then crash at the same point", func(dir string) {
			crashAfterWeights(t, dir, files[1], &ckptState{Epoch: 2, GlobalStep: 20})
			crashAfterWeights(t, dir, files[2], &ckptState{Epoch: 2, GlobalStep: 20})
		}},
		{"crash, then a complete checkpoint, then a crash", func(dir string) {
			crashAfterWeights(t, dir, files[1], &ckptState{Epoch: 2, GlobalStep: 20})
			if err := saveCheckpoint(dir, files[2], &ckptState{Epoch: 2, GlobalStep: 20}); err != nil {
				t.Fatal(err)
			}
			crashAfterWeights(t, dir, files[3], &ckptState{Epoch: 3, GlobalStep: 30})
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := saveCheckpoint(dir, files[0], &ckptState{Epoch: 1, GlobalStep: 10}); err != nil {
				t.Fatal(err)
			}
			c.crash(dir)
			f, st, err := loadCheckpoint(dir)
			if err != nil {
				t.Fatalf("after the crashes: %v", err)
			}
			want := files[0]
			if st.Epoch == 2 {
				want = files[2]
			}
			if st.Epoch != 1 && st.Epoch != 2 {
				t.Fatalf("resumes after epoch %d", st.Epoch)
			}
			if !sameTensors(f, want) {
				t.Fatalf("the weights loaded for epoch %d are not the ones saved with it", st.Epoch)
			}
		})
	}
}

func sameTensors(a, b *models.File) bool {
	if len(a.Tensors) != len(b.Tensors) {
		return false
	}
	for name, ta := range a.Tensors {
		tb, ok := b.Tensors[name]
		if !ok {
			return false
		}
		if !slices.Equal(ta.Data, tb.Data) {
			return false
		}
	}
	return true
}
