package training

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/trainer/internal/backend"
	"github.com/cifarnet-go/cifarnet/trainer/internal/cifar"
	"github.com/cifarnet-go/cifarnet/trainer/internal/evaluate"
	"github.com/cifarnet-go/cifarnet/trainer/internal/imagefolder"
	"github.com/cifarnet-go/cifarnet/trainer/internal/nn"
	"github.com/cifarnet-go/cifarnet/trainer/internal/optim"
	"github.com/cifarnet-go/cifarnet/trainer/internal/pathtext"
)

// Options are a training run's settings that do not change its result.
type Options struct {
	// Recipe and RecipeSource describe a new run; ignored when resuming.
	Recipe       *Recipe
	RecipeSource string
	Overrides    Overrides // recorded in config.json; already applied to Recipe

	// Resume is the folder of a run to continue. Only Epochs may be
	// raised, to train further.
	Resume string
	Epochs int

	// Init is a weight file to start from instead of the recipe's
	// initialisation: its network, weights and normalisation are trained
	// further (the recipe then names no preset). Its classes must be the
	// data's.
	Init string
	// SkipUnreadable leaves out image-folder files that do not decode.
	SkipUnreadable bool

	Data    string // CIFAR-10 folder (cifar.FindDir) or image folder; empty when resuming: the run's
	Runs    string // folder new run folders are made in
	Workers int    // data-loading goroutines
	Command string // the command line, recorded for reproduction
	// Device is where to train: auto (""), cpu, cuda or cuda:N (see
	// backend.Open). A run may resume on another device.
	Device string

	Log io.Writer // progress and per-epoch lines
	TTY bool      // Log is a terminal: draw progress bars
}

// Result summarises a finished or interrupted run.
type Result struct {
	Dir          string
	Epochs       int // completed epochs
	BestEpoch    int
	Monitor      string // the checkpoint metric BestMetric is a value of
	BestMetric   float64
	StoppedEarly bool
	// ValTTAAccuracy is final.cnw's validation accuracy with the recipe's
	// test-time augmentations; 0 when it has none or no validation set.
	ValTTAAccuracy float64
	// WallSeconds is the wall time of the whole run: this command's and,
	// after resumes, the earlier ones'.
	WallSeconds float64
}

// ErrInterrupted is returned when the context is cancelled (SIGINT or
// SIGTERM): the step in progress was finished and a checkpoint saved.
var ErrInterrupted = errors.New("training interrupted")

// Train runs (or resumes) a training run and returns its summary. On
// interruption it saves a checkpoint mid-epoch and returns an error
// wrapping ErrInterrupted that names the command to resume.
func Train(ctx context.Context, o Options) (*Result, error) {
	t, err := setup(o)
	if err != nil {
		return nil, err
	}
	return t.loop(ctx)
}

// trainer is the state of a run in progress.
type trainer struct {
	o         Options
	dir       string
	cfg       *Config
	r         *Recipe
	train     *cifar.Set
	val       *cifar.Set
	mean, std [3]float32
	// net holds the weights on the host, for the weight files: the
	// backend's are copied into it when they are needed.
	net       *nn.Net
	init      *models.File // Options.Init's file; nil without
	dataset   string       // what the data is, for the provenance
	be        backend.Backend
	st        *ckptState
	warmup    *optim.WarmupDecay
	averaging bool      // the recipe averages weights: files hold the slow ones
	headLayer string    // the linear layer head_scale applies to
	classes   int       // logits per image
	batches   int       // training batches per epoch
	lastLR    float64   // learning rate of the last step, for metrics.csv
	valTTA    float64   // validation accuracy of final.cnw with TTA
	started   time.Time // when this command began
	wallBase  float64   // wall seconds of the run's earlier commands
	unlock    func()    // releases the run folder's lock
}

// wall is the run's wall time so far, in seconds.
func (t *trainer) wall() float64 { return t.wallBase + time.Since(t.started).Seconds() }

