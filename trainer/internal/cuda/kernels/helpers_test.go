package kernels

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"testing"

	"github.com/cifarnet-go/cifarnet/trainer/internal/cuda/device"
	"github.com/cifarnet-go/cifarnet/trainer/internal/cuda/emu"
)

// launched records the kernels the tests ran, so that TestMain can check
// that every kernel in the PTX was exercised.
var (
	launchedMu sync.Mutex
	launched   = map[string]bool{}
	emuMissing bool
)

type recorder struct{ device.Device }

func (r recorder) Launch(kernel string, grid, block device.Dim3, args ...any) error {
	launchedMu.Lock()
	launched[kernel] = true
	launchedMu.Unlock()
	return r.Device.Launch(kernel, grid, block, args...)
}

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 && !emuMissing && flag.Lookup("test.run").Value.String() == "" && !testing.Short() {
		for _, k := range Entries() {
			if !launched[k] {
				fmt.Fprintf(os.Stderr, "kernel %s is in the PTX but no test launched it\n", k)
				code = 1
			}
		}
	}
	os.Exit(code)
}

// env is an emulated device with helpers that fail the test on errors.
type env struct {
	t *testing.T
	d device.Device
	r *rand.Rand
}

func newEnv(t *testing.T) *env {
	t.Helper()
	d, err := emu.New()
	if err != nil {
		emuMissing = true
		t.Skipf("kernel tests run on the host emulator, unavailable here: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return &env{t: t, d: recorder{d}, r: rand.New(rand.NewPCG(uint64(len(t.Name())), 7))}
}

func (e *env) ok(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

// up copies v to a fresh allocation of exactly its size.
func (e *env) up(v []float32) device.Ptr {
	e.t.Helper()
	p, err := e.d.Alloc(4 * len(v))
	e.ok(err)
	e.ok(e.d.Upload(p, v))
	return p
}

// nan returns n values of NaN on the device: outputs that must be
// overwritten.
func (e *env) nan(n int) device.Ptr {
	return e.up(slices.Repeat([]float32{float32(math.NaN())}, n))
}

func (e *env) down(p device.Ptr, n int) []float32 {
	e.t.Helper()
	out := make([]float32, n)
	e.ok(e.d.Download(out, p))
	return out
}

func (e *env) downInt(p device.Ptr, n int) []int32 {
	out := make([]int32, n)
	for i, v := range e.down(p, n) {
		out[i] = int32(math.Float32bits(v))
	}
	return out
}

// randn returns n normal values times scale plus offset.
func (e *env) randn(n int, scale, offset float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(e.r.NormFloat64()*scale + offset)
	}
	return v
}

func f64s(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// near checks |got − want| ≤ rtol·|want| + atol elementwise.
func near(t *testing.T, what string, got []float32, want []float64, rtol, atol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	bad := 0
	for i, w := range want {
		g := float64(got[i])
		if !(math.Abs(g-w) <= rtol*math.Abs(w)+atol) {
			if bad < 5 {
				t.Errorf("%s[%d] = %.9g, want %.9g (diff %.3g)", what, i, g, w, g-w)
			}
			bad++
		}
	}
	if bad > 5 {
		t.Errorf("%s: %d of %d values off", what, bad, len(want))
	}
}

// nearScaled checks GEMM-like results: rtol relative to each value plus
// rtol times the values' RMS, for entries that cancel to near zero.
func nearScaled(t *testing.T, what string, got []float32, want []float64, rtol float64) {
	t.Helper()
	var ss float64
	for _, w := range want {
		ss += w * w
	}
	near(t, what, got, want, rtol, rtol*math.Sqrt(ss/float64(max(1, len(want)))))
}

// same checks bit-for-bit equality (NaNs equal).
func same(t *testing.T, what string, got, want []float32) {
	t.Helper()
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s[%d] = %g, want %g exactly", what, i, got[i], want[i])
		}
	}
}
