package evaluate

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/trainer/internal/cifar"
)

// Options control how a model is run over a set.
type Options struct {
	// Workers is the number of goroutines, each with its own Predictor;
	// 0 means GOMAXPROCS.
	Workers int
	// BatchSize is the batch of the accuracy pass; 0 means 64.
	BatchSize int
	// LatencyImages is how many images (the first ones of the set) are
	// also classified one at a time to time batch-1 inference; 0 means
	// 1000, a negative value skips the batch-1 pass.
	LatencyImages int
	// TTA also classifies every image with the test-time augmentations
	// the model's metadata names (models.Predictor.PredictTTA, as the
	// browser does), when it names any.
	TTA bool
	// Log, when not nil, gets a line as each pass starts and ends, with
	// its time, so that a long evaluation shows where it is.
	Log io.Writer
}

// passLog reports one pass: a line as it starts, one at every tenth of
// its images with the rate and the time left, and one as it ends. A nil
// passLog reports nothing.
type passLog struct {
	w      io.Writer
	what   string
	total  int
	start  time.Time
	mu     sync.Mutex
	shown  int // tenths already reported
	images atomic.Int64
}

// pass starts a pass's report; nil without a Log.
func (o Options) pass(what string, images int) *passLog {
	if o.Log == nil {
		return nil
	}
	fmt.Fprintf(o.Log, "  %s: %d images...\n", what, images)
	return &passLog{w: o.Log, what: what, total: images, start: time.Now()}
}

// add records n more images done.
func (p *passLog) add(n int) {
	if p == nil {
		return
	}
	done := int(p.images.Add(int64(n)))
	tenth := 10 * done / p.total
	p.mu.Lock()
	defer p.mu.Unlock()
	if tenth <= p.shown || done >= p.total {
		return
	}
	p.shown = tenth
	rate := float64(done) / time.Since(p.start).Seconds()
	left := time.Duration(float64(p.total-done) / rate * float64(time.Second)).Round(time.Second)
	fmt.Fprintf(p.w, "  %s: %d/%d images, %.0f images/s, %v left\n", p.what, done, p.total, rate, left)
}

// end reports the pass's time.
func (p *passLog) end() {
	if p == nil {
		return
	}
	d := time.Since(p.start)
	fmt.Fprintf(p.w, "  %s: done in %.1f s (%.0f images/s)\n", p.what, d.Seconds(), float64(p.total)/d.Seconds())
}

// DefaultBatchSize is the batch of the accuracy pass.
const DefaultBatchSize = 64

// DefaultLatencyImages is how many images the batch-1 pass times.
const DefaultLatencyImages = 1000

// Speed is the measured inference speed of one pass. Times include
// normalising the pixels, which every caller of the model pays too.
type Speed struct {
	BatchSize int `json:"batch_size"`
	Images    int `json:"images"`
	Workers   int `json:"workers"`
	// MsPerImage is the mean time one core spends per image: the summed
	// duration of the calls divided by the images.
	MsPerImage float64 `json:"ms_per_image"`
	// ImagesPerSecond is the throughput of all workers together, by wall
	// clock.
	ImagesPerSecond float64 `json:"images_per_second"`
}

// Result is what Run measures.
type Result struct {
	Metrics *Metrics `json:"metrics"`
	Pred    []int    `json:"-"`
	Batched Speed    `json:"batched"`
	// Single is the batch-1 pass; nil when it was skipped.
	Single *Speed `json:"single,omitempty"`
	// SingleDisagreements counts images of the batch-1 pass whose predicted
	// class differs from the batched pass; anything but 0 points at a bug
	// in the predictor.
	SingleDisagreements int `json:"single_disagreements"`
	// TTA is the pass with test-time augmentation; nil when it was not
	// asked for or the model has none.
	TTA *TTAResult `json:"tta,omitempty"`
}

// TTAResult is a pass with test-time augmentation, one image at a time.
type TTAResult struct {
	Augmentations []string `json:"augmentations"`
	Metrics       *Metrics `json:"metrics"`
	Speed         Speed    `json:"speed"`
}

