package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// The latency bench's tracer times every message from the moment the worker receives it to
// the moment it is settled (a decorated Source), and every HTTP call the clients send (a
// decorated transport). Calls are attributed to a message through the principal they name:
// the object id in the Graph path (or in a $batch's requests) and in the ACS assignment
// path. Each reconcile the worker reports (its Observer) takes the calls made for its
// principal since the last one, so a duplicate that shares another message's reconcile
// (coalesced) gets none of its own. The worker runs one reconcile per principal at a time;
// if the next one's first call answers before the previous reconcile is reported (a
// scheduling delay of a whole call), that call goes to the previous message. One message's
// figures are then off; the medians are not.

// call is one HTTP request as the client saw it.
type call struct {
	graph      bool
	start, end time.Time
	ru         int // Graph resource units (graphcost.go); 0 for ACS
	// requests is how many Graph requests the call carried: a $batch's inner requests, 1
	// for any other Graph call, 0 for ACS.
	requests int
}

// msgTrace is one delivery's measures.
type msgTrace struct {
	received time.Time
	latency  time.Duration // receive to settle
	action   worker.Action // the reconcile's action; "" until reported
	failed   bool          // a reconcile returned an error
	settle   worker.Outcome
	calls    []call
}

// outcome is the group the message's figures go to.
func (m *msgTrace) outcome() string {
	switch {
	case m.settle != worker.OutcomeCompleted:
		return string(m.settle)
	case m.failed:
		return "error"
	case m.action == "":
		return "none"
	case len(m.calls) == 0:
		return "coalesced"
	}
	return string(m.action)
}

type tracer struct {
	mu           sync.Mutex
	pending      map[string][]call // calls by principal, not yet taken by a reconcile
	open         map[*worker.Delivery]*msgTrace
	done         []*msgTrace
	unattributed int
	// graphRequests counts the Graph requests of every call, attributed or not.
	graphRequests int
}

func newTracer() *tracer {
	return &tracer{pending: map[string][]call{}, open: map[*worker.Delivery]*msgTrace{}}
}

// transport times the calls through next.
func (t *tracer) transport(next http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		var body []byte
		if r.Body != nil && r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/$batch") {
			b, err := io.ReadAll(r.Body)
			_ = r.Body.Close()
			if err != nil {
				return nil, err
			}
			body = b
			r = r.Clone(r.Context())
			r.Body = io.NopCloser(bytes.NewReader(b))
		}
		reqs, isBatch := batchOf(r, body) // read once: the tracer's CPU counts in the bench's
		graph, id := principalOfParsed(r, reqs, isBatch)
		c := call{graph: graph, start: time.Now()}
		if graph {
			c.ru, c.requests = graphCallCost(r, reqs, isBatch), graphCallCount(reqs, isBatch)
		}
		resp, err := next.RoundTrip(r)
		c.end = time.Now()
		t.mu.Lock()
		t.graphRequests += c.requests
		if id == "" {
			t.unattributed++
		} else {
			t.pending[id] = append(t.pending[id], c)
		}
		t.mu.Unlock()
		return resp, err
	})
}

// principalOf says whether r goes to Graph (a versioned path) and names the principal it
// is about: the id after users/ (in the path or in a $batch's first request that has one),
// or the last segment of an ACS assignments path; "" when none.
func principalOf(r *http.Request, body []byte) (graph bool, id string) {
	reqs, isBatch := batchOf(r, body)
	return principalOfParsed(r, reqs, isBatch)
}

// principalOfParsed is principalOf with a $batch's requests already read (batchOf).
func principalOfParsed(r *http.Request, reqs []batchRequest, isBatch bool) (graph bool, id string) {
	p := r.URL.Path
	graph = strings.HasPrefix(p, "/v1.0/") || strings.HasPrefix(p, "/beta/")
	if !graph {
		if _, after, ok := strings.Cut(p, "/assignments/"); ok && !strings.Contains(after, "/") {
			id = after
		}
		return false, strings.ToLower(id)
	}
	if isBatch {
		for _, br := range reqs {
			if u, err := url.Parse(br.URL); err == nil {
				if id = userOf(graphPath(u.Path)); id != "" {
					break
				}
			}
		}
		return true, id
	}
	return true, userOf(graphPath(p))
}

