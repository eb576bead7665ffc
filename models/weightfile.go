package models

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"

	"github.com/cifarnet-go/cifarnet/models/atomicfile"
	"github.com/x448/float16"
)

// The weight file (.cnw) layout is documented byte by byte in FORMAT.md.

// FileExt is the extension of weight files.
const FileExt = ".cnw"

// FormatVersion is the weight-file format version this package writes and
// the newest it reads.
const FormatVersion = 1

// Magic opens every weight file.
const Magic = "CIFARNET"

const (
	preambleLen = len(Magic) + 4 + 4 // magic, version, header length
	checksumLen = sha256.Size
	// Alignment of the data section and of every tensor in it, so that a
	// reader may map tensors in place (SIMD loads, typed-array views).
	Alignment = 64
)

// Limits that keep a hostile or damaged file from making the reader
// allocate or loop without bound. They are far above any CIFAR network.
const (
	maxHeaderLen     = 1 << 20 // bytes of header JSON
	maxTensors       = 4096
	maxLayers        = 4096
	maxRank          = 4
	maxTensorElems   = 1 << 28
	maxDataLen       = 1 << 31 // bytes in the data section
	maxWeightFileLen = int64(preambleLen+maxHeaderLen+Alignment+checksumLen) + maxDataLen
)

// Errors returned by Decode, DecodeMeta and the file helpers. Every error
// from Decode wraps exactly one of them; test with errors.Is.
var (
	ErrBadMagic           = errors.New("weight file: bad magic")
	ErrUnsupportedVersion = errors.New("weight file: unsupported format version")
	ErrTruncated          = errors.New("weight file: truncated")
	ErrChecksum           = errors.New("weight file: checksum mismatch")
	// ErrCorrupt covers a well-formed, intact file whose content is wrong:
	// malformed header JSON or tensor directory, bad tensor values, or
	// tensors that do not match the spec.
	ErrCorrupt = errors.New("weight file: malformed")
)

// header is the JSON header: the metadata plus the tensor directory.
type header struct {
	Meta
	Tensors []tensorEntry `json:"tensors"`
}

// tensorEntry locates one tensor in the data section.
type tensorEntry struct {
	Name   string  `json:"name"`
	DType  DType   `json:"dtype"`
	Shape  []int   `json:"shape"`
	Offset int64   `json:"offset"` // from the start of the data section
	Length int64   `json:"length"` // bytes
	Scales *region `json:"scales,omitempty"`
}

// region is a byte range of the data section.
type region struct {
	Offset int64 `json:"offset"`
	Length int64 `json:"length"`
}

func (e *tensorEntry) region() region { return region{e.Offset, e.Length} }

// dtypeSize is the bytes per element of a storage type.
func dtypeSize(d DType) int64 {
	switch d {
	case Float32:
		return 4
	case Float16:
		return 2
	case Int8:
		return 1
	}
	return 0
}

// storageDType is the storage type of a tensor of the given rank in a file
// of the given dtype: weight matrices and kernels use the file's dtype,
// vectors (biases, batchnorm parameters and statistics) stay float32
// because they are tiny and batchnorm variances lose too much in float16.
func storageDType(file DType, rank int) DType {
	if rank >= 2 {
		return file
	}
	return Float32
}

func alignUp(n int64) int64 { return (n + Alignment - 1) / Alignment * Alignment }

