package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
)

func init() {
	commands["config"] = command{
		summary: "print the effective configuration (secrets redacted), or the README table with --markdown",
		run:     runConfig,
	}
}

func runConfig(_ context.Context, args []string, stdout, _ io.Writer) error {
	var c Config
	fs := flag.NewFlagSet("config", flag.ContinueOnError)
	markdown := fs.Bool("markdown", false, "print the configuration table for the README")
	if err := c.bindFlags(fs, environ); err != nil {
		return err
	}
	if err := parseNoArgs(fs, args, stdout); err != nil {
		return err
	}
	if *markdown {
		fmt.Fprintln(stdout, "| env | flag | default | meaning |")
		fmt.Fprintln(stdout, "|---|---|---|---|")
		for _, s := range settings {
			def := s.def
			if def == "" {
				def = "—"
			}
			usage := strings.ReplaceAll(s.usage, "|", "\\|")
			if s.secret {
				usage += " **(secret)**"
			}
			fmt.Fprintf(stdout, "| `%s` | `--%s` | `%s` | %s |\n", s.env, s.flag, def, usage)
		}
		return nil
	}
	for _, s := range settings {
		v := s.bind(&c).String()
		if s.secret && v != "" {
			v = "(set, redacted)"
		}
		fmt.Fprintf(stdout, "%s=%s\n", s.env, v)
	}
	return nil
}
