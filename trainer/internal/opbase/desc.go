package opbase

import G "gorgonia.org/gorgonia"

// Kind names what an op computes, so that a backend that runs the graph
// with its own kernels (the CUDA backend) can tell the trainer's ops
// apart without reaching into their packages.
type Kind int

// The trainer's ops; each comment gives the op's inputs in order.
const (
	Conv                    Kind = iota + 1 // x, w[, b] → y
	ConvFilterGrad                          // x, dy → dw
	ConvInputGrad                           // w, dy → dx
	ConvBiasGrad                            // dy → db
	Linear                                  // x, w → y = x·wᵀ
	LinearInputGrad                         // w, dy → dx
	LinearWeightGrad                        // x, dy → dw
	MaxPool                                 // x → y
	MaxPoolGrad                             // x, dy → dx (x only orders it)
	Activation                              // x → y
	ActivationGrad                          // x, dy → dx
	BatchNorm                               // x, γ, β → y
	BatchNormGammaGrad                      // x, dy → dγ
	BatchNormInputGrad                      // x, γ, dy, dγ, dβ → dx
	ChannelSum                              // x → per-channel sums (bias and β gradients)
	Bias                                    // x, b → x + b per channel
	GlobalAvgPool                           // x → y[N,C]
	GlobalAvgPoolGrad                       // x, dy → dx
	Dropout                                 // x → y
	DropoutGrad                             // dy → dx
	SoftmaxCrossEntropy                     // logits, target → mean loss (scalar)
	SoftmaxCrossEntropyGrad                 // logits, target, dloss → dlogits
)

// Desc describes one op instance: its kind and the attributes its kernel
// needs beyond the input shapes.
type Desc struct {
	Kind Kind
	// Conv and pooling geometry (square windows).
	Kernel, Stride, Pad int
	// Activation: "relu", "leaky_relu" or "gelu"; Alpha is leaky ReLU's
	// slope.
	Act   string
	Alpha float32
	// Batchnorm: Layer names the running statistics' parameters
	// (Layer+".running_mean", Layer+".running_var").
	Layer    string
	Training bool
	Frozen   bool // in training, normalise with the running statistics and keep them
	Eps      float64
	Momentum float64
	// Dropout: the rate, and the stream its mask is drawn from together
	// with the step's seed (DropBits).
	Rate   float64
	Stream uint64
	// Forward is, for a backward op, the forward op whose saved state it
	// reads (batchnorm statistics, max-pool argmax, dropout mask).
	Forward G.Op
}

// Describer is an op that describes itself.
type Describer interface{ Describe() Desc }

// DropBits is the random draw of element i of a dropout mask: the element
// is dropped when DropBits < rate·(2³²−1). A counter-based hash
// (splitmix64's finaliser over seed, stream and index) rather than a
// sequential generator, so that a GPU thread per element draws the same
// mask as the CPU.
func DropBits(seed, stream uint64, i int) uint32 {
	z := seed + stream*0x9e3779b97f4a7c15 + uint64(i+1)*0xbf58476d1ce4e5b9
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	z ^= z >> 31
	return uint32(z >> 32)
}
