package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// newLogger builds the process logger: format "text" or "json", or "auto" (the default):
// text when w is a terminal, JSON otherwise. Durations read as 1.5s in both (the JSON
// handler would print nanoseconds). Secrets never reach it: no Config field marked secret
// is ever passed to a log call, and the clients' errors are written without them.
func newLogger(w io.Writer, format, level string) *slog.Logger {
	lvl, err := parseLevel(level)
	if err != nil {
		lvl = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lvl, ReplaceAttr: readableDurations}
	if format == "text" || (format == "auto" && logIsTerminal(w)) {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// readableDurations renders a time.Duration with its String method.
func readableDurations(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration { // slog.Any of a time.Duration is one too
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown level %q: use debug, info, warn or error", s)
}

// logIsTerminal says whether the log goes to a person; tests replace it.
var logIsTerminal = isTerminal
