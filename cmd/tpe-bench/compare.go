package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// --compare BIN runs another build of tpe-bench (an earlier commit's, say) with the same
// subcommand and flags, just before this run and on the same machine, and puts its line next
// to this one: a before/after in one command, as issue-style targets ("1.3× the previous
// commit's throughput") are stated.

// comparison is the other build's line and this run's figures over its.
type comparison struct {
	Binary string         `json:"binary"`
	Result map[string]any `json:"result"`
	// Ratios are this run's value over the other's, for the figures both lines carry.
	Ratios map[string]float64 `json:"ratios"`
}

// comparedFigures are the fields Ratios are computed for, when both lines have them.
var comparedFigures = []string{"msgs_per_sec", "p50_ms", "p99_ms", "noop_p50_ms", "write_p50_ms",
	"cpu_us_per_msg", "peak_rss_mb", "graph_calls_per_msg", "graph_requests_per_msg", "graph_ru_per_msg", "acs_calls_per_msg"}

// runBaseline runs bin with sub and args less --compare and decodes its line; nil, nil when
// bin is empty.
func runBaseline(ctx context.Context, bin, sub string, args []string, stderr io.Writer) (*comparison, error) {
	if bin == "" {
		return nil, nil
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, append([]string{sub}, withoutCompare(args)...)...)
	// A test binary acts as tpe-bench only when told (bench_test.go); tpe-bench ignores it.
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Stdout, cmd.Stderr = &out, stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("--compare %s: %w", bin, err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var res map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		return nil, fmt.Errorf("--compare %s: its output is not a JSON line: %w", bin, err)
	}
	return &comparison{Binary: bin, Result: res}, nil
}

// against fills the ratios of ours (this run's result) over the other line; c may be nil.
func (c *comparison) against(ours any) *comparison {
	if c == nil {
		return nil
	}
	var mine map[string]any
	if b, err := json.Marshal(ours); err == nil {
		_ = json.Unmarshal(b, &mine)
	}
	c.Ratios = map[string]float64{}
	for _, k := range comparedFigures {
		a, okA := mine[k].(float64)
		b, okB := c.Result[k].(float64)
		if okA && okB && b != 0 {
			c.Ratios[k] = round3(a / b)
		}
	}
	return c
}

// withoutCompare drops --compare and its value from args, in every form the flag package
// accepts.
func withoutCompare(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && name == "compare" {
			if !hasValue {
				i++ // the value is the next argument
			}
			continue
		}
		out = append(out, a)
	}
	return out
}