// Normalizer turns CIFAR bytes into the normalised floats a model expects,
// (v/255 − mean[c]) / std[c], through one lookup table per channel.
type Normalizer struct {
	lut      [][256]float32
	channels int
}

// NewNormalizer builds the tables for a normalisation with one mean and
// standard deviation per channel.
func NewNormalizer(n models.Normalization) (*Normalizer, error) {
	if len(n.Mean) == 0 || len(n.Mean) != len(n.Std) {
		return nil, fmt.Errorf("evaluate: normalization has %d means and %d stds", len(n.Mean), len(n.Std))
	}
	z := &Normalizer{lut: make([][256]float32, len(n.Mean)), channels: len(n.Mean)}
	for c := range z.lut {
		if !(n.Std[c] > 0) {
			return nil, fmt.Errorf("evaluate: normalization std[%d] = %g, must be positive", c, n.Std[c])
		}
		for v := range 256 {
			z.lut[c][v] = (float32(v)/255 - n.Mean[c]) / n.Std[c]
		}
	}
	return z, nil
}

// Normalize writes the normalised image src (CHW bytes) into dst, which
// must have the same length; the planes are assumed equal in size.
func (z *Normalizer) Normalize(dst []float32, src []byte) {
	plane := len(src) / z.channels
	for c := range z.channels {
		lut := &z.lut[c]
		s := src[c*plane : (c+1)*plane]
		d := dst[c*plane : (c+1)*plane]
		for i, v := range s {
			d[i] = lut[v]
		}
	}
}

