package main

import (
	"flag"
	"fmt"
	"maps"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/cifarnet-go/cifarnet/trainer/internal/backend"
	"github.com/cifarnet-go/cifarnet/trainer/internal/training"
	"github.com/cifarnet-go/cifarnet/trainer/recipes"
)

func runTrain(e *env, args []string) error {
	fs := e.flags("--recipe NAME|FILE.json [flags]  |  --resume RUN [--epochs N] [--device D]", fmt.Sprintf(
		`Trains a network following a recipe (built in: %s; or a JSON file, e.g. a
copy of trainer/recipes/keras-reference.json) in a new run folder
RUNS/<UTC time>-<recipe>/ holding config.json, metrics.csv, best.cnw (best
epoch by the recipe's checkpoint metric), last.cnw + last.state (resumable
checkpoint) and final.cnw. Every recipe field can be overridden by the flag
named after its JSON path, e.g. --lr-schedule-patience 4 for
"lr_schedule": {"patience": 4}. Ctrl-C stops after the current step and saves
a checkpoint; --resume RUN continues a run where it stopped, on any device.
--device auto trains on the first GPU of a CUDA build and otherwise on the
CPU; "trainer devices" lists them.

--init W.cnw --freeze head-only --data FOLDER teaches a trained model new
classes from an image folder (FOLDER/<class>/<images>, or FOLDER/train and
FOLDER/val): the images go through W once and a new classifier head is
trained on their features; writes --out (default RUNS/<UTC time>-teach/
final.cnw). --freeze none then fine-tunes every layer from that head with
the recipe finetune (or --recipe), in a run folder like any other. Example:
  trainer train --init models/zoo/cifarnet-fast/cifarnet-fast.cnw --freeze head-only --data my-photos`, strings.Join(recipes.Names(), ", ")))
	recipe := fs.String("recipe", "", "built-in recipe `NAME` or recipe FILE.json")
	resume := fs.String("resume", "", "continue the run in folder `RUN`")
	runs := fs.String("runs", "runs", "`DIR` in which run folders are created")
	workers := fs.Int("workers", min(runtime.NumCPU(), 4), "data-loading goroutines")
	device := fs.String("device", backend.Auto, "`DEVICE` to train on: auto, cpu, cuda or cuda:N (see trainer devices)")
	data := dataFlag(fs)
	tf := teachFlags(fs)
	overrides := training.RecipeFlags(fs)
	if err := e.parse(fs, args); err != nil {
		return err
	}
	if _, err := positional(fs); err != nil {
		return err
	}
	if *workers < 1 {
		return usagef("--workers %d: must be at least 1", *workers)
	}
	if _, _, err := backend.ParseDevice(*device); err != nil {
		return usagef("--%v", err)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	o := training.Options{
		Runs: *runs, Workers: *workers, Command: commandLine("train", args), Device: *device,
		Log: e.stderr, TTY: e.stderrTTY,
	}
	if *tf.init != "" || set["freeze"] {
		if *resume != "" {
			return usagef("--init starts a new run; --resume RUN alone continues one")
		}
		if *tf.freeze == "head-only" && (*recipe != "" || len(overrides) > 0) {
			return usagef("--freeze head-only trains with its own settings: no --recipe or recipe flags")
		}
		o.Recipe, o.RecipeSource, o.Overrides = nil, *recipe, overrides
		return runTeach(e, tf, o, *data, args)
	}
	switch {
	case *resume != "" && *recipe != "":
		return usagef("--recipe and --resume exclude each other")
	case *resume != "":
		for _, p := range slices.Sorted(maps.Keys(overrides)) {
			if p != "epochs" {
				return usagef("--resume continues a run with its recipe; only --epochs may be changed (got a value for %s)", p)
			}
		}
		o.Resume = *resume
		if v, ok := overrides["epochs"]; ok {
			fmt.Sscan(v, &o.Epochs)
		}
		if set["data"] {
			o.Data = *data
		}
	case *recipe == "":
		return usagef("--recipe or --resume is required")
	default:
		r, err := training.LoadRecipe(*recipe)
		if err != nil {
			return err
		}
		if err := overrides.Apply(r); err != nil {
			return &usageError{err}
		}
		o.Recipe, o.RecipeSource, o.Overrides, o.Data = r, *recipe, overrides, *data
	}
	res, err := training.Train(e.ctx, o)
	if err != nil {
		return err
	}
	how := "finished"
	if res.StoppedEarly {
		how = "stopped early"
	}
	fmt.Fprintf(e.stdout, "%s after %s in %.1f min; best epoch %d (%s %.4f) in %s\n",
		how, training.Count(res.Epochs, "epoch", "epochs"), res.WallSeconds/60, res.BestEpoch, res.Monitor, res.BestMetric, filepath.Join(res.Dir, training.BestFile))
	if res.ValTTAAccuracy > 0 {
		fmt.Fprintf(e.stdout, "%s: validation accuracy %.4f with test-time augmentation\n",
			filepath.Join(res.Dir, training.FinalFile), res.ValTTAAccuracy)
	}
	return nil
}
