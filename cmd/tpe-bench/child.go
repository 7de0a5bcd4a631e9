package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
)

// childEnv marks a tpe-bench process started as the emulator child (tests use it to tell
// their binary to act as tpe-bench).
const childEnv = "TPE_BENCH_CHILD"

// childInfo is the one line the child prints once it serves. The connection string holds
// the emulator's access key; it only travels over the pipe between the two processes.
type childInfo struct {
	ACSConnectionString string `json:"acs_connection_string"`
	GraphURL            string `json:"graph_url"`
}

// worldSpec is what both processes derive the tenant from, identically.
type worldSpec struct {
	users                    int
	seed                     int64
	revokeShare              float64
	acsLatency, graphLatency time.Duration
}

func (w worldSpec) args() []string {
	return []string{"emulators", "--users", strconv.Itoa(w.users), "--seed", strconv.FormatInt(w.seed, 10),
		"--revoke-share", strconv.FormatFloat(w.revokeShare, 'g', -1, 64),
		"--acs-latency", w.acsLatency.String(), "--graph-latency", w.graphLatency.String()}
}

// runEmulatorChild generates the tenant, serves it and prints childInfo, then serves until
// its standard input closes (the parent is done or gone).
func runEmulatorChild(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var w worldSpec
	fs := flag.NewFlagSet("emulators", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&w.users, "users", 10000, "generated directory size")
	fs.Int64Var(&w.seed, "seed", 1, "seed of the directory and the ACS seeding")
	fs.Float64Var(&w.revokeShare, "revoke-share", 0.3, "share of ineligible principals seeded with our id")
	fs.DurationVar(&w.acsLatency, "acs-latency", 0, "added ACS latency")
	fs.DurationVar(&w.graphLatency, "graph-latency", 0, "added Graph latency")
	if err := parse(fs, args); err != nil {
		return err
	}
	dir := graphtest.Generate(w.users, w.seed, graphtest.DefaultMix)
	emu, err := startEmulators(dir, emulatorSettings{acsLatency: w.acsLatency, graphLatency: w.graphLatency})
	if err != nil {
		return err
	}
	defer emu.close()
	seedRandom(emu.acs, dir, benchPolicy(), w.seed, w.revokeShare)
	if err := printJSON(stdout, childInfo{ACSConnectionString: emu.acsConnectionString(), GraphURL: emu.graphURL}); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	return nil
}

// child is a running emulator child process.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	info  childInfo
}

// startChild starts this binary as the emulator child and waits until it serves.
func startChild(ctx context.Context, w worldSpec, stderr io.Writer) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("emulator child: %w", err)
	}
	cmd := exec.CommandContext(ctx, exe, w.args()...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("emulator child: %w", err)
	}
	c := &child{cmd: cmd, stdin: stdin}
	line, err := bufio.NewReader(out).ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &c.info)
	}
	if err != nil {
		c.stop()
		return nil, fmt.Errorf("emulator child did not start: %w", err)
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	return c, nil
}

// stop ends the child and returns its resource usage (its own peak RSS and CPU, from
// wait4: other children of this process, such as a --compare run, do not count).
func (c *child) stop() usage {
	_ = c.stdin.Close()
	if err := c.cmd.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		return usage{}
	}
	ru, ok := c.cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return usage{}
	}
	return rusage(ru)
}
