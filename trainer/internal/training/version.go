package training

import (
	"context"
	"os/exec"
	"runtime/debug"
	"strings"
	"time"
)

// stamped is the revision build.sh writes in with -ldflags -X, since Go's
// own VCS stamping is off wherever GOFLAGS has -buildvcs=false.
var stamped string

// Version identifies the trainer build for provenance: the revision
// stamped by build.sh, else the one Go stamped into the binary, else
// `git describe --always --dirty` in the working folder, else "".
func Version() string {
	if stamped != "" {
		return stamped
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		var rev, dirty string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "-dirty"
				}
			}
		}
		if rev != "" {
			return rev + dirty
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
