package acstest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"
)

// Defaults for zero Options fields.
const (
	DefaultMaxSkew            = 15 * time.Minute
	DefaultThrottleRetryAfter = time.Second
)

// Options configures a Server. Zero fields take the defaults.
type Options struct {
	// AccessKey is the base64 access key requests must be signed with. Empty means a random
	// 32-byte key. New panics when it is not base64.
	AccessKey string
	// BearerToken, when set, is accepted as "Authorization: Bearer <token>" in place of a
	// signature (the Entra ID path of the client).
	BearerToken string
	// Now is the server's clock for the x-ms-date check and the request log. Nil means
	// time.Now.
	Now func() time.Time
	// MaxSkew is how far x-ms-date may be from Now. Zero means DefaultMaxSkew.
	MaxSkew time.Duration
	// SubscriptionNotAllowed makes every authenticated request fail with 403
	// SubscriptionNotAllowed, as when the Azure subscription is not enabled for the API.
	SubscriptionNotAllowed bool
	// ThrottleRetryAfter is the Retry-After of random 429 faults. Zero means
	// DefaultThrottleRetryAfter.
	ThrottleRetryAfter time.Duration
	// AcceptResourceAccountAs, when set ("teamsResourceAccount" or "resourceAccount"),
	// makes PUT strict about principalType: it accepts exactly "user" and this spelling, in
	// exact case, and answers anything else with 400 InvalidArgument. Empty is lenient:
	// either spelling, any letter case. The OpenAPI spec's enum says "resourceAccount", the
	// Learn pages "teamsResourceAccount"; no public source says which the service takes.
	AcceptResourceAccountAs string
	// AnswerResourceAccountAs, when set (same two spellings), is how every answer spells a
	// resource account's principalType, and "user" is answered in lower case, whatever was
	// stored. Empty answers the value as stored (as it was sent or seeded).
	AnswerResourceAccountAs string
	// APIVersions are the api-version values accepted; others are 400
	// UnsupportedApiVersion. Nil means DefaultAPIVersions.
	APIVersions []string
	// MaxLog is how many of the most recent requests Requests keeps: a long-running
	// emulator (the local mode, a benchmark) must not grow without bound. Zero means
	// DefaultMaxLog; a negative value keeps every request. Counts is never limited.
	MaxLog int
}

// DefaultMaxLog is the number of requests the log keeps when Options.MaxLog
// is zero.
const DefaultMaxLog = 10_000

// Option adjusts Options for NewServer.
type Option func(*Options)

// WithAccessKey sets the base64 access key.
func WithAccessKey(key string) Option { return func(o *Options) { o.AccessKey = key } }

// WithBearerToken accepts the given bearer token.
func WithBearerToken(token string) Option { return func(o *Options) { o.BearerToken = token } }

// WithClock sets the server's clock.
func WithClock(now func() time.Time) Option { return func(o *Options) { o.Now = now } }

// WithSubscriptionNotAllowed answers 403 SubscriptionNotAllowed to every request.
func WithSubscriptionNotAllowed() Option { return func(o *Options) { o.SubscriptionNotAllowed = true } }

// Server is a running emulator. All methods are safe for concurrent use.
type Server struct {
	mu     sync.Mutex
	opts   Options
	key    []byte
	store  map[storeKey]Assignment
	log    []Request
	counts map[string]int
	faults faultState

	closing   chan struct{}
	closeOnce sync.Once
	url       string
	ts        *httptest.Server  // NewServer
	hs        *http.Server      // Start
	fresh     map[net.Conn]bool // Start's connections that have not sent a request yet
}

// NewServer starts an emulator on a loopback port for the test and closes it when the test
// ends.
func NewServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	var o Options
	for _, f := range opts {
		f(&o)
	}
	s := New(o)
	s.ts = httptest.NewServer(s.Handler())
	s.url = s.ts.URL
	t.Cleanup(s.Close)
	return s
}

// New returns an emulator that is not listening yet: serve Handler yourself or call Start.
func New(opts Options) *Server {
	if opts.AccessKey == "" {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		opts.AccessKey = base64.StdEncoding.EncodeToString(b)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxSkew <= 0 {
		opts.MaxSkew = DefaultMaxSkew
	}
	if opts.ThrottleRetryAfter <= 0 {
		opts.ThrottleRetryAfter = DefaultThrottleRetryAfter
	}
	for _, sp := range []string{opts.AcceptResourceAccountAs, opts.AnswerResourceAccountAs} {
		if sp != "" && !slices.Contains(resourceAccountSpellings, sp) {
			panic("acstest: a resource account principalType is spelled teamsResourceAccount or resourceAccount, not " + sp)
		}
	}
	if opts.APIVersions == nil {
		opts.APIVersions = DefaultAPIVersions
	}
	opts.APIVersions = slices.Clone(opts.APIVersions)
	s := &Server{
		opts:    opts,
		store:   map[storeKey]Assignment{},
		counts:  map[string]int{},
		closing: make(chan struct{}),
	}
	s.SetAccessKey(opts.AccessKey)
	return s
}

// Start listens on addr ("127.0.0.1:0" when empty) and serves until Close.
func (s *Server) Start(addr string) error {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second, ConnState: s.connState}
	s.mu.Lock()
	s.hs, s.url = hs, "http://"+ln.Addr().String()
	s.mu.Unlock()
	go func() { _ = hs.Serve(ln) }() // returns http.ErrServerClosed after Close
	return nil
}

// Close stops the server; stalled requests are released first. It is idempotent.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.closing)
		if s.ts != nil {
			s.ts.Close()
		}
		s.mu.Lock()
		hs := s.hs
		s.mu.Unlock()
		if hs != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			shut := make(chan error, 1)
			go func() { shut <- hs.Shutdown(ctx) }()
			// Shutdown lets requests in flight finish, but it also waits up to 5 s for a
			// connection that never sent a request (a client transport's spare dial) to
			// count as idle; nothing is in flight on those, so they are closed now.
			s.mu.Lock()
			for c := range s.fresh {
				_ = c.Close()
			}
			s.mu.Unlock()
			if <-shut != nil {
				_ = hs.Close()
			}
		}
	})
}

// connState tracks the connections that have not sent a request yet, for Close.
func (s *Server) connState(c net.Conn, state http.ConnState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if state == http.StateNew {
		if s.fresh == nil {
			s.fresh = map[net.Conn]bool{}
		}
		s.fresh[c] = true
	} else {
		delete(s.fresh, c)
	}
}

// Handler returns the emulator's HTTP handler.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// URL returns the base URL ("http://127.0.0.1:PORT"), or "" before Start.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.url
}

// ConnectionString returns "endpoint=http://127.0.0.1:PORT/;accesskey=KEY".
func (s *Server) ConnectionString() string {
	return "endpoint=" + s.URL() + "/;accesskey=" + s.AccessKey()
}

// AccessKey returns the base64 access key requests must be signed with.
func (s *Server) AccessKey() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opts.AccessKey
}

// SetAccessKey rotates the access key; requests signed with the old one fail with 401 from
// now on. It panics when key is not non-empty base64.
func (s *Server) SetAccessKey(key string) {
	raw, err := base64.StdEncoding.DecodeString(key)
	if err != nil || len(raw) == 0 {
		panic("acstest: access key must be non-empty base64")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.AccessKey, s.key = key, raw
}

// SetSubscriptionNotAllowed switches the 403 SubscriptionNotAllowed answer on or off.
func (s *Server) SetSubscriptionNotAllowed(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.SubscriptionNotAllowed = on
}