// Encode writes f as a weight file, storing weight tensors in f.Meta.DType.
// It validates f first and writes nothing if f is invalid.
func Encode(w io.Writer, f *File) error {
	if err := f.Validate(); err != nil {
		return fmt.Errorf("encode weight file: %w", err)
	}
	params, err := f.Meta.Spec.Params()
	if err != nil {
		return fmt.Errorf("encode weight file: %w", err)
	}
	// Encode every tensor up front: it is the only way to know the
	// directory, and it reports unrepresentable values before any write.
	h := header{Meta: f.Meta, Tensors: make([]tensorEntry, 0, len(params))}
	blobs := make([][]byte, 0, 2*len(params))
	var off int64
	place := func(b []byte) region {
		r := region{alignUp(off), int64(len(b))}
		off = r.Offset + r.Length
		blobs = append(blobs, b)
		return r
	}
	for _, p := range params {
		t := f.Tensors[p.Name]
		dt := storageDType(f.Meta.DType, len(p.Shape))
		data, scales, err := encodeTensor(t, dt)
		if err != nil {
			return fmt.Errorf("encode weight file: %w", err)
		}
		e := tensorEntry{Name: p.Name, DType: dt, Shape: p.Shape}
		r := place(data)
		e.Offset, e.Length = r.Offset, r.Length
		if scales != nil {
			s := place(scales)
			e.Scales = &s
		}
		h.Tensors = append(h.Tensors, e)
	}
	var hb bytes.Buffer
	enc := json.NewEncoder(&hb)
	enc.SetEscapeHTML(false) // the header is not HTML; keep names readable
	if err := enc.Encode(&h); err != nil {
		return fmt.Errorf("encode weight file: header: %w", err)
	}
	js := bytes.TrimSuffix(hb.Bytes(), []byte("\n"))
	if len(js) > maxHeaderLen {
		return fmt.Errorf("encode weight file: header is %d bytes, the limit is %d", len(js), maxHeaderLen)
	}
	// Refuse to write what Decode would refuse to read.
	if n := len(f.Meta.Spec.Layers); n > maxLayers {
		return fmt.Errorf("encode weight file: spec has %d layers, the limit is %d", n, maxLayers)
	}
	if _, err := h.checkDirectory(); err != nil {
		return fmt.Errorf("encode weight file: %w", err)
	}

	sum := sha256.New()
	cw := &countingWriter{w: io.MultiWriter(w, sum)}
	var pre [preambleLen]byte
	copy(pre[:], Magic)
	binary.LittleEndian.PutUint32(pre[8:], FormatVersion)
	binary.LittleEndian.PutUint32(pre[12:], uint32(len(js)))
	cw.write(pre[:])
	cw.write(js)
	cw.pad(alignUp(cw.n) - cw.n)
	off = 0
	for _, b := range blobs {
		next := alignUp(off)
		cw.pad(next - off)
		cw.write(b)
		off = next + int64(len(b))
	}
	if cw.err != nil {
		return fmt.Errorf("encode weight file: %w", cw.err)
	}
	if _, err := w.Write(sum.Sum(nil)); err != nil {
		return fmt.Errorf("encode weight file: %w", err)
	}
	return nil
}

// countingWriter counts bytes written and keeps the first error, so that
// Encode checks once instead of after every write.
type countingWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countingWriter) write(b []byte) {
	if c.err != nil {
		return
	}
	n, err := c.w.Write(b)
	c.n += int64(n)
	c.err = err
}

var zeros [Alignment]byte

func (c *countingWriter) pad(n int64) { c.write(zeros[:n]) }

// encodeTensor converts t to its stored bytes, plus the float32 scales for
// int8.
func encodeTensor(t *Tensor, dt DType) (data, scales []byte, err error) {
	for i, v := range t.Data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, nil, fmt.Errorf("tensor %q: value %d is %g", t.Name, i, v)
		}
	}
	switch dt {
	case Float32:
		data = make([]byte, 4*len(t.Data))
		for i, v := range t.Data {
			binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(v))
		}
	case Float16:
		data = make([]byte, 2*len(t.Data))
		for i, v := range t.Data {
			h := float16.Fromfloat32(v) // rounds to nearest even
			if h.IsInf(0) {
				return nil, nil, fmt.Errorf("tensor %q: value %d (%g) is out of float16 range", t.Name, i, v)
			}
			binary.LittleEndian.PutUint16(data[2*i:], h.Bits())
		}
	case Int8:
		data, scales = quantize(t.Data, t.Shape[0])
	default:
		return nil, nil, fmt.Errorf("tensor %q: unknown dtype %q", t.Name, dt)
	}
	return data, scales, nil
}

// quantize stores x, split into rows slices along the first dimension, as
// symmetric int8 with one float32 scale per row: scale = maxabs/127 and
// q = round(v/scale), so that |v - q·scale| ≤ scale/2.
func quantize(x []float32, rows int) (data, scales []byte) {
	data = make([]byte, len(x))
	scales = make([]byte, 4*rows)
	n := len(x) / rows
	for r := range rows {
		row := x[r*n : (r+1)*n]
		var maxAbs float32
		for _, v := range row {
			maxAbs = max(maxAbs, float32(math.Abs(float64(v))))
		}
		scale := maxAbs / 127
		binary.LittleEndian.PutUint32(scales[4*r:], math.Float32bits(scale))
		if scale == 0 {
			continue // an all-zero row; data is already zero
		}
		for i, v := range row {
			q := math.Round(float64(v) / float64(scale))
			data[r*n+i] = byte(int8(max(-127, min(127, q))))
		}
	}
	return data, scales
}

