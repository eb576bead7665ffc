package training

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/trainer/internal/cifar"
	"github.com/cifarnet-go/cifarnet/trainer/internal/optim"
	"github.com/cifarnet-go/cifarnet/trainer/recipes"
)

// Recipe is everything that determines a training run's result. Recipes
// are JSON files; every field can be overridden on the command line by a
// flag named after its JSON path (see RecipeFlags).
type Recipe struct {
	Name        string `json:"name" help:"recipe name, used in the run folder's name"`
	Description string `json:"description,omitempty" help:"what the recipe is for"`
	Preset      string `json:"preset,omitempty" help:"architecture preset (keras-cnn, cifarnet, cifarnet-fast)"`
	// Spec is an architecture given inline instead of a preset.
	Spec   *models.Spec `json:"spec,omitempty"`
	Epochs int          `json:"epochs" help:"number of epochs (the maximum with early stopping)"`
	Batch  int          `json:"batch" help:"mini-batch size"`
	// Limit keeps the first Limit images of the CIFAR-10 training files
	// (before the validation split); 0 keeps all. For quick trials.
	Limit     int     `json:"limit" help:"train and validate on the first N training images only (0: all)"`
	ValSplit  float64 `json:"val_split" help:"fraction of the training images held out for validation (stratified)"`
	SplitSeed int64   `json:"split_seed" help:"seed of the validation split"`
	Seed      int64   `json:"seed" help:"seed of initialisation, shuffling, augmentation and dropout"`

	// DropLast skips the last, short batch of each epoch.
	DropLast bool `json:"drop_last,omitempty" help:"skip the last batch of each epoch when it is short"`

	Augment           Augment      `json:"augment"`
	Optimizer         optim.Config `json:"optimizer"`
	LabelSmoothing    float64      `json:"label_smoothing" help:"label smoothing ε of the cross-entropy"`
	BatchNormMomentum float64      `json:"batchnorm_momentum" help:"batchnorm running-statistics momentum, PyTorch convention (Keras 0.99 = 0.01)"`
	// BatchNormFrozen trains with the running statistics (as evaluation
	// normalises) and keeps them: fine-tuning on a few images of a few
	// classes, whose batch statistics are not the data's.
	BatchNormFrozen bool `json:"batchnorm_frozen,omitempty" help:"normalise with the running statistics while training and keep them (fine-tuning)"`
	// BatchNormFreezeScale keeps every batchnorm γ at its initial 1; the
	// weight files still hold the γ tensors, so inference is unchanged.
	BatchNormFreezeScale bool    `json:"batchnorm_freeze_scale,omitempty" help:"keep batchnorm scales (γ) at 1 and train only the shifts (β), as airbench"`
	BatchNormBiasLRScale float64 `json:"batchnorm_bias_lr_scale,omitempty" help:"learning-rate multiplier of the batchnorm shifts (β), not of their weight decay (airbench: 64; 0 means 1)"`
	GradClip             float64 `json:"grad_clip" help:"clip gradients to this global L2 norm (0: off)"`

	// DiracInit and HeadScale shape the initialisation; Whiten initialises
	// a patch-whitening stem from the data.
	DiracInit bool    `json:"dirac_init,omitempty" help:"start every convolution as an identity map on its first channels (torch dirac_, as airbench)"`
	HeadScale float64 `json:"head_scale,omitempty" help:"multiply the logits by this factor (airbench: 1/9), folded into the last linear layer: its initial weights are multiplied by it and its learning rate by its square (sgd) or by it (adam, adamw), which trains the same function (0 means 1)"`
	Whiten    Whiten  `json:"whiten,omitzero"`

	Schedule      Schedule   `json:"lr_schedule"`
	Averaging     Averaging  `json:"weight_averaging,omitzero"`
	EarlyStopping EarlyStop  `json:"early_stopping"`
	Checkpoint    Checkpoint `json:"checkpoint"`
	Inference     Inference  `json:"inference,omitzero"`
}

