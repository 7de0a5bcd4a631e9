package acstest

import (
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"time"
)

// FaultKind is a way the emulator can fail a request.
type FaultKind int

const (
	// FaultStatus answers with a given status code (FailNext); random faults use the three
	// kinds below instead.
	FaultStatus FaultKind = iota
	// FaultThrottle answers 429 TooManyRequests with Retry-After.
	FaultThrottle
	// FaultInternal answers 500 InternalServerError.
	FaultInternal
	// FaultUnavailable answers 503 ServiceUnavailable.
	FaultUnavailable
	// FaultReset closes the connection with a TCP reset and no answer.
	FaultReset
	// FaultStall never answers: the request hangs until the client gives up (its try
	// timeout or context) or the server closes.
	FaultStall
)

// DefaultFaultKinds are the kinds SetFaultRate picks from when given none.
var DefaultFaultKinds = []FaultKind{FaultThrottle, FaultInternal, FaultUnavailable}

// fault is one scheduled failure.
type fault struct {
	kind       FaultKind
	status     int
	retryAfter time.Duration
}

// faultState holds the scripted queue and the random fault generator; guarded by Server.mu.
type faultState struct {
	queue    []fault
	rate     float64
	rng      *rand.Rand
	kinds    []FaultKind
	latency  time.Duration
	onMethod map[string]*methodFault // FailOn, by verb
}

// FailNext queues a fault: the next API request not already claimed by an earlier queued
// fault is answered with status (and Retry-After when retryAfter > 0) instead of being
// served. Queued faults are used in order, before random ones.
func (s *Server) FailNext(status int, retryAfter time.Duration) {
	s.enqueue(fault{kind: FaultStatus, status: status, retryAfter: retryAfter})
}

// ResetNext queues a connection reset.
func (s *Server) ResetNext() { s.enqueue(fault{kind: FaultReset}) }

// StallNext queues a request that is never answered.
func (s *Server) StallNext() { s.enqueue(fault{kind: FaultStall}) }

func (s *Server) enqueue(f fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.queue = append(s.faults.queue, f)
}

// SetFaultRate makes each API request fail with probability rate (0 turns random faults
// off), with a kind drawn from kinds (DefaultFaultKinds when none). The draws come from a
// generator seeded with seed, so a run is repeatable for a given request order.
func (s *Server) SetFaultRate(rate float64, seed int64, kinds ...FaultKind) {
	if len(kinds) == 0 {
		kinds = DefaultFaultKinds
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.rate = rate
	s.faults.rng = rand.New(rand.NewPCG(uint64(seed), 0x61637374657374)) // "acstest"
	s.faults.kinds = append([]FaultKind(nil), kinds...)
}

// SetLatency delays every API answer by d.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.latency = d
}

// nextFault returns the fault for this request, if any.
func (s *Server) nextFault() (fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fs := &s.faults
	if len(fs.queue) > 0 {
		f := fs.queue[0]
		fs.queue = fs.queue[1:]
		return f, true
	}
	if fs.rate <= 0 || fs.rng == nil || fs.rng.Float64() >= fs.rate {
		return fault{}, false
	}
	f := fault{kind: fs.kinds[fs.rng.IntN(len(fs.kinds))]}
	switch f.kind {
	case FaultThrottle:
		f.status, f.retryAfter = http.StatusTooManyRequests, s.opts.ThrottleRetryAfter
	case FaultInternal:
		f.status = http.StatusInternalServerError
	case FaultUnavailable:
		f.status = http.StatusServiceUnavailable
	}
	return f, true
}

func (s *Server) latency() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults.latency
}

// applyFault fails the request as f says and returns the status recorded (0: no answer).
func (s *Server) applyFault(w http.ResponseWriter, r *http.Request, f fault) int {
	switch f.kind {
	case FaultReset:
		resetConnection(w)
		return 0
	case FaultStall:
		select {
		case <-r.Context().Done():
		case <-s.closing:
		}
		return 0
	}
	setRetryAfter(w.Header(), f.retryAfter)
	writeError(w, f.status, codeFor(f.status), "fault injected by the emulator")
	return f.status
}

// resetConnection hijacks the connection and closes it with a TCP RST.
func resetConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return // HTTP/2 or a recorder: nothing to reset; the handler returns with no body
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = conn.Close()
}

// setRetryAfter writes Retry-After in whole seconds (rounded up), and retry-after-ms too
// when d is not a whole number of seconds, so short test waits stay short.
func setRetryAfter(h http.Header, d time.Duration) {
	if d <= 0 {
		return
	}
	h.Set("Retry-After", strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10))
	if d%time.Second != 0 {
		h.Set("retry-after-ms", strconv.FormatInt(max(d.Milliseconds(), 1), 10))
	}
}
