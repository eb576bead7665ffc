//go:build amd64 && !purego

package gemm

import (
	"testing"

	"golang.org/x/sys/cpu"
)

// A CPU with AVX2 and FMA must get a vector kernel, and one with AVX-512
// the widest: falling back silently costs a factor of 2–10 in speed.
func TestVectorKernelChosen(t *testing.T) {
	if !cpu.X86.HasAVX2 || !cpu.X86.HasFMA {
		t.Skip("this CPU has no AVX2 with FMA")
	}
	if !Vectorized() {
		t.Fatalf("kernel %q in use on an AVX2+FMA CPU", Kernel())
	}
	if cpu.X86.HasAVX512F && KernelWidth() != 48 {
		t.Fatalf("kernel %q in use on an AVX-512 CPU, want the 48-wide AVX-512 one", Kernel())
	}
	t.Logf("kernel in use: %s (available: %d)", Kernel(), len(available))
}