// Whiten initialises a convolution as airbench's patch-whitening stem: its
// weights come from the eigen-decomposition of the covariance of the
// training images' patches (see nn.PatchStats.Whitening).
type Whiten struct {
	Layer      string  `json:"layer,omitempty" help:"conv layer initialised as a patch-whitening stem from the training images (empty: off)"`
	Images     int     `json:"images,omitempty" help:"whiten: first N training images whose patches give the covariance (0: all)"`
	Eps        float64 `json:"eps,omitempty" help:"whiten: added to the eigenvalues before the inverse square root (airbench: 5e-4)"`
	Freeze     bool    `json:"freeze,omitempty" help:"whiten: keep the stem's weights fixed"`
	BiasEpochs int     `json:"bias_epochs,omitempty" help:"whiten: train the stem's bias for this many epochs, then freeze it (0: train it throughout)"`
}

// Averaging keeps a slow copy of all weights (batchnorm statistics
// included) that best.cnw and final.cnw hold. Every Every steps the slow
// weights move towards the trained ones, slow ← d·slow + (1−d)·fast with
// d = Decay·(step/total)^Power; "lookahead" then resets the trained
// weights to the slow ones (airbench), "ema" leaves them.
type Averaging struct {
	Name  string  `json:"name,omitempty" help:"weight averaging: none, lookahead or ema; best.cnw and final.cnw hold the averaged weights"`
	Every int     `json:"every,omitempty" help:"weight_averaging: steps between updates"`
	Decay float64 `json:"decay,omitempty" help:"weight_averaging: decay of the slow weights at the end of training (airbench: 0.95^5)"`
	Power float64 `json:"power,omitempty" help:"weight_averaging: the decay grows as decay·(step/total steps)^power (airbench: 3)"`
}

// Inference holds the hints written into the weight files' metadata.
type Inference struct {
	TTA []string `json:"tta,omitempty" help:"test-time augmentations recorded in the weight files and measured on the validation set at the end: flip, translate (comma-separated)"`
}

// Augment selects the training augmentations.
type Augment struct {
	Crop          int  `json:"crop" help:"pad-and-random-crop padding in pixels (0: off)"`
	Flip          bool `json:"flip" help:"random horizontal flips"`
	Translate     int  `json:"translate,omitempty" help:"random translation by up to N pixels with reflect padding (airbench: 2; 0: off; excludes crop)"`
	AlternateFlip bool `json:"alternate_flip,omitempty" help:"with flip: mirror each image in every other epoch instead of at random (airbench)"`
	JPEG          JPEG `json:"jpeg,omitzero"`
}

// JPEG re-encodes training images as JPEG at a random quality before the
// other augmentations, so that the network does not depend on the
// artefacts of the quality-75 training copy (see cifar.JPEGAugment).
type JPEG struct {
	Prob       float64 `json:"prob,omitempty" help:"augment.jpeg: share of the training images re-encoded as JPEG at a random quality (0: off)"`
	MinQuality int     `json:"min_quality,omitempty" help:"augment.jpeg: lowest quality, 1..100"`
	MaxQuality int     `json:"max_quality,omitempty" help:"augment.jpeg: highest quality, 1..100"`
}

// cifar is the loader's form of the JPEG augmentation.
func (j JPEG) cifar() cifar.JPEGAugment {
	return cifar.JPEGAugment{Prob: j.Prob, MinQuality: j.MinQuality, MaxQuality: j.MaxQuality}
}

