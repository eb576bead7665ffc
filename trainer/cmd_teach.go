package main

import (
	"flag"
	"fmt"
	"path/filepath"
	"time"

	"github.com/cifarnet-go/cifarnet/trainer/internal/imagefolder"
	"github.com/cifarnet-go/cifarnet/trainer/internal/teach"
	"github.com/cifarnet-go/cifarnet/trainer/internal/training"
)

// teachOpts are train's flags for fine-tuning from a weight file.
type teachOpts struct {
	init, freeze, out *string
	holdOut           *float64
	skipUnreadable    *bool
	seed              *uint64
}

func teachFlags(fs *flag.FlagSet) teachOpts {
	return teachOpts{
		init:           fs.String("init", "", "fine-tune from the weight `FILE` on the image folder --data"),
		freeze:         fs.String("freeze", "", "with --init: what stays fixed: head-only (train a new classifier on the frozen network's features)"),
		out:            fs.String("out", "", "with --init: the weight `FILE` to write (default RUNS/<UTC time>-teach/final.cnw)"),
		holdOut:        fs.Float64("hold-out", 0.2, "with --init: share of each class held out to measure accuracy when the folder has no val/"),
		skipUnreadable: fs.Bool("skip-unreadable", false, "with --init: skip image files that do not decode instead of stopping"),
		seed:           fs.Uint64("teach-seed", 1, "with --init: seed of the hold-out split and the head's initialisation"),
	}
}

// runTeach is train --init: fine-tune a weight file on an image folder.
func runTeach(e *env, o teachOpts, data, runs string, args []string) error {
	switch {
	case *o.init == "":
		return usagef("--freeze needs --init W.cnw")
	case *o.freeze == "":
		return usagef("--init needs --freeze head-only")
	case *o.freeze == "none":
		return usagef("--freeze none (fine-tuning the whole network on an image folder) is not supported yet; use --freeze head-only")
	case *o.freeze != "head-only":
		return usagef("--freeze %q: want head-only", *o.freeze)
	case *o.holdOut <= 0 || *o.holdOut >= 1:
		return usagef("--hold-out %g: want a share between 0 and 1", *o.holdOut)
	case !imagefolder.Is(data):
		return usagef("--data %s is not an image folder (want %s/<class name>/<images>: %v)", data, data, imagefolder.Exts)
	}
	out := *o.out
	if out == "" {
		out = filepath.Join(runs, time.Now().UTC().Format("20060102T150405Z")+"-teach", training.FinalFile)
	}
	res, err := teach.Run(teach.Options{
		Base: *o.init, Data: data, Out: out, HoldOut: *o.holdOut, Seed: *o.seed,
		SkipUnreadable: *o.skipUnreadable, Command: commandLine("train", args), Trainer: training.Version(), Log: e.stderr,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "wrote %s: %d classes, trained on %d images in %.1f s; %.1f %% of %d held-out images right\n",
		res.Out, len(res.Classes), res.Train, res.Seconds, 100*res.HeldAccuracy, res.Held)
	if len(res.Skipped) > 0 {
		fmt.Fprintf(e.stdout, "skipped %d unreadable files\n", len(res.Skipped))
	}
	return nil
}
