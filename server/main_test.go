package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestRunUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"--bogus"}, {"--addr"}, {"extra-argument"}} {
		var stderr strings.Builder
		if code := run(context.Background(), args, env(nil), io.Discard, &stderr); code != 2 {
			t.Errorf("run %q: exit %d, want 2", args, code)
		}
		if !strings.Contains(stderr.String(), "usage: server") {
			t.Errorf("run %q: no usage in %q", args, stderr.String())
		}
	}
}

func TestRunHelp(t *testing.T) {
	var stderr strings.Builder
	if code := run(context.Background(), []string{"--help"}, env(nil), io.Discard, &stderr); code != 0 {
		t.Errorf("--help: exit %d, want 0", code)
	}
	for _, flag := range []string{"-addr", "-dist", "-models", "CIFARNET_ADDR", "CIFARNET_DIST", "CIFARNET_MODELS"} {
		if !strings.Contains(stderr.String(), flag) {
			t.Errorf("--help does not mention %s:\n%s", flag, stderr.String())
		}
	}
}

func TestRunWithoutIndex(t *testing.T) {
	dir := t.TempDir()
	var stderr strings.Builder
	// The directory comes from the environment when no flag is given.
	code := run(context.Background(), nil, env(map[string]string{"CIFARNET_DIST": dir}), io.Discard, &stderr)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if msg := stderr.String(); !strings.Contains(msg, "./build.sh") || !strings.Contains(msg, dir) {
		t.Errorf("message %q should name %s and say to run ./build.sh", msg, dir)
	}
}

func TestRunServesUntilCancelled(t *testing.T) {
	dist := t.TempDir()
	if err := os.WriteFile(filepath.Join(dist, "index.html"), []byte("<p>hello</p>"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	outR, outW := io.Pipe()
	done := make(chan int, 1)
	go func() {
		// Flags override the environment.
		vars := map[string]string{"CIFARNET_ADDR": "256.0.0.1:1", "CIFARNET_DIST": dist}
		done <- run(ctx, []string{"--addr", "127.0.0.1:0"}, env(vars), outW, io.Discard)
		outW.Close()
	}()

	out := bufio.NewScanner(outR)
	if !out.Scan() {
		t.Fatalf("no start line; exit %d", <-done)
	}
	line := out.Text()
	i := strings.Index(line, "http://")
	if i < 0 {
		t.Fatalf("start line %q has no URL", line)
	}
	url := line[i:]
	res, err := http.Get(url + "healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("GET %shealthz: status %d", url, res.StatusCode)
	}
	res, err = http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(body) != "<p>hello</p>" {
		t.Errorf("GET %s: %q", url, body)
	}

	cancel()
	go io.Copy(io.Discard, outR)
	if code := <-done; code != 0 {
		t.Errorf("exit %d after cancel, want 0", code)
	}
}
