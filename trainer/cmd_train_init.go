package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/trainer/internal/imagefolder"
	"github.com/cifarnet-go/cifarnet/trainer/internal/teach"
	"github.com/cifarnet-go/cifarnet/trainer/internal/training"
)

// teachOpts are train's flags for fine-tuning from a weight file.
type teachOpts struct {
	init, freeze, out *string
	holdOut           *float64
	skipUnreadable    *bool
	freshHead         *bool
	seed              *uint64
}

func teachFlags(fs *flag.FlagSet) teachOpts {
	return teachOpts{
		init:           fs.String("init", "", "fine-tune from the weight `FILE` on the image folder --data"),
		freeze:         fs.String("freeze", "", "with --init: what stays fixed: head-only (train a new classifier on the frozen network's features) or none (then fine-tune every layer)"),
		out:            fs.String("out", "", "with --init: the weight `FILE` to write (default RUNS/<UTC time>-teach/final.cnw)"),
		holdOut:        fs.Float64("hold-out", 0.2, "with --init: share of each class held out to measure accuracy when the folder has no val/"),
		skipUnreadable: fs.Bool("skip-unreadable", false, "with --init: skip image files that do not decode instead of stopping"),
		freshHead:      fs.Bool("fresh-head", false, "with --init: train every class's classifier row from scratch (otherwise a class the base model has, by name, starts from the base's row)"),
		seed:           fs.Uint64("teach-seed", 1, "with --init: seed of the hold-out split and the head's initialisation"),
	}
}

// runTeach is train --init (this file holds train's --init flags and
// path): fine-tune a weight file on an image folder.
// o carries train's run settings, its RecipeSource and Overrides what
// --recipe and the recipe flags said (for --freeze none).
func runTeach(e *env, t teachOpts, o training.Options, data string, args []string) error {
	switch {
	case *t.init == "":
		return usagef("--freeze needs --init W.cnw")
	case *t.freeze == "":
		return usagef("--init needs --freeze head-only or none")
	case *t.freeze != "head-only" && *t.freeze != "none":
		return usagef("--freeze %q: want head-only or none", *t.freeze)
	case *t.holdOut <= 0 || *t.holdOut >= 1:
		return usagef("--hold-out %g: want a share between 0 and 1", *t.holdOut)
	case !imagefolder.Is(data):
		return usagef("--data %s is not an image folder (want %s/<class name>/<images>: %v)", data, data, imagefolder.Exts)
	}
	var recipe *training.Recipe
	if *t.freeze == "none" {
		// Checked before the head is trained: a bad recipe should fail at once.
		if o.RecipeSource == "" {
			o.RecipeSource = "finetune"
		}
		var err error
		if recipe, err = training.LoadRecipe(o.RecipeSource); err != nil {
			return err
		}
		if err := o.Overrides.Apply(recipe); err != nil {
			return &usageError{err}
		}
		if err := recipe.CheckInit(); err != nil {
			return &usageError{err}
		}
		// The whole network trains on the images the head trained on and
		// is validated on the ones the head never saw.
		recipe.ValSplit, recipe.SplitSeed = *t.holdOut, int64(*t.seed)
		if *t.out != "" {
			if _, err := os.Stat(*t.out); err == nil {
				return fmt.Errorf("%s exists: choose another --out or remove it", *t.out)
			}
		}
	}
	head := *t.out
	if head == "" || recipe != nil {
		head = filepath.Join(o.Runs, time.Now().UTC().Format("20060102T150405Z")+"-teach", training.FinalFile)
	}
	res, err := teach.Run(teach.Options{
		Base: *t.init, Data: data, Out: head, HoldOut: *t.holdOut, Seed: *t.seed,
		SkipUnreadable: *t.skipUnreadable, FreshHead: *t.freshHead, Command: commandLine("train", args), Trainer: training.Version(), Log: e.stderr,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "wrote %s: %d classes, trained on %d images in %.1f s; %.1f %% of %d held-out images right\n",
		res.Out, len(res.Classes), res.Train, res.Seconds, 100*res.HeldAccuracy, res.Held)
	if len(res.Skipped) > 0 {
		fmt.Fprintf(e.stdout, "skipped %d unreadable files\n", len(res.Skipped))
	}
	if recipe == nil {
		return nil
	}

	o.Recipe, o.Init, o.Data, o.SkipUnreadable = recipe, res.Out, data, *t.skipUnreadable
	fmt.Fprintf(e.stderr, "fine-tuning every layer from %s with recipe %s\n", res.Out, recipe.Name)
	tr, err := training.Train(e.ctx, o)
	if err != nil {
		return err
	}
	final := filepath.Join(tr.Dir, training.FinalFile)
	fmt.Fprintf(e.stdout, "fine-tuned for %s; best epoch %d (%s %.4f) in %s, last in %s\n",
		training.Count(tr.Epochs, "epoch", "epochs"), tr.BestEpoch, tr.Monitor, tr.BestMetric, filepath.Join(tr.Dir, training.BestFile), final)
	if *t.out != "" {
		f, err := models.ReadFile(filepath.Join(tr.Dir, training.BestFile))
		if err != nil {
			return err
		}
		if err := models.WriteFile(*t.out, f); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "wrote %s (the best epoch)\n", *t.out)
	}
	return nil
}
