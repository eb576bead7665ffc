package kernels

import (
	"crypto/sha256"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

// kernels.ptx records the sha256 of the kernels.cu it was compiled from.
func TestPTXUpToDate(t *testing.T) {
	src, err := os.ReadFile("kernels.cu")
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(PTX, "\n")
	want := fmt.Sprintf("// kernels.cu sha256 %x ", sha256.Sum256(src))
	if !strings.HasPrefix(first, want) {
		t.Errorf("kernels.ptx was not generated from this kernels.cu (its first line is %q, want it to start %q): run gen.sh", first, want)
	}
}

// Every kernel the launchers use has an entry in the PTX, and the PTX has
// no kernel they do not use.
func TestKernelNames(t *testing.T) {
	entries := Entries()
	if !slices.Contains(entries, "relu_fwd") {
		t.Fatalf("Entries() = %v: the PTX parse found no relu_fwd", entries)
	}
	used := map[string]bool{}
	for _, k := range allKernels {
		used[string(k)] = true
		if !slices.Contains(entries, string(k)) {
			t.Errorf("kernel %s has no .entry in kernels.ptx", k)
		}
	}
	for _, e := range entries {
		if !used[e] {
			t.Errorf("kernels.ptx has %s, which no launcher uses", e)
		}
	}
}

// The kernels keep to the style the emulator can run faithfully: no
// shared memory, barriers, warp shuffles or atomics, so that every thread
// is independent and the results deterministic.
func TestPTXStyle(t *testing.T) {
	for _, banned := range []string{".shared", "bar.sync", "barrier", "shfl.", "atom.", "red.", "vote."} {
		if strings.Contains(PTX, banned) {
			t.Errorf("kernels.ptx uses %q", banned)
		}
	}
}
