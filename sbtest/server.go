package sbtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// Server is a running endpoint. Its methods are safe for concurrent use.
type Server struct {
	opts        Options
	cmd         *exec.Cmd
	stdin       io.WriteCloser
	amqpPort    int
	controlPort int

	copied  chan struct{} // closed when stdout is drained
	exited  chan struct{} // closed when the process is reaped
	waitErr error

	closeOnce sync.Once
	closeErr  error
}

// ConnectionString is what azservicebus.NewClientFromConnectionString takes. With
// UseDevelopmentEmulator=true the client speaks plain AMQP (no TLS) to the endpoint's
// host and port.
func (s *Server) ConnectionString() string {
	return fmt.Sprintf("Endpoint=sb://127.0.0.1:%d/;SharedAccessKeyName=%s;SharedAccessKey=%s;UseDevelopmentEmulator=true",
		s.amqpPort, s.opts.KeyName, s.opts.Key)
}

// Queue is the name of the queue the endpoint serves.
func (s *Server) Queue() string { return s.opts.Queue }

// Addr is the AMQP listener's host:port.
func (s *Server) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.amqpPort) }

// Stats is a queue's state at one instant.
type Stats struct {
	Active       int `json:"active"`       // available for delivery
	Locked       int `json:"locked"`       // delivered in peek-lock mode, not yet settled
	DeadLettered int `json:"deadLettered"` // in the $DeadLetterQueue (available or locked)
	Completed    int `json:"completed"`    // completed (or received in receive-and-delete mode)
	Expired      int `json:"expired"`      // dropped because their time to live ran out
	Deliveries   int `json:"deliveries"`   // transfers to receivers so far, redeliveries included
	Scheduled    int `json:"scheduled"`    // scheduled for later, not yet enqueued
	Duplicates   int `json:"duplicates"`   // sends dropped by duplicate detection
}

// Stats reads the queue's counts.
func (s *Server) Stats(ctx context.Context) (Stats, error) {
	var body struct {
		Queues map[string]Stats `json:"queues"`
	}
	if err := s.control(ctx, http.MethodGet, "/stats", &body); err != nil {
		return Stats{}, err
	}
	st, ok := body.Queues[strings.ToLower(s.opts.Queue)]
	if !ok {
		return Stats{}, fmt.Errorf("endpoint reports no queue %q", s.opts.Queue)
	}
	return st, nil
}

// DropConnections cuts every client connection at the socket, as a network fault would,
// and returns how many it cut. Locks held by the dropped receivers stay until they expire,
// as on Service Bus.
func (s *Server) DropConnections(ctx context.Context) (int, error) {
	var body struct {
		Dropped int `json:"dropped"`
	}
	if err := s.control(ctx, http.MethodPost, "/drop", &body); err != nil {
		return 0, err
	}
	return body.Dropped, nil
}

func (s *Server) control(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, fmt.Sprintf("http://127.0.0.1:%d%s", s.controlPort, path), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("sbtest control %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("sbtest control %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// Close stops the endpoint: it closes the endpoint's stdin (server.js exits on EOF) and
// kills it if it has not exited within five seconds. Calling Close again is a no-op.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		_ = s.stdin.Close()
		select {
		case <-s.exited:
		case <-time.After(5 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
		if s.waitErr != nil && s.cmd.ProcessState != nil && !s.cmd.ProcessState.Success() {
			s.closeErr = fmt.Errorf("endpoint exited: %w", s.waitErr)
		}
	})
	return s.closeErr
}
