package worker

import (
	"context"
	"errors"
	"testing"
	"time"
)

// rendezvousDirectory answers a user read only once the assignment read has started (or
// after a second, with an error): a reconcile that reads one after the other fails.
type rendezvousDirectory struct {
	directory
	getStarted <-chan struct{}
}

func (d rendezvousDirectory) User(ctx context.Context, idOrUPN string) (User, error) {
	select {
	case <-d.getStarted:
		return d.directory.User(ctx, idOrUPN)
	case <-time.After(time.Second):
		return User{}, errors.New("the assignment read did not start while the user read was in flight")
	}
}

type signallingAssignments struct {
	Assignments
	started chan struct{}
}

func (a *signallingAssignments) Get(ctx context.Context, oid string) (Assignment, error) {
	select {
	case a.started <- struct{}{}:
	default:
	}
	return a.Assignments.Get(ctx, oid)
}

// The assignment is read beside the user: an eligible no-op costs one round trip (two with
// scope groups) instead of one per call.
func TestReconcileReadsTheAssignmentBesideTheUser(t *testing.T) {
	t.Parallel()
	dir := newFakeDirectory(fxTeamsUser(rcAlice))
	started := make(chan struct{}, 1)
	acs := &signallingAssignments{Assignments: newFakeAssignments(userAssignment(rcAlice, ourApp1)), started: started}
	r := NewReconciler(rendezvousDirectory{directory: dir, getStarted: started}, acs, rcPolicy, ReconcilerOptions{})
	got, err := r.Reconcile(context.Background(), Target{Principal: rcAlice})
	if err != nil || got.Action != ActionNoop {
		t.Fatalf("Reconcile() = %s, %v; want noop", got.Action, err)
	}
}

// Reading side by side keeps the classification of today's sequence: a Graph failure wins
// over whatever ACS answered (it is never not found, and never a revoke), an ACS failure
// is reported when the directory answered, and a cancelled context is neither permanent nor
// not found.
func TestReconcileSideBySideKeepsErrorsClassified(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		script func(*fakeDirectory, *fakeAssignments)
		check  func(error) bool
	}{
		{"graph 503 and ACS 400: temporary, not rejected", func(d *fakeDirectory, a *fakeAssignments) {
			d.FailNext("User", "", errUnavailable())
			a.FailNext("Get", "", errBadRequest())
		}, func(err error) bool { var p *PermanentError; return IsTemporary(err) && !errors.As(err, &p) }},
		{"graph 403 and ACS not found: systemic", func(d *fakeDirectory, _ *fakeAssignments) {
			d.FailNext("User", "", errSystemic())
		}, IsSystemic},
		{"user not found and ACS 503: temporary", func(d *fakeDirectory, a *fakeAssignments) {
			d.PurgeUser(rcAlice)
			a.FailNext("Get", "", errUnavailable())
		}, IsTemporary},
		{"user found and ACS throttled: temporary", func(_ *fakeDirectory, a *fakeAssignments) {
			a.FailNext("Get", "", errThrottled(time.Second))
		}, func(err error) bool { return IsTemporary(err) && RetryAfterOf(err) == time.Second }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := newFakeDirectory(withUser(fxTeamsUser(rcAlice), func(u *User) { u.AccountEnabled = false }))
			acs := newFakeAssignments(userAssignment(rcAlice, ourApp1))
			tc.script(dir, acs)
			_, err := NewReconciler(dir, acs, rcPolicy, ReconcilerOptions{}).Reconcile(context.Background(), Target{Principal: rcAlice})
			if err == nil || !tc.check(err) || IsNotFound(err) {
				t.Fatalf("Reconcile() error = %v", err)
			}
			if acs.Writes() != 0 {
				t.Errorf("writes = %d, want 0", acs.Writes())
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := newFakeDirectory(fxTeamsUser(rcAlice))
	_, err := NewReconciler(dir, newFakeAssignments(), rcPolicy, ReconcilerOptions{}).Reconcile(ctx, Target{Principal: rcAlice})
	var perm *PermanentError
	if !errors.Is(err, context.Canceled) || errors.As(err, &perm) || IsNotFound(err) {
		t.Errorf("Reconcile(cancelled) error = %v, want context.Canceled", err)
	}
}
