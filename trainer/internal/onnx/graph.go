package onnx

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/cifarnet-go/cifarnet/trainer/internal/onnx/onnxpb"
)

// Limits that keep a hostile file from making the importer loop or
// allocate without bound; far above any CIFAR network.
const (
	maxNodes        = 10000
	maxInitializers = 10000
)

// supportedOps are the operators Import understands, in the default
// domain. Constant, Identity and Dropout vanish before conversion; Div,
// Erf and Mul only as parts of the exact GELU subgraph.
var supportedOps = map[string]bool{
	"Conv": true, "BatchNormalization": true, "Relu": true, "LeakyRelu": true,
	"Gelu": true, "MaxPool": true, "GlobalAveragePool": true, "Add": true,
	"Flatten": true, "Gemm": true, "Softmax": true,
	"Constant": true, "Identity": true, "Dropout": true,
	"Div": true, "Erf": true, "Mul": true,
}

// node is an ONNX node with its inputs resolved through aliases.
type node struct {
	op      string
	name    string
	inputs  []string // "" for an absent optional input
	outputs []string
	attrs   map[string]*onnxpb.AttributeProto
}

// graph is an ONNX graph reduced to data-flow nodes over one input:
// constants are separated out, identities resolved and GELU subgraphs
// fused into single "Gelu" nodes.
type graph struct {
	input    string
	output   string
	nodes    []*node // topological order
	consts   map[string]*constTensor
	producer map[string]*node
	users    map[string]int // how many node inputs (and graph outputs) read each value
}

// newGraph checks the operators and builds the reduced graph.
func newGraph(g *onnxpb.GraphProto) (*graph, error) {
	if len(g.GetNode()) > maxNodes || len(g.GetInitializer()) > maxInitializers {
		return nil, fmt.Errorf("graph has %d nodes and %d initializers; at most %d and %d are supported",
			len(g.GetNode()), len(g.GetInitializer()), maxNodes, maxInitializers)
	}
	if err := checkOps(g.GetNode()); err != nil {
		return nil, err
	}
	gr := &graph{consts: map[string]*constTensor{}, producer: map[string]*node{}, users: map[string]int{}}
	for _, t := range g.GetInitializer() {
		ct, err := decodeTensor(t)
		if err != nil {
			return nil, fmt.Errorf("initializer: %w", err)
		}
		gr.consts[t.GetName()] = ct
	}
	var inputs []*onnxpb.ValueInfoProto
	for _, in := range g.GetInput() {
		if _, ok := gr.consts[in.GetName()]; !ok { // older exporters list initializers as inputs too
			inputs = append(inputs, in)
		}
	}
	if len(inputs) != 1 {
		return nil, fmt.Errorf("graph has %d inputs besides initializers, want one image batch", len(inputs))
	}
	if len(g.GetOutput()) != 1 {
		return nil, fmt.Errorf("graph has %d outputs, want one (the class scores)", len(g.GetOutput()))
	}
	gr.input, gr.output = inputs[0].GetName(), g.GetOutput()[0].GetName()

	alias := map[string]string{}
	resolve := func(v string) string {
		if a, ok := alias[v]; ok {
			return a
		}
		return v
	}
	defined := map[string]bool{gr.input: true}
	for name := range gr.consts {
		defined[name] = true
	}
	for i, pn := range g.GetNode() {
		n := &node{op: pn.GetOpType(), name: pn.GetName(), outputs: pn.GetOutput(), attrs: map[string]*onnxpb.AttributeProto{}}
		if n.name == "" {
			n.name = fmt.Sprintf("%s_%d", n.op, i)
		}
		for _, a := range pn.GetAttribute() {
			n.attrs[a.GetName()] = a
		}
		for _, v := range pn.GetInput() {
			v = resolve(v)
			if v != "" && !defined[v] {
				return nil, fmt.Errorf("node %q (%s) reads %q before anything defines it: the graph is not in topological order or is incomplete", n.name, n.op, v)
			}
			n.inputs = append(n.inputs, v)
		}
		if len(n.outputs) == 0 || n.outputs[0] == "" {
			return nil, fmt.Errorf("node %q (%s) has no output", n.name, n.op)
		}
		for _, v := range n.outputs {
			if v != "" && defined[v] {
				return nil, fmt.Errorf("node %q (%s) redefines value %q", n.name, n.op, v)
			}
			defined[v] = true
		}
		switch n.op {
		case "Constant":
			ct, err := constantValue(pn)
			if err != nil {
				return nil, err
			}
			gr.consts[n.outputs[0]] = ct
			continue
		case "Identity", "Dropout":
			if len(n.inputs) == 0 || n.inputs[0] == "" {
				return nil, fmt.Errorf("node %q (%s) has no input", n.name, n.op)
			}
			if n.op == "Dropout" && len(n.outputs) > 1 && n.outputs[1] != "" {
				// The mask is only meaningful in training; refuse rather
				// than guess what reads it.
				return nil, fmt.Errorf("node %q: Dropout with a mask output is not supported", n.name)
			}
			alias[n.outputs[0]] = n.inputs[0]
			continue
		}
		gr.nodes = append(gr.nodes, n)
	}
	gr.output = resolve(gr.output)
	if !defined[gr.output] {
		return nil, fmt.Errorf("graph output %q is not computed by any node", gr.output)
	}
	gr.index()
	if err := gr.fuseGELU(); err != nil {
		return nil, err
	}
	gr.index()
	return gr, nil
}

