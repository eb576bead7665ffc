package models

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
)

// snapshotTestSpec has what the presets lack: a standalone batchnorm (on
// the input, and after a pool) and a linear layer reading a flattened
// spatial map.
func snapshotTestSpec() *Spec {
	return &Spec{
		Name:  "snapshot-test",
		Input: Shape{C: 3, H: 8, W: 8},
		Layers: []Layer{
			{Name: "bn0", Type: BatchNorm},
			{Name: "conv1", Type: Conv2D, Filters: 6, Kernel: 3, Padding: 1},
			{Name: "relu1", Type: ReLU},
			{Name: "pool", Type: MaxPool, Kernel: 2},
			{Name: "bn1", Type: BatchNorm},
			{Name: "conv2", Type: Conv2D, Filters: 5, Kernel: 3, Padding: 1, Bias: true},
			{Name: "res", Type: Add, From: "bn1", Project: true},
			{Name: "flatten", Type: Flatten},
			{Name: "fc", Type: Linear, Units: 10, Bias: true},
		},
	}
}

func joinSnapshot(t testing.TB, m *Model) []byte {
	t.Helper()
	parts, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Join(parts, nil)
}

// A model loaded from its snapshot computes exactly the logits of the
// model built from the weight file, for every preset with and without
// Winograd, and snapshots back to the same bytes.
func TestSnapshotRoundTrip(t *testing.T) {
	defer func(saved bool) { winogradEnabled = saved }(winogradEnabled)
	specs := []*Spec{snapshotTestSpec()}
	for _, name := range PresetNames() {
		spec, err := Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		specs = append(specs, spec)
	}
	for _, wino := range []bool{false, true} {
		winogradEnabled = wino
		for _, spec := range specs {
			t.Run(fmt.Sprintf("%s/winograd=%v", spec.Name, wino), func(t *testing.T) {
				built := referenceModel(t, spec)
				snap := joinSnapshot(t, built)
				loaded, err := LoadSnapshot(snap)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(joinSnapshot(t, loaded), snap) {
					t.Error("the loaded model's snapshot differs from the one it was loaded from")
				}
				if loaded.Meta.Spec.Name != spec.Name || !slices.Equal(loaded.Meta.Classes, built.Meta.Classes) {
					t.Errorf("metadata: spec %q classes %v, want %q %v", loaded.Meta.Spec.Name, loaded.Meta.Classes, spec.Name, built.Meta.Classes)
				}
				const n = 3
				x := make([]float32, n*built.InputSize())
				for i := range x {
					x[i] = float32(math.Sin(float64(i)*0.61 + 1))
				}
				want, got := built.NewPredictor(), loaded.NewPredictor()
				if _, err := want.PredictBatch(x, n); err != nil {
					t.Fatal(err)
				}
				if _, err := got.PredictBatch(x, n); err != nil {
					t.Fatal(err)
				}
				for i, v := range want.Logits() {
					if got.Logits()[i] != v {
						t.Fatalf("logit %d: %v from the snapshot, %v built", i, got.Logits()[i], v)
					}
				}
			})
		}
	}
}

// The shipped default model, int8 on disk, loads from its snapshot with the
// same answers.
func TestSnapshotShippedModel(t *testing.T) {
	f, err := ReadFile("zoo/cifarnet-fast/cifarnet-fast.int8.cnw")
	if err != nil {
		t.Fatal(err)
	}
	built, err := NewModel(f)
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadSnapshot(joinSnapshot(t, built))
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Meta.DType != Int8 || loaded.Meta.Provenance.TestAccuracy != f.Meta.Provenance.TestAccuracy {
		t.Errorf("metadata lost: dtype %q, test accuracy %v", loaded.Meta.DType, loaded.Meta.Provenance.TestAccuracy)
	}
	x := make([]float32, built.InputSize())
	for i := range x {
		x[i] = float32(math.Cos(float64(i) * 0.13))
	}
	want, _ := built.NewPredictor().Predict(x)
	got, _ := loaded.NewPredictor().Predict(x)
	if !slices.Equal(got, want) {
		t.Errorf("probabilities %v from the snapshot, %v built", got, want)
	}
}

