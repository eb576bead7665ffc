package baselines

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// LinearConfig sets how a linear classifier is trained: mini-batch SGD
// with momentum and a cosine-decayed learning rate on the regularised
// objective λ/2·‖W‖² + mean loss (the bias is not regularised).
type LinearConfig struct {
	Epochs    int
	BatchSize int
	LearnRate float64 // initial step size
	Momentum  float64
	L2        float64 // λ
	Seed      uint64
}

func (c LinearConfig) validate() error {
	switch {
	case c.Epochs <= 0:
		return fmt.Errorf("baselines: epochs %d must be positive", c.Epochs)
	case c.BatchSize <= 0:
		return fmt.Errorf("baselines: batch size %d must be positive", c.BatchSize)
	case !(c.LearnRate > 0):
		return fmt.Errorf("baselines: learning rate %g must be positive", c.LearnRate)
	case !(c.Momentum >= 0 && c.Momentum < 1):
		return fmt.Errorf("baselines: momentum %g must be in [0, 1)", c.Momentum)
	case !(c.L2 >= 0):
		return fmt.Errorf("baselines: L2 %g must not be negative", c.L2)
	}
	return nil
}

// lossGrad writes into g the gradient of the summed loss of a batch with
// respect to its scores s (rows of k), returns the summed loss.
type lossGrad func(s, g []float32, y []int, k int) float64

// linearModel is scores = standardise(x)·Wᵀ + b, trained by SGD.
type linearModel struct {
	cfg  LinearConfig
	loss lossGrad
	std  *Standardizer
	w    []float32 // K×D: one row of weights per class
	b    []float32 // K
	d, k int
	// Losses holds the mean training objective of every epoch.
	losses []float64
}

// fit trains the model on d.
func (m *linearModel) fit(d *Dataset) error {
	if err := d.Validate(); err != nil {
		return err
	}
	if err := m.cfg.validate(); err != nil {
		return err
	}
	n := d.Len()
	if n == 0 {
		return errors.New("baselines: no training examples")
	}
	m.d, m.k = d.D, d.Classes
	m.std = FitStandardizer(d)
	m.w = make([]float32, m.d*m.k)
	m.b = make([]float32, m.k)
	vw := make([]float32, len(m.w))
	vb := make([]float32, m.k)
	dw := make([]float32, len(m.w))

	bs := min(m.cfg.BatchSize, n)
	xb := make([]float32, bs*m.d)
	sb := make([]float32, bs*m.k)
	gb := make([]float32, bs*m.k)
	yb := make([]int, bs)
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	rng := rand.New(rand.NewPCG(m.cfg.Seed, 0x5eed11))
	steps := m.cfg.Epochs * ((n + bs - 1) / bs)
	step := 0
	m.losses = m.losses[:0]
	for range m.cfg.Epochs {
		rng.Shuffle(n, func(i, j int) { order[i], order[j] = order[j], order[i] })
		var epochLoss float64
		for lo := 0; lo < n; lo += bs {
			hi := min(lo+bs, n)
			nb := hi - lo
			for j, i := range order[lo:hi] {
				m.std.Transform(xb[j*m.d:(j+1)*m.d], d.Row(i))
				yb[j] = d.Y[i]
			}
			m.scores(xb[:nb*m.d], sb[:nb*m.k], nb)
			clear(gb[:nb*m.k])
			epochLoss += m.loss(sb[:nb*m.k], gb[:nb*m.k], yb[:nb], m.k)

			// Mean gradient of the batch plus the L2 term.
			scale := float32(1 / float64(nb))
			// K×D layouts keep the inner loops of the products long
			// (D) rather than short (K): many times faster.
			blas32.Gemm(blas.Trans, blas.NoTrans, scale,
				blas32.General{Rows: nb, Cols: m.k, Stride: m.k, Data: gb},
				blas32.General{Rows: nb, Cols: m.d, Stride: m.d, Data: xb},
				0, blas32.General{Rows: m.k, Cols: m.d, Stride: m.d, Data: dw})
			lr := float32(m.cfg.LearnRate * 0.5 * (1 + math.Cos(math.Pi*float64(step)/float64(steps))))
			mu, l2 := float32(m.cfg.Momentum), float32(m.cfg.L2)
			for i, g := range dw {
				vw[i] = mu*vw[i] - lr*(g+l2*m.w[i])
				m.w[i] += vw[i]
			}
			for c := range m.k {
				var g float32
				for j := range nb {
					g += gb[j*m.k+c]
				}
				vb[c] = mu*vb[c] - lr*g*scale
				m.b[c] += vb[c]
			}
			step++
		}
		var sq float64
		for _, w := range m.w {
			sq += float64(w) * float64(w)
		}
		obj := epochLoss/float64(n) + m.cfg.L2/2*sq
		if math.IsNaN(obj) || math.IsInf(obj, 0) {
			return fmt.Errorf("baselines: training diverged (objective %g); lower the learning rate", obj)
		}
		m.losses = append(m.losses, obj)
	}
	return nil
}