// checkOps lists every operator that is not supported, with how often it
// occurs, so that one error says everything that stands in the way.
func checkOps(nodes []*onnxpb.NodeProto) error {
	bad := map[string]int{}
	for _, n := range nodes {
		op, domain := n.GetOpType(), n.GetDomain()
		defaultDomain := domain == "" || domain == "ai.onnx"
		if defaultDomain && supportedOps[op] {
			continue
		}
		if !defaultDomain {
			op = domain + "." + op
		}
		if op == "" {
			op = "(empty op_type)"
		}
		bad[op]++
	}
	if len(bad) == 0 {
		return nil
	}
	names := make([]string, 0, len(bad))
	for op, n := range bad {
		if n > 1 {
			op = fmt.Sprintf("%s (%d nodes)", op, n)
		}
		names = append(names, op)
	}
	sort.Strings(names)
	supported := make([]string, 0, len(supportedOps))
	for op := range supportedOps {
		supported = append(supported, op)
	}
	sort.Strings(supported)
	return fmt.Errorf("unsupported ONNX operators: %s (supported: %s; Div, Erf and Mul only as the exact GELU)",
		strings.Join(names, ", "), strings.Join(supported, ", "))
}

// constantValue decodes the tensor a Constant node produces.
func constantValue(n *onnxpb.NodeProto) (*constTensor, error) {
	for _, a := range n.GetAttribute() {
		switch a.GetName() {
		case "value":
			ct, err := decodeTensor(a.GetT())
			if err != nil {
				return nil, fmt.Errorf("constant %q: %w", n.GetName(), err)
			}
			return ct, nil
		case "value_float":
			return &constTensor{data: []float32{a.GetF()}}, nil
		case "value_floats":
			return &constTensor{shape: []int{len(a.GetFloats())}, data: slices.Clone(a.GetFloats())}, nil
		case "value_int":
			return &constTensor{ints: []int64{a.GetI()}}, nil
		case "value_ints":
			return &constTensor{shape: []int{len(a.GetInts())}, ints: slices.Clone(a.GetInts())}, nil
		}
	}
	return nil, fmt.Errorf("constant %q: no supported value attribute", n.GetName())
}

// index recomputes producers and use counts.
func (g *graph) index() {
	clear(g.producer)
	clear(g.users)
	for _, n := range g.nodes {
		for _, v := range n.outputs {
			g.producer[v] = n
		}
		for _, v := range n.inputs {
			g.users[v]++
		}
	}
	g.users[g.output]++
}

// isConst reports whether v is a constant (initializer or Constant node).
func (g *graph) isConst(v string) bool { _, ok := g.consts[v]; return ok }

