package main

import (
	"errors"
	"fmt"
	"image"
	"slices"
	"time"

	"github.com/cifarnet-go/cifarnet/models"
)

// Error codes carried by errors from the JavaScript API (err.code), so that
// the page can choose its words and its fallback without parsing messages.
const (
	CodeNoModel     = "no_model"           // classify before a model was loaded
	CodeBadModel    = "bad_model"          // weight file damaged, wrong version or unusable
	CodeNetwork     = "network"            // the weight file could not be downloaded
	CodeBadArgument = "bad_argument"       // the caller passed the wrong kind of value
	CodeTooLarge    = "too_large"          // image has too many pixels to decode here
	CodeUnsupported = "unsupported_format" // not an image format Go decodes (maybe the browser does)
	CodeCorrupt     = "corrupt_image"      // a known format, but damaged or truncated
	CodeInternal    = "internal"           // a bug; the message says what
)

// Error is an error with one of the codes above.
type Error struct {
	Code string
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func errorf(code, format string, a ...any) error {
	return &Error{Code: code, Err: fmt.Errorf(format, a...)}
}

// ErrorCode classifies err for the page.
func ErrorCode(err error) string {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e.Code
	case errors.Is(err, models.ErrImageTooLarge):
		return CodeTooLarge
	case errors.Is(err, models.ErrUnsupportedFormat):
		return CodeUnsupported
	case errors.Is(err, models.ErrCorruptImage):
		return CodeCorrupt
	}
	return CodeInternal
}

// Info describes the loaded model for the page's model panel.
type Info struct {
	Name          string               `json:"name"` // file name the model was loaded from
	Spec          string               `json:"spec"` // architecture name
	Layers        int                  `json:"layers"`
	Params        int                  `json:"params"` // trainable parameters
	FLOPs         int64                `json:"flops"`  // per forward pass
	DType         models.DType         `json:"dtype"`
	Classes       []string             `json:"classes"`
	Input         models.Shape         `json:"input"`
	TestAccuracy  float64              `json:"testAccuracy,omitempty"`
	TestAccTTA    float64              `json:"testAccuracyTTA,omitempty"`
	Size          int                  `json:"size"`     // weight file bytes
	TTA           []string             `json:"tta"`      // the model's test-time augmentations
	TTAOn         bool                 `json:"ttaOn"`    // whether classify applies them (SetTTA)
	TTAViews      int                  `json:"ttaViews"` // forward passes with them on (models.Model.TTAViews)
	Provenance    models.Provenance    `json:"provenance"`
	Normalization models.Normalization `json:"normalization"`
	// Refetched says the first copy downloaded was damaged (a corrupted
	// cache entry) and the file was fetched again from the server.
	Refetched bool `json:"refetched,omitempty"`
}

// Result is one classified image.
type Result struct {
	Probs []float32     // class probabilities (combined over TTA views)
	Top   int           // index of the most probable class
	TTA   bool          // whether test-time augmentation was applied
	Input *image.NRGBA  // the model input the image became
	Infer time.Duration // forward passes only (every TTA view)
	Total time.Duration // decoding, preprocessing and inference

	// Set by ClassifyPart instead of Probs and Top: the weighted logit
	// sum of part Part of Parts of the TTA views, and whether the total
	// of all parts gets a softmax (models.Predictor.PredictTTAPart).
	Logits      []float32
	Part, Parts int
	Softmax     bool
}

// Classifier holds one model and its predictor. It is not safe for
// concurrent use; the JavaScript side runs one call at a time anyway.
type Classifier struct {
	model *models.Model
	pred  *models.Predictor
	info  Info
}

// NewClassifier decodes and validates a weight file. name is only used in
// messages and Info.
func NewClassifier(name string, data []byte) (*Classifier, error) {
	f, err := models.Decode(data)
	if err != nil {
		return nil, &Error{CodeBadModel, fmt.Errorf("the model file %s cannot be used: %w", name, err)}
	}
	m, err := models.NewModel(f)
	if err != nil {
		return nil, &Error{CodeBadModel, fmt.Errorf("the model in %s cannot be used: %w", name, err)}
	}
	return newClassifier(name, m, len(data))
}

