package training

import (
	"fmt"
	"strings"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/trainer/internal/cifar"
	"github.com/cifarnet-go/cifarnet/trainer/internal/nn"
	"github.com/cifarnet-go/cifarnet/trainer/internal/optim"
)

// findHead records the last linear layer, the one head_scale folds into.
func (t *trainer) findHead() error {
	if s := t.r.HeadScale; s == 0 || s == 1 {
		return nil
	}
	layers := t.net.Spec().Layers
	for i := len(layers) - 1; i >= 0; i-- {
		if layers[i].Type == models.Linear {
			t.headLayer = layers[i].Name
			return nil
		}
	}
	return fmt.Errorf("head_scale needs a linear layer; %q has none", t.net.Spec().Name)
}

// initWeights applies the recipe's initialisation on top of nn.New's:
// dirac convolutions, the head scale and the whitening stem.
func (t *trainer) initWeights() error {
	if t.r.DiracInit {
		t.net.DiracInit()
	}
	if t.headLayer != "" {
		// Logits s·(Wx+b) are what a layer holding s·W and s·b computes;
		// lrScales gives it the learning rate that keeps training
		// equivalent, so the weight files hold the scaled layer as is.
		s := float32(t.r.HeadScale)
		for _, suffix := range []string{".weight", ".bias"} {
			if p := t.net.Param(t.headLayer + suffix); p != nil {
				for i := range p.Data {
					p.Data[i] *= s
				}
			}
		}
	}
	if t.r.Whiten.Layer != "" {
		return t.initWhitening()
	}
	return nil
}

// initWhitening sets the whitening stem from the patches of the first
// Whiten.Images training images, normalised as for training.
func (t *trainer) initWhitening() error {
	w := t.r.Whiten
	var kernel int
	for _, l := range t.net.Spec().Layers {
		if l.Name == w.Layer && l.Type == models.Conv2D {
			kernel = l.Kernel
		}
	}
	if kernel == 0 {
		return fmt.Errorf("whiten.layer %q: %q has no conv2d layer of that name", w.Layer, t.net.Spec().Name)
	}
	n := t.train.Len()
	if w.Images > 0 {
		n = min(n, w.Images)
	}
	sub := &cifar.Set{Images: t.train.Images[:n*cifar.ImageSize], Labels: t.train.Labels[:n], Classes: t.train.Classes}
	stats, err := nn.NewPatchStats(t.net.Spec().Input, kernel)
	if err != nil {
		return err
	}
	loader := cifar.NewEvalLoader(sub, 500, t.mean, t.std, t.o.Workers)
	for b := range loader.Epoch(0) {
		err := stats.Add(b.X[:b.N*cifar.ImageSize], b.N)
		loader.Release(b)
		if err != nil {
			return err
		}
	}
	if err := t.net.InitWhitening(w.Layer, stats, w.Eps); err != nil {
		return fmt.Errorf("whiten: %w", err)
	}
	return nil
}

// lrScales are the per-parameter learning-rate multipliers of an epoch
// (airbench's parameter groups), aligned with Net.Trainable(): 0 for
// frozen batchnorm scales, the frozen whitening weights and, after its
// epochs, the whitening bias; batchnorm_bias_lr_scale for batchnorm
// shifts; the head scale's equivalent for the head. nil when all are 1.
func (t *trainer) lrScales(epoch int) optim.Scales {
	r := t.r
	head := r.HeadScale
	if r.Optimizer.Name == "sgd" {
		// SGD steps scale with the gradient, which the folded scale
		// multiplies once more; Adam's steps do not.
		head *= head
	}
	ps := t.net.Trainable()
	scales := make(optim.Scales, len(ps))
	trivial := true
	for i, p := range ps {
		// "group1.bn1.bias" is parameter "bias" of layer "group1.bn1".
		dot := strings.LastIndex(p.Name, ".")
		prefix, kind := p.Name[:dot], p.Name[dot+1:]
		s := 1.0
		switch {
		case t.net.IsBatchNorm(p.Name) && kind == "weight" && r.BatchNormFreezeScale:
			s = 0
		case t.net.IsBatchNorm(p.Name) && kind == "bias" && r.BatchNormBiasLRScale > 0:
			s = r.BatchNormBiasLRScale
		case prefix == r.Whiten.Layer && kind == "weight" && r.Whiten.Freeze:
			s = 0
		case prefix == r.Whiten.Layer && kind == "bias" && r.Whiten.BiasEpochs > 0 && epoch > r.Whiten.BiasEpochs:
			s = 0
		case prefix == t.headLayer:
			s = head
		}
		scales[i] = s
		trivial = trivial && s == 1
	}
	if trivial {
		return nil
	}
	return scales
}
