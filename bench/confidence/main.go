// Command confidence measures the top-class probability (max-softmax) of a
// weight file on the CIFAR-10 test set and on generated images that are
// none of its classes, and prints the threshold the page uses to call a
// result unsure: the highest value that at least --keep of the correctly
// classified test images reach.
//
//	go run ./bench/confidence --model models/zoo/cifarnet-fast/cifarnet-fast.int8.cnw \
//	    --test ../shared/cifar10/cifar-10-batches-bin/test_batch.bin
package main

import (
	"bytes"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"sync"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"github.com/cifarnet-go/cifarnet/models"
)

func main() {
	modelPath := flag.String("model", "models/zoo/cifarnet-fast/cifarnet-fast.int8.cnw", "weight file")
	testPath := flag.String("test", "../shared/cifar10/cifar-10-batches-bin/test_batch.bin", "CIFAR-10 test_batch.bin")
	tta := flag.Bool("tta", true, "apply the model's test-time augmentation, as the page does by default")
	keep := flag.Float64("keep", 0.90, "share of correctly classified test images that must pass")
	limit := flag.Int("limit", 10000, "test images to score")
	flag.Parse()
	if err := run(*modelPath, *testPath, *tta, *keep, *limit); err != nil {
		fmt.Fprintln(os.Stderr, "confidence:", err)
		os.Exit(1)
	}
}

type scored struct {
	p       float32 // top-class probability
	correct bool
}

func run(modelPath, testPath string, tta bool, keep float64, limit int) error {
	f, err := models.ReadFile(modelPath)
	if err != nil {
		return err
	}
	m, err := models.NewModel(f)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(testPath)
	if err != nil {
		return err
	}
	const rec = 1 + 3*32*32
	n := min(len(data)/rec, limit)
	in := f.Meta.Spec.Input
	norm := f.Meta.Normalization

	// Test images through the page's path: RGBA pixels → Normalize.
	test := make([]scored, n)
	parallel(n, m, tta, func(i int, predict func([]float32) []float32) {
		r := data[i*rec : (i+1)*rec]
		img := image.NewNRGBA(image.Rect(0, 0, 32, 32))
		for p := 0; p < 1024; p++ {
			img.Pix[4*p], img.Pix[4*p+1], img.Pix[4*p+2], img.Pix[4*p+3] = r[1+p], r[1+1024+p], r[1+2048+p], 255
		}
		probs := predict(models.Normalize(img, norm, nil))
		top := argmax(probs)
		test[i] = scored{probs[top], top == int(r[0])}
	})

	// Generated images that are none of the ten classes, as PNG files
	// through the page's decoder and resampler.
	others := generated()
	other := make([]float32, len(others))
	parallel(len(others), m, tta, func(i int, predict func([]float32) []float32) {
		var b bytes.Buffer
		if err := png.Encode(&b, others[i].img); err != nil {
			panic(err)
		}
		x, _, err := models.PreprocessImage(b.Bytes(), in, norm)
		if err != nil {
			panic(err)
		}
		probs := predict(x)
		other[i] = probs[argmax(probs)]
	})

	var right []float32
	for _, s := range test {
		if s.correct {
			right = append(right, s.p)
		}
	}
	slices.Sort(right)
	// The threshold: the value at the (1-keep) quantile of correct images,
	// rounded down to a whole percent so the page's rule reads simply.
	q := right[int(math.Floor((1-keep)*float64(len(right))))]
	threshold := math.Floor(float64(q)*100) / 100
	pass := func(ps []float32) int {
		c := 0
		for _, p := range ps {
			if float64(p) >= threshold {
				c++
			}
		}
		return c
	}
	var wrong, all []float32
	for _, s := range test {
		all = append(all, s.p)
		if !s.correct {
			wrong = append(wrong, s.p)
		}
	}
	fmt.Printf("model %s, TTA %v, %d test images, accuracy %.2f %%\n", modelPath, tta, n, 100*float64(len(right))/float64(n))
	fmt.Printf("threshold (max-softmax, %.0f %% of correct pass, rounded down to 0.01): %.2f\n", keep*100, threshold)
	fmt.Printf("correct test images passing: %d of %d (%.1f %%)\n", pass(right), len(right), pct(pass(right), len(right)))
	fmt.Printf("wrong test images flagged unsure: %d of %d (%.1f %%)\n", len(wrong)-pass(wrong), len(wrong), pct(len(wrong)-pass(wrong), len(wrong)))
	fmt.Printf("all test images flagged unsure: %d of %d (%.1f %%)\n", len(all)-pass(all), len(all), pct(len(all)-pass(all), len(all)))
	flagged := len(other) - pass(other)
	fmt.Printf("generated non-CIFAR images flagged unsure: %d of %d (%.1f %%)\n", flagged, len(other), pct(flagged, len(other)))
	kinds := map[string][2]int{}
	var order []string
	for i, o := range others {
		k := kinds[o.kind]
		if k[1] == 0 {
			order = append(order, o.kind)
		}
		k[1]++
		if float64(other[i]) < threshold {
			k[0]++
		}
		kinds[o.kind] = k
	}
	for _, kind := range order {
		k := kinds[kind]
		fmt.Printf("  %-10s %3d of %3d flagged\n", kind, k[0], k[1])
	}
	return nil
}

