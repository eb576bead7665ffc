package kernels

import (
	"fmt"
	"math"
	"testing"

	"github.com/cifarnet-go/cifarnet/trainer/internal/cuda/device"
	"github.com/cifarnet-go/cifarnet/trainer/internal/optim"
)

// Shapes with one pass-1 partial per channel, several, and enough for a
// dsum_partial pass (over finalParts·perThread values per channel).
var channelCases = []struct{ n, c, hw int }{{2, 3, 5}, {4, 5, 49}, {5, 3, 700}, {7, 2, 1}}

func TestChannelSum(t *testing.T) {
	e := newEnv(t)
	for _, s := range channelCases {
		x := e.randn(s.n*s.c*s.hw, 1, 0.5)
		want := make([]float64, s.c)
		var abs float64
		for i, v := range x {
			want[(i/s.hw)%s.c] += float64(v)
			abs += math.Abs(float64(v))
		}
		out, ws := e.nan(s.c), e.nan(ChannelSumWorkspace(s.n, s.c, s.hw))
		e.ok(ChannelSum(e.d, out, e.up(x), s.n, s.c, s.hw, ws))
		near(t, fmt.Sprintf("%+v", s), e.down(out, s.c), want, 1e-6, 1e-6*abs/float64(s.c))
	}
}

// bnRef is nn's batchnorm in float64: batch statistics, running-statistics
// update, and the backward formulas.
type bnRef struct {
	mean, invStd, runMean, runVar []float64
}

func newBNRef(x, runMean, runVar []float32, n, c, hw int, eps, mom float64) bnRef {
	r := bnRef{make([]float64, c), make([]float64, c), make([]float64, c), make([]float64, c)}
	m := float64(n * hw)
	for ch := range c {
		var sum float64
		for b := range n {
			for _, v := range x[(b*c+ch)*hw : (b*c+ch+1)*hw] {
				sum += float64(v)
			}
		}
		mean := sum / m
		var sq float64
		for b := range n {
			for _, v := range x[(b*c+ch)*hw : (b*c+ch+1)*hw] {
				sq += (float64(v) - mean) * (float64(v) - mean)
			}
		}
		variance := sq / m
		r.mean[ch] = mean
		r.invStd[ch] = 1 / math.Sqrt(variance+eps)
		unbiased := variance
		if m > 1 {
			unbiased = variance * m / (m - 1)
		}
		r.runMean[ch] = (1-mom)*float64(runMean[ch]) + mom*mean
		r.runVar[ch] = (1-mom)*float64(runVar[ch]) + mom*unbiased
	}
	return r
}

func TestBatchNorm(t *testing.T) {
	e := newEnv(t)
	const eps, mom = 1e-5, 0.1
	for _, s := range channelCases {
		n, c, hw := s.n, s.c, s.hw
		total := n * c * hw
		name := fmt.Sprintf("%+v", s)
		// A large mean against the spread: the shifted sums must keep the
		// variance.
		x := e.randn(total, 2, 100)
		gamma, beta := e.randn(c, 1, 1), e.randn(c, 1, 0)
		runMean, runVar := e.randn(c, 1, 0), e.randn(c, 0.1, 1)
		dy := e.randn(total, 1, 0)
		ref := newBNRef(x, runMean, runVar, n, c, hw, eps, mom)

		px, pg, pb, pdy := e.up(x), e.up(gamma), e.up(beta), e.up(dy)
		prm, prv := e.up(runMean), e.up(runVar)
		y, mean, invStd := e.nan(total), e.nan(c), e.nan(c)
		ws := e.nan(BatchNormWorkspace(n, c, hw))
		e.ok(BatchNormTrain(e.d, y, px, pg, pb, prm, prv, mean, invStd, n, c, hw, eps, mom, ws))

		near(t, name+" mean", e.down(mean, c), ref.mean, 1e-6, 0)
		near(t, name+" invStd", e.down(invStd, c), ref.invStd, 1e-5, 0)
		near(t, name+" running mean", e.down(prm, c), ref.runMean, 1e-6, 1e-6)
		near(t, name+" running var", e.down(prv, c), ref.runVar, 1e-5, 0)
		wantY := make([]float64, total)
		for i, v := range x {
			ch := (i / hw) % c
			wantY[i] = (float64(v)-ref.mean[ch])*ref.invStd[ch]*float64(gamma[ch]) + float64(beta[ch])
		}
		// y = x·scale + shift loses ~|x·scale|·2⁻²⁴ to cancellation, as in
		// the CPU op.
		near(t, name+" y", e.down(y, total), wantY, 1e-5, 3e-5)

		// Backward from the saved statistics (float32, as the CPU op).
		gotMean, gotInv := f64s(e.down(mean, c)), f64s(e.down(invStd, c))
		dgamma, dbeta, dx := e.nan(c), e.nan(c), e.nan(total)
		e.ok(BatchNormGammaGrad(e.d, dgamma, px, pdy, mean, invStd, n, c, hw, ws))
		e.ok(ChannelSum(e.d, dbeta, pdy, n, c, hw, ws))
		wantDG, wantDB := make([]float64, c), make([]float64, c)
		var absDG float64
		for i, v := range x {
			ch := (i / hw) % c
			term := float64(dy[i]) * (float64(v) - gotMean[ch])
			wantDG[ch] += term
			wantDB[ch] += float64(dy[i])
			absDG += math.Abs(term)
		}
		for ch := range c {
			wantDG[ch] *= gotInv[ch]
		}
		near(t, name+" dgamma", e.down(dgamma, c), wantDG, 1e-5, 1e-6*absDG*gotInv[0])
		e.ok(BatchNormInputGrad(e.d, dx, px, pg, pdy, dgamma, dbeta, mean, invStd, n, c, hw))
		dg, db := f64s(e.down(dgamma, c)), f64s(e.down(dbeta, c))
		m := float64(n * hw)
		wantDX := make([]float64, total)
		for i, v := range x {
			ch := (i / hw) % c
			xhat := (float64(v) - gotMean[ch]) * gotInv[ch]
			wantDX[i] = float64(gamma[ch]) * gotInv[ch] / m * (m*float64(dy[i]) - db[ch] - xhat*dg[ch])
		}
		nearScaled(t, name+" dx", e.down(dx, total), wantDX, 1e-4)

		// Evaluation normalises with the running statistics.
		rm, rv := e.down(prm, c), e.down(prv, c)
		e.ok(BatchNormEval(e.d, y, px, pg, pb, prm, prv, n, c, hw, eps))
		for i, v := range x {
			ch := (i / hw) % c
			inv := 1 / math.Sqrt(float64(rv[ch])+eps)
			wantY[i] = (float64(v)-float64(rm[ch]))*inv*float64(gamma[ch]) + float64(beta[ch])
		}
		near(t, name+" eval y", e.down(y, total), wantY, 1e-5, 2e-4*math.Abs(float64(gamma[0]))+1e-4)
	}
}