func setup(o Options) (t *trainer, err error) {
	t = &trainer{o: o, started: time.Now()}
	tr := t // t is nil in an error's return
	defer func() {
		if err != nil && tr.unlock != nil {
			tr.unlock()
		}
	}()
	if o.Log == nil {
		t.o.Log = io.Discard
	}
	// Fail before loading the data and making a run folder.
	if err := backend.Check(o.Device); err != nil {
		return nil, err
	}
	if o.Resume != "" {
		cfg, err := ReadConfig(o.Resume)
		if err != nil {
			return nil, err
		}
		if o.Epochs > 0 {
			cfg.Recipe.Epochs = o.Epochs
		}
		if o.Data != "" {
			cfg.Data = o.Data
		}
		if err := cfg.Recipe.Validate(); err != nil {
			return nil, err
		}
		t.dir, t.cfg = o.Resume, cfg
		if t.unlock, err = lockRun(t.dir); err != nil {
			return nil, err
		}
	} else {
		if o.Recipe == nil {
			return nil, errors.New("train: no recipe")
		}
		r := *o.Recipe
		var initPath string
		if o.Init != "" {
			if err := r.CheckInit(); err != nil {
				return nil, err
			}
			if t.init, err = models.ReadFile(o.Init); err != nil {
				return nil, fmt.Errorf("init: %w", err)
			}
			// The run's config then holds the network, so that a resume
			// needs no more than the run folder and the init file.
			spec := t.init.Meta.Spec
			spec.Layers = slices.Clone(spec.Layers)
			r.Spec = &spec
			if len(r.Inference.TTA) == 0 {
				r.Inference.TTA = slices.Clone(t.init.Meta.Inference.TTA)
			}
			if initPath, err = filepath.Abs(o.Init); err != nil {
				return nil, err
			}
		}
		if err := r.Validate(); err != nil {
			return nil, err
		}
		data, err := findData(o.Data)
		if err != nil {
			return nil, err
		}
		t.cfg = &Config{
			Recipe: r, RecipeSource: o.RecipeSource, Overrides: o.Overrides, Init: initPath,
			Data: data, Workers: o.Workers, Command: o.Command, Commit: Version(),
			GoVersion: runtime.Version(), Created: time.Now().UTC().Format(time.RFC3339),
		}
	}
	t.r = &t.cfg.Recipe
	if t.init == nil && t.cfg.Init != "" {
		if t.init, err = models.ReadFile(t.cfg.Init); err != nil {
			return nil, fmt.Errorf("init: %w", err)
		}
	}
	if err := t.loadData(); err != nil {
		return nil, err
	}
	spec, err := t.r.Architecture()
	if err != nil {
		return nil, err
	}
	if t.init != nil {
		if !slices.Equal(t.init.Meta.Classes, t.train.Classes) {
			return nil, fmt.Errorf("init %s classifies %q, the data has %q", t.cfg.Init, t.init.Meta.Classes, t.train.Classes)
		}
		t.net, err = nn.FromFile(t.init)
	} else {
		t.net, err = nn.New(spec, uint64(t.r.Seed))
	}
	if err != nil {
		return nil, err
	}
	if err := t.findHead(); err != nil {
		return nil, err
	}
	out, err := spec.Output()
	if err != nil {
		return nil, err
	}
	t.classes = out.Size()
	if t.classes != len(t.train.Classes) {
		return nil, fmt.Errorf("the network has %d class scores, the data %d classes (%s)", t.classes, len(t.train.Classes), strings.Join(t.train.Classes, ", "))
	}
	t.batches = (t.train.Len() + t.r.Batch - 1) / t.r.Batch
	if t.r.DropLast {
		t.batches = t.train.Len() / t.r.Batch
	}
	if t.batches == 0 {
		return nil, fmt.Errorf("drop_last with %d training images and batches of %d leaves no batch", t.train.Len(), t.r.Batch)
	}
	if err := t.initSchedules(); err != nil {
		return nil, err
	}
	// The checkpoint's weights go into net before the backend copies it.
	var resumed *ckptState
	if o.Resume != "" {
		f, st, err := loadCheckpoint(t.dir)
		switch {
		case errors.Is(err, errNoCheckpoint):
			// Killed before its first checkpoint: config.json is all
			// there is, and training is deterministic, so start over.
		case err != nil:
			return nil, err
		default:
			if err := t.net.Load(f); err != nil {
				return nil, fmt.Errorf("resume: %w", err)
			}
			resumed = st
		}
	}
	if resumed == nil && t.init == nil {
		if err := t.initWeights(); err != nil {
			return nil, err
		}
	}
	if err := t.openBackend(); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			t.be.Close()
		}
	}()
	dev := t.be.Device().String()
	switch {
	case resumed != nil:
		if err := t.restore(resumed); err != nil {
			return nil, err
		}
	case o.Resume != "":
		if err := truncateMetrics(t.dir, 0); err != nil {
			return nil, fmt.Errorf("resume: %w", err)
		}
		fmt.Fprintf(t.o.Log, "resuming %s from the start: it has no checkpoint yet\n", t.dir)
	default:
		t.cfg.Device, t.cfg.DeviceName = t.be.Device().ID, t.be.Device().Name
		if t.dir, err = createDir(o.Runs, t.r.Name, time.Now()); err != nil {
			return nil, err
		}
		if t.unlock, err = lockRun(t.dir); err != nil {
			return nil, err
		}
		if err := writeConfig(t.dir, t.cfg); err != nil {
			return nil, err
		}
	}
	if o.Resume != "" {
		// Say so when the run changes device: speed, and the last bits
		// of the results, depend on it.
		before := backend.Device{ID: t.cfg.Device, Name: t.cfg.DeviceName}.String()
		if n := len(t.st.Devices); n > 0 {
			before = t.st.Devices[n-1]
		}
		if before != "" && before != dev {
			fmt.Fprintf(t.o.Log, "resuming on %s; the run was trained on %s before\n", dev, before)
		}
	}
	if n := len(t.st.Devices); n == 0 || t.st.Devices[n-1] != dev {
		t.st.Devices = append(t.st.Devices, dev)
	}
	return t, nil
}

