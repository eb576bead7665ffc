package main

import (
	"fmt"
	"strings"

	"github.com/cifarnet-go/cifarnet/models"
)

// Helpers more than one subcommand uses: parsing storage types, writing
// numbers and sizes, and the command line that reproduces a run.

// parseDType checks a --dtype value; "" stays "" (keep the source's).
func parseDType(s string) (models.DType, error) {
	switch d := models.DType(s); d {
	case "", models.Float32, models.Float16, models.Int8:
		return d, nil
	default:
		return "", usagef("--dtype %q: want %s, %s or %s", s, models.Float32, models.Float16, models.Int8)
	}
}

// percent formats an accuracy stored as a fraction; empty when unset.
func percent(v float64) string {
	if v == 0 {
		return ""
	}
	return fmt.Sprintf("%.2f%%", 100*v)
}

func floats(v []float32) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf("%.4f", x)
	}
	return strings.Join(s, " ")
}

func thousands(n int64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func byteSize(n int64) string {
	switch {
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d bytes", n)
}

// commandLine is the command that reproduces a run, shell-quoted where
// needed.
func commandLine(cmd string, args []string) string {
	parts := []string{"trainer", cmd}
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`*?[]{}()<>|&;#~") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}
