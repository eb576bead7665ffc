package nn

import (
	"errors"
	"fmt"
	"math"

	"github.com/cifarnet-go/cifarnet/models"
	"gonum.org/v1/gonum/mat"
)

// PatchStats accumulates the second moments of the k×k patches (stride 1,
// no padding) of normalised CHW images, the statistics airbench's
// patch-whitening stem is initialised from. A patch is flattened in
// (channel, row, column) order, the order of a conv weight's input side.
type PatchStats struct {
	in   models.Shape
	k    int
	sum  []float64 // d×d, row-major
	n    int64     // patches added
	flat []float64 // one patch
}

// NewPatchStats returns empty statistics of k×k patches of images of
// shape in.
func NewPatchStats(in models.Shape, k int) (*PatchStats, error) {
	if k <= 0 || k > in.H || k > in.W || in.C <= 0 {
		return nil, fmt.Errorf("patch stats: %d×%d patches of %v images", k, k, in)
	}
	d := in.C * k * k
	return &PatchStats{in: in, k: k, sum: make([]float64, d*d), flat: make([]float64, d)}, nil
}

// Dim is the length of a flattened patch.
func (s *PatchStats) Dim() int { return len(s.flat) }

// Add adds every patch of n images stored back to back in x.
func (s *PatchStats) Add(x []float32, n int) error {
	size := s.in.Size()
	if n < 0 || len(x) != n*size {
		return fmt.Errorf("patch stats: %d values for %d images of %v", len(x), n, s.in)
	}
	d, k, hw := len(s.flat), s.k, s.in.H*s.in.W
	for img := range n {
		im := x[img*size : (img+1)*size]
		for y := 0; y+k <= s.in.H; y++ {
			for x0 := 0; x0+k <= s.in.W; x0++ {
				p := s.flat[:0]
				for c := range s.in.C {
					for dy := range k {
						row := im[c*hw+(y+dy)*s.in.W+x0:]
						for dx := range k {
							p = append(p, float64(row[dx]))
						}
					}
				}
				// Upper triangle only; Covariance mirrors it.
				for i, a := range p {
					r := s.sum[i*d:]
					for j := i; j < d; j++ {
						r[j] += a * p[j]
					}
				}
				s.n++
			}
		}
	}
	return nil
}

// Covariance returns the mean outer product of the patches. Like
// airbench's, it is not centred: the images are already normalised to
// zero mean per channel.
func (s *PatchStats) Covariance() (*mat.SymDense, error) {
	if s.n == 0 {
		return nil, errors.New("patch stats: no patches added")
	}
	d := len(s.flat)
	cov := mat.NewSymDense(d, nil)
	for i := range d {
		for j := i; j < d; j++ {
			cov.SetSym(i, j, s.sum[i*d+j]/float64(s.n))
		}
	}
	return cov, nil
}

// Whitening returns the weights of a k×k convolution with 2·d filters (d
// the patch length) that whitens the patches: filter i < d is the
// eigenvector of the i-th largest eigenvalue λ of the covariance divided by
// √(λ+eps), and filter d+i is its negation, so that a following GELU
// keeps both signs. The layout is [2d, C, k, k].
func (s *PatchStats) Whitening(eps float64) ([]float32, error) {
	if !(eps >= 0) {
		return nil, fmt.Errorf("whitening: eps %g must not be negative", eps)
	}
	cov, err := s.Covariance()
	if err != nil {
		return nil, err
	}
	var eig mat.EigenSym
	if !eig.Factorize(cov, true) {
		return nil, errors.New("whitening: eigen-decomposition of the patch covariance failed")
	}
	vals := eig.Values(nil) // ascending
	var vecs mat.Dense
	eig.VectorsTo(&vecs)
	d := len(vals)
	w := make([]float32, 2*d*d)
	for f := range d {
		col := d - 1 - f // largest eigenvalue first, as airbench orders them
		lambda := max(vals[col], 0)
		if lambda+eps == 0 {
			return nil, fmt.Errorf("whitening: patch covariance is singular (eigenvalue %d is 0); use eps > 0", f)
		}
		scale := 1 / math.Sqrt(lambda+eps)
		for j := range d {
			v := float32(vecs.At(j, col) * scale)
			w[f*d+j] = v
			w[(d+f)*d+j] = -v
		}
	}
	return w, nil
}

// InitWhitening sets the weights of conv layer name from the patch
// statistics (see PatchStats.Whitening) and zeroes its bias. The layer must
// have the stats' kernel, no padding or stride, and 2·d filters.
func (n *Net) InitWhitening(name string, s *PatchStats, eps float64) error {
	var layer *models.Layer
	for i := range n.spec.Layers {
		if l := &n.spec.Layers[i]; l.Name == name {
			layer = l
		}
	}
	if layer == nil || layer.Type != models.Conv2D {
		return fmt.Errorf("whitening: no conv2d layer %q", name)
	}
	w := n.byName[name+".weight"]
	d := s.Dim()
	if layer.Kernel != s.k || layer.Padding != 0 || layer.EffectiveStride() != 1 || w.Shape[0] != 2*d || w.Shape[1] != s.in.C {
		return fmt.Errorf("whitening: layer %q (%d filters, kernel %d, stride %d, padding %d, %d input channels) is not a %d×%d whitening stem: it needs %d filters, stride 1, no padding and %d input channels",
			name, w.Shape[0], layer.Kernel, layer.EffectiveStride(), layer.Padding, w.Shape[1], s.k, s.k, 2*d, s.in.C)
	}
	weights, err := s.Whitening(eps)
	if err != nil {
		return fmt.Errorf("layer %q: %w", name, err)
	}
	copy(w.Data, weights)
	if b := n.byName[name+".bias"]; b != nil {
		fill(b.Data, 0)
	}
	return nil
}

// DiracInit makes every convolution start close to an identity map, as
// airbench's do: for i below both the filter and input-channel counts,
// filter i becomes 1 at the kernel centre of input channel i and 0
// elsewhere (torch.nn.init.dirac_ on the first filters); the other filters
// keep their random initialisation.
func (n *Net) DiracInit() {
	for _, l := range n.spec.Layers {
		if l.Type != models.Conv2D {
			continue
		}
		w := n.byName[l.Name+".weight"]
		out, in, k := w.Shape[0], w.Shape[1], w.Shape[2]
		per := in * k * k
		for i := range min(out, in) {
			f := w.Data[i*per : (i+1)*per]
			fill(f, 0)
			f[i*k*k+(k/2)*k+k/2] = 1
		}
	}
}

// IsBatchNorm reports whether a parameter belongs to a batchnorm layer,
// including an add layer's projection batchnorm.
func (n *Net) IsBatchNorm(name string) bool { return n.isBatchNorm(name) }
