package models

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"github.com/cifarnet-go/cifarnet/models/gemm"
)

// A snapshot is a built Model as bytes: its metadata and the arrays the
// compiler made from the weight file (packed and Winograd-transformed
// weights, folded biases). Loading one skips decoding, checking and
// transforming the weights, which is most of the time a model takes to
// load in the browser before the engine has optimised the code. It is a
// cache format, not an exchange format: only the build that wrote it
// reads it (same layout tag), and the weight file stays the source.
//
// Layout, all integers uint32 little-endian, every part padded with zeros
// to a multiple of 4 bytes so that the arrays can be used in place:
//
//	"CNWBUILT" · version · check (8 bytes) · layout length · layout tag ·
//	meta length · meta JSON · array count N · N array lengths (values) ·
//	N float32 arrays
//
// The check (snapshotCheck) covers every byte after it.

// ErrSnapshot wraps every reason LoadSnapshot refuses its input.
var ErrSnapshot = errors.New("model snapshot unusable")

const (
	snapshotMagic   = "CNWBUILT"
	snapshotVersion = 2
	// checkedFrom is where the bytes the check covers start: after the
	// magic, the version and the check itself.
	checkedFrom     = len(snapshotMagic) + 4 + 8
	maxSnapshotMeta = 1 << 20
	// Arrays a model can hold: at most 16 Winograd matrices and a bias,
	// or a projection's matrix and bias, per layer.
	maxSnapshotArrays = 20 * maxLayers
)

// snapshotLayout names what the arrays' layout depends on besides the
// spec: the machine's byte order and word size, the panel height of packed
// matrices, and whether 3×3 convolutions are stored in Winograd form.
func snapshotLayout() string {
	return fmt.Sprintf("%s/%s mr=%d winograd=%t", runtime.GOOS, runtime.GOARCH, gemm.PackedSize(1, 1), winogradEnabled)
}

// Snapshot returns the model as a snapshot in parts: a header, then each
// array's bytes, which alias the model's memory and must not be modified.
// Joined, the parts are what LoadSnapshot reads.
func (m *Model) Snapshot() ([][]byte, error) {
	meta, err := json.Marshal(&m.Meta)
	if err != nil {
		return nil, fmt.Errorf("model snapshot: %w", err)
	}
	var h bytes.Buffer
	h.WriteString(snapshotMagic)
	putU32 := func(v int) { h.Write(binary.LittleEndian.AppendUint32(nil, uint32(v))) }
	putPadded := func(b []byte) {
		putU32(len(b))
		h.Write(b)
		h.Write(make([]byte, pad4(len(b))))
	}
	putU32(snapshotVersion)
	h.Write(make([]byte, 8)) // the check, once the rest is known
	putPadded([]byte(snapshotLayout()))
	putPadded(meta)
	putU32(len(m.arrays))
	for _, a := range m.arrays {
		putU32(len(a))
	}
	header := h.Bytes()
	parts := [][]byte{header}
	for _, a := range m.arrays {
		if len(a) > 0 {
			parts = append(parts, unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(a))), 4*len(a)))
		}
	}
	check := newSnapshotCheck()
	check.add(header[checkedFrom:])
	for _, p := range parts[1:] {
		check.add(p)
	}
	binary.LittleEndian.PutUint64(header[checkedFrom-8:], check.sum())
	return parts, nil
}

// snapshotCheck guards a snapshot against damage on disk and files cut
// short or half-written, not against an attacker: four multiply-xor
// chains over its 32-bit words (word i into chain i mod 4; each step is a
// bijection of the word, so any one changed word changes its chain and
// the result), then the length. Independent chains run side by side:
// 14 MB take 1.5–6 ms in a browser's baseline WebAssembly code, where
// the same check in JavaScript took 20–60 ms of the worker on every warm
// start (bench/RESULTS.md).
type snapshotCheck struct {
	lanes [4]uint32
	words int
}

func newSnapshotCheck() snapshotCheck {
	return snapshotCheck{lanes: [4]uint32{0x811c9dc5, 0x050c5d1f, 0x1b873593, 0x2545f491}}
}

const checkPrime = 0x01000193

// add checks b's bytes next; len(b) is a multiple of 4 (every part of a
// snapshot is padded to one).
func (c *snapshotCheck) add(b []byte) {
	for ; len(b) >= 4 && c.words%4 != 0; b = b[4:] {
		c.word(binary.LittleEndian.Uint32(b))
	}
	a0, a1, a2, a3 := c.lanes[0], c.lanes[1], c.lanes[2], c.lanes[3]
	for ; len(b) >= 16; b = b[16:] {
		a0 = (a0 ^ binary.LittleEndian.Uint32(b)) * checkPrime
		a1 = (a1 ^ binary.LittleEndian.Uint32(b[4:])) * checkPrime
		a2 = (a2 ^ binary.LittleEndian.Uint32(b[8:])) * checkPrime
		a3 = (a3 ^ binary.LittleEndian.Uint32(b[12:])) * checkPrime
		c.words += 4
	}
	c.lanes = [4]uint32{a0, a1, a2, a3}
	for ; len(b) >= 4; b = b[4:] {
		c.word(binary.LittleEndian.Uint32(b))
	}
}

// word adds one word to its chain: the words before a whole group of four
// and after the last one.
func (c *snapshotCheck) word(w uint32) {
	l := &c.lanes[c.words%4]
	*l = (*l ^ w) * checkPrime
	c.words++
}