// userOf is the id in users/{id}/..., lower-cased.
func userOf(p string) string {
	rest, ok := strings.CutPrefix(p, "users/")
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, "/")
	return strings.ToLower(id)
}

// source decorates src: it notes when each delivery is received and settled.
func (t *tracer) source(src worker.Source) worker.Source { return &tracedSource{Source: src, t: t} }

type tracedSource struct {
	worker.Source
	t *tracer
}

func (s *tracedSource) Receive(ctx context.Context, max int) ([]*worker.Delivery, error) {
	ds, err := s.Source.Receive(ctx, max)
	now := time.Now()
	s.t.mu.Lock()
	for _, d := range ds {
		s.t.open[d] = &msgTrace{received: now}
	}
	s.t.mu.Unlock()
	return ds, err
}

func (s *tracedSource) Complete(ctx context.Context, d *worker.Delivery) error {
	err := s.Source.Complete(ctx, d)
	s.t.settled(d, worker.OutcomeCompleted, err)
	return err
}

func (s *tracedSource) Abandon(ctx context.Context, d *worker.Delivery) error {
	err := s.Source.Abandon(ctx, d)
	s.t.settled(d, worker.OutcomeAbandoned, err)
	return err
}

func (s *tracedSource) DeadLetter(ctx context.Context, d *worker.Delivery, reason, description string) error {
	err := s.Source.DeadLetter(ctx, d, reason, description)
	s.t.settled(d, worker.OutcomeDeadLettered, err)
	return err
}

func (t *tracer) settled(d *worker.Delivery, o worker.Outcome, err error) {
	now := time.Now()
	if err != nil {
		o = worker.OutcomeReleased
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	m, ok := t.open[d]
	if !ok {
		return
	}
	delete(t.open, d)
	m.latency, m.settle = now.Sub(m.received), o
	t.done = append(t.done, m)
}

// Reconciled gives the reconcile's principal's calls so far to its message.
func (t *tracer) Reconciled(d *worker.Delivery, tg worker.Target, res worker.Result, err error) {
	id := res.ObjectID
	if id == "" {
		id = strings.ToLower(strings.TrimSpace(tg.Principal))
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	m, ok := t.open[d]
	if !ok {
		return
	}
	m.calls = append(m.calls, t.pending[id]...)
	delete(t.pending, id)
	if err != nil {
		m.failed = true
	}
	if m.action == "" || res.Action == worker.ActionGrant || res.Action == worker.ActionRevoke {
		m.action = res.Action
	}
}

// Settled is measured at the source, where the settlement happens.
func (t *tracer) Settled(*worker.Delivery, worker.Outcome, string) {}

var _ worker.Observer = (*tracer)(nil)

// traces returns the settled deliveries' measures and the calls no message could claim.
func (t *tracer) traces() ([]*msgTrace, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := t.unattributed
	for _, cs := range t.pending {
		n += len(cs)
	}
	return t.done, n
}

// criticalPath is the longest chain of calls in which each started after the one before it
// had answered, weighed by the latency configured for each call's service (graph, acs): the
// round trips a message waited for one after another, and the least time they can take.
// Calls that overlap ran side by side and count once.
func criticalPath(calls []call, graph, acs time.Duration) (n int, bound time.Duration) {
	cs := slices.Clone(calls)
	slices.SortFunc(cs, func(a, b call) int { return a.start.Compare(b.start) })
	type chain struct {
		n     int
		bound time.Duration
	}
	longer := func(a, b chain) bool { return a.bound > b.bound || (a.bound == b.bound && a.n > b.n) }
	best := make([]chain, len(cs)) // the longest chain ending with cs[j]
	var out chain
	for j, c := range cs {
		w := acs
		if c.graph {
			w = graph
		}
		best[j] = chain{1, w}
		for i := range j { // started no later than c: their chains are final
			if !cs[i].end.After(c.start) {
				if cand := (chain{best[i].n + 1, best[i].bound + w}); longer(cand, best[j]) {
					best[j] = cand
				}
			}
		}
		if longer(best[j], out) {
			out = best[j]
		}
	}
	return out.n, out.bound
}

// requests is how many Graph requests the calls so far carried.
func (t *tracer) requests() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.graphRequests
}
