package models_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/cifarnet-go/cifarnet/models"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the FuzzDecode seed files in testdata/fuzz/FuzzDecode")

const corpusDir = "testdata/fuzz/FuzzDecode"

// fuzzSeeds are small valid files in every dtype and typical damage to
// them: the starting points for FuzzDecode.
func fuzzSeeds(tb testing.TB) map[string][]byte {
	seeds := map[string][]byte{}
	for _, dt := range []models.DType{models.Float32, models.Float16, models.Int8} {
		seeds["valid-"+string(dt)] = mustEncode(tb, tinyWeights(dt))
	}
	valid := seeds["valid-int8"]
	edit := func(name string, f func(b []byte) []byte) { seeds[name] = f(bytes.Clone(valid)) }
	edit("truncated", func(b []byte) []byte { return b[:len(b)/2] })
	edit("bad-magic", func(b []byte) []byte { copy(b, "GIF89a"); return b })
	edit("version-2", func(b []byte) []byte { binary.LittleEndian.PutUint32(b[8:], 2); return b })
	edit("huge-header-length", func(b []byte) []byte { binary.LittleEndian.PutUint32(b[12:], 1<<20); return b })
	edit("flipped-data-byte", func(b []byte) []byte { b[len(b)-100] ^= 0x10; return b })
	edit("trailing-bytes", func(b []byte) []byte { return append(b, 0, 0, 0, 0) })

	hdr, section := splitFileRaw(valid)
	js := bytes.Replace(hdr, []byte(`"relu"`), []byte(`"swish"`), 1)
	seeds["unknown-layer"] = assembleRaw(js, section)
	// A float32 tensor of 2^28 values (1 GiB) placed after the others: a
	// directory that is consistent but describes far more than is there.
	hdr32, section32 := splitFileRaw(seeds["valid-float32"])
	var h map[string]any
	dec := json.NewDecoder(bytes.NewReader(hdr32))
	dec.UseNumber()
	if err := dec.Decode(&h); err != nil {
		tb.Fatal(err)
	}
	e := dirEntry(h, "fc.weight")
	e["shape"], e["offset"], e["length"] = []int{1 << 14, 1 << 14}, (len(section32)+63)/64*64, 1<<30
	huge := assemble(h, section32)
	seeds["huge-shape"] = huge[:len(huge)-32] // it cannot be intact
	seeds["bad-json"] = assembleRaw(hdr[:len(hdr)/2], section)
	return seeds
}

// splitFileRaw splits a valid file into its header JSON and data section.
func splitFileRaw(data []byte) (hdr, section []byte) {
	n := int(binary.LittleEndian.Uint32(data[12:]))
	start := (16 + n + 63) / 64 * 64
	return data[16 : 16+n], data[start : len(data)-32]
}

// corpusFile is data in the format of Go's fuzzing corpus files.
func fuzzCorpusFile(data []byte) []byte {
	return fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", data)
}

// TestFuzzCorpusIsCurrent keeps the committed seed files in step with the
// format; regenerate them with go test ./models -run FuzzCorpus -update-corpus.
func TestFuzzCorpusIsCurrent(t *testing.T) {
	for name, data := range fuzzSeeds(t) {
		_, err := models.Decode(data)
		if valid := strings.HasPrefix(name, "valid-"); valid != (err == nil) {
			t.Errorf("seed %s: Decode error %v", name, err)
		}
		path := filepath.Join(corpusDir, "seed-"+name)
		want := fuzzCorpusFile(data)
		if *updateCorpus {
			if err := os.MkdirAll(corpusDir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (regenerate with -update-corpus)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale; regenerate with go test ./models -run FuzzCorpus -update-corpus", path)
		}
	}
}

// FuzzDecode checks that Decode never panics, that every rejection wraps a
// sentinel error, and that whatever it accepts is consistent with
// DecodeMeta and survives another encode and decode. Each input is tried
// as is and with its last 32 bytes replaced by the right checksum: almost
// every mutation breaks the checksum, and the fixed-up copy lets the
// fuzzer reach the checks behind it.
func FuzzDecode(f *testing.F) {
	for _, data := range fuzzSeeds(f) {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecode(t, data)
		if len(data) >= sha256.Size {
			fixed := bytes.Clone(data)
			sum := sha256.Sum256(fixed[:len(fixed)-sha256.Size])
			copy(fixed[len(fixed)-sha256.Size:], sum[:])
			checkDecode(t, fixed)
		}
	})
}

func checkDecode(t *testing.T, data []byte) {
	file, err := models.Decode(data)
	meta, metaErr := models.DecodeMeta(bytes.NewReader(data))
	if err != nil {
		if !isDecodeSentinel(err) {
			t.Fatalf("error %q wraps none of the sentinel errors", err)
		}
		return
	}
	if metaErr != nil {
		t.Fatalf("Decode accepts the file, DecodeMeta says %v", metaErr)
	}
	if !reflect.DeepEqual(*meta, file.Meta) {
		t.Fatalf("DecodeMeta %+v, Decode %+v", *meta, file.Meta)
	}
	var buf bytes.Buffer
	if err := models.Encode(&buf, file); err != nil {
		t.Fatalf("re-encoding a decoded file: %v", err)
	}
	again, err := models.Decode(buf.Bytes())
	if err != nil {
		t.Fatalf("decoding a re-encoded file: %v", err)
	}
	// float32 and float16 values survive exactly; int8 re-quantises.
	if file.Meta.DType != models.Int8 && !reflect.DeepEqual(again, file) {
		t.Fatal("re-encoded file decodes differently")
	}
}

// TestHugeClaimsDoNotAllocate checks that sizes in the header are only
// believed once the bytes are there: a short file claiming a 1 GiB tensor
// costs no more than the file itself.
func TestHugeClaimsDoNotAllocate(t *testing.T) {
	data := fuzzSeeds(t)["huge-shape"]
	if _, err := models.Decode(data); !errors.Is(err, models.ErrTruncated) {
		t.Fatalf("error %v, want truncated: the claim must pass the directory checks", err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const runs = 10
	for range runs {
		if _, err := models.Decode(data); err == nil {
			t.Fatal("no error")
		}
	}
	runtime.ReadMemStats(&after)
	if perRun := (after.TotalAlloc - before.TotalAlloc) / runs; perRun > 1<<20 {
		t.Errorf("decoding a %d-byte file allocated %d bytes", len(data), perRun)
	}
}
