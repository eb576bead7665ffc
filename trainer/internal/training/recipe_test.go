package training

import (
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/trainer/recipes"
)

func TestBuiltInRecipesAreValid(t *testing.T) {
	names := recipes.Names()
	if len(names) < 2 {
		t.Fatalf("recipes %v: want keras-reference and pytorch-reference at least", names)
	}
	for _, name := range names {
		r, err := LoadRecipe(name)
		if err != nil {
			t.Fatal(err)
		}
		if r.Name != name {
			t.Errorf("recipe file %s.json names itself %q", name, r.Name)
		}
		if r.Preset == "" && r.Spec == nil {
			// A fine-tuning recipe: it must refuse to run without --init,
			// and Train gives it the init file's network.
			if err := r.Validate(); err == nil || !strings.Contains(err.Error(), "--init") {
				t.Errorf("%s without a network: %v", name, err)
			}
			spec, _ := models.Preset("cifarnet-fast")
			r.Spec = spec
		}
		if err := r.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	k, _ := LoadRecipe("keras-reference")
	if k.Preset != "keras-cnn" || k.Optimizer.Name != "adam" || k.Optimizer.LR != 1e-3 || k.Batch != 128 ||
		k.Epochs != 100 || k.EarlyStopping.Patience != 10 || !k.EarlyStopping.RestoreBest ||
		k.Schedule.Factor != 0.2 || k.Schedule.Patience != 5 || k.Schedule.MinLR != 1e-6 ||
		k.Checkpoint.Monitor != "val_accuracy" || k.Augment.Crop != 0 || k.Augment.Flip || k.ValSplit != 0.2 || k.SplitSeed != 42 {
		t.Errorf("keras-reference differs from the Keras reference: %+v", k)
	}
	p, _ := LoadRecipe("pytorch-reference")
	if p.Preset != "cifarnet" || p.Optimizer.Name != "adamw" || p.Optimizer.WeightDecay != 1e-4 || p.Epochs != 128 ||
		p.GradClip != 1 || p.Schedule.Factor != 0.5 || p.Schedule.Patience != 3 || p.Augment.Crop != 4 || !p.Augment.Flip {
		t.Errorf("pytorch-reference differs from the PyTorch reference: %+v", p)
	}
}

func TestRecipeRejectsUnknownKeysAndBadValues(t *testing.T) {
	good := `{"name":"x","preset":"keras-cnn","epochs":1,"batch":8,"val_split":0.2,
		"optimizer":{"name":"adam","lr":0.001},"lr_schedule":{"name":"none"},"checkpoint":{"monitor":"val_accuracy"}}`
	r, err := ParseRecipe([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{
		strings.Replace(good, `"epochs"`, `"epochz"`, 1),
		strings.Replace(good, `"lr":0.001`, `"lr":0.001,"momentun":0.9`, 1),
		good + `{}`,
	} {
		if _, err := ParseRecipe([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
	for _, c := range []struct{ from, to, want string }{
		{`"keras-cnn"`, `"nope"`, "unknown preset"},
		{`"epochs":1`, `"epochs":0`, "epochs"},
		{`"val_split":0.2`, `"val_split":1`, "val_split"},
		{`"name":"none"`, `"name":"cyclic"`, "lr_schedule.name"},
		{`"monitor":"val_accuracy"`, `"monitor":"val_acc"`, "checkpoint monitor"},
		{`"name":"adam"`, `"name":"adagrad"`, "optimizer"},
	} {
		r, err := ParseRecipe([]byte(strings.Replace(good, c.from, c.to, 1)))
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s → %s: error %v, want one mentioning %q", c.from, c.to, err, c.want)
		}
	}
}

func TestRecipeFlagsOverrideEveryField(t *testing.T) {
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o := RecipeFlags(fs)
	paths, _ := recipeFields()
	for _, p := range paths {
		if fs.Lookup(flagName(p)) == nil {
			t.Errorf("no flag for recipe field %s", p)
		}
	}
	err := fs.Parse([]string{"--epochs", "7", "--lr", "0.05", "--augment-flip", "--lr-schedule-min-lr", "1e-5",
		"--preset", "cifarnet", "--seed", "9", "--val-split", "0.1", "--optimizer-nesterov=true", "--optimizer", "sgd"})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := LoadRecipe("keras-reference")
	if err := o.Apply(r); err != nil {
		t.Fatal(err)
	}
	if r.Epochs != 7 || r.Optimizer.LR != 0.05 || !r.Augment.Flip || r.Schedule.MinLR != 1e-5 || r.Preset != "cifarnet" ||
		r.Seed != 9 || r.ValSplit != 0.1 || !r.Optimizer.Nesterov || r.Optimizer.Name != "sgd" {
		t.Errorf("overrides not applied: %+v", r)
	}
	if err := fs.Parse([]string{"--epochs", "many"}); err == nil {
		t.Error("--epochs many accepted")
	}
}

// TestEpochsScaleTheSchedule: --epochs keeps the recipe's shape (warm-up
// and whitening-bias epochs scale with it) unless those are set too, and
// a field out of range names the flag that sets it.
func TestEpochsScaleTheSchedule(t *testing.T) {
	for _, c := range []struct {
		o      Overrides
		warmup float64
		bias   int
	}{
		{Overrides{"epochs": "1"}, 0.23, 1},
		{Overrides{"epochs": "20"}, 4.6, 6},
		{Overrides{"epochs": "20", "lr_schedule.warmup_epochs": "1", "whiten.bias_epochs": "2"}, 1, 2},
		{Overrides{"seed": "2"}, 2.3, 3},
	} {
		r, err := LoadRecipe("fast")
		if err != nil {
			t.Fatal(err)
		}
		if err := c.o.Apply(r); err != nil {
			t.Fatal(err)
		}
		if r.Schedule.WarmupEpochs != c.warmup || r.Whiten.BiasEpochs != c.bias {
			t.Errorf("%v: warm-up %g epochs, bias %d, want %g and %d", c.o, r.Schedule.WarmupEpochs, r.Whiten.BiasEpochs, c.warmup, c.bias)
		}
		if err := r.Validate(); err != nil {
			t.Errorf("%v: %v", c.o, err)
		}
	}
	r, _ := LoadRecipe("fast")
	if err := (Overrides{"epochs": "2", "lr_schedule.warmup_epochs": "3"}).Apply(r); err != nil {
		t.Fatal(err)
	}
	err := r.Validate()
	if err == nil || !strings.Contains(err.Error(), "(flag --lr-schedule-warmup-epochs)") {
		t.Errorf("warm-up longer than the run: %v", err)
	}
}
