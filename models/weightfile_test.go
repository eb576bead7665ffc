package models_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/models/modeltest"
)

// decodeSentinels are the error kinds every Decode error must wrap one of.
var decodeSentinels = []error{models.ErrBadMagic, models.ErrUnsupportedVersion, models.ErrTruncated, models.ErrChecksum, models.ErrCorrupt}

func presetWeights(t testing.TB, name string, dt models.DType) *models.File {
	t.Helper()
	spec, err := models.Preset(name)
	if err != nil {
		t.Fatal(err)
	}
	f := modeltest.RandomFile(spec, 1)
	f.Meta.DType = dt
	return f
}

func tinyWeights(dt models.DType) *models.File {
	f := modeltest.RandomFile(modeltest.TinySpec(), 1)
	f.Meta.DType = dt
	return f
}

func mustEncode(t testing.TB, f *models.File) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := models.Encode(&buf, f); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func mustDecode(t *testing.T, data []byte) *models.File {
	t.Helper()
	f, err := models.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestRoundTripFloat32IsBitExact(t *testing.T) {
	for _, name := range models.PresetNames() {
		t.Run(name, func(t *testing.T) {
			want := presetWeights(t, name, models.Float32)
			got := mustDecode(t, mustEncode(t, want))
			if !reflect.DeepEqual(got.Meta, want.Meta) {
				t.Errorf("meta changed:\n got %+v\nwant %+v", got.Meta, want.Meta)
			}
			if len(got.Tensors) != len(want.Tensors) {
				t.Fatalf("%d tensors, want %d", len(got.Tensors), len(want.Tensors))
			}
			for n, w := range want.Tensors {
				g := got.Tensors[n]
				if !reflect.DeepEqual(g.Shape, w.Shape) {
					t.Fatalf("%s: shape %v, want %v", n, g.Shape, w.Shape)
				}
				for i := range w.Data {
					if math.Float32bits(g.Data[i]) != math.Float32bits(w.Data[i]) {
						t.Fatalf("%s[%d] = %g, want %g", n, i, g.Data[i], w.Data[i])
					}
				}
			}
		})
	}
}

func TestRoundTripFloat16(t *testing.T) {
	for _, name := range models.PresetNames() {
		t.Run(name, func(t *testing.T) {
			want := presetWeights(t, name, models.Float16)
			data := mustEncode(t, want)
			got := mustDecode(t, data)
			if got.Meta.DType != models.Float16 {
				t.Errorf("dtype %q", got.Meta.DType)
			}
			for n, w := range want.Tensors {
				g := got.Tensors[n]
				for i, v := range w.Data {
					// Half precision keeps 11 significant bits: round to
					// nearest is within 2^-11 relative, or half the smallest
					// subnormal (2^-25) near zero.
					tol := math.Abs(float64(v))*0x1p-11 + 0x1p-25
					if len(w.Shape) == 1 {
						tol = 0 // vectors stay float32
					}
					if d := math.Abs(float64(g.Data[i] - v)); d > tol {
						t.Fatalf("%s[%d] = %g, want %g ± %g", n, i, g.Data[i], v, tol)
					}
				}
			}
			if f32 := len(mustEncode(t, presetWeights(t, name, models.Float32))); len(data) > f32*55/100 {
				t.Errorf("float16 file is %d bytes, float32 %d", len(data), f32)
			}
		})
	}
}

func TestRoundTripInt8(t *testing.T) {
	for _, name := range models.PresetNames() {
		t.Run(name, func(t *testing.T) {
			want := presetWeights(t, name, models.Int8)
			data := mustEncode(t, want)
			got := mustDecode(t, data)
			for n, w := range want.Tensors {
				g := got.Tensors[n]
				if len(w.Shape) == 1 {
					if !reflect.DeepEqual(g.Data, w.Data) {
						t.Errorf("%s: vector changed", n)
					}
					continue
				}
				rows := w.Shape[0]
				per := len(w.Data) / rows
				for r := range rows {
					var maxAbs float64
					for _, v := range w.Data[r*per : (r+1)*per] {
						maxAbs = max(maxAbs, math.Abs(float64(v)))
					}
					// Half a quantisation step, plus float32 rounding of
					// the scale and of q·scale.
					tol := maxAbs/127/2 + maxAbs*0x1p-22
					for i := r * per; i < (r+1)*per; i++ {
						if d := math.Abs(float64(g.Data[i] - w.Data[i])); d > tol {
							t.Fatalf("%s[%d] = %g, want %g ± %g", n, i, g.Data[i], w.Data[i], tol)
						}
					}
				}
			}
			f32 := len(mustEncode(t, presetWeights(t, name, models.Float32)))
			t.Logf("int8 %d bytes, float32 %d bytes (%.1f%%)", len(data), f32, 100*float64(len(data))/float64(f32))
			if name == "cifarnet-fast" && len(data)*100 > f32*30 {
				t.Errorf("int8 file is %d bytes, more than 30%% of float32's %d", len(data), f32)
			}
		})
	}
}

func TestInt8ZeroRow(t *testing.T) {
	f := tinyWeights(models.Int8)
	w := f.Tensors["fc.weight"]
	per := len(w.Data) / w.Shape[0]
	clear(w.Data[:per])
	got := mustDecode(t, mustEncode(t, f)).Tensors["fc.weight"]
	for i, v := range got.Data[:per] {
		if v != 0 {
			t.Fatalf("zero row decoded to %g at %d", v, i)
		}
	}
}

// splitFile splits an encoded file into its documented parts, checking the
// byte layout of FORMAT.md independently of the decoder.
func splitFile(t *testing.T, data []byte) (hdr map[string]any, section []byte) {
	t.Helper()
	if string(data[:8]) != "CIFARNET" {
		t.Fatalf("magic %q", data[:8])
	}
	if v := binary.LittleEndian.Uint32(data[8:]); v != 1 {
		t.Fatalf("version %d", v)
	}
	n := int(binary.LittleEndian.Uint32(data[12:]))
	dec := json.NewDecoder(bytes.NewReader(data[16 : 16+n]))
	dec.UseNumber()
	if err := dec.Decode(&hdr); err != nil {
		t.Fatalf("header: %v", err)
	}
	start := (16 + n + 63) / 64 * 64
	if !bytes.Equal(data[16+n:start], make([]byte, start-16-n)) {
		t.Error("header padding is not zero")
	}
	if sum := sha256.Sum256(data[:len(data)-32]); !bytes.Equal(sum[:], data[len(data)-32:]) {
		t.Error("last 32 bytes are not the SHA-256 of the rest")
	}
	return hdr, data[start : len(data)-32]
}

func TestLayout(t *testing.T) {
	for _, dt := range []models.DType{models.Float32, models.Float16, models.Int8} {
		t.Run(string(dt), func(t *testing.T) {
			f := tinyWeights(dt)
			hdr, section := splitFile(t, mustEncode(t, f))
			if hdr["dtype"] != string(dt) {
				t.Errorf("header dtype %v", hdr["dtype"])
			}
			for _, e := range hdr["tensors"].([]any) {
				e := e.(map[string]any)
				name := e["name"].(string)
				off, _ := e["offset"].(json.Number).Int64()
				n, _ := e["length"].(json.Number).Int64()
				if off%64 != 0 {
					t.Errorf("%s at offset %d, not 64-byte aligned", name, off)
				}
				want := f.Tensors[name]
				if dt == models.Float32 {
					for i, v := range want.Data {
						if got := math.Float32frombits(binary.LittleEndian.Uint32(section[off+int64(4*i):])); got != v {
							t.Fatalf("%s[%d] stored as %g, want %g", name, i, got, v)
						}
					}
				}
				if len(want.Shape) == 1 && e["dtype"] != "float32" || len(want.Shape) > 1 && e["dtype"] != string(dt) {
					t.Errorf("%s (rank %d) stored as %v", name, len(want.Shape), e["dtype"])
				}
				if int(off+n) > len(section) {
					t.Errorf("%s ends at %d, past the data section (%d)", name, off+n, len(section))
				}
			}
		})
	}
}

func wantDecodeErr(t *testing.T, err, kind error, substr string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v", kind)
	}
	if !errors.Is(err, kind) {
		t.Fatalf("error %q is not %v", err, kind)
	}
	if !strings.Contains(err.Error(), substr) {
		t.Fatalf("error %q does not mention %q", err, substr)
	}
	for _, s := range decodeSentinels {
		if s != kind && errors.Is(err, s) {
			t.Fatalf("error %q is both %v and %v", err, kind, s)
		}
	}
}