// NewClassifierFromSnapshot makes a classifier from a snapshot of a model
// built before (Classifier.Snapshot), which skips decoding and building;
// size is the weight file's, for Info. The classifier keeps snap.
func NewClassifierFromSnapshot(name string, snap []byte, size int) (*Classifier, error) {
	m, err := models.LoadSnapshot(snap)
	if err != nil {
		return nil, &Error{CodeBadModel, fmt.Errorf("the saved build of %s cannot be used: %w", name, err)}
	}
	return newClassifier(name, m, size)
}

// Snapshot is the model in the form NewClassifierFromSnapshot reads, in
// parts that alias the model's memory.
func (c *Classifier) Snapshot() ([][]byte, error) { return c.model.Snapshot() }

func newClassifier(name string, m *models.Model, size int) (*Classifier, error) {
	meta := m.Meta
	in := meta.Spec.Input
	if in.C != 3 || in.H != in.W {
		return nil, errorf(CodeBadModel, "the model in %s expects %v input; this page feeds square RGB images", name, in)
	}
	params, err := meta.Spec.TrainableParams()
	if err != nil {
		return nil, &Error{CodeBadModel, fmt.Errorf("the model in %s: %w", name, err)}
	}
	flops, err := meta.Spec.FLOPs()
	if err != nil {
		return nil, &Error{CodeBadModel, fmt.Errorf("the model in %s: %w", name, err)}
	}
	tta := meta.Inference.TTA
	if tta == nil {
		tta = []string{}
	}
	views, err := m.TTAViews()
	if err != nil {
		return nil, &Error{CodeBadModel, fmt.Errorf("the model in %s: %w", name, err)}
	}
	return &Classifier{
		model: m,
		pred:  m.NewPredictor(),
		info: Info{
			Name:          name,
			Spec:          meta.Spec.Name,
			Layers:        len(meta.Spec.Layers),
			Params:        params,
			FLOPs:         flops,
			DType:         meta.DType,
			Classes:       meta.Classes,
			Input:         in,
			TestAccuracy:  meta.Provenance.TestAccuracy,
			TestAccTTA:    meta.Provenance.TestAccuracyTT,
			Size:          size,
			TTA:           tta,
			TTAOn:         len(tta) > 0,
			TTAViews:      views,
			Provenance:    meta.Provenance,
			Normalization: meta.Normalization,
		},
	}, nil
}

// Info describes the model.
func (c *Classifier) Info() Info { return c.info }

// SetTTA turns the model's test-time augmentations on (the default) or
// off: they cost one forward pass per view. It has no effect on a model
// without them.
func (c *Classifier) SetTTA(on bool) Info {
	c.info.TTAOn = on && len(c.info.TTA) > 0
	return c.info
}

// Classify decodes an image file (PNG, JPEG, GIF, BMP or WebP) and
// classifies it.
func (c *Classifier) Classify(file []byte) (*Result, error) {
	return c.ClassifyFirst(file, nil)
}

// ClassifyFirst is Classify that, with test-time augmentation on, hands
// first the answer from the image alone (its first view, what Classify
// gives with augmentation off) before the other views run, so that the
// page can show it meanwhile; the final Result is Classify's exactly
// (models.Predictor.PredictTTAFirst). first may be nil.
func (c *Classifier) ClassifyFirst(file []byte, first func(*Result)) (*Result, error) {
	start := time.Now()
	if len(file) == 0 {
		return nil, errorf(CodeUnsupported, "the file is empty")
	}
	x, input, err := models.PreprocessImage(file, c.info.Input, c.info.Normalization)
	if err != nil {
		return nil, err
	}
	return c.predict(start, x, input, 0, 0, first)
}

// ClassifyPart is Classify for part part of parts of the test-time views,
// so that several workers can share one image: the Result has Logits
// instead of Probs. It needs test-time augmentation on, with at least
// parts views.
func (c *Classifier) ClassifyPart(file []byte, part, parts int) (*Result, error) {
	start := time.Now()
	if err := c.checkPart(part, parts); err != nil {
		return nil, err
	}
	if len(file) == 0 {
		return nil, errorf(CodeUnsupported, "the file is empty")
	}
	x, input, err := models.PreprocessImage(file, c.info.Input, c.info.Normalization)
	if err != nil {
		return nil, err
	}
	return c.predict(start, x, input, part, parts, nil)
}

