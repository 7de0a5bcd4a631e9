package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

func init() {
	commands["config"] = command{
		summary: "validate and print the effective configuration and where each value came from (secrets redacted), or the README table with --markdown",
		detail: `Every setting's value is parsed and checked as the commands that read it would; each line
says whether the value came from a flag, the environment or the default.`,
		exits: []exitCode{{1, "also: a setting's value is invalid (each one is named, with where it came from)"}},
		run:   runConfig,
	}
}

// configEntry is one setting as config prints it.
type configEntry struct {
	Setting string `json:"setting"`
	Flag    string `json:"flag"`
	Value   string `json:"value"`  // secrets: "(set, redacted)" or ""
	Source  string `json:"source"` // flag, environment or default
	Secret  bool   `json:"secret,omitempty"`
}

func runConfig(_ context.Context, args []string, stdout, _ io.Writer) error {
	var c Config
	fs := flag.NewFlagSet("config", flag.ContinueOnError)
	markdown := fs.Bool("markdown", false, "print the configuration table for the README")
	out := outputFormatFlag(fs, "table")
	envErr := c.bindFlags(fs, environ)
	if err := parseNoArgs(fs, args, stdout); err != nil {
		return err
	}
	if *markdown {
		printSettingsMarkdown(stdout)
		return nil
	}
	if err := configErrors(&c, fs, envErr); err != nil {
		return err
	}
	entries := configEntries(&c, fs)
	if *out == "json" {
		return printJSON(stdout, entries)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tSETTING=VALUE")
	for _, e := range entries {
		fmt.Fprintf(tw, "%s\t%s=%s\n", e.Source, e.Setting, e.Value)
	}
	return tw.Flush()
}

// configErrors is every setting that does not parse (envErr) or does not validate, each
// with where its value came from. A value that did not parse is not validated again.
func configErrors(c *Config, fs *flag.FlagSet, envErr error) error {
	var lines []string
	failed := map[string]bool{}
	add := func(errs []error) {
		for _, e := range errs {
			var se *settingError
			if !errors.As(e, &se) {
				lines = append(lines, e.Error())
				continue
			}
			if failed[se.env] {
				continue
			}
			failed[se.env] = true
			lines = append(lines, fmt.Sprintf("%s (%s): %v", se.env, settingSource(fs, se.env), se.err))
		}
	}
	add(unjoin(envErr))
	add(unjoin(c.Validate(needs{})))
	if len(lines) == 0 {
		return nil
	}
	return fmt.Errorf("invalid configuration:\n  %s", strings.Join(lines, "\n  "))
}

func configEntries(c *Config, fs *flag.FlagSet) []configEntry {
	entries := make([]configEntry, 0, len(settings))
	for _, s := range settings {
		v := s.bind(c).String()
		if s.secret && v != "" {
			v = "(set, redacted)"
		}
		source := settingSource(fs, s.env)
		if strings.HasPrefix(source, "flag") {
			source = "flag"
		}
		entries = append(entries, configEntry{Setting: s.env, Flag: "--" + s.flag, Value: v, Source: source, Secret: s.secret})
	}
	return entries
}

func printSettingsMarkdown(w io.Writer) {
	fmt.Fprintln(w, "| env | flag | default | meaning |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, s := range settings {
		def := s.def
		if def == "" {
			def = "—"
		}
		usage := strings.ReplaceAll(s.usage, "|", "\\|")
		if s.secret {
			usage += " **(secret)**"
		}
		fmt.Fprintf(w, "| `%s` | `--%s` | `%s` | %s |\n", s.env, s.flag, def, usage)
	}
}
