package training

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/trainer/internal/backend"
	"github.com/cifarnet-go/cifarnet/trainer/internal/optim"
)

// childEnv makes the test binary a training process: it runs Train with
// the JSON Options in the variable, like "trainer train" does, so that a
// test can kill it.
const childEnv = "RUN_TEST_TRAIN_OPTIONS"

// killAtEnv names a point (see reached) at which the child kills itself
// with SIGKILL, as a crash or kill -9 would stop it there.
const killAtEnv = "RUN_TEST_KILL_AT"

// exitInterrupted is the child's exit status after a clean interruption.
const exitInterrupted = 3

func TestMain(m *testing.M) {
	if js := os.Getenv(childEnv); js != "" {
		os.Exit(child(js))
	}
	os.Exit(m.Run())
}

func child(js string) int {
	var o Options
	if err := json.Unmarshal([]byte(js), &o); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	o.Log = os.Stderr
	if at := os.Getenv(killAtEnv); at != "" {
		reached = func(format string, a ...any) {
			if fmt.Sprintf(format, a...) == at {
				if self, err := os.FindProcess(os.Getpid()); err == nil {
					self.Kill() // SIGKILL
				}
				select {} // the signal is on its way
			}
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := Train(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if errors.Is(err, ErrInterrupted) {
			return exitInterrupted
		}
		return 1
	}
	return 0
}

// dataDir locates CIFAR-10 for tests or skips.
func dataDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("CIFAR10_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "..", "shared", "cifar10", "cifar-10-batches-bin")
	}
	if _, err := os.Stat(filepath.Join(dir, "data_batch_1.bin")); err != nil {
		t.Skipf("CIFAR-10 not found at %s (set CIFAR10_DIR): %v", dir, err)
	}
	return dir
}

// tinyRecipe trains a small inline network on the first 640 images (512
// for training, 128 for validation) in batches of 64, with every stateful
// part in play: dropout, batchnorm, AdamW, the plateau schedule, gradient
// clipping and early stopping with best-weight restoring.
func tinyRecipe(epochs int) *Recipe {
	return &Recipe{
		Name: "tiny",
		Spec: &models.Spec{
			Name:  "tiny32",
			Input: models.Shape{C: 3, H: 32, W: 32},
			Layers: []models.Layer{
				{Name: "conv1", Type: models.Conv2D, Filters: 8, Kernel: 3, Stride: 2, Padding: 1, Bias: true},
				{Name: "bn1", Type: models.BatchNorm},
				{Name: "relu1", Type: models.ReLU},
				{Name: "pool", Type: models.MaxPool, Kernel: 2},
				{Name: "conv2", Type: models.Conv2D, Filters: 16, Kernel: 3, Padding: 1},
				{Name: "bn2", Type: models.BatchNorm},
				{Name: "act2", Type: models.LeakyReLU, Alpha: 0.1},
				{Name: "gap", Type: models.GlobalAvgPool},
				{Name: "drop", Type: models.Dropout, Rate: 0.1},
				{Name: "fc", Type: models.Linear, Units: 10, Bias: true},
				{Name: "softmax", Type: models.Softmax},
			},
		},
		Epochs: epochs, Batch: 64, Limit: 640, ValSplit: 0.2, SplitSeed: 42, Seed: 3,
		Augment:           Augment{Crop: 4, Flip: true},
		Optimizer:         optim.Config{Name: "adamw", LR: 1e-2, WeightDecay: 1e-4},
		BatchNormMomentum: 0.1,
		GradClip:          5,
		Schedule:          Schedule{Name: "plateau", Monitor: "val_loss", Factor: 0.5, Patience: 1},
		EarlyStopping:     EarlyStop{Monitor: "val_loss", Patience: 100, RestoreBest: true},
		Checkpoint:        Checkpoint{Monitor: "val_accuracy"},
	}
}

func options(t *testing.T, r *Recipe, runs string) Options {
	return Options{Recipe: r, RecipeSource: "test", Data: dataDir(t), Runs: runs, Workers: 2, Command: "go test"}
}

// onlyRun returns the single run folder under runs.
func onlyRun(t *testing.T, runs string) string {
	t.Helper()
	entries, err := os.ReadDir(runs)
	if err != nil || len(entries) != 1 {
		t.Fatalf("want one run folder in %s, got %v (%v)", runs, entries, err)
	}
	return filepath.Join(runs, entries[0].Name())
}

// syncBuffer is a bytes.Buffer safe for a process to write while the test
// reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is a training process started by a test.
type proc struct {
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan struct{} // closed when the process has exited
	err  error         // its exit error, once done
}

// startChild starts a training process; env adds to its environment.
func startChild(t *testing.T, o Options, env ...string) *proc {
	t.Helper()
	js, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: exec.Command(os.Args[0], "-test.run=^$"), log: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Env = append(append(os.Environ(), childEnv+"="+string(js)), env...)
	p.cmd.Stderr = p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.cmd.Process.Kill(); <-p.done })
	return p
}