// Decode parses and fully validates a weight file: magic, version, header,
// tensor directory, checksum, tensor values and the match between tensors
// and spec. The returned tensors are float32 (float16 and int8 are
// converted) and do not alias data.
func Decode(data []byte) (*File, error) {
	headerEnd, err := checkPrefix(data)
	if err != nil {
		return nil, err
	}
	// Past the preamble, the checksum tells a damaged file (ErrChecksum,
	// ErrTruncated) from one that was written wrong (ErrCorrupt).
	intact := len(data) >= headerEnd+checksumLen && checksumOK(data, len(data)-checksumLen)
	damaged := func(err error) error {
		if intact {
			return err
		}
		return fmt.Errorf("%w: the file is damaged (%v)", ErrChecksum, err)
	}
	h, err := parseHeader(data[preambleLen:headerEnd])
	if err != nil {
		return nil, damaged(err)
	}
	dataLen, err := h.checkDirectory()
	if err != nil {
		return nil, damaged(err)
	}
	dataStart := alignUp(int64(headerEnd))
	total := dataStart + dataLen + checksumLen
	have := int64(len(data))
	switch {
	case have < total && !intact:
		return nil, h.truncated(dataStart, dataLen, have)
	case have != total && intact:
		return nil, fmt.Errorf("%w: the header describes a %d-byte file, it has %d bytes", ErrCorrupt, total, have)
	case have > total && checksumOK(data, int(total-checksumLen)):
		return nil, fmt.Errorf("%w: %d unexpected bytes after the checksum", ErrCorrupt, have-total)
	case have > total || !intact:
		return nil, fmt.Errorf("%w: the file is damaged (the SHA-256 of its first %d bytes differs from the one recorded after them)",
			ErrChecksum, total-checksumLen)
	}

	section := data[dataStart : dataStart+dataLen]
	f := &File{Meta: h.Meta, Tensors: make(map[string]*Tensor, len(h.Tensors))}
	for i := range h.Tensors {
		t, err := decodeTensor(section, &h.Tensors[i])
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		f.Tensors[t.Name] = t
	}
	if err := f.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return f, nil
}

// checkPrefix checks the preamble and that the whole header is present, and
// returns the offset where the header ends.
func checkPrefix(data []byte) (int, error) {
	if err := checkMagic(data); err != nil {
		return 0, err
	}
	if len(data) < preambleLen {
		return 0, fmt.Errorf("%w: need %d bytes for the preamble, have %d", ErrTruncated, preambleLen, len(data))
	}
	n, err := checkPreamble(data[:preambleLen])
	if err != nil {
		return 0, err
	}
	end := preambleLen + n
	if len(data) < end {
		return 0, fmt.Errorf("%w: need %d bytes for the header, have %d", ErrTruncated, end, len(data))
	}
	return end, nil
}

// checkMagic fails unless data starts with Magic or, if shorter, is a
// prefix of it.
func checkMagic(data []byte) error {
	head := data[:min(len(data), len(Magic))]
	if string(head) != Magic[:len(head)] {
		return fmt.Errorf("%w: the file starts with %q, not %q; it is not a cifarnet weight file (%s)", ErrBadMagic, head, Magic, FileExt)
	}
	return nil
}

// checkPreamble checks the version and header length of a preamble whose
// magic is already known to be right, and returns the header length.
func checkPreamble(pre []byte) (int, error) {
	v := binary.LittleEndian.Uint32(pre[8:])
	if v > FormatVersion {
		return 0, fmt.Errorf("%w: the file is format version %d, this program reads up to version %d; upgrade it to read this file",
			ErrUnsupportedVersion, v, FormatVersion)
	}
	if v != FormatVersion {
		return 0, fmt.Errorf("%w: format version %d does not exist (this program reads version %d)", ErrUnsupportedVersion, v, FormatVersion)
	}
	n := binary.LittleEndian.Uint32(pre[12:])
	if n == 0 || n > maxHeaderLen {
		return 0, fmt.Errorf("%w: header length %d is outside 1..%d", ErrCorrupt, n, maxHeaderLen)
	}
	return int(n), nil
}

func checksumOK(data []byte, at int) bool {
	sum := sha256.Sum256(data[:at])
	return bytes.Equal(sum[:], data[at:at+checksumLen])
}