// Schedule is the learning-rate schedule: "none", "plateau"
// (ReduceLROnPlateau, once per epoch) or "warmup_decay" (one-cycle, per
// step).
type Schedule struct {
	Name string `json:"name" help:"learning-rate schedule: none, plateau or warmup_decay"`
	// plateau
	Monitor  string  `json:"monitor,omitempty" help:"plateau: metric watched (val_loss, val_accuracy, train_loss, train_accuracy)"`
	Factor   float64 `json:"factor,omitempty" help:"plateau: factor the learning rate is multiplied by"`
	Patience int     `json:"patience,omitempty" help:"plateau: epochs without improvement before reducing"`
	MinLR    float64 `json:"min_lr,omitempty" help:"plateau: lower bound of the learning rate"`
	// warmup_decay
	WarmupEpochs float64 `json:"warmup_epochs,omitempty" help:"warmup_decay: epochs of linear warm-up"`
	StartFactor  float64 `json:"start_factor,omitempty" help:"warmup_decay: initial learning rate as a fraction of the peak"`
	EndFactor    float64 `json:"end_factor,omitempty" help:"warmup_decay: final learning rate as a fraction of the peak"`
	Cosine       bool    `json:"cosine,omitempty" help:"warmup_decay: decay along a half cosine instead of linearly"`
}

// EarlyStop configures early stopping; Patience 0 turns it off.
type EarlyStop struct {
	Monitor     string  `json:"monitor,omitempty" help:"early stopping: metric watched"`
	Patience    int     `json:"patience" help:"early stopping: epochs without improvement before stopping (0: off)"`
	MinDelta    float64 `json:"min_delta,omitempty" help:"early stopping: smallest change that counts as an improvement"`
	RestoreBest bool    `json:"restore_best,omitempty" help:"early stopping: final.cnw gets the weights of the best epoch"`
}

// Checkpoint selects the metric best.cnw is kept for.
type Checkpoint struct {
	Monitor string `json:"monitor" help:"metric that selects the best checkpoint"`
}

// Metrics that schedules, early stopping and checkpoints may watch.
var metricNames = []string{"val_loss", "val_accuracy", "train_loss", "train_accuracy"}

func checkMetric(what, m string, haveVal bool) error {
	if !slices.Contains(metricNames, m) {
		return fmt.Errorf("%s monitor %q: want one of %s", what, m, strings.Join(metricNames, ", "))
	}
	if !haveVal && strings.HasPrefix(m, "val_") {
		return fmt.Errorf("%s monitor %q needs a validation set; with val_split 0 watch train_loss or train_accuracy", what, m)
	}
	return nil
}