// waitFor polls cond until it holds, failing if the process ends first or
// two minutes pass.
func (p *proc) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(2 * time.Minute)
	for !cond() {
		select {
		case <-p.done:
			t.Fatalf("training process ended before %s: %v\n%s", what, p.err, p.log)
		case <-deadline:
			t.Fatalf("no %s after 2 minutes:\n%s", what, p.log)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// waitForEpochs waits until metrics.csv of the run under runs has n rows
// and returns the run folder.
func (p *proc) waitForEpochs(t *testing.T, runs string, n int) string {
	t.Helper()
	var dir string
	p.waitFor(t, fmt.Sprintf("epoch %d", n), func() bool {
		if entries, _ := os.ReadDir(runs); len(entries) == 1 {
			dir = filepath.Join(runs, entries[0].Name())
			rows, err := ReadMetrics(dir)
			return err == nil && len(rows) >= n
		}
		return false
	})
	return dir
}

// sameMetrics compares the training results of two runs, not their timing.
func sameMetrics(t *testing.T, got, want []EpochMetrics) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d epochs in metrics.csv, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Epoch != i+1 || g.TrainLoss != w.TrainLoss || g.TrainAcc != w.TrainAcc || g.ValLoss != w.ValLoss ||
			g.ValAcc != w.ValAcc || g.LR != w.LR {
			t.Errorf("epoch %d: %+v, uninterrupted run %+v", i+1, g, w)
		}
	}
}

func sameWeights(t *testing.T, a, b string) {
	t.Helper()
	fa, err := models.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	fb, err := models.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	for name, ta := range fa.Tensors {
		if !slices.Equal(ta.Data, fb.Tensors[name].Data) {
			t.Errorf("%s differs between %s and %s", name, a, b)
		}
	}
}

// reference trains the tiny recipe without interruption.
func reference(t *testing.T, epochs int) (dir string, metrics []EpochMetrics) {
	t.Helper()
	runs := t.TempDir()
	res, err := Train(context.Background(), options(t, tinyRecipe(epochs), runs))
	if err != nil {
		t.Fatal(err)
	}
	if res.Epochs != epochs {
		t.Fatalf("reference run did %d epochs, want %d", res.Epochs, epochs)
	}
	metrics, err = ReadMetrics(res.Dir)
	if err != nil {
		t.Fatal(err)
	}
	return res.Dir, metrics
}

// TestTrainingLearns checks that the reference run learns (validation
// accuracy well above chance after a few epochs on 512 images) and leaves a
// complete run folder whose best.cnw the inference code runs.
func TestTrainingLearns(t *testing.T) {
	dir, metrics := reference(t, 5)
	first, last := metrics[0], metrics[len(metrics)-1]
	t.Logf("epoch 1: %+v", first)
	t.Logf("epoch %d: %+v", last.Epoch, last)
	if !(last.TrainLoss < first.TrainLoss) || !(last.TrainLoss < 2.2) {
		t.Errorf("training loss %.3f → %.3f: did not fall", first.TrainLoss, last.TrainLoss)
	}
	bestAcc := 0.0
	for _, m := range metrics {
		bestAcc = max(bestAcc, m.ValAcc)
	}
	if bestAcc < 0.2 {
		t.Errorf("best validation accuracy %.3f, want ≥ 0.2 (chance is 0.1)", bestAcc)
	}
	for _, name := range []string{ConfigFile, MetricsFile, BestFile, FinalFile, LastWeights, LastState} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("run folder lacks %s: %v", name, err)
		}
	}
	cfg, err := ReadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Recipe.Seed != 3 || cfg.Recipe.Spec == nil || cfg.Data == "" || cfg.Command != "go test" {
		t.Errorf("config.json incomplete: %+v", cfg)
	}
	best, err := models.ReadFile(filepath.Join(dir, BestFile))
	if err != nil {
		t.Fatal(err)
	}
	p := best.Meta.Provenance
	if p.Dataset != "CIFAR-10" || p.Recipe != "tiny" || p.Epochs < 1 || p.ValAccuracy != bestAcc {
		t.Errorf("best.cnw provenance %+v, want val accuracy %g", p, bestAcc)
	}
	if p.WallSeconds < p.TrainSeconds {
		t.Errorf("best.cnw wall time %g s, less than its training time %g s", p.WallSeconds, p.TrainSeconds)
	}
	if _, err := models.NewModel(best); err != nil {
		t.Errorf("best.cnw not usable for inference: %v", err)
	}
}