// Run classifies every image of set with m, in batches over several
// goroutines, scores the predictions and times batched and batch-1
// inference.
func Run(m *models.Model, set *cifar.Set, opts Options) (*Result, error) {
	if set.Len() == 0 {
		return nil, errors.New("evaluate: empty set")
	}
	if got, want := len(set.Images)/set.Len(), m.Meta.Spec.Input.Size(); got != want {
		return nil, fmt.Errorf("evaluate: images of %d values, model %q expects %d", got, m.Meta.Spec.Name, want)
	}
	if len(set.Classes) > 0 && len(set.Classes) != len(m.Meta.Classes) {
		return nil, fmt.Errorf("evaluate: set has %d classes, model %d", len(set.Classes), len(m.Meta.Classes))
	}
	norm, err := NewNormalizer(m.Meta.Normalization)
	if err != nil {
		return nil, err
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	bs := opts.BatchSize
	if bs <= 0 {
		bs = DefaultBatchSize
	}
	k := len(m.Meta.Classes)

	pred := make([]int, set.Len())
	log := opts.pass(fmt.Sprintf("accuracy, batches of %d", bs), set.Len())
	batched, err := runPass(m, set, norm, set.Len(), bs, workers, k, pred, predictBatch, log)
	if err != nil {
		return nil, err
	}
	log.end()
	metrics, err := score(set, pred, m.Meta.Classes)
	if err != nil {
		return nil, err
	}
	res := &Result{Metrics: metrics, Pred: pred, Batched: batched}

	nSingle := opts.LatencyImages
	if nSingle == 0 {
		nSingle = DefaultLatencyImages
	}
	if nSingle > 0 {
		nSingle = min(nSingle, set.Len())
		single := make([]int, nSingle)
		log := opts.pass("batch-1 timing", nSingle)
		sp, err := runPass(m, set, norm, nSingle, 1, workers, k, single, predictBatch, log)
		if err != nil {
			return nil, err
		}
		log.end()
		res.Single = &sp
		for i, p := range single {
			if p != pred[i] {
				res.SingleDisagreements++
			}
		}
	}
	if opts.TTA && len(m.Meta.Inference.TTA) > 0 {
		log := opts.pass("test-time augmentation ("+strings.Join(m.Meta.Inference.TTA, ", ")+")", set.Len())
		if res.TTA, err = tta(m, set, workers, log); err != nil {
			return nil, err
		}
		log.end()
	}
	return res, nil
}

// TTA classifies every image of set one at a time with the model's
// test-time augmentations, on workers goroutines (0: GOMAXPROCS), and
// scores the predictions.
func TTA(m *models.Model, set *cifar.Set, workers int) (*TTAResult, error) {
	return tta(m, set, workers, nil)
}

func tta(m *models.Model, set *cifar.Set, workers int, log *passLog) (*TTAResult, error) {
	if set.Len() == 0 {
		return nil, errors.New("evaluate: empty set")
	}
	norm, err := NewNormalizer(m.Meta.Normalization)
	if err != nil {
		return nil, err
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	pred := make([]int, set.Len())
	sp, err := runPass(m, set, norm, set.Len(), 1, workers, len(m.Meta.Classes), pred, predictTTA, log)
	if err != nil {
		return nil, err
	}
	metrics, err := score(set, pred, m.Meta.Classes)
	if err != nil {
		return nil, err
	}
	return &TTAResult{Augmentations: m.Meta.Inference.TTA, Metrics: metrics, Speed: sp}, nil
}

// score compares the predicted classes with set's labels.
func score(set *cifar.Set, pred []int, classes []string) (*Metrics, error) {
	truth := make([]int, set.Len())
	for i, y := range set.Labels {
		truth[i] = int(y)
	}
	return Compute(truth, pred, classes)
}

// A predictFunc classifies n normalised images in x with p.
type predictFunc func(p *models.Predictor, x []float32, n int) ([]float32, error)

func predictBatch(p *models.Predictor, x []float32, n int) ([]float32, error) {
	return p.PredictBatch(x, n)
}

// predictTTA classifies one image with test-time augmentation.
func predictTTA(p *models.Predictor, x []float32, _ int) ([]float32, error) {
	return p.PredictTTA(x)
}

// runPass classifies the first n images of set with predict in batches of
// bs, workers goroutines pulling batches from a shared counter, writes
// the predicted classes into pred and reports its progress to log.
func runPass(m *models.Model, set *cifar.Set, norm *Normalizer, n, bs, workers, k int, pred []int, predict predictFunc, log *passLog) (Speed, error) {
	size := m.Meta.Spec.Input.Size()
	batches := (n + bs - 1) / bs
	workers = min(workers, batches)
	var (
		next     atomic.Int64
		busy     = make([]time.Duration, workers)
		errs     = make([]error, workers)
		wg       sync.WaitGroup
		failed   atomic.Bool
		start    = time.Now()
		imgBytes = len(set.Images) / set.Len()
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := m.NewPredictor()
			x := make([]float32, bs*size)
			for !failed.Load() {
				b := int(next.Add(1)) - 1
				if b >= batches {
					return
				}
				lo, hi := b*bs, min((b+1)*bs, n)
				t0 := time.Now()
				for i := lo; i < hi; i++ {
					norm.Normalize(x[(i-lo)*size:(i-lo+1)*size], set.Images[i*imgBytes:(i+1)*imgBytes])
				}
				probs, err := predict(p, x[:(hi-lo)*size], hi-lo)
				busy[w] += time.Since(t0)
				if err != nil {
					errs[w] = fmt.Errorf("evaluate: images %d..%d: %w", lo, hi-1, err)
					failed.Store(true)
					return
				}
				if len(probs) != (hi-lo)*k {
					errs[w] = fmt.Errorf("evaluate: predictor returned %d values for %d images of %d classes", len(probs), hi-lo, k)
					failed.Store(true)
					return
				}
				copy(pred[lo:hi], Argmax(probs, k))
				log.add(hi - lo)
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return Speed{}, err
	}
	var total time.Duration
	for _, d := range busy {
		total += d
	}
	return Speed{
		BatchSize:       bs,
		Images:          n,
		Workers:         workers,
		MsPerImage:      total.Seconds() * 1000 / float64(n),
		ImagesPerSecond: float64(n) / wall.Seconds(),
	}, nil
}