// openBackend opens the training device on the host network's weights.
func (t *trainer) openBackend() error {
	r := t.r
	a := backend.Averaging{}
	if t.averaging = r.Averaging.Name == "lookahead" || r.Averaging.Name == "ema"; t.averaging {
		a = backend.Averaging{Name: r.Averaging.Name, Every: int64(r.Averaging.Every), Decay: r.Averaging.Decay,
			Power: r.Averaging.Power, TotalSteps: int64(r.Epochs * t.batches)}
	}
	be, err := backend.Open(t.o.Device, backend.Config{
		Net: t.net, Batch: r.Batch, Optimizer: r.Optimizer, GradClip: r.GradClip, LabelSmoothing: r.LabelSmoothing,
		BatchNormMomentum: r.BatchNormMomentum, BatchNormFrozen: r.BatchNormFrozen, Averaging: a,
	}, t.o.Log)
	if err != nil {
		return err
	}
	t.be = be
	return nil
}

// loadData reads the training files, keeps the first Limit images and
// splits off the validation set.
func (t *trainer) loadData() error {
	if imagefolder.Is(t.cfg.Data) {
		if err := t.loadFolder(); err != nil {
			return err
		}
	} else {
		dir, err := cifar.FindDir(t.cfg.Data)
		if err != nil {
			return err
		}
		all, _, err := cifar.Load(dir)
		if err != nil {
			return fmt.Errorf("load data: %w", err)
		}
		if n := t.r.Limit; n > 0 && n < all.Len() {
			all = &cifar.Set{Images: all.Images[:n*cifar.ImageSize], Labels: all.Labels[:n], Classes: all.Classes}
		}
		if t.train, t.val, err = cifar.Split(all, t.r.ValSplit, t.r.SplitSeed); err != nil {
			return fmt.Errorf("split data: %w", err)
		}
		if t.train.Len() == 0 || (t.val.Len() == 0 && t.r.ValSplit > 0) {
			return fmt.Errorf("split of %d images leaves %d for training and %d for validation", all.Len(), t.train.Len(), t.val.Len())
		}
		t.dataset = "CIFAR-10"
	}
	if t.init == nil {
		t.mean, t.std = cifar.Stats(t.train)
		return nil
	}
	// The weights expect the inputs normalised as they were trained.
	n := t.init.Meta.Normalization
	copy(t.mean[:], n.Mean)
	copy(t.std[:], n.Std)
	return nil
}

