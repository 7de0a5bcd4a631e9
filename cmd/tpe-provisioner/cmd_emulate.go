package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/acs/acstest"
	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
	"github.com/tpe-provisioner/tpe-provisioner/sbtest"
)

// The local mode's settings. They are sample values for the emulators, not secrets of any
// real deployment.
const (
	localClientIDs   = "9a3f6c2e-5d41-4b7a-8e0c-1f2d3b4a5c6d,c4b2a1d0-7e6f-4a5b-9c8d-0e1f2a3b4c5d"
	localClientState = "local-sample-client-state"
	localDirectory   = "deploy/local/directory.json"
	localScopeGroup  = "5d0c2a4e-9b1f-4c6a-8e3d-2f7a1b9c0e11"
)

func init() {
	commands["emulate"] = command{
		summary: "run the ACS, Graph (and optionally Service Bus) emulators on loopback and print the settings to use them",
		run:     runEmulate,
	}
}

type emulateFlags struct {
	acsListen, graphListen, sbListen string
	accessKey, graphToken, directory string
	envFile                          string
	faultRate                        float64
	latency                          time.Duration
	seed                             int64
}

func (f *emulateFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.acsListen, "acs-listen", "127.0.0.1:0", "ACS emulator address (loopback)")
	fs.StringVar(&f.graphListen, "graph-listen", "127.0.0.1:0", "Graph emulator address (loopback)")
	fs.StringVar(&f.sbListen, "servicebus-listen", "", "also run the local Service Bus endpoint (needs Node.js); the port is chosen by the endpoint, any non-empty value turns it on")
	fs.StringVar(&f.accessKey, "access-key", "", "ACS access key (base64); random when empty")
	fs.StringVar(&f.graphToken, "graph-token", "", "the only bearer token the Graph emulator accepts; any when empty")
	fs.StringVar(&f.directory, "directory", localDirectory, "directory fixture (JSON) the Graph emulator serves")
	fs.StringVar(&f.envFile, "env-file", "", "also write the settings to this file (shell `export` lines), atomically once every emulator listens, so `until [ -s FILE ]` waits for them")
	fs.Float64Var(&f.faultRate, "fault-rate", 0, "fraction of calls both emulators fail (429 with Retry-After, 500, 503)")
	fs.DurationVar(&f.latency, "latency", 0, "latency added to every emulator call")
	fs.Int64Var(&f.seed, "seed", 1, "seed of the fault generator")
}

// emulators is the running local mode.
type emulators struct {
	acs   *acstest.Server
	graph *graphtest.Server
	sb    *sbtest.Server
	dir   *graphtest.Directory
}

func (e *emulators) Close() {
	if e.sb != nil {
		_ = e.sb.Close()
	}
	if e.graph != nil {
		_ = e.graph.Close()
	}
	if e.acs != nil {
		e.acs.Close()
	}
}

// env returns the settings that point the other commands at these emulators, and
// ACS_EMULATOR_URL, the ACS emulator's base URL (its /_emulator/assignments lists what it
// stores), which no command reads.
func (e *emulators) env() [][2]string {
	kv := [][2]string{
		{"ACS_CONNECTION_STRING", e.acs.ConnectionString()},
		{"ACS_EMULATOR_URL", e.acs.URL()},
		{"GRAPH_ENDPOINT", e.graph.URL()},
		{"TPE_TENANT_ID", e.dir.TenantID()},
		{"TPE_CLIENT_IDS", localClientIDs},
		{"TPE_CLIENT_STATE", localClientState},
		{"TPE_SCOPE_GROUPS", localScopeGroup},
	}
	if e.sb != nil {
		kv = append(kv, [2]string{"SERVICEBUS_CONNECTION_STRING", e.sb.ConnectionString()}, [2]string{"SERVICEBUS_QUEUE", e.sb.Queue()})
	}
	return kv
}

func startEmulators(ctx context.Context, f emulateFlags, sbLog io.Writer) (*emulators, error) {
	dir, err := graphtest.LoadDirectoryFile(f.directory)
	if err != nil {
		return nil, fmt.Errorf("directory fixture: %w (run from the repository root, or pass --directory)", err)
	}
	e := &emulators{dir: dir}
	e.acs = acstest.New(acstest.Options{AccessKey: f.accessKey})
	if f.faultRate > 0 {
		e.acs.SetFaultRate(f.faultRate, f.seed)
	}
	e.acs.SetLatency(f.latency)
	if err := e.acs.Start(f.acsListen); err != nil {
		return nil, fmt.Errorf("ACS emulator: %w", err)
	}
	e.graph = graphtest.New(dir, graphtest.Options{Token: f.graphToken, FaultRate: f.faultRate, Seed: f.seed,
		Latency: f.latency, FaultRetryAfter: time.Second})
	if err := e.graph.Start(f.graphListen); err != nil {
		e.Close()
		return nil, fmt.Errorf("Graph emulator: %w", err)
	}
	if f.sbListen != "" {
		e.sb, err = sbtest.Launch(ctx, sbtest.Options{Queue: "tpe-notifications", Log: sbLog, DuplicateDetection: true})
		if err != nil {
			e.Close()
			return nil, fmt.Errorf("Service Bus endpoint: %w", err)
		}
	}
	return e, nil
}

func runEmulate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f emulateFlags
	fs := flag.NewFlagSet("emulate", flag.ContinueOnError)
	f.register(fs)
	if err := parseNoArgs(fs, args, stdout); err != nil {
		return err
	}
	e, err := startEmulators(ctx, f, stderr)
	if err != nil {
		return err
	}
	defer e.Close()
	script := exportLines(e.env())
	if f.envFile != "" {
		if err := writeFileAtomically(f.envFile, []byte(script)); err != nil {
			return fmt.Errorf("--env-file: %w", err)
		}
	}
	fmt.Fprint(stdout, script)
	fmt.Fprintf(stderr, "\nemulators up: ACS %s (stored assignments: %s/_emulator/assignments), Graph %s/v1.0 (%d users)\n",
		e.acs.URL(), e.acs.URL(), e.graph.URL(), len(e.dir.Users()))
	fmt.Fprintln(stderr, "point the other commands at them: eval the lines above, or run `tpe-provisioner emulate --env-file emu.env &`, wait with `until [ -s emu.env ]; do sleep 0.2; done` and `. ./emu.env`; Ctrl-C stops")
	<-ctx.Done()
	if errors.Is(context.Cause(ctx), context.Canceled) {
		return nil
	}
	return context.Cause(ctx)
}

// exportLines renders settings as shell export lines, each value single-quoted, so `eval`
// or `.` sets them as they are (connection strings hold ';' and '=').
func exportLines(kv [][2]string) string {
	var b strings.Builder
	for _, p := range kv {
		fmt.Fprintf(&b, "export %s=%s\n", p[0], shellQuote(p[1]))
	}
	return b.String()
}

// shellQuote single-quotes s for a POSIX shell ('\” for each ').
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// writeFileAtomically writes data (mode 0600: the file holds the emulators' sample access
// key) to a temporary file next to path and renames it over path, so a reader sees either
// nothing or all of it.
func writeFileAtomically(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
	}
	return err
}