// scores computes s = x·Wᵀ + b for n standardised rows.
func (m *linearModel) scores(x, s []float32, n int) {
	for j := range n {
		copy(s[j*m.k:(j+1)*m.k], m.b)
	}
	blas32.Gemm(blas.NoTrans, blas.Trans, 1,
		blas32.General{Rows: n, Cols: m.d, Stride: m.d, Data: x},
		blas32.General{Rows: m.k, Cols: m.d, Stride: m.d, Data: m.w},
		1, blas32.General{Rows: n, Cols: m.k, Stride: m.k, Data: s})
}

// predict returns the highest-scoring class of every example of d.
func (m *linearModel) predict(d *Dataset) ([]int, error) {
	if m.w == nil {
		return nil, errors.New("baselines: model not trained")
	}
	if d.D != m.d {
		return nil, fmt.Errorf("baselines: %d features, model trained on %d", d.D, m.d)
	}
	const chunk = 512
	x := make([]float32, chunk*m.d)
	s := make([]float32, chunk*m.k)
	out := make([]int, d.Len())
	for lo := 0; lo < d.Len(); lo += chunk {
		hi := min(lo+chunk, d.Len())
		for i := lo; i < hi; i++ {
			m.std.Transform(x[(i-lo)*m.d:(i-lo+1)*m.d], d.Row(i))
		}
		m.scores(x[:(hi-lo)*m.d], s[:(hi-lo)*m.k], hi-lo)
		for i := lo; i < hi; i++ {
			out[i] = argmax(s[(i-lo)*m.k : (i-lo+1)*m.k])
		}
	}
	return out, nil
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// softmaxLoss is the multinomial logistic (cross-entropy) loss.
func softmaxLoss(s, g []float32, y []int, k int) float64 {
	var total float64
	for j, label := range y {
		row, grad := s[j*k:(j+1)*k], g[j*k:(j+1)*k]
		mx := row[0]
		for _, v := range row {
			mx = max(mx, v)
		}
		var z float64
		for c, v := range row {
			e := math.Exp(float64(v - mx))
			grad[c] = float32(e)
			z += e
		}
		for c := range grad {
			grad[c] /= float32(z)
		}
		total += math.Log(z) - float64(row[label]-mx)
		grad[label]--
	}
	return total
}

// crammerSingerLoss is the multiclass hinge loss of Crammer and Singer:
// max(0, 1 + max_{c≠y} s_c − s_y), one margin against the strongest rival.
func crammerSingerLoss(s, g []float32, y []int, k int) float64 {
	var total float64
	for j, label := range y {
		row, grad := s[j*k:(j+1)*k], g[j*k:(j+1)*k]
		rival := -1
		for c, v := range row {
			if c != label && (rival < 0 || v > row[rival]) {
				rival = c
			}
		}
		if l := 1 + row[rival] - row[label]; l > 0 {
			total += float64(l)
			grad[rival]++
			grad[label]--
		}
	}
	return total
}
