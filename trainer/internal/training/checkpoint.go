package training

import (
	"crypto/sha256"
	"encoding/gob"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/trainer/internal/optim"
)

// stateVersion is bumped when ckptState changes incompatibly.
const stateVersion = 1

// ckptState is everything besides the weights that resuming needs. It is
// saved with gob next to the weight file it belongs to.
type ckptState struct {
	Version int
	// WeightsSHA256 is the checksum of the weight file this state goes
	// with; a state whose weights are missing or different is ignored.
	WeightsSHA256 string

	Epoch      int   // completed epochs
	Batches    int   // batches done of epoch Epoch+1 (an interrupted epoch)
	GlobalStep int64 // training steps done; seeds dropout
	// Sums over the batches of an interrupted epoch.
	PartLoss    float64
	PartCorrect int
	PartSeen    int
	PartSeconds float64

	LR        float64
	Optimizer optim.State
	Plateau   *optim.Plateau
	Early     *optim.EarlyStopping
	// EarlyBest holds the weights of early stopping's best epoch when the
	// recipe restores them at the end.
	EarlyBest [][]float32
	// Slow holds the weight averaging's slow weights (all parameters, in
	// nn.Net.Params order) when the recipe averages.
	Slow [][]float32

	HaveBest     bool // best.cnw exists for BestMetric
	BestMetric   float64
	BestEpoch    int
	TrainSeconds float64 // training and validation time so far
	// WallSeconds is the wall time of the train commands so far, set-up
	// and checkpoints included, summed over resumes.
	WallSeconds float64
	// Devices lists the devices that trained the run so far, in order
	// ("cuda:0 (NVIDIA H200)"); absent from checkpoints of older trainers.
	Devices []string
}

// errNoCheckpoint is loadCheckpoint's answer for a run folder that has no
// state file at all: the run was stopped before its first checkpoint.
var errNoCheckpoint = errors.New("no checkpoint")

// errInconsistent is loadCheckpoint's answer for a run folder whose state
// files all fail to load or to match a weight file.
var errInconsistent = errors.New("no consistent checkpoint")

// reached, when set by a test, is called at the points where a crash must
// leave a resumable run folder, so that tests can kill the process there.
var reached = func(format string, a ...any) {}

// saveCheckpoint writes weights and state as the last checkpoint. The
// newest consistent pair is kept as prev.* until the new pair is
// complete, so that a crash at any point leaves a consistent pair.
func saveCheckpoint(dir string, f *models.File, st *ckptState) error {
	if err := keepNewestPair(dir); err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	last, lastState := filepath.Join(dir, LastWeights), filepath.Join(dir, LastState)
	if err := models.WriteFile(last, f); err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	reached("checkpoint %d.%d weights", st.Epoch, st.Batches)
	sum, err := fileSHA256(last)
	if err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	s := *st
	s.Version = stateVersion
	s.WeightsSHA256 = sum
	if err := writeFileAtomic(lastState, func(w io.Writer) error { return gob.NewEncoder(w).Encode(&s) }); err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	os.Remove(filepath.Join(dir, prevWeights))
	os.Remove(filepath.Join(dir, prevState))
	return nil
}

// loadCheckpoint returns the newest consistent (weights, state) pair of a
// run folder: the state with the most progress whose weight file (last or
// prev) has the checksum it records. It returns errNoCheckpoint when there
// is no state file, and another error when there are states but none is
// usable.
func loadCheckpoint(dir string) (*models.File, *ckptState, error) {
	p, err := newestPair(dir)
	if err != nil {
		return nil, nil, err
	}
	f, err := models.ReadFile(p.weights)
	if err != nil {
		return nil, nil, fmt.Errorf("load checkpoint: %w", err)
	}
	return f, p.st, nil
}

// pair is a checkpoint's weight file and the state file that records its
// checksum. The names need not match: a crash between the renames of
// keepNewestPair leaves prev.cnw with last.state.
type pair struct {
	weights, state string
	st             *ckptState
}

// newestPair finds the state with the most progress whose weight file
// (last or prev) has the checksum it records; errors as loadCheckpoint.
func newestPair(dir string) (*pair, error) {
	weights := map[string]string{} // checksum → path
	for _, name := range []string{LastWeights, prevWeights} {
		p := filepath.Join(dir, name)
		if sum, err := fileSHA256(p); err == nil {
			weights[sum] = p
		}
	}
	var best *pair
	var problems []error
	states := 0
	for _, name := range []string{LastState, prevState} {
		path := filepath.Join(dir, name)
		st, err := readState(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		states++
		if err != nil {
			problems = append(problems, err)
			continue
		}
		w, ok := weights[st.WeightsSHA256]
		if !ok {
			problems = append(problems, fmt.Errorf("%s: its weight file is missing or changed", name))
			continue
		}
		if best == nil || st.GlobalStep > best.st.GlobalStep {
			best = &pair{weights: w, state: path, st: st}
		}
	}
	if states == 0 {
		return nil, fmt.Errorf("%s: %w", dir, errNoCheckpoint)
	}
	if best == nil {
		return nil, fmt.Errorf("%w in %s: %w", errInconsistent, dir, errors.Join(append(problems, errors.New("nothing to resume"))...))
	}
	return best, nil
}

// keepNewestPair moves the newest consistent pair to prev.* and removes
// the other checkpoint files, which belong to no pair or an older one. A
// crash between a checkpoint's weights and its state leaves last.cnw
// without a state: renaming it over prev.cnw, as a plain rotation would,
// would break the only consistent pair. Each step leaves the pair
// findable, since newestPair matches by checksum, not by name.
func keepNewestPair(dir string) error {
	p, err := newestPair(dir)
	if err != nil {
		if !errors.Is(err, errNoCheckpoint) && !errors.Is(err, errInconsistent) {
			return err
		}
		p = nil // nothing consistent to keep
	}
	prevW, prevS := filepath.Join(dir, prevWeights), filepath.Join(dir, prevState)
	if p != nil {
		for _, r := range [][2]string{{p.weights, prevW}, {p.state, prevS}} {
			if r[0] != r[1] {
				if err := os.Rename(r[0], r[1]); err != nil {
					return err
				}
			}
		}
	}
	for _, name := range []string{LastWeights, LastState} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if p == nil {
		for _, path := range []string{prevW, prevS} {
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}

func readState(path string) (*ckptState, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	var s ckptState
	if err := gob.NewDecoder(fh).Decode(&s); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if s.Version != stateVersion {
		return nil, fmt.Errorf("read %s: state version %d, this trainer reads %d", path, s.Version, stateVersion)
	}
	return &s, nil
}

func fileSHA256(path string) (string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	h := sha256.New()
	if _, err := io.Copy(h, fh); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