func TestBadMagic(t *testing.T) {
	data := mustEncode(t, tinyWeights(models.Float32))
	copy(data, "PK\x03\x04")
	_, err := models.Decode(data)
	wantDecodeErr(t, err, models.ErrBadMagic, `starts with "PK\x03\x04`)
	_, err = models.DecodeMeta(bytes.NewReader(data))
	wantDecodeErr(t, err, models.ErrBadMagic, "not a cifarnet weight file")
	_, err = models.Decode([]byte("{}"))
	wantDecodeErr(t, err, models.ErrBadMagic, "not a cifarnet weight file")
}

func TestUnsupportedVersion(t *testing.T) {
	for v, msg := range map[uint32]string{2: "format version 2, this program reads up to version 1", 0: "version 0 does not exist"} {
		data := mustEncode(t, tinyWeights(models.Float32))
		binary.LittleEndian.PutUint32(data[8:], v)
		_, err := models.Decode(data)
		wantDecodeErr(t, err, models.ErrUnsupportedVersion, msg)
		_, err = models.DecodeMeta(bytes.NewReader(data))
		wantDecodeErr(t, err, models.ErrUnsupportedVersion, msg)
	}
}

func TestTruncatedAtEveryLength(t *testing.T) {
	for _, dt := range []models.DType{models.Float32, models.Float16, models.Int8} {
		data := mustEncode(t, tinyWeights(dt))
		for n := range len(data) {
			_, err := models.Decode(data[:n])
			if err == nil || !errors.Is(err, models.ErrTruncated) {
				t.Fatalf("%s cut to %d of %d bytes: error %v, want truncated", dt, n, len(data), err)
			}
		}
		_, err := models.Decode(data[:len(data)-1])
		wantDecodeErr(t, err, models.ErrTruncated, fmt.Sprintf("need %d bytes for the checksum, have %d", len(data), len(data)-1))
	}
	data := mustEncode(t, tinyWeights(models.Float32))
	_, err := models.Decode(data[:len(data)-200])
	wantDecodeErr(t, err, models.ErrTruncated, `bytes for tensor "fc.weight", have`)
	_, err = models.Decode(data[:20])
	wantDecodeErr(t, err, models.ErrTruncated, "bytes for the header, have 20")
}

