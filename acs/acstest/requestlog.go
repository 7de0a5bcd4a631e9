package acstest

import (
	"maps"
	"net/http"
	"slices"
	"time"
)

// Request is one API request the emulator received (GET /_emulator/* is not logged).
type Request struct {
	Method string
	Path   string
	// Status is the answer's status code, or 0 when the connection was reset or the
	// request stalled until the client gave up.
	Status int
	// Time is the server's clock when the request arrived.
	Time time.Time
	// Date is the x-ms-date header as received ("" for bearer requests).
	Date string
}

// Requests returns the request log in arrival order: the most recent
// Options.MaxLog requests.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	log := s.log
	if limit := s.logLimit(); limit > 0 && len(log) > limit {
		log = log[len(log)-limit:]
	}
	return slices.Clone(log)
}

// logLimit is the request log's bound, or 0 for none. Callers hold mu.
func (s *Server) logLimit() int {
	switch l := s.opts.MaxLog; {
	case l == 0:
		return DefaultMaxLog
	case l < 0:
		return 0
	default:
		return l
	}
}

// Counts returns the number of API requests received per HTTP method, faults included.
func (s *Server) Counts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.counts)
}

func (s *Server) record(r *http.Request, at time.Time, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = append(s.log, Request{Method: r.Method, Path: r.URL.Path, Status: status, Time: at, Date: r.Header.Get("x-ms-date")})
	if limit := s.logLimit(); limit > 0 && len(s.log) >= 2*limit {
		// Drop the older half in one copy: amortized O(1) per request, at most 2×limit kept.
		s.log = append(s.log[:0:0], s.log[len(s.log)-limit:]...)
	}
	s.counts[r.Method]++
}
