package baselines

import (
	"bytes"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cifarnet-go/cifarnet/trainer/internal/cifar"
)

// blobs draws n examples of k classes with d byte features: class c sits
// at a random prototype and examples scatter ±spread around it, so the
// classes are linearly separable when spread is small.
func blobs(n, k, d, spread int, seed uint64) (train, test *Dataset) {
	rng := rand.New(rand.NewPCG(seed, 3))
	protos := make([][]int, k)
	for c := range protos {
		protos[c] = make([]int, d)
		for f := range protos[c] {
			protos[c][f] = 40 + rng.IntN(176)
		}
	}
	draw := func() *Dataset {
		ds := &Dataset{X: make([]byte, n*d), Y: make([]int, n), D: d, Classes: k}
		for i := range n {
			c := rng.IntN(k)
			ds.Y[i] = c
			for f := range d {
				v := protos[c][f] + rng.IntN(2*spread+1) - spread
				ds.X[i*d+f] = byte(min(255, max(0, v)))
			}
		}
		return ds
	}
	return draw(), draw()
}

// xor has two informative features whose XOR (each above or below 128) is
// the label, plus noise features: no linear model can beat chance.
func xor(n int, seed uint64) *Dataset {
	rng := rand.New(rand.NewPCG(seed, 4))
	const d = 6
	ds := &Dataset{X: make([]byte, n*d), Y: make([]int, n), D: d, Classes: 2}
	for i := range n {
		for f := range d {
			ds.X[i*d+f] = byte(rng.IntN(256))
		}
		a, b := ds.X[i*d] >= 128, ds.X[i*d+3] >= 128
		if a != b {
			ds.Y[i] = 1
		}
	}
	return ds
}

func accuracy(t *testing.T, c Classifier, d *Dataset) float64 {
	t.Helper()
	p, err := c.Predict(d)
	if err != nil {
		t.Fatal(err)
	}
	right := 0
	for i, y := range d.Y {
		if p[i] == y {
			right++
		}
	}
	return float64(right) / float64(d.Len())
}

func fastLinear(cfg LinearConfig) LinearConfig {
	cfg.Epochs, cfg.BatchSize = 10, 32
	return cfg
}

func classifiers() []Classifier {
	return []Classifier{
		NewLogisticRegression(fastLinear(DefaultLogisticConfig())),
		NewLinearSVM(fastLinear(DefaultSVMConfig())),
		NewRandomForest(ForestConfig{Trees: 15, MinLeaf: 1, Seed: 1}),
	}
}

func TestSeparableBlobs(t *testing.T) {
	train, test := blobs(600, 5, 40, 60, 1)
	for _, c := range classifiers() {
		if err := c.Fit(train); err != nil {
			t.Fatalf("%s: %v", c.Name(), err)
		}
		if acc := accuracy(t, c, test); acc < 0.95 {
			t.Errorf("%s: accuracy %.3f on separable blobs, want ≥ 0.95", c.Name(), acc)
		}
	}
}

func TestForestLearnsXOR(t *testing.T) {
	train, test := xor(2000, 1), xor(1000, 2)
	f := NewRandomForest(ForestConfig{Trees: 25, MinLeaf: 1, MaxFeatures: 2, Seed: 3})
	if err := f.Fit(train); err != nil {
		t.Fatal(err)
	}
	if acc := accuracy(t, f, test); acc < 0.9 {
		t.Errorf("forest accuracy %.3f on XOR, want ≥ 0.9", acc)
	}
	// A linear model cannot: it stays near chance, which shows the
	// problem really needs the trees.
	lr := NewLogisticRegression(fastLinear(DefaultLogisticConfig()))
	if err := lr.Fit(train); err != nil {
		t.Fatal(err)
	}
	if acc := accuracy(t, lr, test); acc > 0.65 {
		t.Errorf("logistic regression accuracy %.3f on XOR: the test problem is too easy", acc)
	}
}

func TestLinearObjectiveDecreases(t *testing.T) {
	train, _ := blobs(400, 4, 30, 90, 5)
	for _, m := range []interface {
		Classifier
		Objective() []float64
	}{
		NewLogisticRegression(fastLinear(DefaultLogisticConfig())),
		NewLinearSVM(fastLinear(DefaultSVMConfig())),
	} {
		if err := m.Fit(train); err != nil {
			t.Fatal(err)
		}
		obj := m.Objective()
		if len(obj) != 10 || !(obj[len(obj)-1] < obj[0]) {
			t.Errorf("%s: objective %v does not fall over 10 epochs", m.Name(), obj)
		}
	}
}

