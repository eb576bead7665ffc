package baselines

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// The two split finders must agree exactly: the forest picks one or the
// other by node size only for speed.
func TestSplitFindersAgree(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 300 {
		n := 2 + rng.IntN(300)
		k := 2 + rng.IntN(9)
		spread := 1 + rng.IntN(256)
		col := make([]byte, n)
		y := make([]uint8, n)
		for i := range col {
			col[i] = byte(rng.IntN(spread))
			y[i] = uint8(rng.IntN(k))
		}
		idx := make([]int32, n)
		for i := range idx {
			idx[i] = int32(i)
		}
		for _, minLeaf := range []int{1, 3} {
			g := newGrower(col, y, n, 1, k, 1, ForestConfig{MinLeaf: minLeaf})
			for _, i := range idx {
				g.cnt[y[i]]++
			}
			want := slices.Clone(g.cnt)
			s1, t1, c1 := g.splitSorted(col, idx)
			s2, t2, c2 := g.splitHistogram(col, idx)
			if s1 != s2 || t1 != t2 || c1 != c2 {
				t.Fatalf("trial %d (n %d, k %d, min leaf %d): sorted (%v, %d, %v), histogram (%v, %d, %v)",
					trial, n, k, minLeaf, s1, t1, c1, s2, t2, c2)
			}
			// Both leave the scratch state as they found it.
			if !slices.Equal(g.cnt, want) {
				t.Fatalf("trial %d: node counts %v changed to %v", trial, want, g.cnt)
			}
			if slices.ContainsFunc(g.hist, func(v int64) bool { return v != 0 }) || slices.ContainsFunc(g.binTotal[:], func(v int64) bool { return v != 0 }) {
				t.Fatalf("trial %d: histogram not cleared", trial)
			}
		}
	}
}
