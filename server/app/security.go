package app

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// contentSecurityPolicy allows only same-origin resources and no inline
// script; 'wasm-unsafe-eval' is what lets the page compile its WebAssembly
// module without allowing eval of JavaScript.
var contentSecurityPolicy = strings.Join([]string{
	"default-src 'self'",
	"script-src 'self' 'wasm-unsafe-eval'",
	"worker-src 'self'",
	"img-src 'self' blob: data:",
	"connect-src 'self'",
	"style-src 'self'",
	"object-src 'none'",
	"base-uri 'none'",
	"frame-ancestors 'none'",
}, "; ")

// securityResponseHeaders are sent with every response, errors included.
// The cross-origin isolation pair (COOP + COEP) also lets the page use
// SharedArrayBuffer and precise timers.
var securityResponseHeaders = map[string]string{
	"Content-Security-Policy":      contentSecurityPolicy,
	"X-Content-Type-Options":       "nosniff",
	"Referrer-Policy":              "no-referrer",
	"Cross-Origin-Opener-Policy":   "same-origin",
	"Cross-Origin-Embedder-Policy": "require-corp",
	"Cross-Origin-Resource-Policy": "same-origin",
	// The page's Camera button needs the camera on our own origin only.
	"Permissions-Policy": "camera=(self), microphone=(), geolocation=()",
	// Tells the page that this server lists its models at /api/models, so
	// that the page asks for it only here and a plain static host, which
	// lacks it, never answers the page with a 404.
	"X-Cifarnet-Models": "api/models",
}

func securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		for k, v := range securityResponseHeaders {
			h.Set(k, v)
		}
		return next(c)
	}
}

// allowedMethods is the Allow header of a 405 response: the server is
// read-only, so nothing but GET and HEAD is ever routed, and request
// bodies are never read.
const allowedMethods = http.MethodGet + ", " + http.MethodHead

func onlyGetAndHead(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		switch c.Request().Method {
		case http.MethodGet, http.MethodHead:
			return next(c)
		}
		c.Response().Header().Set(echo.HeaderAllow, allowedMethods)
		return echo.ErrMethodNotAllowed
	}
}
