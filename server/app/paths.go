package app

import (
	"net/http"
	"path"
	"strings"

	"github.com/labstack/echo/v4"
)

// Errors for request paths that can never name a served file.
var (
	errBadPath  = echo.NewHTTPError(http.StatusBadRequest, "malformed path")
	errNotFound = echo.ErrNotFound
)

// fileName maps a request's URL path to a slash-separated name relative to
// the served directory ("." for the root) and reports whether the path
// ended in a slash. It is deliberately strict, because nothing outside the
// served directory and nothing hidden may ever be reached:
//   - escaped separators (%2f, %5c), escaped NUL and escaped '%' (the
//     double-encoding trick, %252e) are malformed (400), as are
//     backslashes and control characters in the decoded path;
//   - a path that is not already clean ("..", ".", "//") or that has a
//     segment starting with '.' (.git, .env, .hidden.cnw) is not found
//     (404).
//
// The name is opened through os.Root, which also refuses symlinks that
// leave the directory.
func fileName(r *http.Request) (name string, trailingSlash bool, err error) {
	escaped := strings.ToLower(r.URL.EscapedPath())
	for _, bad := range []string{"%2f", "%5c", "%00", "%25"} {
		if strings.Contains(escaped, bad) {
			return "", false, errBadPath
		}
	}
	p := r.URL.Path
	if !strings.HasPrefix(p, "/") {
		return "", false, errBadPath
	}
	for i := 0; i < len(p); i++ {
		if p[i] == '\\' || p[i] < 0x20 || p[i] == 0x7f {
			return "", false, errBadPath
		}
	}
	trailingSlash = strings.HasSuffix(p, "/")
	trimmed := strings.TrimSuffix(p, "/")
	if trimmed == "" {
		return ".", trailingSlash, nil
	}
	if path.Clean(trimmed) != trimmed {
		return "", false, errNotFound
	}
	name = trimmed[1:]
	for seg := range strings.SplitSeq(name, "/") {
		if strings.HasPrefix(seg, ".") {
			return "", false, errNotFound
		}
	}
	return name, trailingSlash, nil
}
