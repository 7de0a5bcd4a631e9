package main

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/tpe-provisioner/tpe-provisioner/acs"
	"github.com/tpe-provisioner/tpe-provisioner/graph"
	"github.com/tpe-provisioner/tpe-provisioner/internal/adapt"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// benchToken is the bearer token the Graph emulator is handed; it accepts any.
const benchToken = "tpe-bench-token"

// staticCredential hands the loopback Graph emulator a constant token.
type staticCredential struct{}

func (staticCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: benchToken, ExpiresOn: time.Now().Add(time.Hour)}, nil
}

var _ azcore.TokenCredential = staticCredential{}

// counter counts the HTTP requests that pass through a transport, retries included.
type counter struct{ n atomic.Int64 }

func (c *counter) wrap(next http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		c.n.Add(1)
		return next.RoundTrip(r)
	})
}

func (c *counter) load() int64 { return c.n.Load() }

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// clientSettings say how the bench builds the two clients.
type clientSettings struct {
	acsConnectionString string
	graphURL            string
	tenantID            string
	// idleConns is the transport's MaxIdleConnsPerHost; it should cover the concurrency,
	// or connections are closed and reopened under load.
	idleConns int
	// wrap decorates both innermost transports (the backfill's limiter); nil leaves them.
	wrap func(http.RoundTripper) http.RoundTripper
	// acsTryTimeout, graphTimeout and retryDelay shorten the clients' waits (chaos); zero
	// keeps the clients' defaults.
	acsTryTimeout, graphTimeout, retryDelay time.Duration
	maxThrottleWait                         time.Duration
}

// clients are the real clients, adapted to the worker's interfaces, with call counters.
type clients struct {
	acs       *acs.Client
	graph     *graph.Client
	store     adapt.ACS
	dir       adapt.Graph
	acsCalls  *counter
	graphHTTP *counter
}

func newClients(s clientSettings) (*clients, error) {
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConns = 0
	base.MaxIdleConnsPerHost = max(s.idleConns, 2)
	wrap := s.wrap
	if wrap == nil {
		wrap = func(rt http.RoundTripper) http.RoundTripper { return rt }
	}
	c := &clients{acsCalls: &counter{}, graphHTTP: &counter{}}
	ao := &acs.Options{MaxThrottleWait: s.maxThrottleWait}
	ao.Transport = &http.Client{Transport: c.acsCalls.wrap(wrap(base))}
	ao.Retry.TryTimeout = s.acsTryTimeout
	ao.Retry.RetryDelay = s.retryDelay
	ac, err := acs.NewClientFromConnectionString(s.acsConnectionString, ao)
	if err != nil {
		return nil, fmt.Errorf("ACS client: %w", err)
	}
	gc, err := graph.NewClient(staticCredential{}, &graph.Options{
		Endpoint:   s.graphURL,
		HTTPClient: &http.Client{Transport: c.graphHTTP.wrap(wrap(base)), Timeout: s.graphTimeout},
	})
	if err != nil {
		return nil, fmt.Errorf("Graph client: %w", err)
	}
	c.acs, c.graph = ac, gc
	c.store = adapt.ACS{Client: ac, Tenant: s.tenantID}
	c.dir = adapt.Graph{Client: gc}
	return c, nil
}

// calls returns the Graph and ACS requests sent so far.
func (c *clients) calls() (graphCalls, acsCalls int64) { return c.graphHTTP.load(), c.acsCalls.load() }

// reconciler returns the reconciler the worker and backfill share.
func (c *clients) reconciler(p worker.Policy) *worker.Reconciler {
	return worker.NewReconciler(c.dir, c.store, p, worker.ReconcilerOptions{})
}
