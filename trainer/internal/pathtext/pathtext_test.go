package pathtext

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOf(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	up := filepath.Dir(wd)
	for in, want := range map[string]string{
		"data/x.bin":                         "data/x.bin",
		filepath.Join(wd, "runs", "r1"):      filepath.Join("runs", "r1"),
		filepath.Join(up, "shared", "cifar"): filepath.Join("..", "shared", "cifar"),
		"/nowhere/near/here/d/f.bin":         filepath.Join("d", "f.bin"),
	} {
		if got := Of(in); got != want {
			t.Errorf("Of(%q) = %q, want %q", in, got, want)
		}
	}
	line := "trainer train --recipe fast --data " + filepath.Join(up, "d") + " --runs=" + filepath.Join(wd, "runs")
	got := Command(line)
	if strings.Contains(got, wd) || got != "trainer train --recipe fast --data ../d --runs=runs" {
		t.Errorf("Command: %q", got)
	}
}