func TestDeterministicPerSeed(t *testing.T) {
	train, test := blobs(500, 4, 30, 120, 2) // overlapping: many choices matter
	build := func(seed uint64, workers int) []Classifier {
		lc := fastLinear(DefaultLogisticConfig())
		sc := fastLinear(DefaultSVMConfig())
		lc.Seed, sc.Seed = seed, seed
		return []Classifier{
			NewLogisticRegression(lc),
			NewLinearSVM(sc),
			NewRandomForest(ForestConfig{Trees: 8, MinLeaf: 1, Seed: seed, Workers: workers}),
		}
	}
	fingerprint := func(c Classifier) []float64 {
		if err := c.Fit(train); err != nil {
			t.Fatal(err)
		}
		p, err := c.Predict(test)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]float64, len(p))
		for i, v := range p {
			out[i] = float64(v)
		}
		switch m := c.(type) {
		case *LogisticRegression:
			out = append(out, m.Objective()...)
		case *LinearSVM:
			out = append(out, m.Objective()...)
		case *RandomForest:
			for _, n := range m.Nodes() {
				out = append(out, float64(n))
			}
		}
		return out
	}
	a, b, other := build(7, 1), build(7, 2), build(8, 2)
	for i := range a {
		fa, fb, fo := fingerprint(a[i]), fingerprint(b[i]), fingerprint(other[i])
		if !slices.Equal(fa, fb) {
			t.Errorf("%s: same seed gave different models", a[i].Name())
		}
		if slices.Equal(fa, fo) {
			t.Errorf("%s: seeds 7 and 8 gave the same model", a[i].Name())
		}
	}
}

func TestStandardizer(t *testing.T) {
	d := &Dataset{X: []byte{0, 7, 10, 7, 20, 7}, Y: []int{0, 1, 0}, D: 2, Classes: 2}
	s := FitStandardizer(d)
	// Feature 0: values 0, 10, 20: mean 10, population std √(200/3).
	std := math.Sqrt(200.0 / 3)
	if s.Mean[0] != 10 || math.Abs(float64(s.InvStd[0])-1/std) > 1e-6 {
		t.Errorf("feature 0: mean %g, 1/std %g; want 10, %g", s.Mean[0], s.InvStd[0], 1/std)
	}
	out := make([]float32, 2)
	s.Transform(out, []byte{20, 7})
	if math.Abs(float64(out[0])-10/std) > 1e-5 || out[1] != 0 {
		t.Errorf("transform = %v, want [%g 0] (a constant feature maps to 0)", out, 10/std)
	}
}

func TestBadInput(t *testing.T) {
	good, _ := blobs(20, 2, 4, 10, 1)
	bad := []*Dataset{
		{X: good.X[:5], Y: good.Y, D: 4, Classes: 2},                      // sizes disagree
		{X: good.X, Y: append([]int{7}, good.Y[1:]...), D: 4, Classes: 2}, // label out of range
		{X: good.X, Y: good.Y, D: 4, Classes: 1},                          // one class
		{X: nil, Y: nil, D: 4, Classes: 2},                                // empty
	}
	for _, c := range classifiers() {
		for i, d := range bad {
			if err := c.Fit(d); err == nil {
				t.Errorf("%s: bad set %d accepted", c.Name(), i)
			}
		}
		if _, err := c.Predict(good); err == nil {
			t.Errorf("%s: untrained model predicted", c.Name())
		}
		if err := c.Fit(good); err != nil {
			t.Fatal(err)
		}
		wrongWidth := &Dataset{X: make([]byte, 6), Y: []int{0, 1}, D: 3, Classes: 2}
		if _, err := c.Predict(wrongWidth); err == nil {
			t.Errorf("%s: predicted on 3 features after training on 4", c.Name())
		}
	}
	for _, cfg := range []LinearConfig{
		{Epochs: 0, BatchSize: 8, LearnRate: 0.1},
		{Epochs: 1, BatchSize: 0, LearnRate: 0.1},
		{Epochs: 1, BatchSize: 8, LearnRate: 0},
		{Epochs: 1, BatchSize: 8, LearnRate: 0.1, Momentum: 1},
		{Epochs: 1, BatchSize: 8, LearnRate: 0.1, L2: -1},
	} {
		if err := NewLogisticRegression(cfg).Fit(good); err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
	}
	for _, cfg := range []ForestConfig{{Trees: 0, MinLeaf: 1}, {Trees: 1, MinLeaf: 0}, {Trees: 1, MinLeaf: 1, MaxFeatures: 5}, {Trees: 1, MinLeaf: 1, MaxDepth: -1}} {
		if err := NewRandomForest(cfg).Fit(good); err == nil {
			t.Errorf("forest config %+v accepted", cfg)
		}
	}
	diverge := DefaultLogisticConfig()
	diverge.LearnRate, diverge.Epochs = 1e30, 2
	if err := NewLogisticRegression(diverge).Fit(good); err == nil || !strings.Contains(err.Error(), "diverged") {
		t.Errorf("absurd learning rate: %v, want a divergence error", err)
	}
}

