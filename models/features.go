package models

import "fmt"

// HeadLayer returns the name of the network's last linear layer: the
// classifier that fine-tuning on new classes replaces.
func (m *Model) HeadLayer() (string, error) {
	layers := m.Meta.Spec.Layers
	for i := len(layers) - 1; i >= 0; i-- {
		if layers[i].Type == Linear {
			for _, later := range layers[i+1:] {
				if later.Type != Softmax && later.Type != Dropout {
					return "", fmt.Errorf("layer %q follows the last linear layer %q: no plain classifier head", later.Name, layers[i].Name)
				}
			}
			return layers[i].Name, nil
		}
	}
	return "", fmt.Errorf("spec %q has no linear layer", m.Meta.Spec.Name)
}

// Features runs n normalised CHW images up to the layer named head and
// returns what that layer reads, one row of dim values per image: the
// features a new head is trained on, in a new slice.
func (p *Predictor) Features(x []float32, n int, head string) (rows []float32, dim int, err error) {
	m := p.m
	at := -1
	for i := range m.steps {
		if m.steps[i].layer == head {
			at = i
			break
		}
	}
	if at < 0 {
		return nil, 0, fmt.Errorf("features: no layer %q in the compiled network", head)
	}
	if err := p.forward("features", x, n, m.steps[:at]); err != nil {
		return nil, 0, err
	}
	st := &m.steps[at]
	src := p.values[st.in]
	if st.in == 0 { // the head reads the input itself
		src = x
	}
	dim = st.inShape.Size()
	out := make([]float32, n*dim)
	copy(out, src[:n*dim])
	return out, dim, nil
}
