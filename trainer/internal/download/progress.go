package download

import (
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progress watches the bytes of a transfer go by.
type progress interface {
	io.Writer
	finish()
}

// newProgress reports on w a transfer that starts at done bytes of total
// (-1 if unknown): as a bar when w is a terminal, otherwise as a log line
// every tenth of the file (every 16 MB when the size is unknown).
func newProgress(w io.Writer, bar bool, done, total int64) progress {
	if w == io.Discard {
		return lineProgress{w: io.Discard}.start(done, total)
	}
	if bar {
		b := progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription("downloading"),
			progressbar.OptionShowBytes(true),
			progressbar.OptionShowTotalBytes(true),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionFullWidth(),
			progressbar.OptionUseIECUnits(false),
			progressbar.OptionThrottle(100*time.Millisecond),
		)
		b.Set64(done)
		return barProgress{b, w}
	}
	return lineProgress{w: w}.start(done, total)
}

type barProgress struct {
	*progressbar.ProgressBar
	w io.Writer
}

// finish leaves the bar as it stands (the bar draws its last state itself
// on reaching the total) and ends its line.
func (b barProgress) finish() {
	if !b.IsFinished() {
		b.Exit()
	}
	fmt.Fprintln(b.w)
}

type lineProgress struct {
	w           io.Writer
	done, total int64
	step, next  int64
}

func (p lineProgress) start(done, total int64) *lineProgress {
	p.done, p.total = done, total
	p.step = 16 << 20
	if total > 0 {
		p.step = max(total/10, 1)
	}
	p.next = (done/p.step + 1) * p.step
	return &p
}

func (p *lineProgress) Write(b []byte) (int, error) {
	p.done += int64(len(b))
	for p.done >= p.next {
		p.report()
		p.next += p.step
	}
	return len(b), nil
}

func (p *lineProgress) report() {
	if p.total > 0 {
		fmt.Fprintf(p.w, "downloaded %s of %s (%d%%)\n", megabytes(p.done), megabytes(p.total), p.done*100/p.total)
	} else {
		fmt.Fprintf(p.w, "downloaded %s\n", megabytes(p.done))
	}
}

func (p *lineProgress) finish() {}
