// Command server serves the cifarnet web page built by ./build.sh: the
// static files of dist/ and a read-only listing of weight files at
// /api/models. Images are classified in the browser; the server never
// runs inference and accepts no uploads.
//
// Usage:
//
//	server [--addr host:port] [--dist dir] [--models dir]
//
// Each flag defaults to an environment variable: CIFARNET_ADDR (default
// 127.0.0.1:8080), CIFARNET_DIST (default dist) and CIFARNET_MODELS
// (default <dist>/models). It stops gracefully on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/cifarnet-go/cifarnet/server/app"
)

// shutdownGrace is how long in-flight requests may take to finish after
// a stop signal.
const shutdownGrace = 10 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// Once shutdown has begun, a second signal kills at once.
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole command: it returns the exit status, 2 for bad usage
// and 1 for any other failure.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", envOr(getenv, "CIFARNET_ADDR", "127.0.0.1:8080"), "listen `address` (env CIFARNET_ADDR)")
	dist := fs.String("dist", envOr(getenv, "CIFARNET_DIST", "dist"), "static site `directory` built by ./build.sh (env CIFARNET_DIST)")
	modelsDir := fs.String("models", getenv("CIFARNET_MODELS"), "weight file `directory` listed at /api/models (env CIFARNET_MODELS; default <dist>/models)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: server [flags]\n\nServes the cifarnet web page and its weight files.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "server: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}

	logger := slog.New(slog.NewTextHandler(stderr, nil))
	e, err := app.New(app.Config{Dist: *dist, Models: *modelsDir, Logger: logger})
	if errors.Is(err, app.ErrNoIndex) {
		fmt.Fprintf(stderr, "server: %s has no index.html: build the site first with ./build.sh\n", *dist)
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "server: %v\n", err)
		return 1
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(stderr, "server: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "serving %s at http://%s/\n", *dist, ln.Addr())
	if err := app.Serve(ctx, e, ln, shutdownGrace); err != nil {
		fmt.Fprintf(stderr, "server: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, "server stopped")
	return 0
}

func envOr(getenv func(string) string, key, fallback string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return fallback
}
