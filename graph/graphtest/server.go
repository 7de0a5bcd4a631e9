package graphtest

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/internal/statusrec"
)

// Options tune the emulator. The zero value serves any bearer token, 100 users per page
// without $top, at most 999 with it, with no faults and the real clock.
type Options struct {
	// Token, when set, is the only bearer token accepted; any other gets 401
	// InvalidAuthenticationToken. Without it any "Bearer ..." is accepted.
	Token string
	// PageSize is the page size when the request has no $top (Graph: 100).
	PageSize int
	// MaxPageSize caps $top (Graph: 999; lower it to test paging with small directories).
	MaxPageSize int
	// Latency is added to every request.
	Latency time.Duration
	// FaultRate is the probability (0..1) that a request fails with 429, 500 or 503,
	// drawn from a generator seeded with Seed, so a run is reproducible.
	FaultRate float64
	Seed      int64
	// FaultRetryAfter is the Retry-After sent with random 429/503 faults and FailOn.
	FaultRetryAfter time.Duration
	// RetryAfterWholeSeconds sends Retry-After rounded up to whole seconds ("10", as older
	// samples show) instead of with a fraction when the wait has one ("2.128", as the
	// current throttling guidance shows). Either way it is at least the smallest positive
	// value.
	RetryAfterWholeSeconds bool
	// MaxSubscriptions is the per-app subscription quota (Graph: 100 for users and groups).
	MaxSubscriptions int
	// Clock is the emulator's "now" (subscription expirations, deletions, error dates).
	Clock func() time.Time
	// LenientAdvancedQueries serves an OData cast on a transitive members list without the
	// advanced query parameters (ConsistencyLevel: eventual and $count=true). By default
	// the emulator is strict and answers 400 Request_UnsupportedQuery, as the advanced
	// queries documentation lists the cast among the queries that need them; the service
	// has been seen to serve it anyway, so this switch is there for code that must cope.
	LenientAdvancedQueries bool
	// AdvancedQueryLag serves advanced-query listings (those sent with ConsistencyLevel:
	// eventual) from a copy of the directory up to this old, as Graph's separately indexed,
	// eventually consistent store may be, while direct reads (a user, checkMemberGroups)
	// see every change at once. The copy is taken on the first such listing, again once it
	// reaches this age, and whenever SnapshotListings is called. Zero means no lag.
	AdvancedQueryLag time.Duration
	// MaxLog bounds the request log (default 10,000 entries; older entries are dropped) so
	// long benchmarks keep memory modest. Counters are never dropped.
	MaxLog int
}

// Option changes Options; NewServer takes any number.
type Option func(*Options)

// Server is the emulator: an http.Handler over a Directory, plus scripted faults, a
// request log and call counters. Build it with New or NewServer.
type Server struct {
	dir  *Directory
	opts Options
	mux  *http.ServeMux

	mu       sync.Mutex
	rng      *rand.Rand
	failNext []*apiError
	ops      opFaults
	lag
	log    []Request
	counts map[string]int
	total  int
	reqSeq uint64
	subs   *subscriptions

	ts  *httptest.Server
	srv *http.Server
	url string
}

// Request is one entry of the request log.
type Request struct {
	Method string
	Path   string // unescaped path
	Query  string // raw query
	Route  string // the route pattern that served it, e.g. "GET /v1.0/users/{id}"
	Status int
	// Header holds the request's headers without Authorization.
	Header http.Header
}

// New returns an emulator over dir. It does not listen: use Handler, or Start.
func New(dir *Directory, o Options) *Server {
	if o.PageSize <= 0 {
		o.PageSize = 100
	}
	if o.MaxPageSize <= 0 || o.MaxPageSize > 999 {
		o.MaxPageSize = 999
	}
	if o.MaxSubscriptions <= 0 {
		o.MaxSubscriptions = 100
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.MaxLog <= 0 {
		o.MaxLog = 10_000
	}
	dir.SetClock(o.Clock)
	s := &Server{
		dir:    dir,
		opts:   o,
		rng:    rand.New(rand.NewPCG(uint64(o.Seed), 0x6772617068)),
		counts: map[string]int{},
		subs:   newSubscriptions(),
	}
	s.routes()
	return s
}

// NewServer starts an emulator on a loopback port for the test and closes it when the test
// ends.
func NewServer(t testing.TB, dir *Directory, opts ...Option) *Server {
	t.Helper()
	var o Options
	for _, f := range opts {
		f(&o)
	}
	s := New(dir, o)
	s.ts = httptest.NewServer(s.Handler())
	s.url = s.ts.URL
	t.Cleanup(s.ts.Close)
	return s
}

// Start listens on addr (e.g. "127.0.0.1:0") and serves in the background until Close.
func (s *Server) Start(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("graphtest: listen: %w", err)
	}
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	s.url = "http://" + ln.Addr().String()
	go func() { _ = s.srv.Serve(ln) }()
	return nil
}

