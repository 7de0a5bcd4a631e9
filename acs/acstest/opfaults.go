package acstest

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// methods are the verbs FailOn accepts: the assignment operations.
var methods = []string{http.MethodGet, http.MethodPut, http.MethodDelete}

// methodFault is a FailOn script for one verb.
type methodFault struct {
	status     int
	retryAfter time.Duration
	left       int // answers still to fail; < 0 means until ClearFaults
}

// FailOn makes authenticated requests of one verb ("GET", "PUT" or "DELETE") fail with
// status and the service's error body, while the other verbs are served: times requests, or
// every request until ClearFaults when times <= 0. A later FailOn for the same verb replaces
// the earlier one. Unlike FailNext it applies after authentication, as a permission the
// credential lacks for one operation would (403 on PUT only); 429 carries Retry-After from
// Options.ThrottleRetryAfter. It panics on any other verb, so a typo cannot leave a test
// without its fault.
func (s *Server) FailOn(method string, status int, times int) {
	m := strings.ToUpper(method)
	if !slices.Contains(methods, m) || m != method {
		panic(fmt.Sprintf("acstest: FailOn: %q is not GET, PUT or DELETE", method))
	}
	if times <= 0 {
		times = -1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults.onMethod == nil {
		s.faults.onMethod = map[string]*methodFault{}
	}
	var ra time.Duration
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		ra = s.opts.ThrottleRetryAfter
	}
	s.faults.onMethod[m] = &methodFault{status: status, retryAfter: ra, left: times}
}

// ClearFaults removes every scripted fault: the FailNext/ResetNext/StallNext queue and
// FailOn. The random fault rate (SetFaultRate) and latency stay.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.queue = nil
	s.faults.onMethod = nil
}

// methodFault returns the FailOn fault due for this request's verb, if any, counting it
// down.
func (s *Server) methodFault(method string) (fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.faults.onMethod[method]
	if f == nil {
		return fault{}, false
	}
	if f.left > 0 {
		f.left--
		if f.left == 0 {
			delete(s.faults.onMethod, method)
		}
	}
	return fault{kind: FaultStatus, status: f.status, retryAfter: f.retryAfter}, true
}
