package subscriptions

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// The fake Graph: an in-memory subscriptions endpoint that enforces Graph's rules
// (expiry in the future and at most 41,760 minutes ahead, 409 on a duplicate resource and
// changeType whatever the notification URL, 404 for an unknown id, expired subscriptions
// disappear).

type subsFakeErr struct {
	status int
	msg    string
}

func (e *subsFakeErr) Error() string   { return fmt.Sprintf("graph %d: %s", e.status, e.msg) }
func (e *subsFakeErr) NotFound() bool  { return e.status == 404 }
func (e *subsFakeErr) Conflict() bool  { return e.status == 409 }
func (e *subsFakeErr) Temporary() bool { return e.status == 429 || e.status >= 500 }
func (e *subsFakeErr) StatusCode() int { return e.status }

type subsFakeGraph struct {
	now func() time.Time

	mu           sync.Mutex
	subs         map[string]Subscription
	specs        map[string]SubscriptionSpec
	nextID       int
	calls        map[string]int
	renews       map[string]int
	fail         map[string][]error // scripted failures by method, taken in order
	hideNextList bool
	gateID       string        // Renew of this id waits for gate
	gate         chan struct{} // closed by releaseGate to let it through
	gateOnce     sync.Once
	entered      chan string // receives the id when a gated Renew starts
}

var _ subscriptionAPI = (*subsFakeGraph)(nil)

func newSubsFakeGraph(now func() time.Time) *subsFakeGraph {
	return &subsFakeGraph{now: now, subs: map[string]Subscription{}, specs: map[string]SubscriptionSpec{},
		calls: map[string]int{}, renews: map[string]int{}, fail: map[string][]error{}}
}

func (g *subsFakeGraph) begin(method string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls[method]++
	for id, s := range g.subs {
		if !s.ExpirationDateTime.After(g.now()) {
			delete(g.subs, id) // Graph removes expired subscriptions
		}
	}
	if q := g.fail[method]; len(q) > 0 {
		g.fail[method] = q[1:]
		return q[0]
	}
	return nil
}

func (g *subsFakeGraph) checkExpiry(exp time.Time) error {
	if !exp.After(g.now()) || exp.After(g.now().Add(MaxSubscriptionLifetime)) {
		return &subsFakeErr{400, "expirationDateTime out of range"}
	}
	return nil
}

func (g *subsFakeGraph) ListSubscriptions(ctx context.Context) ([]Subscription, error) {
	if err := g.begin("List"); err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.hideNextList {
		g.hideNextList = false
		return nil, nil
	}
	var out []Subscription
	for _, s := range g.subs {
		out = append(out, s)
	}
	return out, nil
}

func (g *subsFakeGraph) CreateSubscription(ctx context.Context, spec SubscriptionSpec) (Subscription, error) {
	if err := g.begin("Create"); err != nil {
		return Subscription{}, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.checkExpiry(spec.ExpirationDateTime); err != nil {
		return Subscription{}, err
	}
	for _, s := range g.subs {
		if strings.EqualFold(s.Resource, spec.Resource) && changeTypeSet(s.ChangeType) == changeTypeSet(spec.ChangeType) {
			return Subscription{}, &subsFakeErr{409, "Subscription Id " + s.ID + " already exists for the requested combination"}
		}
	}
	g.nextID++
	s := Subscription{ID: fmt.Sprintf("sub-%d", g.nextID), Resource: spec.Resource, ChangeType: spec.ChangeType,
		NotificationURL: spec.NotificationURL, LifecycleNotificationURL: spec.LifecycleNotificationURL,
		ExpirationDateTime: spec.ExpirationDateTime}
	g.subs[s.ID] = s
	g.specs[s.ID] = spec
	return s, nil
}

func (g *subsFakeGraph) RenewSubscription(ctx context.Context, id string, exp time.Time) (Subscription, error) {
	if err := g.begin("Renew"); err != nil {
		return Subscription{}, err
	}
	g.mu.Lock()
	gated := id == g.gateID && g.gate != nil
	g.mu.Unlock()
	if gated {
		g.entered <- id
		<-g.gate
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	s, ok := g.subs[id]
	if !ok {
		return Subscription{}, &subsFakeErr{404, "subscription not found"}
	}
	if err := g.checkExpiry(exp); err != nil {
		return Subscription{}, err
	}
	g.renews[id]++
	s.ExpirationDateTime = exp
	g.subs[id] = s
	return s, nil
}

func (g *subsFakeGraph) ReauthorizeSubscription(ctx context.Context, id string) error {
	if err := g.begin("Reauthorize"); err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.subs[id]; !ok {
		return &subsFakeErr{404, "subscription not found"}
	}
	return nil
}

func (g *subsFakeGraph) DeleteSubscription(ctx context.Context, id string) error {
	if err := g.begin("Delete"); err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.subs[id]; !ok {
		return &subsFakeErr{404, "subscription not found"}
	}
	delete(g.subs, id)
	return nil
}

// add stores a subscription made by someone else (another replica, another app).
func (g *subsFakeGraph) add(s Subscription) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.subs[s.ID] = s
}

// remove drops a subscription the way Graph does when it removes one.
func (g *subsFakeGraph) remove(id string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.subs, id)
}

func (g *subsFakeGraph) failNext(method string, errs ...error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.fail[method] = append(g.fail[method], errs...)
}

func (g *subsFakeGraph) gateRenew(id string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gateID, g.gate, g.entered = id, make(chan struct{}), make(chan string, 1)
}

func (g *subsFakeGraph) releaseGate() { g.gateOnce.Do(func() { close(g.gate) }) }

// awaitGated waits until a gated Renew has started.
func (g *subsFakeGraph) awaitGated(t *testing.T) {
	t.Helper()
	select {
	case <-g.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("timed out waiting for the gated renewal")
	}
}

func (g *subsFakeGraph) count(method string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calls[method]
}

func (g *subsFakeGraph) renewsOf(id string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.renews[id]
}

// byResource returns Graph's subscriptions for resource, any notification URL.
func (g *subsFakeGraph) byResource(resource string) []Subscription {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []Subscription
	for _, s := range g.subs {
		if s.Resource == resource {
			out = append(out, s)
		}
	}
	sortSubscriptions(out)
	return out
}
