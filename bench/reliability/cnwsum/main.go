// Command cnwsum prints a SHA-256 of a weight file's tensors (names,
// shapes and float32 values, in name order) and nothing of its metadata,
// so that two runs' weights compare equal exactly when every value is
// bit-identical, whatever their provenance says.
//
//	go run ./bench/reliability/cnwsum FILE.cnw...
package main

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"slices"

	"github.com/cifarnet-go/cifarnet/models"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: cnwsum FILE.cnw...")
		os.Exit(2)
	}
	status := 0
	for _, path := range os.Args[1:] {
		sum, err := digest(path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "cnwsum: %v\n", err)
			status = 1
			continue
		}
		fmt.Printf("%x  %s\n", sum, path)
	}
	os.Exit(status)
}

func digest(path string) ([]byte, error) {
	f, err := models.ReadFile(path)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(f.Tensors))
	for name := range f.Tensors {
		names = append(names, name)
	}
	slices.Sort(names)
	h := sha256.New()
	var buf [4]byte
	for _, name := range names {
		t := f.Tensors[name]
		fmt.Fprintf(h, "%s %v\n", name, t.Shape)
		for _, v := range t.Data {
			binary.LittleEndian.PutUint32(buf[:], math.Float32bits(v))
			h.Write(buf[:])
		}
	}
	return h.Sum(nil), nil
}