// parseHeader decodes the header JSON and checks the metadata on its own
// (not yet the directory).
func parseHeader(js []byte) (*header, error) {
	var h header
	if err := json.Unmarshal(js, &h); err != nil {
		return nil, fmt.Errorf("%w: header JSON: %v", ErrCorrupt, err)
	}
	if n := len(h.Spec.Layers); n > maxLayers {
		return nil, fmt.Errorf("%w: spec has %d layers, the limit is %d", ErrCorrupt, n, maxLayers)
	}
	if err := h.Meta.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return &h, nil
}

// checkDirectory validates the tensor directory against itself, without
// the data: names, dtypes, shapes, sizes, alignment and overlaps. It
// returns the length of the data section.
func (h *header) checkDirectory() (int64, error) {
	fail := func(format string, a ...any) (int64, error) {
		return 0, fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, a...))
	}
	if len(h.Tensors) > maxTensors {
		return fail("%d tensors, the limit is %d", len(h.Tensors), maxTensors)
	}
	type span struct {
		region
		what string
	}
	spans := make([]span, 0, 2*len(h.Tensors))
	names := make(map[string]bool, len(h.Tensors))
	for i := range h.Tensors {
		e := &h.Tensors[i]
		if e.Name == "" {
			return fail("tensor %d has no name", i)
		}
		if names[e.Name] {
			return fail("tensor %q is listed twice", e.Name)
		}
		names[e.Name] = true
		if len(e.Shape) == 0 || len(e.Shape) > maxRank {
			return fail("tensor %q has rank %d, want 1..%d", e.Name, len(e.Shape), maxRank)
		}
		elems := int64(1)
		for _, d := range e.Shape {
			if d <= 0 || int64(d) > maxTensorElems/elems {
				return fail("tensor %q has shape %v: dimensions must be positive and hold at most %d values", e.Name, e.Shape, maxTensorElems)
			}
			elems *= int64(d)
		}
		if want := storageDType(h.DType, len(e.Shape)); e.DType != want {
			return fail("tensor %q is stored as %q, a rank-%d tensor in a %s file must be %s", e.Name, e.DType, len(e.Shape), h.DType, want)
		}
		if want := elems * dtypeSize(e.DType); e.Length != want {
			return fail("tensor %q is %d bytes, shape %v in %s needs %d", e.Name, e.Length, e.Shape, e.DType, want)
		}
		spans = append(spans, span{e.region(), fmt.Sprintf("tensor %q", e.Name)})
		switch {
		case e.DType == Int8 && e.Scales == nil:
			return fail("int8 tensor %q has no scales", e.Name)
		case e.DType != Int8 && e.Scales != nil:
			return fail("%s tensor %q has scales", e.DType, e.Name)
		case e.Scales != nil:
			if want := 4 * int64(e.Shape[0]); e.Scales.Length != want {
				return fail("scales of tensor %q are %d bytes, %d output channels need %d", e.Name, e.Scales.Length, e.Shape[0], want)
			}
			spans = append(spans, span{*e.Scales, fmt.Sprintf("scales of tensor %q", e.Name)})
		}
	}
	for _, s := range spans {
		if s.Offset < 0 || s.Offset > maxDataLen || s.Offset%Alignment != 0 {
			return fail("%s starts at offset %d, want a multiple of %d below %d", s.what, s.Offset, Alignment, int64(maxDataLen))
		}
	}
	slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.Offset, b.Offset) })
	var end int64
	for i, s := range spans {
		if i > 0 && s.Offset < end {
			return fail("%s overlaps %s", s.what, spans[i-1].what)
		}
		end = s.Offset + s.Length
	}
	if end > maxDataLen {
		return fail("data section of %d bytes exceeds the limit of %d", end, int64(maxDataLen))
	}
	return end, nil
}

// truncated explains a file that ends early by naming the first region
// that does not fit.
func (h *header) truncated(dataStart, dataLen, have int64) error {
	var worst region
	what := ""
	for i := range h.Tensors {
		e := &h.Tensors[i]
		for _, r := range []*region{{e.Offset, e.Length}, e.Scales} {
			if r == nil || dataStart+r.Offset+r.Length <= have {
				continue
			}
			if what == "" || r.Offset < worst.Offset {
				worst = *r
				what = fmt.Sprintf("tensor %q", e.Name)
				if r == e.Scales {
					what = "the scales of " + what
				}
			}
		}
	}
	if what == "" {
		return fmt.Errorf("%w: need %d bytes for the checksum, have %d", ErrTruncated, dataStart+dataLen+checksumLen, have)
	}
	return fmt.Errorf("%w: need %d bytes for %s, have %d", ErrTruncated, dataStart+worst.Offset+worst.Length, what, have)
}