// scalarIs reports whether v is a constant scalar within 1e-4 (relative)
// of want.
func (g *graph) scalarIs(v string, want float64) bool {
	c, ok := g.consts[v]
	if !ok {
		return false
	}
	s, ok := c.scalar()
	return ok && math.Abs(float64(s)-want) <= 1e-4*math.Abs(want)
}

// otherOperand returns the operand of a two-input node that is not the one
// satisfying isOther, or "" if neither satisfies it.
func otherOperand(n *node, isOther func(string) bool) string {
	if len(n.inputs) != 2 {
		return ""
	}
	switch {
	case isOther(n.inputs[1]):
		return n.inputs[0]
	case isOther(n.inputs[0]):
		return n.inputs[1]
	}
	return ""
}

// soleUser returns the only node that reads v, or nil.
func (g *graph) soleUser(v string) *node {
	if g.users[v] != 1 {
		return nil
	}
	for _, n := range g.nodes {
		if slices.Contains(n.inputs, v) {
			return n
		}
	}
	return nil
}

// fuseGELU replaces every exact-GELU subgraph, x·½·(1 + erf(x/√2)) as
// PyTorch and Export write it, by one Gelu node. Any Div, Erf or Mul left
// over is not part of a GELU and is reported.
func (g *graph) fuseGELU() error {
	drop := map[*node]bool{}
	for _, erf := range g.nodes {
		if erf.op != "Erf" || len(erf.inputs) != 1 {
			continue
		}
		div := g.producer[erf.inputs[0]]
		if div == nil || g.users[erf.inputs[0]] != 1 {
			continue
		}
		var x string
		switch div.op {
		case "Div":
			if len(div.inputs) == 2 && g.scalarIs(div.inputs[1], math.Sqrt2) {
				x = div.inputs[0]
			}
		case "Mul":
			x = otherOperand(div, func(v string) bool { return g.scalarIs(v, 1/math.Sqrt2) })
		}
		if x == "" {
			continue
		}
		add := g.soleUser(erf.outputs[0])
		if add == nil || add.op != "Add" || otherOperand(add, func(v string) bool { return g.scalarIs(v, 1) }) != erf.outputs[0] {
			continue
		}
		// Either (x · (1+erf)) · ½ or (x · ½) · (1+erf).
		mul1 := g.soleUser(add.outputs[0])
		if mul1 == nil || mul1.op != "Mul" || len(mul1.inputs) != 2 {
			continue
		}
		other := otherOperand(mul1, func(v string) bool { return v == add.outputs[0] })
		var last *node
		var parts []*node
		switch {
		case other == x:
			half := g.soleUser(mul1.outputs[0])
			if half != nil && half.op == "Mul" && otherOperand(half, func(v string) bool { return g.scalarIs(v, 0.5) }) == mul1.outputs[0] {
				last, parts = half, []*node{div, erf, add, mul1}
			}
		case other != "":
			if h := g.producer[other]; h != nil && h.op == "Mul" && g.users[other] == 1 &&
				otherOperand(h, func(v string) bool { return g.scalarIs(v, 0.5) }) == x {
				last, parts = mul1, []*node{div, erf, add, h}
			}
		}
		if last == nil {
			continue
		}
		for _, p := range parts {
			drop[p] = true
		}
		last.op, last.inputs, last.attrs = "Gelu", []string{x}, map[string]*onnxpb.AttributeProto{}
	}
	var kept []*node
	var stray []string
	for _, n := range g.nodes {
		if drop[n] {
			continue
		}
		if n.op == "Div" || n.op == "Erf" || n.op == "Mul" {
			stray = append(stray, fmt.Sprintf("%s (%s)", n.name, n.op))
		}
		kept = append(kept, n)
	}
	if len(stray) > 0 {
		return fmt.Errorf("unsupported ONNX nodes: %s: Div, Erf and Mul are supported only as parts of the exact GELU x·0.5·(1 + erf(x/√2))", strings.Join(stray, ", "))
	}
	g.nodes = kept
	return nil
}