// TestResumeAfterKill kills training processes with SIGKILL at the
// points where a crash is hardest to survive (mid-epoch, after an epoch's
// line reached metrics.csv but before its checkpoint, between a
// checkpoint's weights and its state), before and after the first
// checkpoint, resumes each run and checks that it lost at most the epoch
// in progress and ends exactly where an uninterrupted run does.
func TestResumeAfterKill(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("needs SIGKILL")
	}
	const epochs = 4 // 8 batches each
	refDir, want := reference(t, epochs)
	for _, c := range []struct {
		at   string
		rows int // lines in metrics.csv at the kill
		from int // epoch resumed after; -1: from the start, no checkpoint
	}{
		{"epoch 1 batch 3", 0, -1},
		{"epoch 1 logged", 1, -1},
		{"checkpoint 1.0 weights", 1, -1},
		{"epoch 2 batch 5", 1, 1},
		{"epoch 3 logged", 3, 2},
		{"checkpoint 3.0 weights", 3, 2},
	} {
		t.Run(strings.ReplaceAll(c.at, " ", "_"), func(t *testing.T) {
			runs := t.TempDir()
			p := startChild(t, options(t, tinyRecipe(epochs), runs), killAtEnv+"="+c.at)
			<-p.done
			var ee *exec.ExitError
			if !errors.As(p.err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("process ended with %v, want killed at %q:\n%s", p.err, c.at, p.log)
			}
			dir := onlyRun(t, runs)
			before, err := ReadMetrics(dir)
			if err != nil {
				t.Fatalf("metrics.csv unreadable after the kill: %v", err)
			}
			if len(before) != c.rows {
				t.Fatalf("%d epochs in metrics.csv after the kill, want %d", len(before), c.rows)
			}
			sameMetrics(t, before, want[:len(before)])
			_, killed, err := loadCheckpoint(dir)
			switch {
			case c.from < 0 && !errors.Is(err, errNoCheckpoint):
				t.Fatalf("checkpoint before the first one was saved: %+v, %v", killed, err)
			case c.from >= 0 && err != nil:
				t.Fatal(err)
			case c.from >= 0 && (killed.Epoch != c.from || killed.Batches != 0):
				t.Fatalf("checkpoint after epoch %d and %d batches, want after epoch %d", killed.Epoch, killed.Batches, c.from)
			}

			var resumeLog bytes.Buffer
			res, err := Train(context.Background(), Options{Resume: dir, Workers: 1, Log: &resumeLog})
			if err != nil {
				t.Fatal(err)
			}
			wantLog := fmt.Sprintf("resuming %s after epoch %d\n", dir, c.from)
			if c.from < 0 {
				wantLog = fmt.Sprintf("resuming %s from the start", dir)
			}
			if !strings.Contains(resumeLog.String(), wantLog) {
				t.Errorf("resume log lacks %q:\n%s", wantLog, resumeLog.String())
			}
			// The wall time counts the killed process's time too.
			if c.from >= 0 && !(killed.WallSeconds > 0 && res.WallSeconds > killed.WallSeconds) {
				t.Errorf("wall time %.2f s after resuming, %.2f s at the checkpoint", res.WallSeconds, killed.WallSeconds)
			}
			if res.Epochs != epochs {
				t.Errorf("resumed run completed %d epochs, want %d", res.Epochs, epochs)
			}
			got, err := ReadMetrics(dir)
			if err != nil {
				t.Fatal(err)
			}
			sameMetrics(t, got, want)
			sameWeights(t, filepath.Join(dir, FinalFile), filepath.Join(refDir, FinalFile))
			sameWeights(t, filepath.Join(dir, BestFile), filepath.Join(refDir, BestFile))
		})
	}
}

