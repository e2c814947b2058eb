// Package logging builds the structured logger of hermesctl's long-running commands
// (daemon, serve): text for people on a terminal, JSON for log collectors otherwise.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"golang.org/x/term"
)

// New returns a logger writing to w: format "text", "json" or "auto" (text when w is a
// terminal, JSON otherwise; also for ""); level debug, info (also for ""), warn or error.
func New(w io.Writer, format, level string) (*slog.Logger, error) {
	if level == "" {
		level = "info"
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		return nil, fmt.Errorf("--log-level must be debug, info, warn or error, not %q", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "auto", "":
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			return slog.New(slog.NewTextHandler(w, opts)), nil
		}
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format must be auto, text or json, not %q", format)
}