// Validate checks the recipe.
func (r *Recipe) Validate() error {
	if r.Name == "" || strings.ContainsAny(r.Name, `/\ `) {
		return fmt.Errorf("recipe name %q: must be non-empty, without slashes or spaces", r.Name)
	}
	if _, err := r.Architecture(); err != nil {
		return fmt.Errorf("recipe %s: %w", r.Name, err)
	}
	var errs []error
	check := func(ok bool, format string, a ...any) {
		if !ok {
			errs = append(errs, withFlag(fmt.Errorf(format, a...)))
		}
	}
	check(r.Epochs > 0, "epochs %d: must be positive", r.Epochs)
	check(r.Batch > 0, "batch %d: must be positive", r.Batch)
	check(r.Limit >= 0, "limit %d: must not be negative", r.Limit)
	check(r.ValSplit >= 0 && r.ValSplit < 1, "val_split %g: must be in [0, 1)", r.ValSplit)
	check(r.Augment.Crop >= 0 && r.Augment.Crop <= 16, "augment.crop %d: must be in 0..16", r.Augment.Crop)
	check(r.Augment.Translate >= 0 && r.Augment.Translate <= 16, "augment.translate %d: must be in 0..16", r.Augment.Translate)
	check(r.Augment.Crop == 0 || r.Augment.Translate == 0, "augment.crop and augment.translate exclude each other")
	check(!r.Augment.AlternateFlip || r.Augment.Flip, "augment.alternate_flip needs augment.flip")
	jpegErr := r.Augment.JPEG.cifar().Validate()
	check(jpegErr == nil, "augment.%v", jpegErr)
	check(r.BatchNormBiasLRScale >= 0, "batchnorm_bias_lr_scale %g: must not be negative", r.BatchNormBiasLRScale)
	check(r.HeadScale >= 0, "head_scale %g: must not be negative", r.HeadScale)
	if w := r.Whiten; w != (Whiten{}) {
		check(w.Layer != "", "whiten settings need whiten.layer")
		check(w.Images >= 0, "whiten.images %d: must not be negative", w.Images)
		check(w.Eps >= 0, "whiten.eps %g: must not be negative", w.Eps)
		check(w.BiasEpochs >= 0, "whiten.bias_epochs %d: must not be negative", w.BiasEpochs)
	}
	switch a := r.Averaging; a.Name {
	case "", "none":
	case "lookahead", "ema":
		check(a.Every >= 1, "weight_averaging.every %d: must be at least 1", a.Every)
		check(a.Decay >= 0 && a.Decay < 1, "weight_averaging.decay %g: must be in [0, 1)", a.Decay)
		check(a.Power >= 0, "weight_averaging.power %g: must not be negative", a.Power)
	default:
		errs = append(errs, fmt.Errorf("weight_averaging.name %q: want none, lookahead or ema", a.Name))
	}
	for _, tta := range r.Inference.TTA {
		check(tta == models.TTAFlip || tta == models.TTATranslate, "inference.tta %q: want %s or %s", tta, models.TTAFlip, models.TTATranslate)
	}
	check(r.LabelSmoothing >= 0 && r.LabelSmoothing < 1, "label_smoothing %g: must be in [0, 1)", r.LabelSmoothing)
	check(r.BatchNormMomentum >= 0 && r.BatchNormMomentum <= 1, "batchnorm_momentum %g: must be in [0, 1]", r.BatchNormMomentum)
	check(r.GradClip >= 0, "grad_clip %g: must not be negative", r.GradClip)
	if err := r.Optimizer.Validate(); err != nil {
		errs = append(errs, err)
	}
	switch s := r.Schedule; s.Name {
	case "none":
	case "plateau":
		if err := checkMetric("lr_schedule", s.Monitor, r.ValSplit > 0); err != nil {
			errs = append(errs, err)
		} else if _, err := optim.NewPlateau(optim.ModeFor(s.Monitor), s.Factor, s.Patience, s.MinLR); err != nil {
			errs = append(errs, err)
		}
	case "warmup_decay":
		check(s.WarmupEpochs >= 0 && s.WarmupEpochs <= float64(r.Epochs), "lr_schedule.warmup_epochs %g: must be in [0, epochs]", s.WarmupEpochs)
		check(s.StartFactor >= 0 && s.EndFactor >= 0, "lr_schedule factors must not be negative")
	default:
		errs = append(errs, fmt.Errorf("lr_schedule.name %q: want none, plateau or warmup_decay", s.Name))
	}
	if e := r.EarlyStopping; e.Patience != 0 {
		check(e.Patience > 0, "early_stopping.patience %d: must not be negative", e.Patience)
		check(e.MinDelta >= 0, "early_stopping.min_delta %g: must not be negative", e.MinDelta)
		if err := checkMetric("early_stopping", e.Monitor, r.ValSplit > 0); err != nil {
			errs = append(errs, err)
		}
	}
	if err := checkMetric("checkpoint", r.Checkpoint.Monitor, r.ValSplit > 0); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("recipe %s: %w", r.Name, err)
	}
	return nil
}

// withFlag names the command-line flag that sets the recipe field an
// error starts with ("lr_schedule.warmup_epochs 2.3: …"), so that the
// message says how to fix it.
func withFlag(err error) error {
	path, _, _ := strings.Cut(err.Error(), " ")
	paths, _ := recipeFields()
	if !slices.Contains(paths, path) {
		return err
	}
	return fmt.Errorf("%w (flag --%s)", err, flagName(path))
}

// CheckInit reports whether the recipe can train the network of an init
// weight file: it must name no network of its own.
func (r *Recipe) CheckInit() error {
	if r.Preset != "" || r.Spec != nil {
		return fmt.Errorf("recipe %s names a network; with --init the network is the weight file's: use a fine-tuning recipe such as finetune", r.Name)
	}
	return nil
}

