package nn

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// An op here is a forward Op with a SymDiff that applies one or more
// backward ops; opbase.Base gives each its Op methods and an output buffer
// kept from one step to the next, so steady-state training steps do not
// allocate. Names must be unique per op instance (kind and layer name):
// gorgonia merges nodes whose op hash and inputs are equal, which would be
// wrong for ops with state such as batchnorm or dropout.

// firstShape is InferShape for ops whose output has the shape of input 0.
func firstShape(inputs ...G.DimSizer) (tensor.Shape, error) {
	s, ok := inputs[0].(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("expected a shape, got %T", inputs[0])
	}
	return s.Clone(), nil
}

// channelShape is the shape of a per-channel result (one value per
// channel C of an N×C×… input).
func channelShape(inputs ...G.DimSizer) (tensor.Shape, error) {
	s, err := firstShape(inputs...)
	if err != nil {
		return nil, err
	}
	return tensor.Shape{s[1]}, nil
}

// channelGeometry splits an NC or NCHW shape into batch, channels and
// spatial size.
func channelGeometry(s tensor.Shape) (n, c, hw int) {
	n, c, hw = s[0], s[1], 1
	for _, d := range s[2:] {
		hw *= d
	}
	return n, c, hw
}
