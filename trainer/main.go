// Command trainer downloads CIFAR-10, trains convolutional networks on it
// and writes the weight files that the browser front end runs.
//
// Usage:
//
//	trainer COMMAND [flags] [arguments]
//
// Run "trainer help" for the list of commands and "trainer COMMAND -h" for
// one command's flags. Exit status: 0 success, 1 failure, 2 usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"

	"golang.org/x/term"
)

// command is one subcommand. run parses its own flags with env.flags.
type command struct {
	name    string
	summary string // one line, lower case, no final period
	run     func(e *env, args []string) error
}

// commands lists the subcommands in the order help shows them. Adding a
// subcommand is one line here and a cmd_NAME.go file.
var commands = []command{
	{"download", "fetch and unpack the CIFAR-10 binary archive", runDownload},
	{"info", "describe a weight file: architecture, size, provenance", runInfo},
	{"train", "train a network following a recipe, or resume a run", runTrain},
	{"devices", "list the GPUs and the CPU that train can run on", runDevices},
	{"export", "write a run's best weights with provenance for the front end", runExport},
	{"import", "convert an ONNX model into a weight file for the front end", runImport},
	{"eval", "evaluate a weight file on the test set: report, plots and timings", runEval},
	{"baselines", "train and score logistic regression, a linear SVM and a random forest", runBaselines},
}

// Flag conventions, so that the subcommands agree:
//
//	--data DIR   the data set: the folder holding cifar-10-batches-bin or
//	             that folder itself (default "data"; see dataFlag)
//	--seed N     random seed (int64)
//	--out PATH   where results are written
//	--json       machine-readable output on stdout
const defaultDataDir = "data"

// dataFlag defines --data with the shared default and meaning.
func dataFlag(fs *flag.FlagSet) *string {
	return fs.String("data", defaultDataDir, "CIFAR-10 `DIR`: the folder holding cifar-10-batches-bin, or that folder itself; eval and train --init also take an image folder (DIR/<class>/<images>)")
}

// env is what a subcommand gets besides its arguments.
type env struct {
	ctx            context.Context // cancelled on SIGINT and SIGTERM
	stdout, stderr io.Writer
	stderrTTY      bool // stderr is a terminal: progress bars may be drawn
	cmd            *command
	usage          func() // prints the usage; set by flags
}

// usageError marks a mistake in the command line (exit status 2).
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usagef returns a usageError.
func usagef(format string, a ...any) error {
	return &usageError{fmt.Errorf(format, a...)}
}

// flags returns a FlagSet for the current command. synopsis follows the
// command name in the usage line ("[flags] MODEL"); about, if not empty,
// is a paragraph shown under the summary.
func (e *env) flags(synopsis, about string) *flag.FlagSet {
	fs := flag.NewFlagSet(e.cmd.name, flag.ContinueOnError)
	// flag prints the usage on every error; parse reports errors itself
	// and prints the usage only when asked to.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	e.usage = func() {
		w := e.stdout
		fmt.Fprintf(w, "%s\n\n%s.\n", strings.TrimSpace("usage: trainer "+e.cmd.name+" "+synopsis), capitalize(e.cmd.summary))
		if about != "" {
			fmt.Fprintf(w, "\n%s\n", about)
		}
		printFlags(w, fs)
	}
	return fs
}

// parse parses args into fs. Flags may come before or after the
// positional arguments ("trainer eval MODEL --data DIR"), as users type
// them; after "--" everything is positional. -h and --help print the usage
// on stdout and return flag.ErrHelp (exit status 0); a bad flag gives a
// usageError.
func (e *env) parse(fs *flag.FlagSet, args []string) error {
	err := parseInterspersed(fs, args)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		e.usage()
		return flag.ErrHelp
	default:
		return &usageError{err}
	}
}

// parseInterspersed parses args into fs, taking flags wherever they are
// among the positional arguments, which fs.Args then returns in order.
func parseInterspersed(fs *flag.FlagSet, args []string) error {
	var pos []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return err
		}
		rest := fs.Args()
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	return fs.Parse(append([]string{"--"}, pos...))
}

// positional checks that exactly the named positional arguments were
// given and returns them.
func positional(fs *flag.FlagSet, names ...string) ([]string, error) {
	switch {
	case fs.NArg() < len(names):
		return nil, usagef("missing %s", strings.Join(names[fs.NArg():], " "))
	case fs.NArg() > len(names):
		return nil, usagef("unexpected argument %q", fs.Arg(len(names)))
	}
	return fs.Args(), nil
}

// printFlags lists the flags of fs in "--name VALUE" form.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	first := true
	fs.VisitAll(func(f *flag.Flag) {
		if first {
			fmt.Fprintf(w, "\nflags:\n")
			first = false
		}
		value, usage := flag.UnquoteUsage(f)
		if value != "" {
			value = " " + value
		}
		if _, isBool := f.Value.(interface{ IsBoolFlag() bool }); isBool {
			value = ""
		}
		fmt.Fprintf(w, "  --%s%s\n    \t%s", f.Name, value, usage)
		switch f.DefValue {
		case "", "0", "false":
		default:
			fmt.Fprintf(w, " (default %q)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func printCommands(w io.Writer) {
	fmt.Fprintf(w, "usage: trainer COMMAND [flags] [arguments]\n\ncommands:\n")
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nRun 'trainer COMMAND -h' for the flags of a command.\n")
}

func lookup(name string) *command {
	for i := range commands {
		if commands[i].name == name {
			return &commands[i]
		}
	}
	return nil
}

// run executes the command line args (without the program name) and
// returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printCommands(stderr)
		return 2
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		if args[0] == "help" && len(args) > 1 {
			return run(ctx, []string{args[1], "-h"}, stdout, stderr)
		}
		printCommands(stdout)
		return 0
	}
	cmd := lookup(args[0])
	if cmd == nil {
		fmt.Fprintf(stderr, "trainer: unknown command %q\nRun 'trainer help' for the list of commands.\n", args[0])
		return 2
	}
	e := &env{ctx: ctx, stdout: stdout, stderr: stderr, cmd: cmd}
	if f, ok := stderr.(*os.File); ok {
		e.stderrTTY = term.IsTerminal(int(f.Fd()))
	}
	err := cmd.run(e, args[1:])
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "trainer %s: %v\nRun 'trainer %s -h' for usage.\n", cmd.name, err, cmd.name)
		return 2
	default:
		fmt.Fprintf(stderr, "trainer %s: %v\n", cmd.name, err)
		return 1
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C kills at once
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
