package evaluate

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/cifarnet-go/cifarnet/trainer/internal/cifar"
)

func TestResampled(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	set := &cifar.Set{Images: make([]byte, 3*cifar.ImageSize), Labels: []uint8{0, 1, 2}}
	// Image 0 flat grey, image 1 noise, image 2 a smooth ramp.
	for p := range cifar.ImageSize {
		set.Images[p] = 128
		set.Images[cifar.ImageSize+p] = byte(rng.IntN(256))
		set.Images[2*cifar.ImageSize+p] = byte(4 * (p % cifar.Side))
	}
	if _, err := Resampled(set, 0); err == nil {
		t.Error("factor 0 accepted")
	}
	// Enlarging by 1 and resizing back changes nothing.
	same, err := Resampled(set, 1)
	if err != nil {
		t.Fatal(err)
	}
	if string(same.Images) != string(set.Images) {
		t.Error("factor 1 changed the images")
	}
	out, err := Resampled(set, 4)
	if err != nil {
		t.Fatal(err)
	}
	diff := func(i int) float64 {
		var s float64
		for p := range cifar.ImageSize {
			d := float64(out.Images[i*cifar.ImageSize+p]) - float64(set.Images[i*cifar.ImageSize+p])
			s += d * d
		}
		return math.Sqrt(s / cifar.ImageSize)
	}
	// Flat and smooth images survive; noise is smoothed but keeps its mean.
	if d := diff(0); d != 0 {
		t.Errorf("flat image changed by %.2f RMS", d)
	}
	if d := diff(2); d > 3 {
		t.Errorf("ramp changed by %.2f RMS", d)
	}
	if d := diff(1); d < 5 {
		t.Errorf("noise changed by only %.2f RMS: no resampling happened?", d)
	}
	if out.Labels[1] != 1 || len(out.Images) != len(set.Images) {
		t.Error("labels or size changed")
	}
}
