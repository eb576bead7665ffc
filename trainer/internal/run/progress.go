package run

import (
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progress reports the images done in an epoch: a bar with images/s and
// ETA on a terminal, otherwise a plain line at every tenth of the epoch.
type progress struct {
	w          io.Writer
	bar        *progressbar.ProgressBar
	label      string
	total      int
	done       int
	nextReport int
	start      time.Time
}

func newProgress(w io.Writer, tty bool, epoch, epochs, images int) *progress {
	p := &progress{w: w, label: fmt.Sprintf("epoch %d/%d", epoch, epochs), total: images, start: time.Now()}
	if tty {
		p.bar = progressbar.NewOptions(images,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(p.label),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("img"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionClearOnFinish(),
			progressbar.OptionSetRenderBlankState(true), // starts the clock for images/s
		)
	}
	p.nextReport = images / 10
	return p
}

// add records n more images.
func (p *progress) add(n int) {
	if n == 0 {
		return
	}
	p.done += n
	if p.bar != nil {
		p.bar.Add(n)
		return
	}
	if p.done >= p.nextReport && p.done < p.total {
		rate := float64(p.done) / time.Since(p.start).Seconds()
		eta := time.Duration(float64(p.total-p.done) / rate * float64(time.Second)).Round(time.Second)
		fmt.Fprintf(p.w, "%s: %d/%d images, %.0f img/s, ETA %v\n", p.label, p.done, p.total, rate, eta)
		p.nextReport = p.done + p.total/10
	}
}

// finish removes the bar.
func (p *progress) finish() {
	if p.bar != nil {
		p.bar.Finish()
	}
}
