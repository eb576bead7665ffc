package onnx

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/cifarnet-go/cifarnet/trainer/internal/onnx/onnxpb"
	"github.com/x448/float16"
)

// maxTensorElems bounds one imported tensor, as the weight file does.
const maxTensorElems = 1 << 28

// floatTensor returns an ONNX float32 tensor stored as raw little-endian
// bytes, the most compact form.
func floatTensor(name string, shape []int, data []float32) *onnxpb.TensorProto {
	dims := make([]int64, len(shape))
	for i, d := range shape {
		dims[i] = int64(d)
	}
	raw := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	return &onnxpb.TensorProto{
		Name:     ptr(name),
		DataType: ptr(int32(onnxpb.TensorProto_FLOAT)),
		Dims:     dims,
		RawData:  raw,
	}
}

// constTensor is a constant read from an initializer or a Constant node,
// converted to float32. Integer tensors keep their values in ints.
type constTensor struct {
	shape []int
	data  []float32
	ints  []int64 // integer tensors (shapes, axes) only
}

// decodeTensor converts an ONNX tensor of a floating-point or integer type.
// It checks every size against the bytes present before allocating.
func decodeTensor(t *onnxpb.TensorProto) (*constTensor, error) {
	if t.GetDataLocation() == onnxpb.TensorProto_EXTERNAL || len(t.GetExternalData()) > 0 {
		return nil, fmt.Errorf("tensor %q: external data is not supported; save the model with its weights inside", t.GetName())
	}
	if t.GetSegment() != nil {
		return nil, fmt.Errorf("tensor %q: segmented tensors are not supported", t.GetName())
	}
	n := 1
	shape := make([]int, len(t.GetDims()))
	for i, d := range t.GetDims() {
		if d < 0 || d > maxTensorElems || n*int(d) > maxTensorElems {
			return nil, fmt.Errorf("tensor %q: dimensions %v out of range", t.GetName(), t.GetDims())
		}
		shape[i] = int(d)
		n *= int(d)
	}
	raw := t.GetRawData()
	ct := &constTensor{shape: shape}
	// count checks that a typed field or the raw bytes hold n elements of
	// size bytes each, and reports whether the raw bytes are the source.
	count := func(typed, size int) (bool, error) {
		switch {
		case raw != nil && len(raw) == n*size:
			return true, nil
		case raw == nil && typed == n:
			return false, nil
		}
		have := typed
		if raw != nil {
			have = len(raw) / size
		}
		return false, fmt.Errorf("tensor %q: shape %v needs %d values, has %d", t.GetName(), shape, n, have)
	}
	switch dt := onnxpb.TensorProto_DataType(t.GetDataType()); dt {
	case onnxpb.TensorProto_FLOAT:
		useRaw, err := count(len(t.GetFloatData()), 4)
		if err != nil {
			return nil, err
		}
		ct.data = make([]float32, n)
		for i := range ct.data {
			if useRaw {
				ct.data[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
			} else {
				ct.data[i] = t.GetFloatData()[i]
			}
		}
	case onnxpb.TensorProto_FLOAT16:
		// Without raw bytes, float16 values sit in int32_data as bit patterns.
		useRaw, err := count(len(t.GetInt32Data()), 2)
		if err != nil {
			return nil, err
		}
		ct.data = make([]float32, n)
		for i := range ct.data {
			bits := uint16(0)
			if useRaw {
				bits = binary.LittleEndian.Uint16(raw[2*i:])
			} else {
				bits = uint16(t.GetInt32Data()[i])
			}
			ct.data[i] = float16.Frombits(bits).Float32()
		}
	case onnxpb.TensorProto_DOUBLE:
		useRaw, err := count(len(t.GetDoubleData()), 8)
		if err != nil {
			return nil, err
		}
		ct.data = make([]float32, n)
		for i := range ct.data {
			v := 0.0
			if useRaw {
				v = math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:]))
			} else {
				v = t.GetDoubleData()[i]
			}
			ct.data[i] = float32(v)
		}
	case onnxpb.TensorProto_INT64:
		useRaw, err := count(len(t.GetInt64Data()), 8)
		if err != nil {
			return nil, err
		}
		ct.ints = make([]int64, n)
		for i := range ct.ints {
			if useRaw {
				ct.ints[i] = int64(binary.LittleEndian.Uint64(raw[8*i:]))
			} else {
				ct.ints[i] = t.GetInt64Data()[i]
			}
		}
	default:
		return nil, fmt.Errorf("tensor %q: data type %v is not supported (want FLOAT, FLOAT16, DOUBLE or INT64)", t.GetName(), dt)
	}
	for i, v := range ct.data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("tensor %q: value %d is %v", t.GetName(), i, v)
		}
	}
	return ct, nil
}

// scalar returns the value of a one-element float tensor.
func (c *constTensor) scalar() (float32, bool) {
	if len(c.data) != 1 {
		return 0, false
	}
	return c.data[0], true
}
