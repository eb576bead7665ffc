package onnx

import "fmt"

// A weight-file spec is a sequence of layers, each reading the one before,
// plus adds that also read an earlier layer, directly or through a 1×1
// convolution and batchnorm (a projection). mainPath finds that sequence
// in an ONNX graph by walking back from the output.

// link is one step of the main path; the path is a linked list from the
// output back to the graph input (nil), so that paths share prefixes.
type link struct {
	prev *link
	n    *node
	main string // the value n reads from the previous step
	// Add only: the value the skip operand is computed from, and the
	// projection nodes between it and the add (conv, then batchnorm or
	// nothing), nil for a plain residual.
	skip string
	proj []*node
}

// out is the value this step produces.
func (l *link) out() string { return l.n.outputs[0] }

// onPath reports whether v is the graph input or produced by a step of p.
func (g *graph) onPath(p *link, v string) bool {
	if v == g.input {
		return true
	}
	for ; p != nil; p = p.prev {
		if p.out() == v {
			return true
		}
	}
	return false
}

type pathFinder struct {
	g    *graph
	memo map[string]*link
	errs map[string]error
}

// mainPath returns the steps from the input to the output, in order.
func (g *graph) mainPath() ([]*link, error) {
	pf := &pathFinder{g: g, memo: map[string]*link{}, errs: map[string]error{}}
	p, err := pf.path(g.output)
	if err != nil {
		return nil, err
	}
	var steps []*link
	for ; p != nil; p = p.prev {
		steps = append(steps, p)
	}
	for i, j := 0, len(steps)-1; i < j; i, j = i+1, j-1 {
		steps[i], steps[j] = steps[j], steps[i]
	}
	return steps, nil
}

// dataInputs are the inputs of n that are neither absent nor constant.
func (g *graph) dataInputs(n *node) []string {
	var d []string
	for _, v := range n.inputs {
		if v != "" && !g.isConst(v) {
			d = append(d, v)
		}
	}
	return d
}

// path returns the main path ending at value v, memoised so that every
// value is explored once.
func (pf *pathFinder) path(v string) (*link, error) {
	g := pf.g
	if v == g.input {
		return nil, nil
	}
	if l, ok := pf.memo[v]; ok {
		return l, nil
	}
	if err, ok := pf.errs[v]; ok {
		return nil, err
	}
	l, err := pf.find(v)
	if err != nil {
		pf.errs[v] = err
		return nil, err
	}
	pf.memo[v] = l
	return l, nil
}

func (pf *pathFinder) find(v string) (*link, error) {
	g := pf.g
	n := g.producer[v]
	switch {
	case n == nil && g.isConst(v):
		return nil, fmt.Errorf("the output depends on constant %q alone, not on the input", v)
	case n == nil:
		return nil, fmt.Errorf("value %q is neither the input nor computed by a node", v)
	case n.outputs[0] != v:
		return nil, fmt.Errorf("node %q (%s): only its first output may be used, not %q", n.name, n.op, v)
	}
	data := g.dataInputs(n)
	if n.op != "Add" {
		if len(data) != 1 {
			return nil, fmt.Errorf("node %q (%s) has %d non-constant inputs, want 1 (weights must be initializers)", n.name, n.op, len(data))
		}
		p, err := pf.path(data[0])
		if err != nil {
			return nil, err
		}
		return &link{prev: p, n: n, main: data[0]}, nil
	}
	if len(data) != 2 {
		return nil, fmt.Errorf("node %q (Add) has %d non-constant operands; only residual adds of two computed values are supported", n.name, len(data))
	}
	// Either operand may be the main path; the other must be an earlier
	// value of that path, or a projection of one.
	var firstErr error
	for _, order := range [][2]string{{data[0], data[1]}, {data[1], data[0]}} {
		main, other := order[0], order[1]
		p, err := pf.path(main)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if g.onPath(p, other) {
			return &link{prev: p, n: n, main: main, skip: other}, nil
		}
		if src, proj := g.projection(other); proj != nil && g.onPath(p, src) {
			return &link{prev: p, n: n, main: main, skip: src, proj: proj}, nil
		}
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return nil, fmt.Errorf("node %q (Add): neither operand is an earlier value of the other's path; only residual adds x + f(x), optionally with a 1×1 convolution (and batchnorm) on the skip path, are supported", n.name)
}

// projection recognises v as a 1×1 convolution, optionally followed by a
// batchnorm, that only the add reads. It returns the convolution's input
// and the nodes in order, or nil.
func (g *graph) projection(v string) (string, []*node) {
	n := g.producer[v]
	if n == nil || g.users[v] != 1 {
		return "", nil
	}
	var bn *node
	if n.op == "BatchNormalization" && len(n.inputs) > 0 {
		bn = n
		if g.users[n.inputs[0]] != 1 {
			return "", nil
		}
		n = g.producer[n.inputs[0]]
		if n == nil {
			return "", nil
		}
	}
	if n.op != "Conv" || len(n.inputs) < 2 || n.outputs[0] != firstOr(bn, v) {
		return "", nil
	}
	w, ok := g.consts[n.inputs[1]]
	if !ok || len(w.shape) != 4 || w.shape[2] != 1 || w.shape[3] != 1 {
		return "", nil
	}
	data := g.dataInputs(n)
	if len(data) != 1 || data[0] != n.inputs[0] {
		return "", nil
	}
	if bn == nil {
		return n.inputs[0], []*node{n}
	}
	return n.inputs[0], []*node{n, bn}
}

// firstOr is the first input of bn, or v when there is no batchnorm: the
// value the projection's convolution must produce.
func firstOr(bn *node, v string) string {
	if bn == nil {
		return v
	}
	return bn.inputs[0]
}