// ClassifyPartRGBA is ClassifyRGBA for part of the views, as ClassifyPart.
func (c *Classifier) ClassifyPartRGBA(pix []byte, w, h, part, parts int) (*Result, error) {
	if err := c.checkPart(part, parts); err != nil {
		return nil, err
	}
	return c.classifyRGBA(pix, w, h, part, parts, nil)
}

func (c *Classifier) checkPart(part, parts int) error {
	n := c.info.TTAViews
	if !c.info.TTAOn || parts < 1 || parts > n || part < 0 || part >= parts {
		return errorf(CodeBadArgument, "part %d of %d: the model has %d test-time views (test-time augmentation on: %v)", part, parts, n, c.info.TTAOn)
	}
	return nil
}

// ClassifyRGBA classifies non-premultiplied RGBA pixels, as a canvas's
// ImageData holds them: for formats only the browser decodes, and images
// the browser has already scaled down.
func (c *Classifier) ClassifyRGBA(pix []byte, w, h int) (*Result, error) {
	return c.classifyRGBA(pix, w, h, 0, 0, nil)
}

// ClassifyRGBAFirst is ClassifyRGBA with an early answer, as ClassifyFirst.
func (c *Classifier) ClassifyRGBAFirst(pix []byte, w, h int, first func(*Result)) (*Result, error) {
	return c.classifyRGBA(pix, w, h, 0, 0, first)
}

func (c *Classifier) classifyRGBA(pix []byte, w, h, part, parts int, first func(*Result)) (*Result, error) {
	start := time.Now()
	img, err := models.ImageFromRGBA(pix, w, h)
	if err != nil {
		return nil, &Error{CodeBadArgument, fmt.Errorf("pixels: %w", err)}
	}
	input := models.ModelInput(img, c.info.Input.W)
	x := models.Normalize(input, c.info.Normalization, nil)
	return c.predict(start, x, input, part, parts, first)
}

// predict runs the model on x; parts > 0 asks for one part of the
// test-time views (ClassifyPart); first, if not nil, gets the image's own
// answer before the other views run (ClassifyFirst).
func (c *Classifier) predict(start time.Time, x []float32, input *image.NRGBA, part, parts int, first func(*Result)) (*Result, error) {
	t := time.Now()
	if parts > 0 {
		logits, err := c.pred.PredictTTAPart(x, part, parts)
		if err != nil {
			return nil, &Error{CodeInternal, fmt.Errorf("inference: %w", err)}
		}
		end := time.Now()
		return &Result{Logits: slices.Clone(logits), Part: part, Parts: parts, Softmax: c.model.EndsWithSoftmax(),
			TTA: true, Input: input, Infer: end.Sub(t), Total: end.Sub(start)}, nil
	}
	// PredictTTA honours the model's test-time augmentations (a plain
	// Predict without them); either result is reused by the next call.
	var probs []float32
	var err error
	switch {
	case !c.info.TTAOn:
		probs, err = c.pred.Predict(x)
	case first == nil:
		probs, err = c.pred.PredictTTA(x)
	default:
		probs, err = c.pred.PredictTTAFirst(x, func(plain []float32) {
			first(answer(plain, false, input, t, start))
		})
	}
	if err != nil {
		return nil, &Error{CodeInternal, fmt.Errorf("inference: %w", err)}
	}
	return answer(probs, c.info.TTAOn, input, t, start), nil
}

// answer is the Result for probs, which it copies: inference started at t,
// the whole call at start.
func answer(probs []float32, tta bool, input *image.NRGBA, t, start time.Time) *Result {
	probs = slices.Clone(probs)
	end := time.Now()
	top := 0
	for i, p := range probs {
		if p > probs[top] {
			top = i
		}
	}
	return &Result{Probs: probs, Top: top, TTA: tta, Input: input, Infer: end.Sub(t), Total: end.Sub(start)}
}
