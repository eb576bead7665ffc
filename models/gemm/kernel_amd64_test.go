//go:build amd64 && !purego

package gemm

import (
	"testing"

	"golang.org/x/sys/cpu"
)

// A CPU with AVX2 and FMA must get a vector kernel: falling back to the
// scalar one silently costs a factor of ten in training speed.
func TestVectorKernelChosen(t *testing.T) {
	if !cpu.X86.HasAVX2 || !cpu.X86.HasFMA {
		t.Skip("this CPU has no AVX2 with FMA")
	}
	if !Vectorized() {
		t.Fatalf("kernel %q in use on an AVX2+FMA CPU", Kernel())
	}
	t.Logf("kernel in use: %s (available: %d)", Kernel(), len(available))
}