func pct(a, b int) float64 { return 100 * float64(a) / float64(b) }

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// parallel runs job for 0..n-1 on one predictor per CPU.
func parallel(n int, m *models.Model, tta bool, job func(int, func([]float32) []float32)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < runtime.NumCPU(); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := m.NewPredictor()
			predict := func(x []float32) []float32 {
				var out []float32
				var err error
				if tta {
					out, err = p.PredictTTA(x)
				} else {
					out, err = p.Predict(x)
				}
				if err != nil {
					panic(err)
				}
				return slices.Clone(out)
			}
			for i := range next {
				job(i, predict)
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
}

type sampleImage struct {
	kind string
	img  image.Image
}

// generated makes 400 images of things that are not CIFAR-10 classes:
// noise, flat colours, text, stripes and checks, gradients and shapes.
func generated() []sampleImage {
	rng := rand.New(rand.NewPCG(1, 2))
	var out []sampleImage
	randColor := func() color.NRGBA {
		return color.NRGBA{uint8(rng.IntN(256)), uint8(rng.IntN(256)), uint8(rng.IntN(256)), 255}
	}
	const side = 96
	for i := 0; i < 80; i++ { // noise: uniform, coarse blocks
		img := image.NewNRGBA(image.Rect(0, 0, side, side))
		block := 1 << (i % 4)
		for y := 0; y < side; y += block {
			for x := 0; x < side; x += block {
				c := randColor()
				if i%8 >= 4 { // grey noise
					c.G, c.B = c.R, c.R
				}
				draw.Draw(img, image.Rect(x, y, x+block, y+block), image.NewUniform(c), image.Point{}, draw.Src)
			}
		}
		out = append(out, sampleImage{"noise", img})
	}
	for i := 0; i < 80; i++ { // flat colours
		img := image.NewNRGBA(image.Rect(0, 0, side, side))
		draw.Draw(img, img.Bounds(), image.NewUniform(randColor()), image.Point{}, draw.Src)
		out = append(out, sampleImage{"flat", img})
	}
	words := []string{"hello", "invoice", "2026", "cifarnet", "Go wasm", "lorem ipsum", "TOTAL 42.00", "page 3", "x = y + 1", "ABC"}
	for i := 0; i < 80; i++ { // text on a plain background
		img := image.NewNRGBA(image.Rect(0, 0, side, side))
		bg, fg := randColor(), randColor()
		if i%2 == 0 {
			bg, fg = color.NRGBA{255, 255, 255, 255}, color.NRGBA{0, 0, 0, 255}
		}
		draw.Draw(img, img.Bounds(), image.NewUniform(bg), image.Point{}, draw.Src)
		d := font.Drawer{Dst: img, Src: image.NewUniform(fg), Face: basicfont.Face7x13}
		for line := 0; line < 6; line++ {
			d.Dot = fixed.P(2+rng.IntN(10), 14+line*15)
			d.DrawString(words[(i+line)%len(words)])
		}
		out = append(out, sampleImage{"text", img})
	}
	for i := 0; i < 80; i++ { // stripes and checkerboards
		img := image.NewNRGBA(image.Rect(0, 0, side, side))
		a, b := randColor(), randColor()
		period := 2 + rng.IntN(24)
		for y := 0; y < side; y++ {
			for x := 0; x < side; x++ {
				var on bool
				switch i % 3 {
				case 0:
					on = (x/period)%2 == 0
				case 1:
					on = ((x+y)/period)%2 == 0
				default:
					on = (x/period+y/period)%2 == 0
				}
				c := b
				if on {
					c = a
				}
				img.SetNRGBA(x, y, c)
			}
		}
		out = append(out, sampleImage{"pattern", img})
	}
	for i := 0; i < 80; i++ { // gradients, some with a circle or square on them
		img := image.NewNRGBA(image.Rect(0, 0, side, side))
		a, b := randColor(), randColor()
		for y := 0; y < side; y++ {
			for x := 0; x < side; x++ {
				t := float64(x) / side
				if i%2 == 1 {
					t = float64(x+y) / (2 * side)
				}
				mix := func(p, q uint8) uint8 { return uint8(float64(p)*(1-t) + float64(q)*t) }
				img.SetNRGBA(x, y, color.NRGBA{mix(a.R, b.R), mix(a.G, b.G), mix(a.B, b.B), 255})
			}
		}
		if i%4 >= 2 {
			c, r := randColor(), 10+rng.IntN(30)
			cx, cy := 20+rng.IntN(56), 20+rng.IntN(56)
			for y := 0; y < side; y++ {
				for x := 0; x < side; x++ {
					in := (x-cx)*(x-cx)+(y-cy)*(y-cy) < r*r
					if i%8 >= 4 {
						in = abs(x-cx) < r && abs(y-cy) < r
					}
					if in {
						img.SetNRGBA(x, y, c)
					}
				}
			}
		}
		out = append(out, sampleImage{"gradient", img})
	}
	return out
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
