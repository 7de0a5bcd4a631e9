package graphtest

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Operation names for the per-operation faults (FailOn, EmptyListing). Each names the
// Graph operations of one or more routes; OpSubscriptions covers every /subscriptions route.
const (
	OpGetUser            = "getUser"            // GET /users/{id | UPN} and /users('{UPN}')
	OpListUsers          = "listUsers"          // GET /users
	OpCheckMemberGroups  = "checkMemberGroups"  // POST /users/{id}/checkMemberGroups
	OpTransitiveMembers  = "transitiveMembers"  // GET /groups/{id}/transitiveMembers/microsoft.graph.user
	OpDeletedItems       = "deletedItems"       // GET /directory/deletedItems/microsoft.graph.user
	OpGetGroup           = "getGroup"           // GET /groups/{id}
	OpTransitiveMemberOf = "transitiveMemberOf" // GET /users/{id}/transitiveMemberOf
	OpBatch              = "batch"              // POST /$batch, the envelope (its requests fault as their own operations)
	OpSubscriptions      = "subscriptions"      // every /subscriptions route
)

// routeOps maps each route pattern (as Calls names it) to its operation.
var routeOps = map[string]string{
	"GET /v1.0/users":                                              OpListUsers,
	"GET /v1.0/users/{id}":                                         OpGetUser,
	"POST /v1.0/users/{id}/checkMemberGroups":                      OpCheckMemberGroups,
	"GET /v1.0/groups/{id}/transitiveMembers/microsoft.graph.user": OpTransitiveMembers,
	"GET /v1.0/directory/deletedItems/microsoft.graph.user":        OpDeletedItems,
	"GET /v1.0/groups/{id}":                                        OpGetGroup,
	"GET /v1.0/users/{id}/transitiveMemberOf":                      OpTransitiveMemberOf,
	"POST /v1.0/$batch":                                            OpBatch,
	"POST /v1.0/subscriptions":                                     OpSubscriptions,
	"GET /v1.0/subscriptions":                                      OpSubscriptions,
	"GET /v1.0/subscriptions/{id}":                                 OpSubscriptions,
	"PATCH /v1.0/subscriptions/{id}":                               OpSubscriptions,
	"DELETE /v1.0/subscriptions/{id}":                              OpSubscriptions,
	"POST /v1.0/subscriptions/{id}/reauthorize":                    OpSubscriptions,
}

// listingOps are the operations EmptyListing accepts.
var listingOps = []string{OpListUsers, OpTransitiveMembers, OpDeletedItems}

// opFaults are the per-operation faults, guarded by Server.mu.
type opFaults struct {
	failOn map[string]*opFailure // by operation
	strip  map[string]bool       // canonical user property names
	empty  map[string]bool       // listing operations
}

type opFailure struct {
	err  *apiError
	left int // answers still to fail; < 0 means until ClearFaults
}

func knownOp(op string) bool {
	for _, o := range routeOps {
		if o == op {
			return true
		}
	}
	return false
}

// FailOn makes requests of one operation (OpGetUser, OpCheckMemberGroups, ...) fail with
// status in Graph's error shape, after the token check, while every other operation is
// served: times requests, or every request until ClearFaults when times <= 0. A later
// FailOn for the same operation replaces the earlier one. 429, 503 and 504 carry
// Retry-After from Options.FaultRetryAfter. It panics on an unknown operation, so a typo
// cannot leave a test without its fault.
func (s *Server) FailOn(op string, status int, times int) {
	if !knownOp(op) {
		panic(fmt.Sprintf("graphtest: FailOn: unknown operation %q", op))
	}
	if times <= 0 {
		times = -1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ops.failOn == nil {
		s.ops.failOn = map[string]*opFailure{}
	}
	s.ops.failOn[op] = &opFailure{err: faultError(status, s.opts.FaultRetryAfter), left: times}
}

// StripProperty leaves the named user properties (canonical names such as "accountEnabled",
// "assignedPlans", "userType", "id") out of every user the emulator returns — GET
// /users/{id} and the user listings — even when $select asks for them, until ClearFaults.
// It models an answer the client must not trust; Graph itself returns every selected
// property. It panics on a property the emulator does not know.
func (s *Server) StripProperty(names ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ops.strip == nil {
		s.ops.strip = map[string]bool{}
	}
	for _, n := range names {
		canon, ok := userProps[strings.ToLower(n)]
		if !ok || canon != n {
			panic(fmt.Sprintf("graphtest: StripProperty: unknown user property %q", n))
		}
		s.ops.strip[n] = true
	}
}

// EmptyListing makes a user listing (OpListUsers, OpTransitiveMembers, OpDeletedItems)
// answer a valid, empty last page (no value, @odata.count 0 when counted) until
// ClearFaults, as an index that has lost its entries would. It panics on any other
// operation.
func (s *Server) EmptyListing(op string) {
	if !slices.Contains(listingOps, op) {
		panic(fmt.Sprintf("graphtest: EmptyListing: %q is not a user listing", op))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ops.empty == nil {
		s.ops.empty = map[string]bool{}
	}
	s.ops.empty[op] = true
}

// ClearFaults removes every scripted fault: the FailNext queue, FailOn, StripProperty and
// EmptyListing. The random fault rate (Options.FaultRate) stays.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext = nil
	s.ops = opFaults{}
}

// opFault returns the FailOn failure for op, if one is due, and counts it down.
// Callers hold s.mu.
func (s *Server) opFault(op string) *apiError {
	f := s.ops.failOn[op]
	if f == nil {
		return nil
	}
	if f.left > 0 {
		f.left--
		if f.left == 0 {
			delete(s.ops.failOn, op)
		}
	}
	return f.err
}

// stripped returns the properties StripProperty removes (nil when none).
func (s *Server) stripped() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ops.strip) == 0 {
		return nil
	}
	out := make([]string, 0, len(s.ops.strip))
	for p := range s.ops.strip {
		out = append(out, p)
	}
	return out
}

// emptied reports whether EmptyListing holds for the request's operation.
func (s *Server) emptied(r *http.Request) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ops.empty[opOf(r)]
}

type opKey struct{}

// withOp records the request's operation for the handlers.
func withOp(r *http.Request, op string) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), opKey{}, op))
}

// opOf returns the operation Handler recorded for r ("" when none).
func opOf(r *http.Request) string {
	op, _ := r.Context().Value(opKey{}).(string)
	return op
}
