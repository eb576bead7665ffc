package training

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
	resumed    int // images done before this process: not in the rate
	nextReport int
	start      time.Time
}

// newProgress starts an epoch's report with resumed of its images
// already done by an earlier process.
func newProgress(w io.Writer, tty bool, epoch, epochs, images, resumed int) *progress {
	p := &progress{w: w, label: fmt.Sprintf("epoch %d/%d", epoch, epochs), total: images, done: resumed, resumed: resumed, start: time.Now()}
	if resumed > 0 {
		p.label += fmt.Sprintf(" (resumed at %d)", resumed)
	}
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
		)
		// Start the clock for images/s without drawing the empty bar, which
		// would read "0 img/hr" until the first batch ends.
		p.bar.StartWithoutRender()
		if resumed > 0 {
			// The bar's rate and ETA count only what this process does.
			p.bar.ChangeMax(images - resumed)
		}
	}
	p.nextReport = resumed + images/10
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
		rate := float64(p.done-p.resumed) / time.Since(p.start).Seconds()
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

// Count writes n with the singular or plural noun: "1 epoch", "3 epochs".
func Count(n int, singular, plural string) string {
	if n == 1 {
		return "1 " + singular
	}
	return fmt.Sprintf("%d %s", n, plural)
}