func TestForestDepthLimit(t *testing.T) {
	train, _ := blobs(300, 3, 10, 100, 9)
	f := NewRandomForest(ForestConfig{Trees: 3, MinLeaf: 1, MaxDepth: 2, Seed: 1})
	if err := f.Fit(train); err != nil {
		t.Fatal(err)
	}
	for _, n := range f.Nodes() {
		if n > 7 { // a binary tree of depth 2
			t.Errorf("tree of depth ≤ 2 has %d nodes", n)
		}
	}
}

func TestReport(t *testing.T) {
	train, test := blobs(200, 3, 8, 30, 4)
	c := NewLogisticRegression(fastLinear(DefaultLogisticConfig()))
	res, err := Run(c, train, test, test, []string{"a", "b", "c"})
	if err != nil {
		t.Fatal(err)
	}
	if res.TrainImages != 200 || res.ValAccuracy == nil || res.Accuracy != *res.ValAccuracy || res.Metrics.N != 200 || !(res.MsPerImage > 0) {
		t.Errorf("result %+v", res)
	}
	cnn := &Result{Name: "CNN x", Accuracy: 0.9, MacroF1: 0.9, MsPerImage: 1.5}
	r := &Report{Features: "f", Training: "t", Results: []*Result{res, cnn}}
	var out bytes.Buffer
	if err := r.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	table := out.String()
	if !strings.Contains(table, "logistic regression") || !strings.Contains(table, "CNN x") || !strings.Contains(table, "90.00 %") {
		t.Errorf("table:\n%s", table)
	}
	md := string(r.Markdown())
	if !strings.Contains(md, "| CNN x | 90.00 % | 0.9000 | – | – | – | 1.5000 |") || !strings.Contains(md, "**logistic regression**: multinomial") {
		t.Errorf("markdown:\n%s", md)
	}
	if _, err := r.JSON(); err != nil {
		t.Error(err)
	}
}

// realDataDir locates the shared CIFAR-10 copy beside the repository, or
// CIFAR10_DIR, and skips the test when neither exists.
func realDataDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("CIFAR10_DIR"); d != "" {
		return d
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			dir := filepath.Join(d, "..", "shared", "cifar10", cifar.DirName)
			if _, err := os.Stat(filepath.Join(dir, cifar.TestFile)); err != nil {
				t.Skipf("CIFAR-10 not found at %s (set CIFAR10_DIR to run this test)", dir)
			}
			return dir
		}
		if filepath.Dir(d) == d {
			t.Skip("repository root not found; set CIFAR10_DIR to run this test")
		}
	}
}

// TestRealSubset trains every classifier on 2000 real images and checks
// that each is far above chance (10 %) on 1000 test images.
func TestRealSubset(t *testing.T) {
	if testing.Short() {
		t.Skip("trains on real data")
	}
	all, testSet, err := cifar.Load(realDataDir(t))
	if err != nil {
		t.Fatal(err)
	}
	train, test := FromSet(all, 2000), FromSet(testSet, 1000)
	forest := DefaultForestConfig()
	forest.Trees = 30
	for _, c := range []Classifier{
		NewLogisticRegression(DefaultLogisticConfig()),
		NewLinearSVM(DefaultSVMConfig()),
		NewRandomForest(forest),
	} {
		res, err := Run(c, train, nil, test, all.Classes)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: accuracy %.3f, macro-F1 %.3f, %.1f s", c.Name(), res.Accuracy, res.MacroF1, res.TrainSeconds)
		if res.Accuracy < 0.25 {
			t.Errorf("%s: accuracy %.3f on 1000 real test images, want > 0.25", c.Name(), res.Accuracy)
		}
	}
}

// benchData is CIFAR-sized: 2000 examples of 3072 byte features.
func benchData() *Dataset {
	train, _ := blobs(2000, 10, cifar.ImageSize, 100, 11)
	return train
}

func BenchmarkForestFit10Trees(b *testing.B) {
	d := benchData()
	for b.Loop() {
		if err := NewRandomForest(ForestConfig{Trees: 10, MinLeaf: 1, Seed: 1}).Fit(d); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLogisticEpoch(b *testing.B) {
	d := benchData()
	cfg := DefaultLogisticConfig()
	cfg.Epochs = 1
	for b.Loop() {
		if err := NewLogisticRegression(cfg).Fit(d); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(d.Len()), "ns/example")
}
