// Package onnx converts between cifarnet weight files and ONNX models.
//
// Export writes a standard ONNX model (IR version 8, opset 17) that any
// ONNX runtime can run: batchnorm that directly follows a convolution or a
// linear layer is folded into it (as PyTorch's exporter does), GELU becomes
// the exact Erf-based subgraph (opsets before 20 have no Gelu operator),
// dropout disappears, and the class names, normalisation, provenance and
// inference hints travel in metadata_props as JSON.
//
// Import reads an ONNX CNN built from the operators Export writes (and the
// variants PyTorch writes for the same layers) back into a weight file, so
// that the browser can run a model trained elsewhere.
package onnx

import (
	"encoding/json"
	"fmt"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/trainer/internal/onnx/onnxpb"
)

const (
	// Opset is the version of the default ONNX operator set Export targets.
	Opset = 17
	// irVersion is the ONNX IR version that goes with opset 17 (onnx 1.12).
	irVersion = 8

	// Opsets Import accepts. Below 9, BatchNormalization had a "spatial"
	// mode; above 22, operators may have changed in ways not checked here.
	minImportOpset = 9
	maxImportOpset = 22
)

// Names of the graph's input and output values in exported models.
const (
	InputName        = "input"
	ProbabilitiesOut = "probabilities" // when the spec ends with softmax
	LogitsOut        = "logits"        // otherwise
)

// Keys of metadata_props. Each value is JSON: the class names an array of
// strings, the others objects shaped like the models package's types.
const (
	MetaClasses       = "classes"       // ["airplane", ...]
	MetaNormalization = "normalization" // {"mean": [...], "std": [...]}
	MetaProvenance    = "provenance"    // models.Provenance
	MetaInference     = "inference"     // models.InferenceOptions
)

// metadata is what a model's metadata_props say about it; nil fields were
// absent.
type metadata struct {
	classes       []string
	normalization *models.Normalization
	provenance    *models.Provenance
	inference     *models.InferenceOptions
}

// metadataProps encodes the non-architecture parts of m.
func metadataProps(m *models.Meta) ([]*onnxpb.StringStringEntryProto, error) {
	var props []*onnxpb.StringStringEntryProto
	add := func(key string, v any) error {
		js, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("metadata %q: %w", key, err)
		}
		props = append(props, &onnxpb.StringStringEntryProto{Key: ptr(key), Value: ptr(string(js))})
		return nil
	}
	if err := add(MetaClasses, m.Classes); err != nil {
		return nil, err
	}
	if err := add(MetaNormalization, m.Normalization); err != nil {
		return nil, err
	}
	if err := add(MetaProvenance, m.Provenance); err != nil {
		return nil, err
	}
	if len(m.Inference.TTA) > 0 {
		if err := add(MetaInference, m.Inference); err != nil {
			return nil, err
		}
	}
	return props, nil
}

// parseMetadata decodes the keys this package knows and ignores the rest.
func parseMetadata(props []*onnxpb.StringStringEntryProto) (*metadata, error) {
	md := &metadata{}
	for _, p := range props {
		var dst any
		switch p.GetKey() {
		case MetaClasses:
			dst = &md.classes
		case MetaNormalization:
			md.normalization = &models.Normalization{}
			dst = md.normalization
		case MetaProvenance:
			md.provenance = &models.Provenance{}
			dst = md.provenance
		case MetaInference:
			md.inference = &models.InferenceOptions{}
			dst = md.inference
		default:
			continue
		}
		if err := json.Unmarshal([]byte(p.GetValue()), dst); err != nil {
			return nil, fmt.Errorf("metadata_props %q: %w", p.GetKey(), err)
		}
	}
	return md, nil
}

func ptr[T any](v T) *T { return &v }
