package training

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestProgressAfterResume: the images an earlier process did count toward
// the epoch's total but not toward this process's rate.
func TestProgressAfterResume(t *testing.T) {
	var out strings.Builder
	p := newProgress(&out, false, 3, 10, 1000, 600)
	p.start = time.Now().Add(-time.Second) // 100 images in one second
	p.add(100)
	line := out.String()
	if !strings.Contains(line, "epoch 3/10 (resumed at 600): 700/1000 images") {
		t.Fatalf("progress line %q", line)
	}
	var rate float64
	if _, err := fmt.Sscanf(line[strings.Index(line, "images, ")+len("images, "):], "%g img/s", &rate); err != nil || rate < 50 || rate > 101 {
		t.Errorf("rate %g img/s from %q: want about 100 (this process's images only)", rate, line)
	}
	if got := Count(1, "epoch", "epochs") + ", " + Count(3, "batch", "batches"); got != "1 epoch, 3 batches" {
		t.Errorf("Count: %q", got)
	}
}

// TestProgressBarStartsWithARate: the terminal bar is not drawn before the
// first images are done, so it never shows a rate of "0 img/hr".
func TestProgressBarStartsWithARate(t *testing.T) {
	var out strings.Builder
	p := newProgress(&out, true, 1, 5, 1000, 0)
	if out.Len() != 0 {
		t.Errorf("the bar drew %q before any image was done", out.String())
	}
	time.Sleep(20 * time.Millisecond) // a first batch's worth of time
	p.add(64)
	p.finish()
	if s := out.String(); !strings.Contains(s, "64/1000") || strings.Contains(s, "/hr") {
		t.Errorf("bar after the first batch: %q", s)
	}
}
