// Package app is the cifarnet web server as an echo application: it serves
// the static site built into dist/ (page, scripts, WebAssembly module,
// weight files) and a read-only listing of weight files. It never accepts
// uploads and never runs inference; classification happens in the browser.
//
// Routes (GET and HEAD only; any other method is 405 with Allow):
//
//	/healthz      {"status":"ok"}
//	/api/models   ModelList of the models directory, newest marked latest
//	/*            files of dist; a directory serves its index.html
//
// Static files get a fixed Content-Type per extension, a strong ETag (a
// content hash, honoured by If-None-Match and If-Range) and byte ranges.
// Cache-Control is "public, max-age=31536000, immutable" for content-hashed
// names (a dot-separated segment, neither first nor last, of at least 8
// lowercase hex digits: app.3fa9c2d1.js) and "no-cache" for everything
// else. Clients that accept gzip get a precompressed name.gz sibling when
// there is one, else a cached gzip copy of compressible types (text,
// JSON, SVG, WebAssembly; not images or weight files).
//
// Hidden names (a segment starting with '.'), unclean or escaped paths
// and symlinks leaving the directory are never served; every response
// carries a strict Content-Security-Policy and cross-origin isolation
// headers.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// Config says what the server serves.
type Config struct {
	// Dist is the static site directory; it must contain index.html.
	Dist string
	// Models is the directory of weight files (*.cnw) listed by
	// /api/models. Empty means Dist/models. A directory outside Dist is
	// also served, at /models/<name>.cnw.
	Models string
	// Logger receives one line per request and server errors. Nil
	// discards them.
	Logger *slog.Logger
}

// ErrNoIndex is returned by New when the dist directory has no index.html,
// which usually means the site has not been built yet.
var ErrNoIndex = errors.New("no index.html")

// New checks cfg and builds the echo application.
func New(cfg Config) (*echo.Echo, error) {
	if cfg.Dist == "" {
		return nil, errors.New("app: dist directory not set")
	}
	dist, err := filepath.Abs(cfg.Dist)
	if err != nil {
		return nil, fmt.Errorf("app: dist directory %q: %w", cfg.Dist, err)
	}
	if fi, err := os.Stat(filepath.Join(dist, "index.html")); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("app: %s: %w", dist, ErrNoIndex)
	}
	modelsDir := cfg.Models
	if modelsDir == "" {
		modelsDir = filepath.Join(dist, "models")
	}
	modelsDir, err = filepath.Abs(modelsDir)
	if err != nil {
		return nil, fmt.Errorf("app: models directory %q: %w", cfg.Models, err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}

	lister := newModelLister(modelsDir, modelsURL(dist, modelsDir))
	files := &staticFiles{dist: dist, cache: newFileCache()}
	if !within(dist, modelsDir) {
		// Weight files outside dist are served beside dist's own models/.
		files.extModels = modelsDir
	}

	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	// Log the peer address, not a client-supplied X-Forwarded-For.
	e.IPExtractor = echo.ExtractIPDirect()
	e.StdLogger = slog.NewLogLogger(logger.Handler(), slog.LevelWarn)

	// Pre-middleware runs before routing, so that requests the router
	// rejects are logged and carry the security headers too.
	e.Pre(requestLogger(logger))
	e.Pre(middleware.RecoverWithConfig(middleware.RecoverConfig{
		DisableStackAll: true,
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			logger.Error("panic", "method", c.Request().Method, "uri", c.Request().RequestURI, "err", err, "stack", string(stack))
			return err
		},
	}))
	e.Pre(securityHeaders)
	e.Pre(onlyGetAndHead)

	getHead := []string{http.MethodGet, http.MethodHead}
	e.Match(getHead, "/healthz", health)
	e.Match(getHead, "/api/models", lister.handle)
	e.Match(getHead, "/*", files.handle)
	return e, nil
}

// Serve runs e on ln until ctx is done, then shuts it down gracefully,
// giving in-flight requests up to grace to finish. It returns nil after a
// clean shutdown.
func Serve(ctx context.Context, e *echo.Echo, ln net.Listener, grace time.Duration) error {
	e.Listener = ln
	// Slow clients must not hold connections forever; no write timeout,
	// because weight files can be large and links slow.
	e.Server.ReadHeaderTimeout = 10 * time.Second
	e.Server.IdleTimeout = 2 * time.Minute

	served := make(chan error, 1)
	go func() { served <- e.Start("") }()

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	if err := e.Shutdown(shutdownCtx); err != nil {
		e.Close() // drop the requests that outlived the grace period
		return fmt.Errorf("graceful shutdown: %w", err)
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

func health(c echo.Context) error {
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// requestLogger logs one line per request. Handler errors go through
// echo's error handler first, so the logged status is the one sent.
func requestLogger(logger *slog.Logger) echo.MiddlewareFunc {
	return middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		HandleError:     true,
		LogLatency:      true,
		LogRemoteIP:     true,
		LogMethod:       true,
		LogURI:          true,
		LogStatus:       true,
		LogError:        true,
		LogResponseSize: true,
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			attrs := []slog.Attr{
				slog.String("method", v.Method),
				slog.String("uri", v.URI),
				slog.Int("status", v.Status),
				slog.Int64("bytes", v.ResponseSize),
				slog.Duration("latency", v.Latency),
				slog.String("remote", v.RemoteIP),
			}
			level := slog.LevelInfo
			if v.Status >= http.StatusInternalServerError {
				level = slog.LevelError
				if v.Error != nil {
					attrs = append(attrs, slog.String("err", v.Error.Error()))
				}
			}
			logger.LogAttrs(c.Request().Context(), level, "request", attrs...)
			return nil
		},
	})
}

// within reports whether path is dir or lies below it. Both must be
// absolute and clean.
func within(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}