// xentRef is nn's xentOp and xentDiffOp in float64.
func xentRef(logits, target []float32, n, k int, dloss float64) (float64, []float64) {
	var total float64
	grad := make([]float64, n*k)
	for i := range n {
		row := logits[i*k : (i+1)*k]
		m := math.Inf(-1)
		for _, v := range row {
			m = max(m, float64(v))
		}
		var s float64
		for _, v := range row {
			s += math.Exp(float64(v) - m)
		}
		lse := m + math.Log(s)
		for j, v := range row {
			total -= float64(target[i*k+j]) * (float64(v) - lse)
			grad[i*k+j] = (math.Exp(float64(v)-lse) - float64(target[i*k+j])) * dloss / float64(n)
		}
	}
	return total / float64(n), grad
}

func TestSoftmaxXent(t *testing.T) {
	e := newEnv(t)
	for _, s := range []struct {
		n, k      int
		smoothing float64
	}{{1, 10, 0}, {37, 10, 0.2}, {3000, 10, 0}, {5, 3, 0.1}} {
		logits := e.randn(s.n*s.k, 3, 1)
		target := make([]float32, s.n*s.k)
		for i := range s.n {
			for j := range s.k {
				target[i*s.k+j] = float32(s.smoothing / float64(s.k))
			}
			target[i*s.k+e.r.IntN(s.k)] += float32(1 - s.smoothing)
		}
		const dloss = 0.7
		wantLoss, wantGrad := xentRef(logits, target, s.n, s.k, dloss)
		pl, pt := e.up(logits), e.up(target)
		loss, grad := e.nan(1), e.nan(s.n*s.k)
		e.ok(SoftmaxXent(e.d, loss, pl, pt, s.n, s.k, e.nan(SoftmaxXentWorkspace(s.n, s.k))))
		e.ok(SoftmaxXentGrad(e.d, grad, pl, pt, e.up([]float32{dloss}), s.n, s.k))
		name := fmt.Sprintf("%+v", s)
		near(t, name+" loss", e.down(loss, 1), []float64{wantLoss}, 1e-6, 0)
		near(t, name+" grad", e.down(grad, s.n*s.k), wantGrad, 1e-5, 1e-9)
	}
}

func TestClipGlobalNorm(t *testing.T) {
	e := newEnv(t)
	// 40 tensors of 3000 values make over 1024 partials in all: two
	// dsum_partial passes.
	var sizes []int
	for i := range 40 {
		sizes = append(sizes, 2990+i)
	}
	sizes = append(sizes, 0, 1, 7)
	for _, maxNorm := range []float64{1, 1e9} {
		grads := make([][]float32, len(sizes))
		ptrs := make([]device.Ptr, len(sizes))
		for i, n := range sizes {
			grads[i] = e.randn(n, 0.1, 0.01)
			ptrs[i] = e.up(grads[i])
		}
		ws := e.nan(ClipWorkspace(sizes))
		e.ok(ClipGlobalNorm(e.d, ptrs, sizes, maxNorm, ws))
		wantNorm := optim.ClipGlobalNorm(grads, maxNorm)
		norm, err := ClipNorm(e.d, ws)
		e.ok(err)
		if math.Abs(norm-wantNorm) > 1e-12*wantNorm {
			t.Errorf("max %g: norm %.17g, want %.17g", maxNorm, norm, wantNorm)
		}
		for i, g := range grads {
			near(t, fmt.Sprintf("max %g: gradient %d", maxNorm, i), e.down(ptrs[i], sizes[i]), f64s(g), 1e-6, 0)
		}
	}
	ws := e.nan(ClipWorkspace(nil))
	e.ok(ClipGlobalNorm(e.d, nil, nil, 1, ws))
	if norm, err := ClipNorm(e.d, ws); err != nil || norm != 0 {
		t.Errorf("no gradients: norm %g, %v", norm, err)
	}
}