// TestResumeWithoutCheckpoint resumes a run folder that holds only what a
// run killed before its first checkpoint leaves: config.json, a metrics
// line, a torn one, and a checkpoint's weights without their state. It
// must start over from config.json, emptying metrics.csv first.
func TestResumeWithoutCheckpoint(t *testing.T) {
	const epochs = 2
	refDir, want := reference(t, epochs)
	runs := t.TempDir()
	dir, err := createDir(runs, "tiny", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	data, err := filepath.Abs(dataDir(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := writeConfig(dir, &Config{Recipe: *tinyRecipe(epochs), RecipeSource: "test", Data: data, Workers: 2, Command: "go test"}); err != nil {
		t.Fatal(err)
	}
	if err := appendMetrics(dir, EpochMetrics{Epoch: 1, TrainLoss: 9, TrainAcc: 0.5, ValLoss: 9, ValAcc: 0.5, LR: 1}); err != nil {
		t.Fatal(err)
	}
	fh, err := os.OpenFile(filepath.Join(dir, MetricsFile), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fh.WriteString("2,2.3,0.1") // torn by the crash
	fh.Close()
	stray, err := models.ReadFile(filepath.Join(refDir, FinalFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := models.WriteFile(filepath.Join(dir, LastWeights), stray); err != nil {
		t.Fatal(err)
	}

	var log bytes.Buffer
	res, err := Train(context.Background(), Options{Resume: dir, Workers: 2, Log: &log})
	if err != nil {
		t.Fatalf("resume without a checkpoint: %v\n%s", err, log.String())
	}
	if !strings.Contains(log.String(), "from the start") || res.Epochs != epochs {
		t.Errorf("resumed run: %+v, log:\n%s", res, log.String())
	}
	got, err := ReadMetrics(dir)
	if err != nil {
		t.Fatal(err)
	}
	sameMetrics(t, got, want)
	sameWeights(t, filepath.Join(dir, FinalFile), filepath.Join(refDir, FinalFile))
	sameWeights(t, filepath.Join(dir, BestFile), filepath.Join(refDir, BestFile))
}

// TestInterruptSavesMidEpoch sends SIGINT during the second epoch: the
// process finishes its step, saves a mid-epoch checkpoint and exits; the
// resumed run matches an uninterrupted one.
func TestInterruptSavesMidEpoch(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("needs SIGINT")
	}
	const epochs = 3
	refDir, want := reference(t, epochs)
	runs := t.TempDir()
	p := startChild(t, options(t, tinyRecipe(epochs), runs))
	dir := p.waitForEpochs(t, runs, 1)
	// The plain progress lines come every tenth of an epoch: the first one
	// of epoch 2 means a batch of it is done.
	p.waitFor(t, "progress in epoch 2", func() bool { return strings.Contains(p.log.String(), fmt.Sprintf("epoch 2/%d: ", epochs)) })
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	<-p.done
	var ee *exec.ExitError
	if !errors.As(p.err, &ee) || ee.ExitCode() != exitInterrupted {
		t.Fatalf("process exit %v, want status %d after the interruption:\n%s", p.err, exitInterrupted, p.log)
	}
	if !strings.Contains(p.log.String(), "resume with: trainer train --resume "+dir) {
		t.Errorf("interruption message does not say how to resume:\n%s", p.log)
	}
	_, st, err := loadCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("interrupted after epoch %d and %d batches", st.Epoch, st.Batches)
	if st.Epoch != 1 || st.Batches == 0 {
		t.Errorf("checkpoint after epoch %d and %d batches, want one inside epoch 2", st.Epoch, st.Batches)
	}
	if _, err := Train(context.Background(), Options{Resume: dir, Workers: 2}); err != nil {
		t.Fatal(err)
	}
	got, err := ReadMetrics(dir)
	if err != nil {
		t.Fatal(err)
	}
	sameMetrics(t, got, want)
	sameWeights(t, filepath.Join(dir, FinalFile), filepath.Join(refDir, FinalFile))
}

// TestCheckpointPairs simulates crashes between the writes of a
// checkpoint: resuming must pick the newest pair whose state matches its
// weights.
func TestCheckpointPairs(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := loadCheckpoint(dir); !errors.Is(err, errNoCheckpoint) {
		t.Errorf("empty folder: %v, want errNoCheckpoint", err)
	}
	f := func(v float32) *models.File {
		spec := &models.Spec{Name: "lin", Input: models.Shape{C: 2, H: 1, W: 1},
			Layers: []models.Layer{{Name: "fc", Type: models.Linear, Units: 2}}}
		return &models.File{
			Meta: models.Meta{Spec: *spec, Classes: []string{"a", "b"}, DType: models.Float32,
				Normalization: models.Normalization{Mean: []float32{0, 0}, Std: []float32{1, 1}}},
			Tensors: map[string]*models.Tensor{"fc.weight": {Name: "fc.weight", Shape: []int{2, 2}, Data: []float32{v, v, v, v}}},
		}
	}
	if err := saveCheckpoint(dir, f(1), &ckptState{Epoch: 1, GlobalStep: 10}); err != nil {
		t.Fatal(err)
	}
	if err := saveCheckpoint(dir, f(2), &ckptState{Epoch: 2, GlobalStep: 20}); err != nil {
		t.Fatal(err)
	}
	check := func(wantEpoch int, wantV float32) {
		t.Helper()
		w, st, err := loadCheckpoint(dir)
		if err != nil {
			t.Fatal(err)
		}
		if st.Epoch != wantEpoch || w.Tensors["fc.weight"].Data[0] != wantV {
			t.Errorf("loaded epoch %d weights %g, want %d and %g", st.Epoch, w.Tensors["fc.weight"].Data[0], wantEpoch, wantV)
		}
	}
	check(2, 2)
	// A crash after the new weights but before the new state: last.cnw is
	// epoch 3, last.state still epoch 2 → the previous pair.
	os.Rename(filepath.Join(dir, LastWeights), filepath.Join(dir, prevWeights))
	os.Rename(filepath.Join(dir, LastState), filepath.Join(dir, prevState))
	if err := models.WriteFile(filepath.Join(dir, LastWeights), f(3)); err != nil {
		t.Fatal(err)
	}
	check(2, 2)
	// A crash between the two renames: prev.cnw and last.state of epoch 2.
	os.Remove(filepath.Join(dir, LastWeights))
	os.Rename(filepath.Join(dir, prevState), filepath.Join(dir, LastState))
	check(2, 2)
	// A damaged state file is reported, not used, and is not taken for
	// the absence of a checkpoint.
	os.WriteFile(filepath.Join(dir, LastState), []byte("junk"), 0o644)
	if _, _, err := loadCheckpoint(dir); err == nil || errors.Is(err, errNoCheckpoint) {
		t.Errorf("junk state: %v, want an error other than errNoCheckpoint", err)
	}
}

// fakeGPU is a CUDA build's GPU that computes on the CPU, to move runs
// between devices in tests.
type fakeGPU struct{}

func (fakeGPU) GPUs() ([]backend.GPU, error) {
	return []backend.GPU{{Index: 0, Name: "Fake GPU"}}, nil
}

func (fakeGPU) Open(index int, cfg backend.Config) (backend.Backend, error) {
	b, err := backend.NewCPU(cfg)
	return onFakeGPU{b}, err
}

type onFakeGPU struct{ backend.Backend }

func (onFakeGPU) Device() backend.Device {
	return backend.Device{Kind: "cuda", ID: "cuda:0", Name: "Fake GPU"}
}

// TestResumeOnAnotherDevice starts a run on a (fake) GPU, interrupts it
// mid-epoch and resumes it on the CPU: the optimiser's state and the
// slow weights cross over, the change is logged and recorded, and the
// result is the uninterrupted run's.
func TestResumeOnAnotherDevice(t *testing.T) {
	old := backend.CUDA
	backend.CUDA = fakeGPU{}
	t.Cleanup(func() { backend.CUDA = old })
	const epochs = 2
	r := tinyFastRecipe(epochs) // lookahead: slow weights in the checkpoint
	ref, err := Train(context.Background(), options(t, r, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := ReadMetrics(ref.Dir)

	runs := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := options(t, tinyFastRecipe(epochs), runs)
	o.Device = "auto"
	log := &cancelOn{marker: fmt.Sprintf("epoch 2/%d: 256/512 images", epochs), cancel: cancel}
	o.Log = log
	if _, err := Train(ctx, o); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("interrupted run: %v\n%s", err, log.log.String())
	}
	dir := onlyRun(t, runs)
	if !strings.Contains(log.log.String(), "batches on cuda:0 (Fake GPU)\n") {
		t.Errorf("auto did not take the GPU:\n%s", log.log.String())
	}
	cfg, err := ReadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Device != "cuda:0" || cfg.DeviceName != "Fake GPU" {
		t.Fatalf("config.json device %q %q", cfg.Device, cfg.DeviceName)
	}
	if _, st, err := loadCheckpoint(dir); err != nil || !slices.Equal(st.Devices, []string{"cuda:0 (Fake GPU)"}) {
		t.Fatalf("checkpoint devices %v, %v", st.Devices, err)
	}

	var resumeLog bytes.Buffer
	if _, err := Train(context.Background(), Options{Resume: dir, Device: "cpu", Workers: 1, Log: &resumeLog}); err != nil {
		t.Fatal(err)
	}
	cpu := backend.CPUDevice().String()
	if want := "resuming on " + cpu + "; the run was trained on cuda:0 (Fake GPU) before\n"; !strings.Contains(resumeLog.String(), want) {
		t.Errorf("resume log lacks %q:\n%s", want, resumeLog.String())
	}
	got, _ := ReadMetrics(dir)
	sameMetrics(t, got, want)
	sameWeights(t, filepath.Join(dir, FinalFile), filepath.Join(ref.Dir, FinalFile))
	final, err := models.ReadFile(filepath.Join(dir, FinalFile))
	if err != nil {
		t.Fatal(err)
	}
	if d, want := final.Meta.Provenance.Device, "cuda:0 (Fake GPU), then "+cpu; d != want {
		t.Errorf("final.cnw provenance device %q, want %q", d, want)
	}
	if cfg, _ := ReadConfig(dir); cfg.Device != "cuda:0" {
		t.Errorf("resuming rewrote config.json's device to %q", cfg.Device)
	}
}

// TestMetricsWithoutValidation: a run without a validation set leaves the
// CSV's validation cells empty, and reads them back as NaN.
func TestMetricsWithoutValidation(t *testing.T) {
	dir := t.TempDir()
	m := EpochMetrics{Epoch: 1, TrainLoss: 1.5, TrainAcc: 0.4, ValLoss: math.NaN(), ValAcc: math.NaN(), LR: 0.1, EpochSeconds: 2, ImagesPerSecond: 100}
	if err := appendMetrics(dir, m); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "\n1,1.5,0.4,,,0.1,") || strings.Contains(string(data), "NaN") {
		t.Errorf("metrics.csv:\n%s", data)
	}
	got, err := ReadMetrics(dir)
	if err != nil || len(got) != 1 || !math.IsNaN(got[0].ValLoss) || !math.IsNaN(got[0].ValAcc) || got[0].TrainLoss != 1.5 {
		t.Errorf("read back %+v, %v", got, err)
	}
}

// TestResumeRefusedWhileRunning: a second trainer on a run folder that
// another process is training in stops at once and says why, touching
// nothing; once the folder is free, the resume works.
func TestResumeRefusedWhileRunning(t *testing.T) {
	runs := t.TempDir()
	if _, err := Train(context.Background(), options(t, tinyRecipe(1), runs)); err != nil {
		t.Fatal(err)
	}
	dir := onlyRun(t, runs)
	before, err := os.ReadFile(filepath.Join(dir, MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := lockRun(dir) // the other process
	if err != nil {
		t.Fatal(err)
	}
	_, err = Train(context.Background(), Options{Resume: dir, Epochs: 2, Workers: 1})
	if err == nil || !strings.Contains(err.Error(), "in use by another trainer process") {
		t.Fatalf("resume of a locked run: %v", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, MetricsFile))
	if !bytes.Equal(before, after) {
		t.Error("the refused resume changed metrics.csv")
	}
	unlock()
	res, err := Train(context.Background(), Options{Resume: dir, Epochs: 2, Workers: 1})
	if err != nil || res.Epochs != 2 {
		t.Fatalf("resume after the lock was released: %+v, %v", res, err)
	}
}