// Close stops a server started with Start or NewServer.
func (s *Server) Close() error {
	if s.ts != nil {
		s.ts.Close()
	}
	if s.srv != nil {
		if err := s.srv.Close(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	return nil
}

// URL is the emulator's endpoint (scheme://host:port, without /v1.0): the graph client's
// Options.Endpoint.
func (s *Server) URL() string { return s.url }

// Directory returns the directory the emulator serves; mutate it while the server runs.
func (s *Server) Directory() *Directory { return s.dir }

func (s *Server) now() time.Time { return s.opts.Clock() }

func (s *Server) routes() {
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /v1.0/users", s.listUsers)
	s.mux.HandleFunc("GET /v1.0/users/{id}", s.getUser)
	s.mux.HandleFunc("POST /v1.0/users/{id}/checkMemberGroups", s.checkMemberGroups)
	s.mux.HandleFunc("GET /v1.0/users/{id}/transitiveMemberOf", s.transitiveMemberOf)
	s.mux.HandleFunc("GET /v1.0/groups/{id}", s.getGroup)
	s.mux.HandleFunc("POST /v1.0/$batch", s.batch)
	// Graph accepts the type cast with its full namespace or the "graph." alias (which the
	// SDK sends); both count under the full route name.
	s.mux.HandleFunc("GET /v1.0/users/$count", s.countUsers)
	for _, cast := range []string{"microsoft.graph.user", "graph.user"} {
		s.mux.HandleFunc("GET /v1.0/groups/{id}/transitiveMembers/"+cast, s.transitiveUsers)
		s.mux.HandleFunc("GET /v1.0/groups/{id}/transitiveMembers/"+cast+"/$count", s.countTransitiveUsers)
		s.mux.HandleFunc("GET /v1.0/directory/deletedItems/"+cast, s.deletedUsers)
	}
	s.mux.HandleFunc("POST /v1.0/subscriptions", s.createSubscription)
	s.mux.HandleFunc("GET /v1.0/subscriptions", s.listSubscriptions)
	s.mux.HandleFunc("GET /v1.0/subscriptions/{id}", s.getSubscription)
	s.mux.HandleFunc("PATCH /v1.0/subscriptions/{id}", s.patchSubscription)
	s.mux.HandleFunc("DELETE /v1.0/subscriptions/{id}", s.deleteSubscription)
	s.mux.HandleFunc("POST /v1.0/subscriptions/{id}/reauthorize", s.reauthorizeSubscription)
}

// Handler returns the emulator's handler: request log and counters, latency, bearer-token
// check, scripted faults, then the route.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.serve(w, r, s.opts.Latency) })
}

// serve is Handler for one request, with latency added before it is served: a request of a
// $batch is served the same way, without latency of its own (the batch paid it once).
func (s *Server) serve(w http.ResponseWriter, r *http.Request, latency time.Duration) {
	received := r // the request log shows what was sent
	r = unquoteUserKey(r)
	_, route := s.mux.Handler(r)
	route = strings.Replace(route, "/graph.user", "/microsoft.graph.user", 1)
	rec := &statusrec.Recorder{ResponseWriter: w}
	reqID := s.nextRequestID()
	rec.Header().Set("request-id", reqID)
	// Graph echoes the caller's client-request-id; without one, the emulator answers
	// with the request-id (its own choice: observed, not documented).
	clientID := r.Header.Get("client-request-id")
	if clientID == "" {
		clientID = reqID
	}
	rec.Header().Set("client-request-id", clientID)
	defer s.record(received, route, rec)
	if latency > 0 {
		select {
		case <-time.After(latency):
		case <-r.Context().Done():
			return
		}
	}
	if e := s.authenticate(r); e != nil {
		s.writeError(rec, r, e)
		return
	}
	op := routeOps[route]
	r = withOp(r, op)
	if e := s.fault(op); e != nil {
		s.writeError(rec, r, e)
		return
	}
	if route == "" {
		s.writeError(rec, r, badRequest("BadRequest", "Resource not found for the segment '"+lastSegment(r.URL.Path)+"'."))
		return
	}
	s.mux.ServeHTTP(rec, r)
}

func (s *Server) authenticate(r *http.Request) *apiError {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || strings.TrimSpace(tok) == "" {
		return &apiError{status: http.StatusUnauthorized, code: "InvalidAuthenticationToken", msg: "Access token is empty."}
	}
	if s.opts.Token != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(s.opts.Token)) != 1 {
		return &apiError{status: http.StatusUnauthorized, code: "InvalidAuthenticationToken", msg: "Access token validation failure. Invalid audience."}
	}
	return nil
}

func (s *Server) nextRequestID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqSeq++
	return fmt.Sprintf("6b1e0c2a-0000-4000-8000-%012x", s.reqSeq)
}

func (s *Server) record(r *http.Request, route string, rec *statusrec.Recorder) {
	h := r.Header.Clone()
	h.Del("Authorization")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts[route]++
	s.total++
	if len(s.log) >= s.opts.MaxLog {
		s.log = append(s.log[:0], s.log[len(s.log)/2:]...)
	}
	s.log = append(s.log, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Route: route, Status: rec.Status, Header: h})
}

// Requests returns a copy of the request log (at most Options.MaxLog recent entries),
// oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.log...)
}

// Calls returns how many requests a route served (its pattern, e.g.
// "GET /v1.0/users/{id}"), faults included; "" counts unrouted requests.
func (s *Server) Calls(route string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[route]
}

// TotalCalls returns how many requests the emulator received.
func (s *Server) TotalCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

func lastSegment(p string) string {
	return p[strings.LastIndex(p, "/")+1:]
}
