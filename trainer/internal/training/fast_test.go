package training

import (
	"context"
	"flag"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/trainer/internal/nn"
	"github.com/cifarnet-go/cifarnet/trainer/internal/optim"
)

func TestFastRecipe(t *testing.T) {
	r, err := LoadRecipe("fast")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	// airbench94's hyperparameters, restated for a mean loss.
	kilostep := 1 + 1/(1-0.85)
	if r.Preset != "cifarnet-fast" || r.Batch != 1024 || r.Optimizer.Name != "sgd" || !r.Optimizer.Nesterov ||
		r.Optimizer.Momentum != 0.85 || math.Abs(r.Optimizer.LR-11.5/kilostep) > 1e-9 ||
		math.Abs(r.Optimizer.WeightDecay-0.0153/kilostep/r.Optimizer.LR) > 1e-7 ||
		r.LabelSmoothing != 0.2 || r.BatchNormMomentum != 0.4 || !r.BatchNormFreezeScale || r.BatchNormBiasLRScale != 64 ||
		math.Abs(r.HeadScale-1.0/9) > 1e-12 || !r.DiracInit || !r.DropLast ||
		r.Augment != (Augment{Flip: true, Translate: 2, AlternateFlip: true}) ||
		r.Whiten != (Whiten{Layer: "whiten", Images: 5000, Eps: 5e-4, Freeze: true, BiasEpochs: 3}) ||
		r.Averaging.Name != "lookahead" || r.Averaging.Every != 5 || math.Abs(r.Averaging.Decay-math.Pow(0.95, 5)) > 1e-9 || r.Averaging.Power != 3 ||
		r.Schedule.Name != "warmup_decay" || r.Schedule.StartFactor != 0.2 || r.Schedule.EndFactor != 0.07 ||
		math.Abs(r.Schedule.WarmupEpochs-0.23*float64(r.Epochs)) > 1e-9 ||
		!slices.Equal(r.Inference.TTA, []string{"flip", "translate"}) {
		t.Errorf("fast differs from airbench94: %+v", r)
	}
	// It trains on all 50000 images, as airbench does, so nothing may
	// watch a validation metric.
	if r.ValSplit != 0 || r.Checkpoint.Monitor != "train_loss" {
		t.Errorf("fast holds out %g for validation, checkpoints on %s", r.ValSplit, r.Checkpoint.Monitor)
	}
	r.Checkpoint.Monitor = "val_accuracy"
	if err := r.Validate(); err == nil || !strings.Contains(err.Error(), "needs a validation set") {
		t.Errorf("val_split 0 with a val_accuracy checkpoint: %v", err)
	}
}

func TestRecipeRejectsBadFastSettings(t *testing.T) {
	for _, c := range []struct {
		edit func(*Recipe)
		want string
	}{
		{func(r *Recipe) { r.Augment.Crop = 4 }, "exclude each other"},
		{func(r *Recipe) { r.Augment.Flip = false }, "alternate_flip needs"},
		{func(r *Recipe) { r.Augment.Translate = 17 }, "augment.translate"},
		{func(r *Recipe) { r.Whiten.Layer = "" }, "whiten.layer"},
		{func(r *Recipe) { r.Whiten.Eps = -1 }, "whiten.eps"},
		{func(r *Recipe) { r.Averaging.Name = "swa" }, "weight_averaging.name"},
		{func(r *Recipe) { r.Averaging.Every = 0 }, "weight_averaging.every"},
		{func(r *Recipe) { r.Averaging.Decay = 1 }, "weight_averaging.decay"},
		{func(r *Recipe) { r.Inference.TTA = []string{"rotate"} }, "inference.tta"},
		{func(r *Recipe) { r.HeadScale = -1 }, "head_scale"},
		{func(r *Recipe) { r.BatchNormBiasLRScale = -2 }, "batchnorm_bias_lr_scale"},
		{func(r *Recipe) {
			r.ValSplit = 0
			r.Checkpoint.Monitor = "train_loss"
			r.Schedule = Schedule{Name: "plateau", Monitor: "val_loss", Factor: 0.5}
		}, "lr_schedule monitor"},
	} {
		r, _ := LoadRecipe("fast")
		c.edit(r)
		if err := r.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want one mentioning %q", err, c.want)
		}
	}
}

func TestRecipeListFlag(t *testing.T) {
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o := RecipeFlags(fs)
	if err := fs.Parse([]string{"--inference-tta", "translate, flip", "--whiten-layer", "stem", "--weight-averaging-name", "ema", "--augment-translate", "3"}); err != nil {
		t.Fatal(err)
	}
	r, _ := LoadRecipe("fast")
	if err := o.Apply(r); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Inference.TTA, []string{"translate", "flip"}) || r.Whiten.Layer != "stem" || r.Averaging.Name != "ema" || r.Augment.Translate != 3 {
		t.Errorf("overrides not applied: %+v", r)
	}
	o = Overrides{"inference.tta": ""}
	if err := o.Apply(r); err != nil || r.Inference.TTA != nil {
		t.Errorf("--inference-tta '' gives %v (%v), want no augmentations", r.Inference.TTA, err)
	}
}

