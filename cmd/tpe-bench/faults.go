package main

import (
	"encoding/json"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/acs/acstest"
)

// faultInjector fails a share of the requests to the handler it wraps, with the same kinds
// acstest offers: 429 with Retry-After, 500, 503, a TCP reset, or a stall that never
// answers (the client's timeout must end it). Draws come from a seeded generator.
type faultInjector struct {
	retryAfter time.Duration
	closing    chan struct{}
	closeOnce  sync.Once
	injected   atomic.Int64

	mu    sync.Mutex
	rate  float64
	rng   *rand.Rand
	kinds []acstest.FaultKind
}

func newFaultInjector(retryAfter time.Duration) *faultInjector {
	return &faultInjector{retryAfter: retryAfter, closing: make(chan struct{})}
}

// set changes the fault rate (0 turns faults off) and kinds (acstest's defaults when none).
func (f *faultInjector) set(rate float64, seed int64, kinds ...acstest.FaultKind) {
	if len(kinds) == 0 {
		kinds = acstest.DefaultFaultKinds
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rate, f.kinds = rate, kinds
	f.rng = rand.New(rand.NewPCG(uint64(seed), 0x6661756c74))
}

// draw returns the fault for this request, if any.
func (f *faultInjector) draw() (acstest.FaultKind, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rate <= 0 || f.rng.Float64() >= f.rate {
		return 0, false
	}
	return f.kinds[f.rng.IntN(len(f.kinds))], true
}

func (f *faultInjector) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind, ok := f.draw()
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		f.injected.Add(1)
		switch kind {
		case acstest.FaultReset:
			reset(w)
		case acstest.FaultStall:
			select {
			case <-r.Context().Done():
			case <-f.closing:
			}
		case acstest.FaultThrottle:
			// Graph sends whole seconds and kiota's retry handler reads no other header; a
			// wait under a second (chaos compresses time) is sent as 0.
			w.Header().Set("Retry-After", strconv.Itoa(int(f.retryAfter/time.Second)))
			graphError(w, http.StatusTooManyRequests, "TooManyRequests")
		case acstest.FaultUnavailable:
			w.Header().Set("Retry-After", "0")
			graphError(w, http.StatusServiceUnavailable, "ServiceUnavailable")
		default:
			graphError(w, http.StatusInternalServerError, "UnknownError")
		}
	})
}

func (f *faultInjector) close() { f.closeOnce.Do(func() { close(f.closing) }) }

func graphError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code,
		"message": "fault injected by tpe-bench"}})
}

// reset closes the connection with a TCP RST and no answer.
func reset(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = conn.Close()
}
