package nn

import (
	"fmt"

	G "gorgonia.org/gorgonia"
)

// DeviceGraph is a network's graph for a backend that runs it with its own
// kernels instead of gorgonia's machine: every layer uses the trainer's
// ops, which describe themselves (opbase.Describer), and the nodes come in
// an order in which each node follows its inputs.
type DeviceGraph struct {
	Graph *G.ExprGraph
	Batch int
	// Input holds the images (Batch×C×H×W); Target the label
	// distributions (Batch×classes), nil in evaluation.
	Input, Target *G.Node
	Logits        *G.Node
	Loss          *G.Node // nil in evaluation
	// Grads are the gradients' nodes, aligned with Net.Trainable().
	Grads G.Nodes
	// Order is every node, inputs before the nodes that use them.
	Order G.Nodes
}

// NewDeviceGraph builds a training (train) or evaluation graph for batches
// of batch images. bnMomentum is the batchnorm momentum in PyTorch's
// convention.
func (n *Net) NewDeviceGraph(batch int, train bool, bnMomentum float64) (*DeviceGraph, error) {
	if bnMomentum < 0 || bnMomentum > 1 {
		return nil, fmt.Errorf("batchnorm momentum %g: must be in [0, 1]", bnMomentum)
	}
	gr, err := n.defineGraph(batch, train, bnMomentum, true)
	if err != nil {
		return nil, err
	}
	sorted, err := G.Sort(gr.g)
	if err != nil {
		return nil, fmt.Errorf("order graph of %q: %w", n.spec.Name, err)
	}
	// Sort puts each node before its operands; run order is the reverse.
	order := make(G.Nodes, len(sorted))
	for i, nd := range sorted {
		order[len(sorted)-1-i] = nd
	}
	dg := &DeviceGraph{Graph: gr.g, Batch: batch, Logits: gr.logits, Loss: gr.loss, Grads: gr.grads, Order: order}
	dg.Input = gr.g.ByName("input")[0]
	if train {
		dg.Target = gr.g.ByName("target")[0]
	}
	return dg, nil
}

// Inputs returns a node's operands in order.
func (dg *DeviceGraph) Inputs(nd *G.Node) G.Nodes {
	it := dg.Graph.From(nd.ID())
	var in G.Nodes
	for it.Next() {
		in = append(in, it.Node().(*G.Node))
	}
	return in
}
