package device

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"
)

// Profiler wraps a Device and times every call by what it does (a
// kernel's name, "gemm", "upload", …). Each timed call waits for the
// device before and after, so the queue never overlaps work: the times add
// up to where a step's device time goes, and the wall time left over is
// the host's. It slows the work it measures; use it for the breakdown, not
// for throughput.
type Profiler struct {
	Device
	mu    sync.Mutex
	ops   map[string]*opTime
	start time.Time
	err   error
}

type opTime struct {
	calls int
	total time.Duration
}

// Profile returns dev wrapped in a Profiler; Reset starts its clock.
func Profile(dev Device) *Profiler {
	p := &Profiler{Device: dev}
	p.Reset()
	return p
}

// Reset forgets what was timed and restarts the wall clock.
func (p *Profiler) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ops = map[string]*opTime{}
	p.start = time.Now()
	p.err = nil
}

// timed runs f between two waits for the device and books its time to op.
func (p *Profiler) timed(op string, f func() error) error {
	if err := p.Device.Sync(); err != nil {
		return err
	}
	t0 := time.Now()
	if err := f(); err != nil {
		return err
	}
	if err := p.Device.Sync(); err != nil {
		return err
	}
	d := time.Since(t0)
	p.mu.Lock()
	o := p.ops[op]
	if o == nil {
		o = &opTime{}
		p.ops[op] = o
	}
	o.calls++
	o.total += d
	p.mu.Unlock()
	return nil
}

func (p *Profiler) Upload(dst Ptr, src []float32) error {
	return p.timed("copy: upload", func() error { return p.Device.Upload(dst, src) })
}

func (p *Profiler) Download(dst []float32, src Ptr) error {
	return p.timed("copy: download", func() error { return p.Device.Download(dst, src) })
}

func (p *Profiler) Copy(dst, src Ptr, n int) error {
	return p.timed("copy: device to device", func() error { return p.Device.Copy(dst, src, n) })
}

func (p *Profiler) Zero(ptr Ptr, n int) error {
	return p.timed("copy: zero", func() error { return p.Device.Zero(ptr, n) })
}

func (p *Profiler) Launch(kernel string, grid, block Dim3, args ...any) error {
	return p.timed("kernel: "+kernel, func() error { return p.Device.Launch(kernel, grid, block, args...) })
}

func (p *Profiler) Gemm(transA, transB bool, m, n, k int, alpha float32, a Ptr, lda int, b Ptr, ldb int, beta float32, c Ptr, ldc int) error {
	return p.timed("cublas: sgemm", func() error {
		return p.Device.Gemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	})
}

func (p *Profiler) GemmStridedBatched(transA, transB bool, m, n, k int, alpha float32, a Ptr, lda, strideA int, b Ptr, ldb, strideB int, beta float32, c Ptr, ldc, strideC int, batch int) error {
	return p.timed("cublas: sgemm strided batched", func() error {
		return p.Device.GemmStridedBatched(transA, transB, m, n, k, alpha, a, lda, strideA, b, ldb, strideB, beta, c, ldc, strideC, batch)
	})
}

// Report writes the times per step (steps: how many steps ran since
// Reset), largest first, grouped as kernels, cuBLAS, copies and host.
func (p *Profiler) Report(w io.Writer, steps int) error {
	if steps <= 0 {
		return fmt.Errorf("profile report: %d steps", steps)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	wall := time.Since(p.start)
	type row struct {
		name  string
		calls int
		total time.Duration
	}
	var rows []row
	var device time.Duration
	group := map[string]time.Duration{}
	for name, o := range p.ops {
		rows = append(rows, row{name, o.calls, o.total})
		device += o.total
		g, _, _ := strings.Cut(name, ":")
		group[g] += o.total
	}
	group["host"] = wall - device
	sort.Slice(rows, func(i, j int) bool { return rows[i].total > rows[j].total })
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(steps) / 1000 }
	share := func(d time.Duration) float64 { return 100 * float64(d) / float64(wall) }
	var b strings.Builder
	fmt.Fprintf(&b, "profile: %d steps, %.3f ms a step (each call waited for, so slower than unprofiled)\n", steps, per(wall))
	for _, g := range []string{"kernel", "cublas", "copy", "host"} {
		fmt.Fprintf(&b, "  %-7s %9.3f ms a step  %5.1f %%\n", g, per(group[g]), share(group[g]))
	}
	fmt.Fprintf(&b, "  %-44s %8s %10s %6s\n", "call", "calls", "ms a step", "share")
	for _, r := range rows {
		fmt.Fprintf(&b, "  %-44s %8.1f %10.3f %5.1f%%\n", r.name, float64(r.calls)/float64(steps), per(r.total), share(r.total))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
