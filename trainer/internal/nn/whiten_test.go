package nn

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/trainer/internal/cifar"
)

// smoothImages returns n images whose neighbouring pixels and channels
// are strongly correlated, like photographs: a random field blurred
// horizontally and vertically, shared in part across channels.
func smoothImages(n int, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 2))
	const side = 32
	x := make([]float32, n*3*side*side)
	base := make([]float64, side*side)
	for i := range n {
		for k := range base {
			base[k] = rng.NormFloat64()
		}
		for c := range 3 {
			img := x[(i*3+c)*side*side:]
			for y := range side {
				for xx := range side {
					v := 0.0
					for _, d := range [][2]int{{0, 0}, {0, 1}, {1, 0}, {1, 1}} {
						v += base[min(y+d[0], side-1)*side+min(xx+d[1], side-1)]
					}
					img[y*side+xx] = float32(v*(1+0.3*float64(c)) + 0.5*rng.NormFloat64())
				}
			}
		}
	}
	return x
}

// whitened applies the first d filters of a k×k whitening conv to every
// patch of the images, computing the convolution by its definition, and
// returns the d×d second-moment matrix of the outputs.
func whitened(w []float32, x []float32, n int, in models.Shape, k int) [][]float64 {
	d := in.C * k * k
	cov := make([][]float64, d)
	for i := range cov {
		cov[i] = make([]float64, d)
	}
	z := make([]float64, d)
	count := 0
	for img := range n {
		im := x[img*in.Size() : (img+1)*in.Size()]
		for y := 0; y+k <= in.H; y++ {
			for xx := 0; xx+k <= in.W; xx++ {
				for f := range d {
					s := 0.0
					for c := range in.C {
						for dy := range k {
							for dx := range k {
								s += float64(w[((f*in.C+c)*k+dy)*k+dx]) * float64(im[c*in.H*in.W+(y+dy)*in.W+xx+dx])
							}
						}
					}
					z[f] = s
				}
				for i := range d {
					for j := range d {
						cov[i][j] += z[i] * z[j]
					}
				}
				count++
			}
		}
	}
	for i := range cov {
		for j := range cov[i] {
			cov[i][j] /= float64(count)
		}
	}
	return cov
}

// checkWhitening initialises the whitening stem of cifarnet-fast from the
// images and checks that its outputs have identity covariance, that the
// second half of the filters negates the first, and that with airbench's
// eps the variances fall in eigenvalue order.
func checkWhitening(t *testing.T, x []float32, n int) {
	t.Helper()
	spec, _ := models.Preset("cifarnet-fast")
	net, err := New(spec, 1)
	if err != nil {
		t.Fatal(err)
	}
	stats, err := NewPatchStats(spec.Input, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := stats.Add(x, n); err != nil {
		t.Fatal(err)
	}
	fill(net.Param("whiten.bias").Data, 0.5)
	if err := net.InitWhitening("whiten", stats, 1e-12); err != nil {
		t.Fatal(err)
	}
	w := net.Param("whiten.weight").Data
	const d = 12
	for i := range d * d {
		if w[d*d+i] != -w[i] {
			t.Fatalf("filter %d is not the negation of filter %d", d+i/d, i/d)
		}
	}
	for _, b := range net.Param("whiten.bias").Data {
		if b != 0 {
			t.Fatal("whitening bias not zeroed")
		}
	}
	cov := whitened(w, x, n, spec.Input, 2)
	for i := range d {
		for j := range d {
			want := 0.0
			if i == j {
				want = 1
			}
			if math.Abs(cov[i][j]-want) > 1e-3 {
				t.Fatalf("whitened covariance [%d][%d] = %.5f, want %g", i, j, cov[i][j], want)
			}
		}
	}
	// With eps the variance of output i is λᵢ/(λᵢ+eps): largest first.
	const eps = 5e-2
	if err := net.InitWhitening("whiten", stats, eps); err != nil {
		t.Fatal(err)
	}
	cov = whitened(net.Param("whiten.weight").Data, x, n, spec.Input, 2)
	for i := 1; i < d; i++ {
		if cov[i][i] > cov[i-1][i-1]+1e-9 {
			t.Errorf("variance of output %d (%.4f) exceeds output %d's (%.4f): filters not in eigenvalue order", i, cov[i][i], i-1, cov[i-1][i-1])
		}
	}
	if cov[d-1][d-1] > 0.999 {
		t.Errorf("eps %g left the smallest component at variance %.5f", eps, cov[d-1][d-1])
	}
}

func TestWhiteningSynthetic(t *testing.T) {
	checkWhitening(t, smoothImages(40, 1), 40)
}

// TestWhiteningCIFAR whitens real CIFAR-10 patches, normalised as the
// trainer does.
func TestWhiteningCIFAR(t *testing.T) {
	dir := os.Getenv("CIFAR10_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "..", "shared", "cifar10", "cifar-10-batches-bin")
	}
	set, err := cifar.LoadFile(filepath.Join(dir, "data_batch_1.bin"))
	if err != nil {
		t.Skipf("CIFAR-10 not found at %s (set CIFAR10_DIR): %v", dir, err)
	}
	const n = 200
	set = &cifar.Set{Images: set.Images[:n*cifar.ImageSize], Labels: set.Labels[:n]}
	mean, std := cifar.Stats(set)
	l := cifar.NewEvalLoader(set, n, mean, std, 1)
	for b := range l.Epoch(0) {
		checkWhitening(t, b.X[:b.N*cifar.ImageSize], b.N)
		l.Release(b)
	}
}

func TestWhiteningRejectsBadLayers(t *testing.T) {
	spec, _ := models.Preset("cifarnet-fast")
	net, _ := New(spec, 1)
	stats, _ := NewPatchStats(spec.Input, 2)
	if _, err := stats.Whitening(0); err == nil {
		t.Error("whitening without patches accepted")
	}
	stats.Add(smoothImages(2, 3), 2)
	for _, name := range []string{"group1.conv1", "group1.bn1", "nope"} {
		if err := net.InitWhitening(name, stats, 1e-4); err == nil {
			t.Errorf("layer %q accepted as a whitening stem", name)
		}
	}
	if err := stats.Add(make([]float32, 10), 1); err == nil {
		t.Error("short image accepted")
	}
}

// TestDiracInit checks that convolutions start as identity maps on their
// first channels: group2.conv2 (256 → 256) passes its input through.
func TestDiracInit(t *testing.T) {
	spec, _ := models.Preset("cifarnet-fast")
	net, _ := New(spec, 1)
	before := append([]float32(nil), net.Param("group1.conv1.weight").Data...)
	net.DiracInit()
	w := net.Param("group2.conv2.weight") // 256×256×3×3
	for o := range 256 {
		for i := range 256 {
			for k := range 9 {
				want := float32(0)
				if o == i && k == 4 {
					want = 1
				}
				if got := w.Data[(o*256+i)*9+k]; got != want {
					t.Fatalf("group2.conv2 weight[%d][%d][%d] = %g, want %g", o, i, k, got, want)
				}
			}
		}
	}
	// group1.conv1 is 24 → 64: filters 24..63 keep their random values.
	g1 := net.Param("group1.conv1.weight").Data
	per := 24 * 9
	if g1[3*per+3*9+4] != 1 || g1[3*per] != 0 {
		t.Error("group1.conv1 filter 3 is not a dirac on channel 3")
	}
	for k := 24 * per; k < 64*per; k++ {
		if g1[k] != before[k] {
			t.Fatalf("group1.conv1 value %d beyond the first 24 filters changed", k)
		}
	}
}