func (c *snapshotCheck) sum() uint64 {
	l := c.lanes
	n := uint32(c.words)
	return uint64((l[0]^l[2])*checkPrime^n)<<32 | uint64(l[1]^l[3])
}

func pad4(n int) int { return (4 - n%4) % 4 }

// LoadSnapshot rebuilds a Model from a snapshot this build wrote. The
// model keeps using b's memory for its arrays: the caller must not modify
// b afterwards. The bytes must match their check, the structure is
// compiled from the spec again and every array's length checked against
// it, so a damaged, cut-short or foreign snapshot is refused with an error
// wrapping ErrSnapshot rather than misread.
func LoadSnapshot(b []byte) (*Model, error) {
	if len(b) > 0 && uintptr(unsafe.Pointer(&b[0]))%4 != 0 {
		b = bytes.Clone(b) // the allocator aligns it
	}
	r := snapshotReader{b: b}
	if string(r.take(len(snapshotMagic))) != snapshotMagic {
		return nil, fmt.Errorf("%w: not a model snapshot", ErrSnapshot)
	}
	if v := r.u32(); r.err == nil && v != snapshotVersion {
		return nil, fmt.Errorf("%w: version %d, this build reads %d", ErrSnapshot, v, snapshotVersion)
	}
	if want := r.take(8); r.err == nil {
		check := newSnapshotCheck()
		check.add(b[checkedFrom : checkedFrom+(len(b)-checkedFrom)&^3])
		if len(b)%4 != 0 || check.sum() != binary.LittleEndian.Uint64(want) {
			return nil, fmt.Errorf("%w: damaged or cut short (its check does not match)", ErrSnapshot)
		}
	}
	if layout := string(r.padded(64)); r.err == nil && layout != snapshotLayout() {
		return nil, fmt.Errorf("%w: written for %q, this build is %q", ErrSnapshot, layout, snapshotLayout())
	}
	metaJSON := r.padded(maxSnapshotMeta)
	n := r.u32()
	if r.err == nil && n > maxSnapshotArrays {
		return nil, fmt.Errorf("%w: %d arrays, the limit is %d", ErrSnapshot, n, maxSnapshotArrays)
	}
	lens := make([]int, 0, min(n, maxSnapshotArrays))
	for range n {
		lens = append(lens, r.u32())
	}
	arrays := make([][]float32, len(lens))
	for i, l := range lens {
		if r.err == nil && l > (len(b)-r.off)/4 {
			r.err = fmt.Errorf("array %d of %d values runs past the end", i, l)
		}
		if data := r.take(4 * l); len(data) > 0 {
			arrays[i] = unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(data))), l)
		}
	}
	if r.err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSnapshot, r.err)
	}
	if r.off != len(b) {
		return nil, fmt.Errorf("%w: %d bytes after the last array", ErrSnapshot, len(b)-r.off)
	}

	var meta Meta
	if err := json.Unmarshal(metaJSON, &meta); err != nil {
		return nil, fmt.Errorf("%w: metadata: %v", ErrSnapshot, err)
	}
	if l := len(meta.Spec.Layers); l > maxLayers {
		return nil, fmt.Errorf("%w: spec has %d layers, the limit is %d", ErrSnapshot, l, maxLayers)
	}
	if err := meta.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSnapshot, err)
	}
	shapes, err := meta.Spec.Shapes()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSnapshot, err)
	}
	m := &Model{Meta: meta, classes: len(meta.Classes)}
	src := &fromSnapshot{arrays: arrays}
	if err := compile(m, nil, src, shapes); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSnapshot, err)
	}
	if src.used != len(arrays) {
		return nil, fmt.Errorf("%w: %d arrays, the spec uses %d", ErrSnapshot, len(arrays), src.used)
	}
	return m, nil
}

// snapshotReader reads a snapshot's header fields; the first error sticks
// and later reads return zero values.
type snapshotReader struct {
	b   []byte
	off int
	err error
}

func (r *snapshotReader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.off {
		r.err = fmt.Errorf("truncated: need %d bytes at offset %d, have %d", n, r.off, len(r.b)-r.off)
		return nil
	}
	p := r.b[r.off : r.off+n]
	r.off += n
	return p
}

func (r *snapshotReader) u32() int {
	p := r.take(4)
	if p == nil {
		return 0
	}
	return int(binary.LittleEndian.Uint32(p))
}

// padded reads a length, at most limit, and that many bytes plus padding.
func (r *snapshotReader) padded(limit int) []byte {
	n := r.u32()
	if r.err == nil && n > limit {
		r.err = fmt.Errorf("a field of %d bytes at offset %d, the limit is %d", n, r.off-4, limit)
	}
	p := r.take(n)
	r.take(pad4(n))
	return p
}

// fromSnapshot hands out a snapshot's arrays in order, checking each
// length against what the compiler needs.
type fromSnapshot struct {
	arrays [][]float32
	used   int
}

func (s *fromSnapshot) next(n int, _ func() []float32) ([]float32, error) {
	if s.used >= len(s.arrays) {
		return nil, fmt.Errorf("the snapshot has %d arrays, the spec needs more", len(s.arrays))
	}
	a := s.arrays[s.used]
	if len(a) != n {
		return nil, fmt.Errorf("array %d holds %d values, the spec needs %d", s.used, len(a), n)
	}
	s.used++
	return a, nil
}
