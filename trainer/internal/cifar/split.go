package cifar

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Split holds out valFraction of s as a validation set, stratified: every
// class gives the same fraction (rounded), so class balance is kept. The
// choice depends only on seed; both sets keep the original image order.
// A fraction of 0 gives an empty validation set.
func Split(s *Set, valFraction float64, seed int64) (train, val *Set, err error) {
	if !(valFraction >= 0 && valFraction < 1) {
		return nil, nil, fmt.Errorf("cifar: validation fraction %g must be in [0, 1)", valFraction)
	}
	var byClass [256][]int
	for i, y := range s.Labels {
		byClass[y] = append(byClass[y], i)
	}
	rng := rand.New(rand.NewPCG(uint64(seed), streamSplit))
	inVal := make([]bool, s.Len())
	for _, idx := range byClass {
		k := int(math.Round(valFraction * float64(len(idx))))
		rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		for _, i := range idx[:k] {
			inVal[i] = true
		}
	}
	var trainIdx, valIdx []int
	for i, v := range inVal {
		if v {
			valIdx = append(valIdx, i)
		} else {
			trainIdx = append(trainIdx, i)
		}
	}
	return subset(s, trainIdx), subset(s, valIdx), nil
}

// subset copies the listed images of s into a new set.
func subset(s *Set, idx []int) *Set {
	out := &Set{Images: make([]byte, len(idx)*ImageSize), Labels: make([]uint8, len(idx)), Classes: s.Classes}
	for j, i := range idx {
		copy(out.Images[j*ImageSize:], s.Image(i))
		out.Labels[j] = s.Labels[i]
	}
	return out
}

// Stats returns the per-channel mean and (population) standard deviation
// of all pixels scaled to [0, 1]. Sums are exact integers, so the result
// does not depend on summation order.
func Stats(s *Set) (mean, std [3]float32) {
	var sum, sq [Channels]uint64
	for i := 0; i < s.Len(); i++ {
		img := s.Image(i)
		for c := 0; c < Channels; c++ {
			var a, b uint64
			for _, v := range img[c*PlaneSize : (c+1)*PlaneSize] {
				a += uint64(v)
				b += uint64(v) * uint64(v)
			}
			sum[c] += a
			sq[c] += b
		}
	}
	n := float64(s.Len()) * PlaneSize
	if n == 0 {
		return mean, std
	}
	for c := range Channels {
		m := float64(sum[c]) / n
		v := float64(sq[c])/n - m*m
		mean[c] = float32(m / 255)
		std[c] = float32(math.Sqrt(max(v, 0)) / 255)
	}
	return mean, std
}

// Random streams, so that the split, the epoch order and the augmentation
// draw independent numbers from one seed.
const (
	streamSplit   = 0x5b1f_a9c3_0e27_d641
	streamShuffle = 0x9e37_79b9_7f4a_7c15
	streamAugment = 0xc2b2_ae3d_27d4_eb4f
	streamFlip    = 0x1656_67b1_9e37_79f9
)
