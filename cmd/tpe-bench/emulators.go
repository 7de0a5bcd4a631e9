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
// no resets or stalls. Both are served through a jitter (jitter.go), and ACS through the
// settings' wrapACS (the chaos bench's stale-write watch).
type emulators struct {
	acs         *acstest.Server
	acsSrv      *http.Server
	acsURL      string
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
	// jitter is a random extra delay of every call to either emulator, mean jitter (0:
	// none), drawn from jitterSeed.
	jitter     time.Duration
	jitterSeed int64
	// wrapACS, when set, decorates the ACS emulator's handler inside the jitter.
	wrapACS func(http.Handler) http.Handler
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
	a.SetLatency(s.acsLatency)
	var ah http.Handler = a.Handler()
	if s.wrapACS != nil {
		ah = s.wrapACS(ah)
	}
	acsSrv, acsURL, err := serve(newJitter(s.jitter, s.jitterSeed).wrap(ah))
	if err != nil {
		a.Close()
		return nil, fmt.Errorf("ACS emulator: %w", err)
	}
	g := graphtest.New(dir, graphtest.Options{Latency: s.graphLatency, MaxLog: 1})
	f := newFaultInjector(ra)
	graphSrv, graphURL, err := serve(newJitter(s.jitter, s.jitterSeed+1).wrap(f.wrap(g.Handler())))
	if err != nil {
		_ = acsSrv.Close()
		a.Close()
		return nil, fmt.Errorf("Graph emulator: %w", err)
	}
	return &emulators{acs: a, acsSrv: acsSrv, acsURL: acsURL, graph: g, graphFaults: f, graphSrv: graphSrv,
		graphURL: graphURL}, nil
}

// serve serves h on a loopback port and returns the server and its base URL.
func serve(h http.Handler) (*http.Server, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return srv, "http://" + ln.Addr().String(), nil
}

// acsConnectionString is the connection string of the served ACS emulator.
func (e *emulators) acsConnectionString() string {
	return "endpoint=" + e.acsURL + "/;accesskey=" + e.acs.AccessKey()
}

// setFaults makes both emulators fail rate of their requests with the given kinds.
func (e *emulators) setFaults(rate float64, seed int64, kinds ...acstest.FaultKind) {
	e.acs.SetFaultRate(rate, seed, kinds...)
	e.graphFaults.set(rate, seed+1, kinds...)
}

func (e *emulators) close() {
	e.graphFaults.close()
	e.acs.Close() // releases stalled requests first
	_ = e.graphSrv.Close()
	_ = e.acsSrv.Close()
}
