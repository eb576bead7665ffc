package models

import (
	"fmt"
	"sort"
)

// CIFAR10Classes are the class names in label order.
var CIFAR10Classes = []string{
	"airplane", "automobile", "bird", "cat", "deer",
	"dog", "frog", "horse", "ship", "truck",
}

var cifarInput = Shape{C: 3, H: 32, W: 32}

// presets maps a preset name to its constructor.
var presets = map[string]func() *Spec{
	"keras-cnn":     KerasCNN,
	"cifarnet":      CifarNet,
	"cifarnet-fast": CifarNetFast,
}

// Preset returns a fresh copy of the named preset architecture.
func Preset(name string) (*Spec, error) {
	f, ok := presets[name]
	if !ok {
		return nil, fmt.Errorf("unknown preset %q (have %v)", name, PresetNames())
	}
	return f(), nil
}

// PresetNames lists the preset names in sorted order.
func PresetNames() []string {
	names := make([]string, 0, len(presets))
	for n := range presets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// builder appends layers with generated names.
type builder struct{ s *Spec }

func (b *builder) add(l Layer) { b.s.Layers = append(b.s.Layers, l) }

// KerasCNN is the Keras network of the first reference system: three blocks
// of two 3×3 'same' convolutions (32, 64, 128 filters), each followed by
// batchnorm and ReLU, then 2×2 max-pool and dropout 0.25/0.3/0.35; flatten;
// dense 256 + batchnorm + ReLU + dropout 0.5; dense 10 + softmax. Batchnorm
// uses Keras's epsilon of 1e-3.
func KerasCNN() *Spec {
	b := builder{&Spec{Name: "keras-cnn", Input: cifarInput}}
	const eps = 1e-3
	for i, blk := range []struct {
		filters int
		drop    float64
	}{{32, 0.25}, {64, 0.3}, {128, 0.35}} {
		p := fmt.Sprintf("block%d.", i+1)
		for j := 1; j <= 2; j++ {
			b.add(Layer{Name: p + fmt.Sprintf("conv%d", j), Type: Conv2D, Filters: blk.filters, Kernel: 3, Padding: 1, Bias: true})
			b.add(Layer{Name: p + fmt.Sprintf("bn%d", j), Type: BatchNorm, Eps: eps})
			b.add(Layer{Name: p + fmt.Sprintf("relu%d", j), Type: ReLU})
		}
		b.add(Layer{Name: p + "pool", Type: MaxPool, Kernel: 2})
		b.add(Layer{Name: p + "drop", Type: Dropout, Rate: blk.drop})
	}
	b.add(Layer{Name: "flatten", Type: Flatten})
	b.add(Layer{Name: "fc1", Type: Linear, Units: 256, Bias: true})
	b.add(Layer{Name: "fc1_bn", Type: BatchNorm, Eps: eps})
	b.add(Layer{Name: "fc1_relu", Type: ReLU})
	b.add(Layer{Name: "fc1_drop", Type: Dropout, Rate: 0.5})
	b.add(Layer{Name: "fc2", Type: Linear, Units: 10, Bias: true})
	b.add(Layer{Name: "softmax", Type: Softmax})
	return b.s
}

// CifarNet is the PyTorch CifarNet of the second reference system: four
// residual blocks (64, 128, 256, 384 channels) of two 3×3 convolutions with
// batchnorm and LeakyReLU(0.1), a 1×1 projection on each skip path, max-pool
// after the first three blocks, dropout rising from 0.2 to 0.5, then global
// average pooling and a linear classifier. About 3.5 M trainable parameters.
func CifarNet() *Spec {
	b := builder{&Spec{Name: "cifarnet", Input: cifarInput}}
	skip := InputName // what each block's residual path adds
	for i, blk := range []struct {
		filters int
		drop    float64
		pool    bool
	}{{64, 0.2, true}, {128, 0.3, true}, {256, 0.4, true}, {384, 0.5, false}} {
		p := fmt.Sprintf("block%d.", i+1)
		b.add(Layer{Name: p + "conv1", Type: Conv2D, Filters: blk.filters, Kernel: 3, Padding: 1})
		b.add(Layer{Name: p + "bn1", Type: BatchNorm})
		b.add(Layer{Name: p + "act1", Type: LeakyReLU, Alpha: 0.1})
		b.add(Layer{Name: p + "conv2", Type: Conv2D, Filters: blk.filters, Kernel: 3, Padding: 1})
		b.add(Layer{Name: p + "bn2", Type: BatchNorm})
		b.add(Layer{Name: p + "add", Type: Add, From: skip, Project: true})
		b.add(Layer{Name: p + "act2", Type: LeakyReLU, Alpha: 0.1})
		if blk.pool {
			b.add(Layer{Name: p + "pool", Type: MaxPool, Kernel: 2})
		}
		b.add(Layer{Name: p + "drop", Type: Dropout, Rate: blk.drop})
		skip = p + "drop"
	}
	b.add(Layer{Name: "gap", Type: GlobalAvgPool})
	b.add(Layer{Name: "fc", Type: Linear, Units: 10, Bias: true})
	b.add(Layer{Name: "softmax", Type: Softmax})
	return b.s
}

// CifarNetFast is a compact network in the style of airbench94: a 2×2
// patch-whitening stem (24 filters), three conv groups of 64/256/256
// channels, each conv → max-pool → batchnorm → GELU → conv → batchnorm →
// GELU, a 3×3 max-pool to 1×1 and a linear classifier without bias. About
// 0.24 GFLOP per forward pass.
func CifarNetFast() *Spec {
	b := builder{&Spec{Name: "cifarnet-fast", Input: cifarInput}}
	const eps = 1e-12 // airbench's batchnorm epsilon
	b.add(Layer{Name: "whiten", Type: Conv2D, Filters: 24, Kernel: 2, Bias: true})
	b.add(Layer{Name: "whiten_act", Type: GELU})
	for i, w := range []int{64, 256, 256} {
		p := fmt.Sprintf("group%d.", i+1)
		b.add(Layer{Name: p + "conv1", Type: Conv2D, Filters: w, Kernel: 3, Padding: 1})
		b.add(Layer{Name: p + "pool", Type: MaxPool, Kernel: 2})
		b.add(Layer{Name: p + "bn1", Type: BatchNorm, Eps: eps})
		b.add(Layer{Name: p + "act1", Type: GELU})
		b.add(Layer{Name: p + "conv2", Type: Conv2D, Filters: w, Kernel: 3, Padding: 1})
		b.add(Layer{Name: p + "bn2", Type: BatchNorm, Eps: eps})
		b.add(Layer{Name: p + "act2", Type: GELU})
	}
	b.add(Layer{Name: "head_pool", Type: MaxPool, Kernel: 3})
	b.add(Layer{Name: "flatten", Type: Flatten})
	b.add(Layer{Name: "fc", Type: Linear, Units: 10})
	b.add(Layer{Name: "softmax", Type: Softmax})
	return b.s
}