// Architecture returns the recipe's network: the inline spec or the
// preset. It must take a 3×32×32 image to class scores.
func (r *Recipe) Architecture() (*models.Spec, error) {
	var spec *models.Spec
	switch {
	case r.Spec != nil && r.Preset != "":
		return nil, errors.New("give preset or spec, not both")
	case r.Spec != nil:
		s := *r.Spec
		s.Layers = slices.Clone(r.Spec.Layers)
		spec = &s
	case r.Preset == "":
		return nil, errors.New("no preset or spec (a fine-tuning recipe trains the network of --init)")
	default:
		var err error
		if spec, err = models.Preset(r.Preset); err != nil {
			return nil, err
		}
	}
	out, err := spec.Output()
	if err != nil {
		return nil, err
	}
	// The class count is checked against the data when it is loaded.
	if spec.Input != (models.Shape{C: 3, H: 32, W: 32}) || out.H != 1 || out.W != 1 || out.C < 2 {
		return nil, fmt.Errorf("architecture %q maps %v to %v; the trainer needs 3×32×32 to N×1×1 class scores", spec.Name, spec.Input, out)
	}
	return spec, nil
}

// ParseRecipe decodes a recipe strictly: unknown keys and trailing data
// are errors. It does not validate.
func ParseRecipe(data []byte) (*Recipe, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var r Recipe
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("parse recipe: %w", err)
	}
	if dec.More() {
		return nil, errors.New("parse recipe: data after the recipe object")
	}
	return &r, nil
}

// LoadRecipe returns the embedded recipe of that name, or reads the recipe
// file at that path when it ends in .json or contains a path separator.
func LoadRecipe(nameOrPath string) (*Recipe, error) {
	var data []byte
	var err error
	if strings.HasSuffix(nameOrPath, ".json") || strings.ContainsRune(nameOrPath, os.PathSeparator) {
		data, err = os.ReadFile(nameOrPath)
	} else {
		data, err = recipes.Get(nameOrPath)
	}
	if err != nil {
		return nil, err
	}
	r, err := ParseRecipe(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", nameOrPath, err)
	}
	return r, nil
}

// Overrides are recipe fields set on the command line, by JSON path
// ("optimizer.lr"), as given.
type Overrides map[string]string

// flagAliases are short names for common overrides.
var flagAliases = map[string]string{
	"lr":           "optimizer.lr",
	"weight-decay": "optimizer.weight_decay",
	"optimizer":    "optimizer.name",
}

// recipeFields lists the JSON paths of Recipe's leaf fields with their
// help text.
func recipeFields() (paths []string, help map[string]string) {
	help = map[string]string{}
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" {
				continue
			}
			path := prefix + name
			if f.Type.Kind() == reflect.Pointer {
				continue // the inline spec has no flags
			}
			if f.Type.Kind() == reflect.Struct {
				walk(f.Type, path+".")
				continue
			}
			paths = append(paths, path)
			help[path] = f.Tag.Get("help")
		}
	}
	walk(reflect.TypeOf(Recipe{}), "")
	return paths, help
}

// optimizerHelp documents optim.Config's fields, which carry no help tags.
var optimizerHelp = map[string]string{
	"optimizer.name":         "optimizer: adam, adamw or sgd",
	"optimizer.lr":           "learning rate (the peak for warmup_decay)",
	"optimizer.weight_decay": "weight decay (L2 for adam and sgd, decoupled for adamw)",
	"optimizer.beta1":        "adam: β1 (default 0.9)",
	"optimizer.beta2":        "adam: β2 (default 0.999)",
	"optimizer.eps":          "adam: ε (default 1e-8)",
	"optimizer.momentum":     "sgd: momentum",
	"optimizer.nesterov":     "sgd: Nesterov momentum",
}

// flagName is the command-line flag of a recipe path: "lr_schedule.min_lr"
// is --lr-schedule-min-lr.
func flagName(path string) string {
	return strings.NewReplacer(".", "-", "_", "-").Replace(path)
}

