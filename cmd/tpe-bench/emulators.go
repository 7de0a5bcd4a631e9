package main

import (
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/acs/acstest"
	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
)

// emulators are the ACS and Graph emulators on loopback ports. Graph is served through a
// fault injector, since graphtest's own random faults are fixed at construction and have
// no resets or stalls.
type emulators struct {
	acs         *acstest.Server
	graph       *graphtest.Server
	graphFaults *faultInjector
	graphSrv    *http.Server
	graphURL    string
}

// emulatorSettings say how slow and how throttled the emulators are.
type emulatorSettings struct {
	acsLatency, graphLatency time.Duration
	// throttleRetryAfter is the Retry-After of injected 429s (0: one second).
	throttleRetryAfter time.Duration
	// keepACSLog keeps every ACS request in the emulator's log (chaos counts the faults
	// from it); otherwise the log keeps only the last request.
	keepACSLog bool
}

func startEmulators(dir *graphtest.Directory, s emulatorSettings) (*emulators, error) {
	ra := s.throttleRetryAfter
	if ra <= 0 {
		ra = time.Second
	}
	// MaxLog 1: the request logs are for tests; a long run should not keep them.
	o := acstest.Options{ThrottleRetryAfter: ra, MaxLog: 1}
	if s.keepACSLog {
		o.MaxLog = -1
	}
	a := acstest.New(o)
	if err := a.Start("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("ACS emulator: %w", err)
	}
	a.SetLatency(s.acsLatency)
	g := graphtest.New(dir, graphtest.Options{Latency: s.graphLatency, MaxLog: 1})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		a.Close()
		return nil, fmt.Errorf("Graph emulator: %w", err)
	}
	f := newFaultInjector(ra)
	srv := &http.Server{Handler: f.wrap(g.Handler()), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return &emulators{acs: a, graph: g, graphFaults: f, graphSrv: srv, graphURL: "http://" + ln.Addr().String()}, nil
}

// setFaults makes both emulators fail rate of their requests with the given kinds.
func (e *emulators) setFaults(rate float64, seed int64, kinds ...acstest.FaultKind) {
	e.acs.SetFaultRate(rate, seed, kinds...)
	e.graphFaults.set(rate, seed+1, kinds...)
}

func (e *emulators) close() {
	e.graphFaults.close()
	_ = e.graphSrv.Close()
	e.acs.Close()
}
