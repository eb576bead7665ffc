// Command cifarpack packs the CIFAR-10 binary batches into one small file
// and unpacks it back into the official layout, to carry the data set to a
// machine that cannot download it (bench/gpu.sh's GPU host).
//
//	cifarpack pack -data DIR -out F [-test] [-quality Q]
//	cifarpack unpack -in F -out DIR
//	cifarpack sweep -data DIR [-n N] [-q Q1,Q2,…]
//
// pack re-encodes each 32×32 image as a baseline JPEG (Go's image/jpeg,
// 4:2:0 chroma) and stores the labels, one JPEG header shared by all
// images (every image of one quality and size gets the same tables) and
// each image's entropy-coded scan. unpack writes data_batch_1.bin …
// data_batch_5.bin (and test_batch.bin when packed) and batches.meta.txt,
// each checked against the SHA-256 that pack computed by decoding its own
// output, so a damaged file or a different decoder is caught. The pixels
// are not the originals: pack prints the mean and largest absolute
// difference in grey levels. sweep prints the size and error of the
// training set at each quality, to choose one.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage:
  cifarpack pack -data DIR -out FILE [-test] [-quality Q]
  cifarpack unpack -in FILE -out DIR
  cifarpack sweep -data DIR [-n N] [-q Q1,Q2,…]
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	fs := flag.NewFlagSet("cifarpack "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	var err error
	switch args[0] {
	case "pack":
		data := fs.String("data", "", "`DIR` holding data_batch_1.bin … (cifar-10-batches-bin)")
		out := fs.String("out", "", "pack `FILE` to write")
		test := fs.Bool("test", false, "include test_batch.bin")
		quality := fs.Int("quality", DefaultQuality, "JPEG `Q`uality, 1–100")
		if fs.Parse(args[1:]) != nil {
			return 2
		}
		if *data == "" || *out == "" || fs.NArg() > 0 {
			fmt.Fprint(stderr, usage)
			return 2
		}
		start := time.Now()
		var st Stats
		if st, err = PackDir(*data, *out, *test, *quality); err == nil {
			fmt.Fprintf(stdout, "%s: %d images from %s at quality %d: %.1f MB (%.0f bytes an image) in %.1fs; "+
				"pixels differ from the originals by %.2f grey levels on average, %d at most (%.1f%% unchanged)\n",
				*out, st.Images, strings.Join(st.Files, ", "), *quality, float64(st.Bytes)/1e6,
				float64(st.Bytes)/float64(st.Images), time.Since(start).Seconds(), st.MeanAbs(), st.MaxAbs,
				100*float64(st.Exact)/float64(st.Values))
		}
	case "unpack":
		in := fs.String("in", "", "pack `FILE` to read")
		out := fs.String("out", "", "`DIR` to write the batches to (created)")
		if fs.Parse(args[1:]) != nil {
			return 2
		}
		if *in == "" || *out == "" || fs.NArg() > 0 {
			fmt.Fprint(stderr, usage)
			return 2
		}
		start := time.Now()
		var files []string
		if files, err = UnpackFile(*in, *out); err == nil {
			fmt.Fprintf(stdout, "%s: %s and batches.meta.txt, checked, in %.1fs\n", *out, strings.Join(files, ", "), time.Since(start).Seconds())
		}
	case "sweep":
		data := fs.String("data", "", "`DIR` holding data_batch_1.bin …")
		n := fs.Int("n", 0, "use the first `N` images of each file (0: all)")
		qs := fs.String("q", "", "comma-separated `QUALITIES` (default "+fmt.Sprint(SweepQualities)+")")
		if fs.Parse(args[1:]) != nil {
			return 2
		}
		if *data == "" || fs.NArg() > 0 {
			fmt.Fprint(stderr, usage)
			return 2
		}
		qualities := SweepQualities
		if *qs != "" {
			qualities = nil
			for _, f := range strings.Split(*qs, ",") {
				q, err := strconv.Atoi(strings.TrimSpace(f))
				if err != nil || q < 1 || q > 100 {
					fmt.Fprintf(stderr, "cifarpack sweep: -q %s: want qualities 1–100\n", *qs)
					return 2
				}
				qualities = append(qualities, q)
			}
		}
		err = Sweep(*data, *n, qualities, stdout)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "cifarpack: unknown command %q\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "cifarpack %s: %v\n", args[0], err)
		return 1
	}
	return 0
}
