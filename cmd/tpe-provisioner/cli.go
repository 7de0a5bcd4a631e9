package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
)

// The habits every subcommand shares, so that the CLI behaves as az, kubectl and terraform
// users expect: help on stdout with exit 0, a one-line usage error with a hint and exit 2,
// flags before and after the positional arguments, -o/--output json|table, documented exit
// codes, and --yes for what deletes.

// exitCode is one documented exit status of a command.
type exitCode struct {
	code    int
	meaning string
}

// Exit statuses every command shares.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

var commonExits = []exitCode{
	{exitOK, "success"},
	{exitFailure, "failure: the error is on stderr (a setting, a service, a check)"},
	{exitUsage, "usage error: unknown command or flag, bad or missing argument, or a deletion off a terminal without --yes"},
}

// programExits are the statuses the top-level help lists: the common ones and every
// command's own.
var programExits = []exitCode{
	{3, "backfill: the revoke brake refused the plan, nothing was applied"},
	{4, "not found: get (no assignment), deadletters show (no such sequence number)"},
	{130, "a second SIGINT/SIGTERM: exit at once (the first stops gracefully; run drains)"},
}

// usageError is a command line that cannot be run: realMain prints it with a hint to the
// command's help and exits 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// parseArgs parses a command's flags from args, before, between and after its positional
// arguments ("--" ends the flags), and returns the positional ones. -h or --help prints the
// command's help on stdout and returns flag.ErrHelp (exit 0); a bad flag or value returns a
// usageError. The flag package prints nothing itself.
func parseArgs(fs *flag.FlagSet, args []string, stdout io.Writer) ([]string, error) {
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	pos, err := parseInterleaved(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		printHelp(stdout, fs)
		return nil, flag.ErrHelp
	case err != nil:
		return nil, &usageError{err.Error()}
	}
	return pos, nil
}

// didYouMean is "; did you mean "X"?" for the candidate nearest to name, or "".
func didYouMean(name string, candidates []string) string {
	if s := suggest(name, candidates); s != "" {
		return fmt.Sprintf("; did you mean %q?", s)
	}
	return ""
}

// parseNoArgs is parseArgs for a command that takes no positional argument.
func parseNoArgs(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	pos, err := parseArgs(fs, args, stdout)
	if err == nil && len(pos) > 0 {
		err = usagef("unexpected argument %q: %s takes only flags", pos[0], fs.Name())
	}
	return err
}

// parseInterleaved parses fs from args with flags before, between and after the positional
// arguments (`explain UPN -o json`), and returns the positional ones. "--" ends the flags.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

// printHelp writes a command's help: synopsis, description, flags and exit codes. Secret
// settings show no default (secretValue), so help never prints one.
func printHelp(w io.Writer, fs *flag.FlagSet) {
	name := fs.Name()
	cmd := commands[name]
	synopsis := "usage: tpe-provisioner " + name + " [flags]"
	if cmd.args != "" {
		synopsis += " " + cmd.args
	}
	fmt.Fprintf(w, "%s\n\n%s\n", synopsis, upperFirst(cmd.summary)+".")
	if cmd.detail != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimRight(cmd.detail, "\n"))
	}
	fmt.Fprintln(w, "\nflags (before or after the arguments; -- ends them; each setting also reads its environment variable):")
	printFlags(w, fs)
	printExits(w, append(append([]exitCode{}, commonExits...), cmd.exits...))
}

// printFlags lists fs's flags as --name TYPE, the usage and the default (secrets have none).
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		kind, text := flag.UnquoteUsage(f)
		if kind == "value" {
			kind = valueKind(f.Value)
		}
		dash := "--"
		if len(f.Name) == 1 {
			dash = "-"
		}
		line := "  " + dash + f.Name
		if kind != "" {
			line += " " + kind
		}
		if f.DefValue != "" && f.DefValue != "false" {
			text += " (default " + f.DefValue + ")"
		}
		fmt.Fprintf(w, "%s\n      %s\n", line, text)
	})
}

// valueKind names the type of a settings-table flag for its help line.
func valueKind(v flag.Value) string {
	switch v := v.(type) {
	case secretValue:
		return valueKind(v.v)
	case intValue:
		return "int"
	case floatValue:
		return "number"
	case durationValue:
		return "duration"
	case listValue:
		return "list"
	case outputValue:
		return "table|json"
	}
	return "string"
}

