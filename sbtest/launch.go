package sbtest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
)

// Launch installs the endpoint's dependencies if needed, starts it and waits until it
// listens. ctx bounds only the start; the endpoint runs until Close. It fails when node is
// not on PATH.
func Launch(ctx context.Context, opts Options) (*Server, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if _, err := exec.LookPath("node"); err != nil {
		return nil, fmt.Errorf("sbtest needs Node.js: %w", err)
	}
	if err := ensureModules(ctx, opts.Dir); err != nil {
		return nil, err
	}
	cfg, err := json.Marshal(opts.config())
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("node", filepath.Join(opts.Dir, "server.js"))
	cmd.Dir = opts.Dir
	cmd.Env = append(os.Environ(), "SBTEST_CONFIG="+string(cfg))
	cmd.Stderr = newLineWriter(opts.Log)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start node: %w", err)
	}
	s := &Server{opts: opts, cmd: cmd, stdin: stdin, exited: make(chan struct{})}
	ports, err := s.awaitReady(ctx, bufio.NewReader(stdout), opts.Log)
	if err != nil {
		_ = s.Close()
		return nil, err
	}
	s.amqpPort, s.controlPort = ports.AMQP, ports.Control
	return s, nil
}

// readyLine is the first line server.js prints.
type readyLine struct {
	AMQP    int `json:"amqpPort"`
	Control int `json:"controlPort"`
}

// awaitReady reads the ready line, then hands the rest of stdout to log and starts the
// goroutine that reaps the process.
func (s *Server) awaitReady(ctx context.Context, stdout *bufio.Reader, log io.Writer) (readyLine, error) {
	type result struct {
		line readyLine
		err  error
	}
	ch := make(chan result, 1)
	s.copied = make(chan struct{})
	go func() {
		defer close(s.copied)
		raw, err := stdout.ReadBytes('\n')
		var r result
		if err != nil {
			r.err = fmt.Errorf("endpoint exited before listening: %w", err)
		} else if err := json.Unmarshal(raw, &r.line); err != nil || r.line.AMQP == 0 || r.line.Control == 0 {
			r.err = fmt.Errorf("unexpected first line from endpoint: %q", raw)
		}
		ch <- r
		_, _ = io.Copy(newLineWriter(log), stdout)
	}()
	go func() {
		<-s.copied
		s.waitErr = s.cmd.Wait()
		close(s.exited)
	}()
	select {
	case r := <-ch:
		return r.line, r.err
	case <-ctx.Done():
		return readyLine{}, fmt.Errorf("waiting for the endpoint to listen: %w", context.Cause(ctx))
	case <-s.exited:
		return readyLine{}, errors.New("endpoint exited before listening (see its log)")
	}
}