// RecipeFlags defines one flag per recipe field (and the aliases --lr,
// --weight-decay and --optimizer) on fs; the values given are collected
// into the returned Overrides when fs is parsed.
func RecipeFlags(fs *flag.FlagSet) Overrides {
	o := Overrides{}
	paths, help := recipeFields()
	for _, p := range paths {
		h := help[p]
		if h == "" {
			h = optimizerHelp[p]
		}
		fs.Var(newOverrideValue(o, p), flagName(p), h)
	}
	for alias, p := range flagAliases {
		fs.Var(newOverrideValue(o, p), alias, "same as --"+flagName(p))
	}
	return o
}

// newOverrideValue returns the flag.Value of a recipe field: a boolean
// flag for boolean fields.
func newOverrideValue(o Overrides, path string) flag.Value {
	v := overrideValue{o, path}
	if f, ok := fieldByPath(reflect.ValueOf(&Recipe{}).Elem(), path); ok && f.Kind() == reflect.Bool {
		return boolOverrideValue{v}
	}
	return v
}

type overrideValue struct {
	o    Overrides
	path string
}

type boolOverrideValue struct{ overrideValue }

func (boolOverrideValue) IsBoolFlag() bool { return true }

func (v overrideValue) String() string { return "" }
func (v overrideValue) Set(s string) error {
	// Check the value now so the error names the flag.
	r := &Recipe{}
	if err := setPath(r, v.path, s); err != nil {
		return err
	}
	v.o[v.path] = s
	return nil
}

// Apply sets the overridden fields of r. When it changes the number of
// epochs, the parts of the recipe counted in epochs (the learning-rate
// warm-up, the whitening bias's training) scale with it unless they are
// overridden too, so that --epochs keeps the recipe's shape.
func (o Overrides) Apply(r *Recipe) error {
	paths := make([]string, 0, len(o))
	for p := range o {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	epochs := r.Epochs
	for _, p := range paths {
		if err := setPath(r, p, o[p]); err != nil {
			return fmt.Errorf("--%s: %w", flagName(p), err)
		}
	}
	if _, set := o["epochs"]; set && epochs > 0 && r.Epochs > 0 && r.Epochs != epochs {
		f := float64(r.Epochs) / float64(epochs)
		if _, set := o["lr_schedule.warmup_epochs"]; !set && r.Schedule.WarmupEpochs > 0 {
			r.Schedule.WarmupEpochs = math.Round(r.Schedule.WarmupEpochs*f*100) / 100
		}
		if _, set := o["whiten.bias_epochs"]; !set && r.Whiten.BiasEpochs > 0 {
			// At least one epoch: 0 would mean "train it throughout".
			r.Whiten.BiasEpochs = min(r.Epochs, max(1, int(math.Round(float64(r.Whiten.BiasEpochs)*f))))
		}
	}
	return nil
}

func fieldByPath(v reflect.Value, path string) (reflect.Value, bool) {
	for _, name := range strings.Split(path, ".") {
		t := v.Type()
		found := false
		for i := range t.NumField() {
			if n, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); n == name {
				v, found = v.Field(i), true
				break
			}
		}
		if !found {
			return reflect.Value{}, false
		}
	}
	return v, true
}

// setPath parses s into the recipe field at path.
func setPath(r *Recipe, path, s string) error {
	f, ok := fieldByPath(reflect.ValueOf(r).Elem(), path)
	if !ok {
		return fmt.Errorf("no recipe field %q", path)
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not a boolean", s)
		}
		f.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not an integer", s)
		}
		f.SetInt(n)
	case reflect.Float64:
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", s)
		}
		f.SetFloat(x)
	case reflect.Slice:
		if f.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("recipe field %q of type %v cannot be set from a flag", path, f.Type())
		}
		// A comma-separated list; the empty string is the empty list.
		var items []string
		for item := range strings.SplitSeq(s, ",") {
			if item = strings.TrimSpace(item); item != "" {
				items = append(items, item)
			}
		}
		f.Set(reflect.ValueOf(items))
	default:
		return fmt.Errorf("recipe field %q of kind %v cannot be set from a flag", path, f.Kind())
	}
	return nil
}
