// Package evaluate measures a classifier on a labelled set: accuracy,
// per-class precision, recall and F1, the confusion matrix and inference
// speed, and writes the results as report.json and report.md.
package evaluate

import (
	"fmt"
	"math"
)

// ClassMetrics are the one-vs-rest scores of one class.
type ClassMetrics struct {
	Class     string  `json:"class"`
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	F1        float64 `json:"f1"`
	Support   int     `json:"support"`   // images whose true class this is
	Predicted int     `json:"predicted"` // images predicted as this class
}

// Metrics summarise predictions against the truth.
type Metrics struct {
	N        int            `json:"n"`
	Correct  int            `json:"correct"`
	Accuracy float64        `json:"accuracy"`
	MacroF1  float64        `json:"macro_f1"`
	PerClass []ClassMetrics `json:"per_class"`
	// Confusion[t][p] counts images of true class t predicted as class p.
	Confusion [][]int `json:"confusion"`
}

// Compute scores predictions pred against labels truth for the named
// classes. A class that is never predicted has precision 0 (not NaN), a
// class that never occurs has recall 0, and F1 is 0 whenever precision and
// recall are both 0: the convention of scikit-learn's zero_division=0, so
// that such classes pull the macro average down instead of poisoning it.
// Macro-F1 is the unweighted mean of the per-class F1 scores.
func Compute(truth, pred []int, classes []string) (*Metrics, error) {
	if len(truth) != len(pred) {
		return nil, fmt.Errorf("evaluate: %d labels but %d predictions", len(truth), len(pred))
	}
	k := len(classes)
	if k == 0 {
		return nil, fmt.Errorf("evaluate: no classes")
	}
	cm := make([][]int, k)
	for i := range cm {
		cm[i] = make([]int, k)
	}
	for i, t := range truth {
		p := pred[i]
		if t < 0 || t >= k || p < 0 || p >= k {
			return nil, fmt.Errorf("evaluate: sample %d: label %d or prediction %d outside 0..%d", i, t, p, k-1)
		}
		cm[t][p]++
	}
	m := &Metrics{N: len(truth), Confusion: cm, PerClass: make([]ClassMetrics, k)}
	for c := range k {
		tp := cm[c][c]
		m.Correct += tp
		cl := ClassMetrics{Class: classes[c]}
		for o := range k {
			cl.Support += cm[c][o]
			cl.Predicted += cm[o][c]
		}
		cl.Precision = ratio(tp, cl.Predicted)
		cl.Recall = ratio(tp, cl.Support)
		if s := cl.Precision + cl.Recall; s > 0 {
			cl.F1 = 2 * cl.Precision * cl.Recall / s
		}
		m.MacroF1 += cl.F1
		m.PerClass[c] = cl
	}
	m.MacroF1 /= float64(k)
	m.Accuracy = ratio(m.Correct, m.N)
	return m, nil
}

// ratio is a/b, or 0 when b is 0.
func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// Argmax returns the index of the largest value of each row of k scores;
// ties go to the lower index and NaN never wins.
func Argmax(scores []float32, k int) []int {
	n := len(scores) / k
	out := make([]int, n)
	for i := range n {
		row := scores[i*k : (i+1)*k]
		best, bi := float32(math.Inf(-1)), 0
		for j, v := range row {
			if v > best {
				best, bi = v, j
			}
		}
		out[i] = bi
	}
	return out
}

// Correct counts the rows of scores (n×k) whose largest score is at the
// row's label.
func Correct(scores []float32, labels []uint8, k int) int {
	n := 0
	for i, p := range Argmax(scores, k) {
		if i < len(labels) && p == int(labels[i]) {
			n++
		}
	}
	return n
}
