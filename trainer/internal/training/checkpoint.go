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

// reached, when set by a test, is called at the points where a crash must
// leave a resumable run folder, so that tests can kill the process there.
var reached = func(format string, a ...any) {}

// saveCheckpoint writes weights and state as the last checkpoint. The
// previous pair is renamed to prev.* first and kept until the new pair is
// complete, so that a crash at any point leaves a consistent pair.
func saveCheckpoint(dir string, f *models.File, st *ckptState) error {
	last, lastState := filepath.Join(dir, LastWeights), filepath.Join(dir, LastState)
	for _, p := range [][2]string{{last, filepath.Join(dir, prevWeights)}, {lastState, filepath.Join(dir, prevState)}} {
		if err := os.Rename(p[0], p[1]); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("save checkpoint: %w", err)
		}
	}
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
	weights := map[string]string{} // checksum → path
	for _, name := range []string{LastWeights, prevWeights} {
		p := filepath.Join(dir, name)
		if sum, err := fileSHA256(p); err == nil {
			weights[sum] = p
		}
	}
	var best *ckptState
	var bestPath string
	var problems []error
	states := 0
	for _, name := range []string{LastState, prevState} {
		st, err := readState(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		states++
		if err != nil {
			problems = append(problems, err)
			continue
		}
		p, ok := weights[st.WeightsSHA256]
		if !ok {
			problems = append(problems, fmt.Errorf("%s: its weight file is missing or changed", name))
			continue
		}
		if best == nil || st.GlobalStep > best.GlobalStep {
			best, bestPath = st, p
		}
	}
	if states == 0 {
		return nil, nil, fmt.Errorf("%s: %w", dir, errNoCheckpoint)
	}
	if best == nil {
		return nil, nil, fmt.Errorf("no consistent checkpoint in %s: %w", dir, errors.Join(append(problems, errors.New("nothing to resume"))...))
	}
	f, err := models.ReadFile(bestPath)
	if err != nil {
		return nil, nil, fmt.Errorf("load checkpoint: %w", err)
	}
	return f, best, nil
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
