// Command tpe-provisioner keeps an Azure Communication Services resource's Teams Phone
// extensibility access assignments in step with Microsoft Entra ID. See the README.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// command is one subcommand: it parses its own flags from args (parseArgs) and returns an
// exit error. args, detail and exits feed its --help (printHelp).
type command struct {
	summary string
	args    string     // the positional arguments in the synopsis, e.g. "OBJECT_ID|UPN"
	detail  string     // more help after the summary
	exits   []exitCode // exit codes besides the common ones
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{}

// exitError carries a specific exit code (e.g. 3 when the revoke brake refuses a plan).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

func realMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help":
		usage(stdout)
		return exitOK
	case "help":
		if len(args) == 1 {
			usage(stdout)
			return exitOK
		}
		if _, ok := commands[args[1]]; !ok {
			return unknownCommand(stderr, args[1])
		}
		args = []string{args[1], "--help"}
	case "--version", "-version":
		args = append([]string{"version"}, args[1:]...)
	}
	cmd, ok := commands[args[0]]
	if !ok {
		return unknownCommand(stderr, args[0])
	}
	ctx, stop := signalContext()
	defer stop()
	err := cmd.run(ctx, args[1:], stdout, stderr)
	var (
		ee *exitError
		ue *usageError
	)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "tpe-provisioner %s: %v\nrun 'tpe-provisioner %s --help' for usage\n", args[0], ue, args[0])
		return exitUsage
	case errors.As(err, &ee):
		if ee.err != nil {
			fmt.Fprintf(stderr, "tpe-provisioner %s: %v\n", args[0], ee.err)
		}
		return ee.code
	}
	fmt.Fprintf(stderr, "tpe-provisioner %s: %v\n", args[0], err)
	return exitFailure
}

// signalContext is cancelled by the first SIGINT/SIGTERM (drain); a second one exits at once.
func signalContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case <-ch:
			cancel()
		case <-ctx.Done():
			signal.Stop(ch)
			return
		}
		<-ch
		fmt.Fprintln(os.Stderr, "tpe-provisioner: second signal, exiting now")
		os.Exit(130)
	}()
	return ctx, func() { signal.Stop(ch); cancel() }
}
