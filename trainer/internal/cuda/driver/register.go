//go:build cifarnet_cuda

package driver

import (
	"fmt"

	"github.com/cifarnet-go/cifarnet/trainer/internal/backend"
	"github.com/cifarnet-go/cifarnet/trainer/internal/cuda"
)

// Importing this package (trainer/cuda.go does, in the cifarnet_cuda
// build) makes the trainer able to train on a GPU.
func init() { backend.CUDA = support{} }

type support struct{}

func (support) GPUs() ([]backend.GPU, error) { return List() }

// Open opens GPU index and the CUDA training backend on it, which owns the
// device from then on.
func (support) Open(index int, cfg backend.Config) (backend.Backend, error) {
	dev, err := Open(index)
	if err != nil {
		return nil, err
	}
	b, err := cuda.New(dev, fmt.Sprintf("cuda:%d", index), cfg)
	if err != nil {
		dev.Close() // New closes it too; closing twice is harmless
		return nil, err
	}
	return b, nil
}
