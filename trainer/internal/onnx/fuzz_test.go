package onnx

import (
	"io"
	"os"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/models/modeltest"
)

// FuzzImport feeds arbitrary bytes to Import: it must return an error or a
// valid weight file, never panic or hang. The seeds are valid models (ours
// and PyTorch's), damaged copies and non-models.
func FuzzImport(f *testing.F) {
	tiny, err := Export(modeltest.RandomFile(modeltest.TinySpec(), 5))
	if err != nil {
		f.Fatal(err)
	}
	torch, err := os.ReadFile(torchModel)
	if err != nil {
		f.Fatal(err)
	}
	noMeta := exportedModel(f)
	noMeta.MetadataProps = nil
	noMetaBytes, _ := proto.Marshal(noMeta)
	for _, seed := range [][]byte{
		tiny, torch, noMetaBytes,
		tiny[:len(tiny)/2], torch[:100],
		{}, []byte("CIFARNET"), {0x08, 0x08, 0x12, 0x00},
	} {
		f.Add(seed)
	}
	opts := ImportOptions{
		Classes:       models.CIFAR10Classes,
		Normalization: &models.Normalization{Mean: []float32{0.5, 0.5, 0.5}, Std: []float32{0.25, 0.25, 0.25}},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, o := range []ImportOptions{{}, opts} {
			w, err := Import(data, o)
			if err != nil {
				continue
			}
			if err := w.Validate(); err != nil {
				t.Fatalf("Import returned an invalid file: %v", err)
			}
			if err := models.Encode(io.Discard, w); err != nil {
				t.Fatalf("Import returned a file that cannot be written: %v", err)
			}
		}
	})
}