// loadFolder reads an image folder (DIR/<class>/<images>, or its train/
// and val/ parts) as the page reduces images, holding out the recipe's
// val_split of each class when the folder has no val/ part.
func (t *trainer) loadFolder() error {
	dir := t.cfg.Data
	train, val, err := imagefolder.Load(dir)
	if err != nil {
		return err
	}
	if val == nil && t.r.ValSplit > 0 {
		if train, val, err = train.Split(t.r.ValSplit, uint64(t.r.SplitSeed)); err != nil {
			return err
		}
	}
	toSet := func(s *imagefolder.Set) (*cifar.Set, error) {
		out := &cifar.Set{Classes: s.Classes}
		pix, labels, skipped, err := s.Pixels(32, t.o.SkipUnreadable)
		if err != nil {
			return nil, err
		}
		for _, f := range skipped {
			fmt.Fprintf(t.o.Log, "skipped %s: not a readable image\n", f)
		}
		out.Images = pix
		for _, l := range labels {
			out.Labels = append(out.Labels, uint8(l))
		}
		return out, nil
	}
	if t.train, err = toSet(train); err != nil {
		return err
	}
	if val != nil {
		if t.val, err = toSet(val); err != nil {
			return err
		}
	} else {
		t.val = &cifar.Set{Classes: train.Classes}
	}
	if t.train.Len() == 0 {
		return fmt.Errorf("image folder %s: no readable training image", dir)
	}
	t.dataset = "image folder " + filepath.Base(filepath.Clean(dir))
	return nil
}

// findData returns the absolute path of an image folder or of the
// CIFAR-10 binary files under dir.
func findData(dir string) (string, error) {
	if !imagefolder.Is(dir) {
		var err error
		if dir, err = cifar.FindDir(dir); err != nil {
			return "", err
		}
	}
	return filepath.Abs(dir)
}

func (t *trainer) initSchedules() error {
	r := t.r
	t.st = &ckptState{LR: r.Optimizer.LR}
	var err error
	switch s := r.Schedule; s.Name {
	case "plateau":
		if t.st.Plateau, err = optim.NewPlateau(optim.ModeFor(s.Monitor), s.Factor, s.Patience, s.MinLR); err != nil {
			return err
		}
	case "warmup_decay":
		w := optim.WarmupDecay{
			Peak: r.Optimizer.LR, StartFactor: s.StartFactor, EndFactor: s.EndFactor, Cosine: s.Cosine,
			WarmupSteps: int64(s.WarmupEpochs * float64(t.batches)), TotalSteps: int64(r.Epochs * t.batches),
		}
		if err := w.Validate(); err != nil {
			return err
		}
		t.warmup = &w
	}
	if e := r.EarlyStopping; e.Patience > 0 {
		if t.st.Early, err = optim.NewEarlyStopping(optim.ModeFor(e.Monitor), e.Patience, e.MinDelta); err != nil {
			return err
		}
	}
	return nil
}

