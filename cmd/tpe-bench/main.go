package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
)

// command is one subcommand: it parses its flags and prints its JSON line to stdout.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
	hidden  bool
}

var commands = map[string]command{
	"throughput": {summary: "queue path: messages per second against the latency bound", run: runThroughput},
	"latency":    {summary: "queue path: each message's receive-to-settle time by outcome, against its critical path", run: runLatency},
	"backfill":   {summary: "backfill.Run over a generated tenant behind the adaptive limiter", run: runBackfill},
	"chaos":      {summary: "faults, directory changes, duplicates and restarts; exits 1 unless converged", run: runChaos},
	"emulators":  {summary: "serve the emulators for a parent tpe-bench (internal)", run: runEmulatorChild, hidden: true},
}

// errNotConverged makes the process exit 1 after the JSON line was printed.
var errNotConverged = errors.New("not converged")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := realMain(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func realMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printUsage(stderr)
		return 2
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "tpe-bench: unknown command %q\n", args[0])
		printUsage(stderr)
		return 2
	}
	err := cmd.run(ctx, args[1:], stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	case errors.Is(err, errNotConverged):
		fmt.Fprintln(stderr, "tpe-bench:", err)
		return 1
	}
	fmt.Fprintln(stderr, "tpe-bench:", err)
	return 1
}

var errUsage = errors.New("usage")

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: tpe-bench <command> [flags]   (tpe-bench <command> -h for its flags)")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if !commands[n].hidden {
			fmt.Fprintf(w, "  %-11s %s\n", n, commands[n].summary)
		}
	}
}

// parse parses a subcommand's flags, mapping a parse error to errUsage.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	return nil
}

// printJSON writes v as one line.
func printJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