// TestLRScales checks airbench's parameter groups on cifarnet-fast with
// the fast recipe: frozen batchnorm scales and whitening weights, the
// whitening bias frozen after its epochs, batchnorm shifts at 64× and the
// head at (1/9)².
func TestLRScales(t *testing.T) {
	r, _ := LoadRecipe("fast")
	spec, _ := r.Architecture()
	net, err := nn.New(spec, 1)
	if err != nil {
		t.Fatal(err)
	}
	tr := &trainer{r: r, net: net}
	if err := tr.findHead(); err != nil {
		t.Fatal(err)
	}
	for _, epoch := range []int{1, 3, 4} {
		sc := tr.lrScales(epoch)
		got := map[string]float64{}
		for i, p := range net.Trainable() {
			got[p.Name] = sc[i]
		}
		whitenBias := 1.0
		if epoch > 3 {
			whitenBias = 0
		}
		for name, want := range map[string]float64{
			"whiten.weight": 0, "whiten.bias": whitenBias, "group1.conv1.weight": 1, "group3.conv2.weight": 1,
			"group1.bn1.weight": 0, "group2.bn2.bias": 64, "fc.weight": 1.0 / 81,
		} {
			if math.Abs(got[name]-want) > 1e-12 {
				t.Errorf("epoch %d: %s scale %g, want %g", epoch, name, got[name], want)
			}
		}
	}
	r.Optimizer = optim.Config{Name: "adamw", LR: 1e-3}
	if got := tr.lrScales(1)[len(net.Trainable())-1]; math.Abs(got-1.0/9) > 1e-12 {
		t.Errorf("adamw head scale %g, want 1/9: Adam's steps do not grow with the gradient", got)
	}
	plain := &trainer{r: tinyRecipe(1), net: net}
	if sc := plain.lrScales(1); sc != nil {
		t.Errorf("recipe without groups gives scales %v, want nil", sc)
	}
}

// tinyFastRecipe is the fast recipe on a small airbench-shaped network
// (whitening stem, pool, conv-pool-batchnorm-GELU, bias-free head), 560 training
// images of which drop_last leaves 512, in batches of 64.
func tinyFastRecipe(epochs int) *Recipe {
	r, _ := LoadRecipe("fast")
	r.Name, r.Preset = "tinyfast", ""
	r.Spec = &models.Spec{
		Name:  "tinyfast",
		Input: models.Shape{C: 3, H: 32, W: 32},
		Layers: []models.Layer{
			{Name: "whiten", Type: models.Conv2D, Filters: 24, Kernel: 2, Bias: true},
			{Name: "whiten_act", Type: models.GELU},
			{Name: "pool0", Type: models.MaxPool, Kernel: 2},
			{Name: "conv1", Type: models.Conv2D, Filters: 16, Kernel: 3, Padding: 1},
			{Name: "pool1", Type: models.MaxPool, Kernel: 2},
			{Name: "bn1", Type: models.BatchNorm, Eps: 1e-12},
			{Name: "act1", Type: models.GELU},
			{Name: "conv2", Type: models.Conv2D, Filters: 32, Kernel: 3, Padding: 1},
			{Name: "pool2", Type: models.MaxPool, Kernel: 2},
			{Name: "bn2", Type: models.BatchNorm, Eps: 1e-12},
			{Name: "act2", Type: models.GELU},
			{Name: "gap", Type: models.GlobalAvgPool},
			{Name: "fc", Type: models.Linear, Units: 10},
			{Name: "softmax", Type: models.Softmax},
		},
	}
	r.Epochs, r.Batch, r.Limit = epochs, 64, 700
	// A validation set, to check the TTA accuracy measured on it.
	r.ValSplit, r.Checkpoint.Monitor = 0.2, "val_accuracy"
	r.Optimizer.LR = 2
	r.Whiten.BiasEpochs = 1
	r.Schedule.WarmupEpochs = 0.5
	r.Averaging.Every = 3
	return r
}

// cancelOn is a log that cancels a context when a line contains marker.
type cancelOn struct {
	mu     sync.Mutex
	marker string
	cancel context.CancelFunc
	log    strings.Builder
}

func (c *cancelOn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if strings.Contains(string(p), c.marker) {
		c.cancel()
	}
	return c.log.Write(p)
}

