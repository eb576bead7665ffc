//go:build cifarnet_cuda

// An external test package: package preflight itself must not import
// gorgonia.org/cu, or cu would be initialised first.
package preflight_test

import (
	"testing"

	"github.com/cifarnet-go/cifarnet/trainer/internal/cuda/driver/preflight"
	"gorgonia.org/cu"
)

// TestInitOrder checks that this package's init called cuInit before
// gorgonia.org/cu's did, and that a failure did not end the test binary.
func TestInitOrder(t *testing.T) {
	if !preflight.RanFirst() {
		t.Fatal("gorgonia.org/cu called cuInit before package preflight's init: its failure message would not be ours")
	}
	if err := preflight.Err(); err != nil {
		t.Logf("cuInit failed, and cu's init went on (test binaries survive): %v", err)
		t.Logf("the trainer would print: %s", preflight.Message("trainer-cuda", err))
		if _, err := cu.NumDevices(); err == nil {
			t.Error("cu.NumDevices succeeded after cuInit failed")
		}
		return
	}
	t.Logf("cuInit succeeded; CUDA driver version %d", cu.Version())
}