func TestEverySingleByteFlipIsDetected(t *testing.T) {
	data := mustEncode(t, tinyWeights(models.Int8))
	headerEnd := 16 + int(binary.LittleEndian.Uint32(data[12:]))
	bad := bytes.Clone(data)
	for i := range data {
		for _, mask := range []byte{0x01, 0x80} {
			bad[i] ^= mask
			_, err := models.Decode(bad)
			bad[i] ^= mask
			if err == nil {
				t.Fatalf("flipping bit %#x of byte %d went unnoticed", mask, i)
			}
			if i >= headerEnd && !errors.Is(err, models.ErrChecksum) {
				t.Fatalf("flipping byte %d (after the header): %v, want a checksum mismatch", i, err)
			}
			if !isDecodeSentinel(err) {
				t.Fatalf("flipping byte %d: error %q wraps none of the sentinel errors", i, err)
			}
		}
	}
}

func isDecodeSentinel(err error) bool {
	for _, s := range decodeSentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// assemble builds a file from a header and a data section the way the
// format describes, with a correct checksum, so that only the intended
// defect is present.
func assemble(hdr map[string]any, section []byte) []byte {
	js, err := json.Marshal(hdr)
	if err != nil {
		panic(err)
	}
	return assembleRaw(js, section)
}

func assembleRaw(js, section []byte) []byte {
	var b bytes.Buffer
	b.WriteString("CIFARNET")
	binary.Write(&b, binary.LittleEndian, uint32(1))
	binary.Write(&b, binary.LittleEndian, uint32(len(js)))
	b.Write(js)
	b.Write(make([]byte, (b.Len()+63)/64*64-b.Len()))
	b.Write(section)
	sum := sha256.Sum256(b.Bytes())
	b.Write(sum[:])
	return b.Bytes()
}

func dirEntry(hdr map[string]any, name string) map[string]any {
	for _, e := range hdr["tensors"].([]any) {
		if e := e.(map[string]any); e["name"] == name {
			return e
		}
	}
	panic("no tensor " + name)
}

func TestMalformedContent(t *testing.T) {
	tests := []struct {
		name  string
		dtype models.DType
		edit  func(hdr map[string]any, section []byte) []byte // returns the new section
		want  string
	}{
		{"missing tensor", models.Float32, func(h map[string]any, s []byte) []byte {
			ts := h["tensors"].([]any)
			h["tensors"] = ts[:len(ts)-1]
			prev := ts[len(ts)-2].(map[string]any)
			off, _ := prev["offset"].(json.Number).Int64()
			n, _ := prev["length"].(json.Number).Int64()
			return s[:off+n] // the data section ends with the last tensor
		}, `tensor "fc.bias" missing`},
		{"extra tensor", models.Float32, func(h map[string]any, s []byte) []byte {
			off := (len(s) + 63) / 64 * 64
			h["tensors"] = append(h["tensors"].([]any), map[string]any{
				"name": "extra.weight", "dtype": "float32", "shape": []int{2, 2}, "offset": off, "length": 16})
			return append(append(s, make([]byte, off-len(s))...), make([]byte, 16)...)
		}, `tensor "extra.weight" is not used by spec "tiny"`},
		{"wrong shape", models.Float32, func(h map[string]any, s []byte) []byte {
			dirEntry(h, "fc.weight")["shape"] = []int{6, 10}
			return s
		}, `tensor "fc.weight" has shape [6 10], spec needs [10 6]`},
		{"unknown layer type", models.Float32, func(h map[string]any, s []byte) []byte {
			h["spec"].(map[string]any)["layers"].([]any)[2].(map[string]any)["type"] = "swish"
			return s
		}, `layer 2 ("relu1"): unknown layer type "swish"`},
		{"size does not match shape", models.Float32, func(h map[string]any, s []byte) []byte {
			dirEntry(h, "fc.bias")["length"] = 36
			return s
		}, `tensor "fc.bias" is 36 bytes, shape [10] in float32 needs 40`},
		{"misaligned tensor", models.Float32, func(h map[string]any, s []byte) []byte {
			dirEntry(h, "fc.bias")["offset"] = json.Number("4")
			return s
		}, `tensor "fc.bias" starts at offset 4, want a multiple of 64`},
		{"overlapping tensors", models.Float32, func(h map[string]any, s []byte) []byte {
			dirEntry(h, "fc.bias")["offset"] = dirEntry(h, "fc.weight")["offset"]
			return s
		}, "overlaps"},
		{"tensor past the data section", models.Float32, func(h map[string]any, s []byte) []byte {
			dirEntry(h, "fc.bias")["offset"] = json.Number("1048576")
			return s
		}, "the header describes a"},
		{"negative offset", models.Float32, func(h map[string]any, s []byte) []byte {
			dirEntry(h, "fc.bias")["offset"] = json.Number("-64")
			return s
		}, "starts at offset -64"},
		{"huge shape", models.Float32, func(h map[string]any, s []byte) []byte {
			dirEntry(h, "fc.weight")["shape"] = []int{1 << 30, 1 << 30}
			return s
		}, "dimensions must be positive"},
		{"rank 5", models.Float32, func(h map[string]any, s []byte) []byte {
			dirEntry(h, "fc.weight")["shape"] = []int{1, 1, 1, 10, 6}
			return s
		}, "rank 5"},
		{"vector in float16", models.Float16, func(h map[string]any, s []byte) []byte {
			e := dirEntry(h, "fc.bias")
			e["dtype"], e["length"] = "float16", 20
			return s
		}, `tensor "fc.bias" is stored as "float16", a rank-1 tensor in a float16 file must be float32`},
		{"int8 without scales", models.Int8, func(h map[string]any, s []byte) []byte {
			delete(dirEntry(h, "fc.weight"), "scales")
			return s
		}, `int8 tensor "fc.weight" has no scales`},
		{"wrong number of scales", models.Int8, func(h map[string]any, s []byte) []byte {
			dirEntry(h, "fc.weight")["scales"].(map[string]any)["length"] = 4
			return s
		}, "10 output channels need 40"},
		{"negative scale", models.Int8, func(h map[string]any, s []byte) []byte {
			off, _ := dirEntry(h, "fc.weight")["scales"].(map[string]any)["offset"].(json.Number).Int64()
			binary.LittleEndian.PutUint32(s[off:], math.Float32bits(-1))
			return s
		}, `tensor "fc.weight": scale 0 is -1`},
		{"NaN weight", models.Float32, func(h map[string]any, s []byte) []byte {
			off, _ := dirEntry(h, "conv1.weight")["offset"].(json.Number).Int64()
			binary.LittleEndian.PutUint32(s[off+8:], math.Float32bits(float32(math.NaN())))
			return s
		}, `tensor "conv1.weight": value 2 is NaN`},
		{"infinite float16 weight", models.Float16, func(h map[string]any, s []byte) []byte {
			off, _ := dirEntry(h, "conv2.weight")["offset"].(json.Number).Int64()
			binary.LittleEndian.PutUint16(s[off:], 0x7c00)
			return s
		}, `tensor "conv2.weight": value 0 is +Inf`},
		{"tensor listed twice", models.Float32, func(h map[string]any, s []byte) []byte {
			h["tensors"] = append(h["tensors"].([]any), dirEntry(h, "fc.bias"))
			return s
		}, `tensor "fc.bias" is listed twice`},
		{"bad class count", models.Float32, func(h map[string]any, s []byte) []byte {
			h["classes"] = []string{"cat", "dog"}
			return s
		}, "2 class names for 10 outputs"},
		{"unknown dtype", models.Float32, func(h map[string]any, s []byte) []byte {
			h["dtype"] = "bfloat16"
			return s
		}, `unknown dtype "bfloat16"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hdr, section := splitFile(t, mustEncode(t, tinyWeights(tc.dtype)))
			data := assemble(hdr, tc.edit(hdr, bytes.Clone(section)))
			_, err := models.Decode(data)
			wantDecodeErr(t, err, models.ErrCorrupt, tc.want)
		})
	}
}

func TestUnknownLayerTypeIsALayerError(t *testing.T) {
	hdr, section := splitFile(t, mustEncode(t, tinyWeights(models.Float32)))
	hdr["spec"].(map[string]any)["layers"].([]any)[0].(map[string]any)["type"] = "conv3d"
	data := assemble(hdr, section)
	_, err := models.Decode(data)
	var le *models.LayerError
	if !errors.As(err, &le) || le.Index != 0 {
		t.Fatalf("error %v is not a LayerError for layer 0", err)
	}
	_, err = models.DecodeMeta(bytes.NewReader(data))
	wantDecodeErr(t, err, models.ErrCorrupt, `unknown layer type "conv3d"`)
}

func TestBadHeaderJSON(t *testing.T) {
	_, section := splitFile(t, mustEncode(t, tinyWeights(models.Float32)))
	for _, js := range []string{`{"spec": {"name": "tiny",`, `[]`, `{"tensors": "none"}`} {
		_, err := models.Decode(assembleRaw([]byte(js), section))
		wantDecodeErr(t, err, models.ErrCorrupt, "header JSON")
	}
}

func TestHeaderLengthOutOfRange(t *testing.T) {
	for _, n := range []uint32{0, 1<<20 + 1, math.MaxUint32} {
		data := mustEncode(t, tinyWeights(models.Float32))
		binary.LittleEndian.PutUint32(data[12:], n)
		_, err := models.Decode(data)
		wantDecodeErr(t, err, models.ErrCorrupt, fmt.Sprintf("header length %d is outside", n))
	}
}

func TestTrailingBytes(t *testing.T) {
	data := append(mustEncode(t, tinyWeights(models.Float32)), "junk"...)
	_, err := models.Decode(data)
	wantDecodeErr(t, err, models.ErrCorrupt, "4 unexpected bytes after the checksum")
}

func TestDamagedHeaderIsAChecksumError(t *testing.T) {
	data := mustEncode(t, tinyWeights(models.Float32))
	i := bytes.Index(data, []byte(`"tensors"`))
	data[i+1] = 'T'
	_, err := models.Decode(data)
	wantDecodeErr(t, err, models.ErrChecksum, "damaged")
}

func TestEncodeRejectsBadInput(t *testing.T) {
	tests := []struct {
		name string
		edit func(f *models.File)
		want string
	}{
		{"missing tensor", func(f *models.File) { delete(f.Tensors, "conv1.weight") }, `tensor "conv1.weight" missing`},
		{"NaN", func(f *models.File) { f.Tensors["fc.bias"].Data[3] = float32(math.NaN()) }, `tensor "fc.bias": value 3 is NaN`},
		{"float16 overflow", func(f *models.File) {
			f.Meta.DType = models.Float16
			f.Tensors["fc.weight"].Data[5] = 1e5
		}, `tensor "fc.weight": value 5 (100000) is out of float16 range`},
		{"unknown dtype", func(f *models.File) { f.Meta.DType = "int4" }, `unknown dtype "int4"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := tinyWeights(models.Float32)
			tc.edit(f)
			var buf bytes.Buffer
			err := models.Encode(&buf, f)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
			if buf.Len() != 0 {
				t.Errorf("wrote %d bytes of an invalid file", buf.Len())
			}
		})
	}
}

func TestFloat16LargeButRepresentable(t *testing.T) {
	f := tinyWeights(models.Float16)
	f.Tensors["fc.weight"].Data[0] = 65504 // the largest float16
	if got := mustDecode(t, mustEncode(t, f)).Tensors["fc.weight"].Data[0]; got != 65504 {
		t.Errorf("got %g", got)
	}
}

type failingWriter struct{ n int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.n < len(p) {
		n := w.n
		w.n = 0
		return n, errors.New("disk full")
	}
	w.n -= len(p)
	return len(p), nil
}

func TestEncodeReportsWriteErrors(t *testing.T) {
	size := len(mustEncode(t, tinyWeights(models.Float32)))
	for _, n := range []int{0, 10, 500, size - 1} {
		err := models.Encode(&failingWriter{n}, tinyWeights(models.Float32))
		if err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Errorf("writer failing after %d bytes: error %v", n, err)
		}
	}
}

func TestDecodeMeta(t *testing.T) {
	f := tinyWeights(models.Int8)
	data := mustEncode(t, f)
	headerEnd := 16 + int(binary.LittleEndian.Uint32(data[12:]))
	for _, n := range []int{headerEnd, headerEnd + 1, len(data)} {
		m, err := models.DecodeMeta(bytes.NewReader(data[:n]))
		if err != nil {
			t.Fatalf("first %d bytes: %v", n, err)
		}
		if !reflect.DeepEqual(*m, f.Meta) {
			t.Errorf("meta %+v, want %+v", *m, f.Meta)
		}
	}
	for _, n := range []int{0, 5, 15, 16, headerEnd - 1} {
		_, err := models.DecodeMeta(bytes.NewReader(data[:n]))
		wantDecodeErr(t, err, models.ErrTruncated, "need")
	}
	// The checksum is not DecodeMeta's business: damage in the data goes
	// unnoticed, as documented.
	data[len(data)-40] ^= 1
	if _, err := models.DecodeMeta(bytes.NewReader(data)); err != nil {
		t.Errorf("damaged data: %v", err)
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("device gone") }

func TestDecodeMetaReadError(t *testing.T) {
	_, err := models.DecodeMeta(failingReader{})
	if err == nil || !strings.Contains(err.Error(), "device gone") || isDecodeSentinel(err) {
		t.Errorf("error %v, want the read error", err)
	}
}

func TestWriteFileAndReadFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tiny"+models.FileExt)
	f := tinyWeights(models.Float16)
	if err := models.WriteFile(path, f); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", st.Mode().Perm())
	}
	got, err := models.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := mustDecode(t, mustEncode(t, f))
	if !reflect.DeepEqual(got, want) {
		t.Error("ReadFile differs from Decode(Encode())")
	}
	m, err := models.ReadMetaFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*m, f.Meta) {
		t.Error("ReadMetaFile differs")
	}
	dirHolds(t, dir, "tiny.cnw")
}

func TestWriteFileIsAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.cnw")
	if err := models.WriteFile(path, tinyWeights(models.Float32)); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	bad := tinyWeights(models.Int8)
	delete(bad.Tensors, "fc.weight")
	err = models.WriteFile(path, bad)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), `"fc.weight" missing`) {
		t.Fatalf("error %v", err)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("a failed write changed the existing file")
	}
	dirHolds(t, dir, "model.cnw")

	// A successful write replaces the file completely.
	if err := models.WriteFile(path, tinyWeights(models.Int8)); err != nil {
		t.Fatal(err)
	}
	got, err := models.ReadFile(path)
	if err != nil || got.Meta.DType != models.Int8 {
		t.Fatalf("after rewrite: %v, %v", got, err)
	}
	dirHolds(t, dir, "model.cnw")
}

func TestWriteFileMissingDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no", "such", "dir", "m.cnw")
	if err := models.WriteFile(path, tinyWeights(models.Float32)); err == nil {
		t.Fatal("no error")
	}
}

func TestReadFileErrorsNameThePath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cut.cnw")
	data := mustEncode(t, tinyWeights(models.Float32))
	if err := os.WriteFile(path, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := models.ReadFile(path)
	wantDecodeErr(t, err, models.ErrTruncated, path+": weight file: truncated: need")
	if _, err := models.ReadFile(path + ".missing"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func dirHolds(t *testing.T, dir string, want ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("directory holds %v, want %v", names, want)
	}
}

func BenchmarkEncode(b *testing.B) {
	for _, dt := range []models.DType{models.Float32, models.Float16, models.Int8} {
		b.Run(string(dt), func(b *testing.B) {
			f := presetWeights(b, "cifarnet-fast", dt)
			var buf bytes.Buffer
			for b.Loop() {
				buf.Reset()
				if err := models.Encode(&buf, f); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(buf.Len()))
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, dt := range []models.DType{models.Float32, models.Float16, models.Int8} {
		b.Run(string(dt), func(b *testing.B) {
			data := mustEncode(b, presetWeights(b, "cifarnet-fast", dt))
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := models.Decode(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecodeTiny(b *testing.B) {
	data := mustEncode(b, tinyWeights(models.Int8))
	for b.Loop() {
		if _, err := models.Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoad is what the page's worker does with a downloaded weight
// file: decode it and build the model. Its bytes allocated are memory a
// browser tab touches for the first time (page faults) before the first
// prediction.
func BenchmarkLoad(b *testing.B) {
	for _, dt := range []models.DType{models.Float32, models.Int8} {
		b.Run(string(dt), func(b *testing.B) {
			data := mustEncode(b, presetWeights(b, "cifarnet-fast", dt))
			b.ReportAllocs()
			for b.Loop() {
				f, err := models.Decode(data)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := models.NewModel(f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