// decodeTensor converts one directory entry's bytes to float32 and
// rejects values that cannot be weights.
func decodeTensor(section []byte, e *tensorEntry) (*Tensor, error) {
	raw := section[e.Offset : e.Offset+e.Length]
	n := int(e.Length / dtypeSize(e.DType))
	t := &Tensor{Name: e.Name, Shape: slices.Clone(e.Shape), Data: make([]float32, n)}
	switch e.DType {
	case Float32:
		for i := range t.Data {
			t.Data[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	case Float16:
		for i := range t.Data {
			t.Data[i] = float16.Frombits(binary.LittleEndian.Uint16(raw[2*i:])).Float32()
		}
	case Int8:
		sc := section[e.Scales.Offset : e.Scales.Offset+e.Scales.Length]
		rows := e.Shape[0]
		per := n / rows
		for r := range rows {
			scale := math.Float32frombits(binary.LittleEndian.Uint32(sc[4*r:]))
			if !(scale >= 0) || math.IsInf(float64(scale), 0) {
				return nil, fmt.Errorf("tensor %q: scale %d is %g, want a finite non-negative number", e.Name, r, scale)
			}
			for i := r * per; i < (r+1)*per; i++ {
				t.Data[i] = float32(int8(raw[i])) * scale
			}
		}
	}
	for i, v := range t.Data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("tensor %q: value %d is %g", e.Name, i, v)
		}
	}
	return t, nil
}

// DecodeMeta reads only the preamble and header of a weight file from r:
// enough to list models cheaply. It validates the metadata and the tensor
// directory but reads no tensor data, so it does NOT verify the checksum; a
// file it accepts may still fail Decode.
func DecodeMeta(r io.Reader) (*Meta, error) {
	var pre [preambleLen]byte
	n, err := io.ReadFull(r, pre[:])
	if err := checkMagic(pre[:n]); err != nil {
		return nil, err
	}
	if err != nil {
		return nil, readErr(err, "the preamble", preambleLen, n)
	}
	hl, err := checkPreamble(pre[:])
	if err != nil {
		return nil, err
	}
	js := make([]byte, hl) // at most maxHeaderLen
	if n, err := io.ReadFull(r, js); err != nil {
		return nil, readErr(err, "the header", preambleLen+hl, preambleLen+n)
	}
	h, err := parseHeader(js)
	if err != nil {
		return nil, err
	}
	if _, err := h.checkDirectory(); err != nil {
		return nil, err
	}
	return &h.Meta, nil
}

// ReadChecksum returns, in hex, the SHA-256 that a weight file of size
// bytes ends with: an identity of its contents that costs one small read.
// It does not verify it (Decode does).
func ReadChecksum(r io.ReaderAt, size int64) (string, error) {
	if size < int64(preambleLen+checksumLen) {
		return "", fmt.Errorf("%w: %d bytes, too short for a weight file", ErrTruncated, size)
	}
	var sum [checksumLen]byte
	if _, err := r.ReadAt(sum[:], size-checksumLen); err != nil {
		return "", fmt.Errorf("read the checksum: %w", err)
	}
	return hex.EncodeToString(sum[:]), nil
}

// readErr turns a short read into ErrTruncated and keeps other I/O errors.
func readErr(err error, what string, need, have int) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: need %d bytes for %s, have %d", ErrTruncated, need, what, have)
	}
	return fmt.Errorf("weight file: reading %s: %w", what, err)
}

// ReadFile reads and decodes the weight file at path.
func ReadFile(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > maxWeightFileLen {
		return nil, fmt.Errorf("%s: %w: %d bytes is larger than any weight file can be", path, ErrCorrupt, st.Size())
	}
	data := make([]byte, st.Size())
	if _, err := io.ReadFull(fh, data); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	f, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// ReadMetaFile reads only the header of the weight file at path; see
// DecodeMeta.
func ReadMetaFile(path string) (*Meta, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	m, err := DecodeMeta(bufio.NewReader(fh))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// WriteFile writes f to path atomically (see package atomicfile): readers
// see either the old file or the complete new one, and on error path is
// untouched.
func WriteFile(path string, f *File) error {
	return atomicfile.Write(path, func(w io.Writer) error { return Encode(w, f) })
}
