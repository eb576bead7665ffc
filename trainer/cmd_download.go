package main

import (
	"fmt"
	"path/filepath"

	"github.com/cifarnet-go/cifarnet/trainer/internal/cifar"
	"github.com/cifarnet-go/cifarnet/trainer/internal/download"
)

func runDownload(e *env, args []string) error {
	fs := e.flags("[flags]", `Downloads the official CIFAR-10 binary archive (170 MB), checks its MD5 and
unpacks it into DIR/cifar-10-batches-bin. An interrupted download resumes
where it stopped; when the files are already there nothing is done.

Examples:
  trainer download                     # into ./data
  trainer download --data ~/datasets    # elsewhere; train and eval then take --data ~/datasets`)
	data := dataFlag(fs)
	url := fs.String("url", download.DefaultURL, "download the archive from `URL` (a mirror)")
	sum := fs.String("md5", download.DefaultMD5, "expected MD5 `digest` of the archive, 32 hex digits")
	force := fs.Bool("force", false, "download and unpack again even if the files are present")
	if err := e.parse(fs, args); err != nil {
		return err
	}
	if _, err := positional(fs); err != nil {
		return err
	}
	if !download.ValidMD5(*sum) {
		return usagef("--md5 %q is not 32 hexadecimal digits", *sum)
	}
	dir := filepath.Clean(*data)
	if filepath.Base(dir) == cifar.DirName {
		dir = filepath.Dir(dir) // --data names the batch folder itself
	}
	res, err := download.Fetch(e.ctx, download.Options{
		URL:     *url,
		MD5:     *sum,
		DataDir: dir,
		Force:   *force,
		Log:     e.stderr,
		Bar:     e.stderrTTY,
	})
	if err != nil {
		return err
	}
	if res.Present {
		fmt.Fprintf(e.stdout, "CIFAR-10 is already in %s; nothing to do (--force downloads it again)\n", res.Dir)
	} else {
		fmt.Fprintf(e.stdout, "CIFAR-10 is ready in %s\n", res.Dir)
	}
	return nil
}
