//go:build unix

package training

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockFile is the run folder's lock: a trainer holds an exclusive flock on
// it while it trains, so that a second process (a --resume started while
// the run is still going) stops instead of writing the same files. The
// kernel drops the lock when the process ends, however it ends.
const lockFile = ".lock"

// lockRun locks the run folder dir; the returned function unlocks it.
func lockRun(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock run: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.ENOTSUP) || errors.Is(err, syscall.EOPNOTSUPP) {
			return func() {}, nil // a file system without locks: train unguarded
		}
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("run %s is in use by another trainer process: let it finish or stop it, then resume", dir)
		}
		return nil, fmt.Errorf("lock run %s: %w", dir, err)
	}
	return func() { f.Close() }, nil
}