// TestFastTrainingTiny trains the tiny fast recipe and checks what the
// recipe promises: it learns, the files carry the TTA hint, γ stays 1 and
// the whitening weights fixed, final.cnw is measured with TTA; and a run
// interrupted mid-epoch resumes to the same result, lookahead included.
func TestFastTrainingTiny(t *testing.T) {
	const epochs = 3
	runs := t.TempDir()
	res, err := Train(context.Background(), options(t, tinyFastRecipe(epochs), runs))
	if err != nil {
		t.Fatal(err)
	}
	want, err := ReadMetrics(res.Dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range want {
		t.Logf("%+v", m)
	}
	if len(want) != epochs || !(want[epochs-1].TrainLoss < want[0].TrainLoss) {
		t.Errorf("training loss did not fall: %+v", want)
	}
	if want[epochs-1].ValAcc < 0.2 {
		t.Errorf("validation accuracy %.3f after %d epochs, want ≥ 0.2", want[epochs-1].ValAcc, epochs)
	}
	if res.ValTTAAccuracy < 0.2 || res.ValTTAAccuracy > 1 {
		t.Errorf("validation accuracy with TTA %g", res.ValTTAAccuracy)
	}
	files := map[string]*models.File{}
	for _, name := range []string{BestFile, FinalFile, LastWeights} {
		f, err := models.ReadFile(filepath.Join(res.Dir, name))
		if err != nil {
			t.Fatal(err)
		}
		files[name] = f
		if !slices.Equal(f.Meta.Inference.TTA, []string{"flip", "translate"}) {
			t.Errorf("%s: inference.tta %v", name, f.Meta.Inference.TTA)
		}
		for _, bn := range []string{"bn1.weight", "bn2.weight"} {
			for _, g := range f.Tensors[bn].Data {
				if g != 1 {
					t.Fatalf("%s: %s holds %g, want frozen at 1", name, bn, g)
				}
			}
		}
		w := f.Tensors["whiten.weight"].Data
		for i := range 144 {
			if w[144+i] != -w[i] {
				t.Fatalf("%s: whitening filters are not ± pairs", name)
			}
		}
	}
	if !slices.Equal(files[BestFile].Tensors["whiten.weight"].Data, files[FinalFile].Tensors["whiten.weight"].Data) {
		t.Error("frozen whitening weights changed")
	}
	if n := files[FinalFile].Meta.Provenance.Notes; !strings.Contains(n, "test-time augmentation") {
		t.Errorf("final.cnw notes %q do not give the TTA accuracy", n)
	}

	// Interrupt in epoch 2 and resume.
	runs2 := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := options(t, tinyFastRecipe(epochs), runs2)
	log := &cancelOn{marker: "epoch 2/3: 256/512 images", cancel: cancel}
	o.Log = log
	if _, err := Train(ctx, o); err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("interrupted run: %v\n%s", err, log.log.String())
	}
	dir := onlyRun(t, runs2)
	if _, st, err := loadCheckpoint(dir); err != nil || st.Epoch != 1 || st.Batches != 4 || st.Slow == nil {
		t.Fatalf("checkpoint after the interruption: %+v, %v; want 4 batches into epoch 2 with slow weights", st, err)
	}
	if _, err := Train(context.Background(), Options{Resume: dir, Workers: 1}); err != nil {
		t.Fatal(err)
	}
	got, err := ReadMetrics(dir)
	if err != nil {
		t.Fatal(err)
	}
	sameMetrics(t, got, want)
	sameWeights(t, filepath.Join(dir, FinalFile), filepath.Join(res.Dir, FinalFile))
	sameWeights(t, filepath.Join(dir, BestFile), filepath.Join(res.Dir, BestFile))
}

// TestTrainWithoutValidation trains on every image (val_split 0), as
// airbench does: validation metrics are NaN and no TTA is measured.
func TestTrainWithoutValidation(t *testing.T) {
	r := tinyFastRecipe(1)
	r.ValSplit, r.Checkpoint.Monitor, r.Limit = 0, "train_loss", 600
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	res, err := Train(context.Background(), options(t, r, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	m, err := ReadMetrics(res.Dir)
	if err != nil || len(m) != 1 {
		t.Fatalf("metrics %+v, %v", m, err)
	}
	if !math.IsNaN(m[0].ValAcc) || !math.IsNaN(m[0].ValLoss) || math.IsNaN(m[0].TrainLoss) {
		t.Errorf("metrics %+v: want NaN validation metrics only", m[0])
	}
	if m[0].ImagesPerSecond <= 0 || res.ValTTAAccuracy != 0 {
		t.Errorf("result %+v", res)
	}
	for _, name := range []string{BestFile, FinalFile} {
		if _, err := os.Stat(filepath.Join(res.Dir, name)); err != nil {
			t.Error(err)
		}
	}
}