// Every damaged or foreign snapshot is refused with ErrSnapshot, never a
// panic: every truncation, a changed byte in each header field, a foreign
// layout or version, a spec that does not match the arrays.
func TestSnapshotRefusesDamage(t *testing.T) {
	m := referenceModel(t, snapshotTestSpec())
	good := joinSnapshot(t, m)
	refused := func(name string, b []byte, want string) {
		t.Helper()
		_, err := LoadSnapshot(b)
		if !errors.Is(err, ErrSnapshot) {
			t.Fatalf("%s: error %v, want ErrSnapshot", name, err)
		}
		if want != "" && !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %q does not say %q", name, err, want)
		}
	}
	for n := range len(good) {
		refused(fmt.Sprintf("truncated to %d bytes", n), good[:n], "")
	}
	refused("extra byte", append(slices.Clone(good), 0), "check does not match")
	refused("extra word", resealSnapshot(append(slices.Clone(good), 0, 0, 0, 0)), "after the last array")

	// Every byte after the check is covered by it.
	for off := checkedFrom; off < len(good); off++ {
		b := slices.Clone(good)
		b[off] ^= 0x10
		refused(fmt.Sprintf("bit flipped at byte %d", off), b, "check does not match")
	}
	refused("check", append(slices.Clone(good[:checkedFrom-1]), append([]byte{good[checkedFrom-1] ^ 1}, good[checkedFrom:]...)...), "check does not match")

	// Header fields changed and the check made to match: each is refused
	// for what it says.
	at := func(off int, v uint32) []byte {
		b := slices.Clone(good)
		binary.LittleEndian.PutUint32(b[off:], v)
		return resealSnapshot(b)
	}
	refused("magic", append([]byte("CNWBUILD"), good[8:]...), "not a model snapshot")
	refused("version", at(8, 1), "version 1")
	layoutAt := checkedFrom
	layoutLen := int(binary.LittleEndian.Uint32(good[layoutAt:]))
	foreign := slices.Clone(good)
	copy(foreign[layoutAt+4:], "plan9")
	refused("layout", resealSnapshot(foreign), "written for")
	refused("layout length", at(layoutAt, 1<<30), "limit")
	metaAt := layoutAt + 4 + layoutLen + pad4(layoutLen)
	metaLen := int(binary.LittleEndian.Uint32(good[metaAt:]))
	countAt := metaAt + 4 + metaLen + pad4(metaLen)
	refused("meta length", at(metaAt, uint32(metaLen-1)), "")
	refused("array count", at(countAt, uint32(len(m.arrays)-1)), "")
	refused("array count too large", at(countAt, 1<<31), "limit")
	refused("array length", at(countAt+4, binary.LittleEndian.Uint32(good[countAt+4:])+1), "")
	refused("array length huge", at(countAt+4, 1<<31), "past the end")

	// Metadata that parses but does not describe these arrays.
	meta := good[metaAt+4 : metaAt+4+metaLen]
	for _, c := range []struct{ from, to, why string }{
		{`"filters":6`, `"filters":7`, "the spec needs"},
		{`"units":10`, `"units":11`, "class names"},
		{`"type":"linear"`, `"type":"lineal"`, "unknown layer type"},
	} {
		if !bytes.Contains(meta, []byte(c.from)) {
			t.Fatalf("metadata %s lacks %s", meta, c.from)
		}
		b := bytes.Replace(good, []byte(c.from), []byte(c.to), 1)
		refused(c.to, resealSnapshot(b), c.why)
	}
}

// resealSnapshot writes b's check again to match its bytes, as a writer
// would have: for tests of what LoadSnapshot checks beyond the check.
func resealSnapshot(b []byte) []byte {
	if len(b) < checkedFrom || len(b)%4 != 0 {
		return b
	}
	c := newSnapshotCheck()
	c.add(b[checkedFrom:])
	binary.LittleEndian.PutUint64(b[checkedFrom-8:], c.sum())
	return b
}

// A snapshot's arrays are used in place when its memory is aligned, and
// copied when it is not, with the same answers.
func TestSnapshotUnaligned(t *testing.T) {
	m := referenceModel(t, snapshotTestSpec())
	snap := joinSnapshot(t, m)
	buf := make([]byte, len(snap)+1)
	copy(buf[1:], snap)
	loaded, err := LoadSnapshot(buf[1:])
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, m.InputSize())
	for i := range x {
		x[i] = float32(i%7) - 3
	}
	want, _ := m.NewPredictor().Predict(x)
	got, _ := loaded.NewPredictor().Predict(x)
	if !slices.Equal(got, want) {
		t.Errorf("probabilities %v from an unaligned snapshot, %v built", got, want)
	}
}

// FuzzLoadSnapshot: no input panics LoadSnapshot; a model it accepts
// snapshots again into bytes it accepts, and (when its input is small
// enough to be quick) predicts without panicking. With reseal the input
// gets a matching check first, so that mutations reach the structure's
// checks rather than stopping at the check.
func FuzzLoadSnapshot(f *testing.F) {
	good := joinSnapshot(f, referenceModel(f, snapshotTestSpec()))
	f.Add(good, false)
	f.Add(good[:len(good)/2], true)
	f.Fuzz(func(t *testing.T, b []byte, reseal bool) {
		if reseal { // past the check, to what the structure's checks see
			b = resealSnapshot(b)
		}
		m, err := LoadSnapshot(b)
		if err != nil {
			if !errors.Is(err, ErrSnapshot) {
				t.Fatalf("error %q does not wrap ErrSnapshot", err)
			}
			return
		}
		if _, err := LoadSnapshot(joinSnapshot(t, m)); err != nil {
			t.Fatalf("the snapshot of an accepted snapshot's model is refused: %v", err)
		}
		if m.InputSize() <= 3*32*32 {
			if _, err := m.NewPredictor().Predict(make([]float32, m.InputSize())); err != nil {
				t.Fatal(err)
			}
		}
	})
}