func printExits(w io.Writer, codes []exitCode) {
	sort.SliceStable(codes, func(i, j int) bool { return codes[i].code < codes[j].code })
	fmt.Fprintln(w, "\nexit codes:")
	for _, c := range codes {
		fmt.Fprintf(w, "  %3d  %s\n", c.code, c.meaning)
	}
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// usage is the program's help.
func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: tpe-provisioner <command> [flags] [arguments]")
	fmt.Fprintln(w, "\ncommands:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, n := range commandNames() {
		fmt.Fprintf(tw, "  %s\t%s\n", n, commands[n].summary)
	}
	_ = tw.Flush()
	fmt.Fprint(w, `
Run 'tpe-provisioner help <command>' or 'tpe-provisioner <command> --help' for its flags.
Flags go before or after the arguments ('--' ends them); every setting also reads an
environment variable (see the README or 'tpe-provisioner config'). Output meant for scripts:
-o json on get, explain, config, doctor, subscribe --list, deadletters, backfill and version.
Commands that delete (subscribe --delete, deadletters purge) ask on a terminal and need --yes
otherwise. Logs go to stderr: text on a terminal, JSON otherwise, unless TPE_LOG_FORMAT says.
`)
	printExits(w, append(append([]exitCode{}, commonExits...), programExits...))
}

func commandNames() []string {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// suggest returns the candidate nearest to name by edit distance, or "" when none is near
// enough to be what was meant.
func suggest(name string, candidates []string) string {
	best, bestD := "", 0
	for _, n := range candidates {
		d := editDistance(strings.ToLower(name), n)
		if best == "" || d < bestD {
			best, bestD = n, d
		}
	}
	if bestD <= max(2, len(best)/4) && bestD < len(best) {
		return best
	}
	return ""
}

// editDistance is the Damerau-Levenshtein distance (optimal string alignment): an
// insertion, deletion, substitution or swap of neighbours costs one.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// unknownCommand reports a command that does not exist, with the nearest one.
func unknownCommand(w io.Writer, name string) int {
	msg := fmt.Sprintf("tpe-provisioner: unknown command %q", name)
	msg += didYouMean(name, commandNames())
	if strings.HasPrefix(name, "-") {
		msg = fmt.Sprintf("tpe-provisioner: %s before the command: flags follow the command (tpe-provisioner <command> [flags])", name)
	}
	fmt.Fprintf(w, "%s\nrun 'tpe-provisioner --help' for the commands\n", msg)
	return exitUsage
}

// outputFormatFlag registers -o and --output (table or json, def when not given) on fs. An
// unknown format is a usage error, the same on every command.
func outputFormatFlag(fs *flag.FlagSet, def string) *string {
	out := def
	fs.Var(outputValue{&out}, "output", "output format: table or json (one JSON document on stdout)")
	fs.Var(outputValue{&out}, "o", "shorthand for --output")
	return &out
}

type outputValue struct{ p *string }

func (v outputValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

func (v outputValue) Set(s string) error {
	if s != "table" && s != "json" {
		return errors.New("must be table or json")
	}
	*v.p = s
	return nil
}

// Where confirm asks; tests replace them.
var (
	confirmStdin    io.Reader = os.Stdin
	stdinIsTerminal           = func() bool { return isTerminal(os.Stdin) }
)

// yesFlag registers --yes, the consent of a command that deletes.
func yesFlag(fs *flag.FlagSet, yes *bool) {
	fs.BoolVar(yes, "yes", false, "delete without asking (needed when stdin is not a terminal)")
}

// confirm is the consent of every command that deletes: --yes gives it; otherwise it asks
// on a terminal ("y" or "yes"), and off a terminal it refuses with exit 2, so a script
// deletes nothing by accident. what names what would be deleted.
func confirm(yes bool, verb, what string, stderr io.Writer) error {
	if yes {
		return nil
	}
	if !stdinIsTerminal() {
		return &exitError{code: exitUsage, err: fmt.Errorf("%s deletes %s for good: pass --yes to confirm (stdin is not a terminal to ask on); nothing deleted", verb, what)}
	}
	fmt.Fprintf(stderr, "delete %s for good? [y/N] ", what)
	answer, _ := bufio.NewReader(confirmStdin).ReadString('\n')
	if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
		return &exitError{code: exitFailure, err: fmt.Errorf("%s not confirmed; nothing deleted", verb)}
	}
	return nil
}