// restore continues from a checkpoint whose weights are in the backend
// already: the optimiser's state, the slow weights and the loop's state.
func (t *trainer) restore(st *ckptState) error {
	if err := t.be.SetOptState(st.Optimizer); err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	if t.st.Plateau == nil {
		st.Plateau = nil
	}
	if t.st.Early == nil {
		st.Early = nil
	}
	if t.averaging {
		if st.Slow == nil {
			return fmt.Errorf("resume: the checkpoint has no averaged weights for the recipe's %s", t.r.Averaging.Name)
		}
		if err := t.be.SetAveraged(st.Slow); err != nil {
			return fmt.Errorf("resume: %w", err)
		}
	}
	t.st = st
	t.wallBase = st.WallSeconds
	if err := truncateMetrics(t.dir, st.Epoch); err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	fmt.Fprintf(t.o.Log, "resuming %s after epoch %d", t.dir, st.Epoch)
	if st.Batches > 0 {
		fmt.Fprintf(t.o.Log, " and %d batches of epoch %d", st.Batches, st.Epoch+1)
	}
	fmt.Fprintln(t.o.Log)
	return nil
}

func (t *trainer) close() {
	t.be.Close()
	t.unlock()
}

// stepSeed derives the dropout seed of a training step.
func stepSeed(seed int64, step int64) uint64 {
	z := uint64(seed) + uint64(step)*0x9e3779b97f4a7c15 // splitmix64
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

func (t *trainer) loop(ctx context.Context) (*Result, error) {
	defer t.close()
	r, st := t.r, t.st
	res := &Result{Dir: t.dir}
	aug := cifar.Augment{Crop: r.Augment.Crop, Flip: r.Augment.Flip, Translate: r.Augment.Translate, AlternateFlip: r.Augment.AlternateFlip, JPEG: r.Augment.JPEG.cifar()}
	loader := cifar.NewLoader(t.train, r.Batch, aug, t.mean, t.std, r.Seed, t.o.Workers)
	loader.DropLast = r.DropLast
	fmt.Fprintf(t.o.Log, "run %s: %s on %d training and %d validation images, %s of %s on %s\n",
		t.dir, t.net.Spec().Name, t.train.Len(), t.val.Len(), Count(r.Epochs, "epoch", "epochs"), Count(t.batches, "batch", "batches"), t.be.Device())
	for epoch := st.Epoch + 1; epoch <= r.Epochs; epoch++ {
		start := time.Now()
		images := t.train.Len()
		if r.DropLast {
			images = t.batches * r.Batch
		}
		prog := newProgress(t.o.Log, t.o.TTY, epoch, r.Epochs, images, st.PartSeen)
		if err := t.be.SetScales(t.lrScales(epoch)); err != nil {
			return nil, fmt.Errorf("epoch %d: %w", epoch, err)
		}
		interrupted := false
		for b := range loader.Epoch(epoch) {
			if b.Index < st.Batches { // done before an interruption
				loader.Release(b)
				continue
			}
			if err := t.step(b, st); err != nil {
				loader.Release(b)
				prog.finish()
				return nil, err
			}
			prog.add(b.N)
			loader.Release(b)
			reached("epoch %d batch %d", epoch, b.Index+1)
			if ctx.Err() != nil {
				interrupted = true
				break
			}
		}
		trainSeconds := time.Since(start).Seconds()
		st.PartSeconds += trainSeconds
		prog.finish()
		if interrupted {
			st.TrainSeconds += trainSeconds
			if err := t.checkpoint(st); err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("%w after %d batches of epoch %d; resume with: trainer train --resume %s",
				ErrInterrupted, st.Batches, epoch, t.dir)
		}
		// Validation, best.cnw and early stopping see the weights that
		// are exported: the averaged ones when the recipe averages.
		valStart := time.Now()
		exported, err := t.pullExported()
		if err != nil {
			return nil, err
		}
		valLoss, valAcc, err := t.validateExported(exported)
		if err != nil {
			return nil, err
		}
		valSeconds := time.Since(valStart).Seconds()
		m := EpochMetrics{
			Epoch: epoch, TrainLoss: st.PartLoss / float64(st.PartSeen), TrainAcc: float64(st.PartCorrect) / float64(st.PartSeen),
			ValLoss: valLoss, ValAcc: valAcc, LR: t.lastLR, EpochSeconds: st.PartSeconds + valSeconds,
			ImagesPerSecond: float64(st.PartSeen) / st.PartSeconds,
		}
		st.TrainSeconds += trainSeconds + valSeconds
		if err := appendMetrics(t.dir, m); err != nil {
			return nil, err
		}
		reached("epoch %d logged", epoch)
		val := fmt.Sprintf("val_loss %.4f val_acc %.4f", m.ValLoss, m.ValAcc)
		if math.IsNaN(m.ValLoss) {
			val = "no validation set"
		}
		fmt.Fprintf(t.o.Log, "epoch %d/%d: loss %.4f acc %.4f  %s  lr %.3g  %.1fs %.0f img/s\n",
			epoch, r.Epochs, m.TrainLoss, m.TrainAcc, val, m.LR, m.EpochSeconds, m.ImagesPerSecond)
		st.Epoch, st.Batches, st.PartLoss, st.PartCorrect, st.PartSeen, st.PartSeconds = epoch, 0, 0, 0, 0, 0
		stop, err := t.endOfEpoch(m)
		if err != nil {
			return nil, err
		}
		if err := t.checkpoint(st); err != nil {
			return nil, err
		}
		if stop {
			fmt.Fprintf(t.o.Log, "early stopping: no %s improvement for %s (best epoch %d)\n",
				r.EarlyStopping.Monitor, Count(r.EarlyStopping.Patience, "epoch", "epochs"), st.Early.BestEpoch)
			res.StoppedEarly = true
			break
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w after epoch %d; resume with: trainer train --resume %s", ErrInterrupted, epoch, t.dir)
		}
	}
	if err := t.writeFinal(); err != nil {
		return nil, err
	}
	res.Epochs, res.BestEpoch, res.Monitor, res.BestMetric = st.Epoch, st.BestEpoch, r.Checkpoint.Monitor, st.BestMetric
	res.ValTTAAccuracy = t.valTTA
	res.WallSeconds = t.wall()
	return res, nil
}

// lr is the learning rate of the current step.
func (t *trainer) lr(st *ckptState) float64 {
	if t.warmup != nil {
		return t.warmup.LR(st.GlobalStep)
	}
	return st.LR
}

// step trains on one batch.
func (t *trainer) step(b *cifar.Batch, st *ckptState) error {
	t.lastLR = t.lr(st)
	res, err := t.be.Step(backend.Batch{X: b.X[:b.N*cifar.ImageSize], Labels: b.Y[:b.N], N: b.N},
		t.lastLR, st.GlobalStep+1, stepSeed(t.r.Seed, st.GlobalStep))
	if err != nil {
		return fmt.Errorf("epoch %d batch %d: %w", st.Epoch+1, b.Index, err)
	}
	if math.IsNaN(res.Loss) || math.IsInf(res.Loss, 0) {
		return fmt.Errorf("epoch %d batch %d: loss is %g; lower the learning rate", st.Epoch+1, b.Index, res.Loss)
	}
	st.GlobalStep++
	st.Batches = b.Index + 1
	st.PartLoss += res.Loss * float64(b.N)
	st.PartCorrect += res.Correct
	st.PartSeen += b.N
	return nil
}

// pullExported copies the weights that the files hold into net, and
// returns them: the averaged ones when the recipe averages, else the
// trained ones.
func (t *trainer) pullExported() ([][]float32, error) {
	get := t.be.Params
	if t.averaging {
		get = t.be.Averaged
	}
	w, err := get()
	if err != nil {
		return nil, fmt.Errorf("copy weights from %s: %w", t.be.Device().ID, err)
	}
	return w, t.net.Restore(w)
}

// pullTrained copies the trained weights into net.
func (t *trainer) pullTrained() error {
	w, err := t.be.Params()
	if err != nil {
		return fmt.Errorf("copy weights from %s: %w", t.be.Device().ID, err)
	}
	return t.net.Restore(w)
}

// validateExported validates the exported weights (pullExported's): with
// averaging, they take the trained ones' place on the device meanwhile.
func (t *trainer) validateExported(exported [][]float32) (loss, acc float64, err error) {
	if t.val.Len() == 0 {
		return math.NaN(), math.NaN(), nil
	}
	if !t.averaging {
		return t.validate()
	}
	fast, err := t.be.Params()
	if err != nil {
		return 0, 0, fmt.Errorf("validate: %w", err)
	}
	if err := t.be.SetParams(exported); err != nil {
		return 0, 0, fmt.Errorf("validate: %w", err)
	}
	loss, acc, err = t.validate()
	if perr := t.be.SetParams(fast); perr != nil && err == nil {
		err = fmt.Errorf("validate: put the trained weights back: %w", perr)
	}
	return loss, acc, err
}

// validate evaluates the validation set with the backend's weights and
// running statistics: mean cross-entropy (with the recipe's label
// smoothing, like Keras and PyTorch report it) and accuracy.
func (t *trainer) validate() (loss, acc float64, err error) {
	if t.val.Len() == 0 {
		return math.NaN(), math.NaN(), nil
	}
	k := t.classes
	loader := cifar.NewEvalLoader(t.val, t.r.Batch, t.mean, t.std, t.o.Workers)
	var sum float64
	var right, seen int
	for b := range loader.Epoch(0) {
		logits, err := t.be.Forward(b.X[:b.N*cifar.ImageSize], b.N)
		if err == nil && len(logits) != b.N*k {
			err = fmt.Errorf("%d logits for %d images of %d classes", len(logits), b.N, k)
		}
		if err != nil {
			loader.Release(b)
			return 0, 0, fmt.Errorf("validate: %w", err)
		}
		sum += crossEntropy(logits, b.Y[:b.N], k, t.r.LabelSmoothing)
		right += evaluate.Correct(logits, b.Y[:b.N], k)
		seen += b.N
		loader.Release(b)
	}
	return sum / float64(seen), float64(right) / float64(seen), nil
}

// endOfEpoch updates the best checkpoint, the plateau schedule and early
// stopping with an epoch's metrics, and reports whether to stop.
func (t *trainer) endOfEpoch(m EpochMetrics) (stop bool, err error) {
	r, st := t.r, t.st
	value := func(name string) float64 {
		switch name {
		case "val_loss":
			return m.ValLoss
		case "val_accuracy":
			return m.ValAcc
		case "train_loss":
			return m.TrainLoss
		}
		return m.TrainAcc
	}
	v := value(r.Checkpoint.Monitor)
	better := !st.HaveBest || (optim.ModeFor(r.Checkpoint.Monitor) == "min" && v < st.BestMetric) ||
		(optim.ModeFor(r.Checkpoint.Monitor) == "max" && v > st.BestMetric)
	if better && !math.IsNaN(v) {
		if err := models.WriteFile(filepath.Join(t.dir, BestFile), t.weightFile(m.Epoch, m.ValAcc)); err != nil {
			return false, fmt.Errorf("save best checkpoint: %w", err)
		}
		st.HaveBest, st.BestMetric, st.BestEpoch = true, v, m.Epoch
	}
	if st.Plateau != nil {
		if lr := st.Plateau.Step(value(r.Schedule.Monitor), st.LR); lr != st.LR {
			fmt.Fprintf(t.o.Log, "reducing learning rate to %.3g\n", lr)
			st.LR = lr
		}
	}
	if st.Early != nil {
		improved, stop := st.Early.Update(value(r.EarlyStopping.Monitor), m.Epoch)
		if improved && r.EarlyStopping.RestoreBest {
			st.EarlyBest = t.net.Snapshot()
		}
		return stop, nil
	}
	return false, nil
}

// checkpoint saves the last checkpoint: the trained weights, the
// optimiser's state and the slow weights, copied from the backend.
func (t *trainer) checkpoint(st *ckptState) error {
	if err := t.pullTrained(); err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	var err error
	if st.Optimizer, err = t.be.OptState(); err != nil {
		return fmt.Errorf("save checkpoint: optimiser state: %w", err)
	}
	if st.Slow, err = t.be.Averaged(); err != nil {
		return fmt.Errorf("save checkpoint: averaged weights: %w", err)
	}
	st.WallSeconds = t.wall()
	return saveCheckpoint(t.dir, t.weightFile(st.Epoch, 0), st)
}

// writeFinal writes final.cnw: the weights at the end of training (the
// averaged ones when the recipe averages), or those of early stopping's
// best epoch when the recipe restores them. With test-time augmentations
// it measures them on the validation set with models.Predictor.PredictTTA,
// exactly as the front end will, and notes the result in the file.
func (t *trainer) writeFinal() error {
	st := t.st
	epoch := st.Epoch
	// With averaging, lookahead's last update (airbench: decay 1) is to
	// take the slow weights; for an EMA they are the result.
	if _, err := t.pullExported(); err != nil {
		return fmt.Errorf("final weights: %w", err)
	}
	if st.EarlyBest != nil {
		if err := t.net.Restore(st.EarlyBest); err != nil {
			return err
		}
		epoch = st.Early.BestEpoch
		fmt.Fprintf(t.o.Log, "restored the weights of epoch %d\n", epoch)
	}
	f := t.weightFile(epoch, 0)
	if len(t.r.Inference.TTA) > 0 && t.val.Len() > 0 {
		start := time.Now()
		acc, err := t.validateTTA(f)
		if err != nil {
			return err
		}
		t.valTTA = acc
		f.Meta.Provenance.Notes = fmt.Sprintf("validation accuracy with test-time augmentation (%s): %.4f on %d images",
			strings.Join(t.r.Inference.TTA, ", "), acc, t.val.Len())
		fmt.Fprintf(t.o.Log, "final weights: val_acc with test-time augmentation (%s) %.4f  %.1fs\n",
			strings.Join(t.r.Inference.TTA, ", "), acc, time.Since(start).Seconds())
	}
	return models.WriteFile(filepath.Join(t.dir, FinalFile), f)
}

// weightFile is the network's weights with metadata and provenance.
func (t *trainer) weightFile(epochs int, valAcc float64) *models.File {
	if math.IsNaN(valAcc) { // no validation set
		valAcc = 0
	}
	return t.net.File(models.Meta{
		Classes:       t.train.Classes,
		Normalization: models.Normalization{Mean: t.mean[:], Std: t.std[:]},
		Inference:     models.InferenceOptions{TTA: slices.Clone(t.r.Inference.TTA)},
		Provenance: models.Provenance{
			Dataset:      t.dataset,
			BaseModel:    t.baseModel(),
			Recipe:       t.r.Name,
			Command:      pathtext.Command(t.cfg.Command),
			Epochs:       epochs,
			ValAccuracy:  valAcc,
			TrainSeconds: math.Round(t.st.TrainSeconds),
			WallSeconds:  math.Round(t.wall()),
			Trainer:      t.cfg.Commit,
			Device:       strings.Join(t.st.Devices, ", then "),
			Created:      time.Now().UTC().Format(time.RFC3339),
		},
	})
}

// baseModel is the provenance's base: the init file's own base when it
// has one (the model its head was taught from), else the init file.
func (t *trainer) baseModel() string {
	if t.init == nil {
		return ""
	}
	if b := t.init.Meta.Provenance.BaseModel; b != "" {
		return b
	}
	return filepath.Base(t.cfg.Init)
}

// crossEntropy is the summed softmax cross-entropy of the rows against
// label-smoothed targets.
func crossEntropy(logits []float32, labels []uint8, k int, smoothing float64) float64 {
	var s float64
	for i, y := range labels {
		row := logits[i*k : (i+1)*k]
		m := float64(row[0])
		for _, v := range row {
			m = max(m, float64(v))
		}
		var z float64
		for _, v := range row {
			z += math.Exp(float64(v) - m)
		}
		lse := m + math.Log(z)
		for j, v := range row {
			tgt := smoothing / float64(k)
			if j == int(y) {
				tgt += 1 - smoothing
			}
			s -= tgt * (float64(v) - lse)
		}
	}
	return s
}
