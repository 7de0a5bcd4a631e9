package worker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	wt "github.com/tpe-provisioner/tpe-provisioner/internal/workertest"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// rendezvousDirectory answers a user read only once the assignment read has started (or
// after a second, with an error): a reconcile that reads one after the other fails.
type rendezvousDirectory struct {
	*wt.Directory
	getStarted <-chan struct{}
}

func (d rendezvousDirectory) User(ctx context.Context, idOrUPN string) (worker.User, error) {
	select {
	case <-d.getStarted:
		return d.Directory.User(ctx, idOrUPN)
	case <-time.After(time.Second):
		return worker.User{}, errors.New("the assignment read did not start while the user read was in flight")
	}
}

type signallingAssignments struct {
	worker.Assignments
	started chan struct{}
}

func (a *signallingAssignments) Get(ctx context.Context, oid string) (worker.Assignment, error) {
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
	dir := wt.NewDirectory(fxTeamsUser(rcAlice))
	started := make(chan struct{}, 1)
	acs := &signallingAssignments{Assignments: wt.NewAssignments(userAssignment(rcAlice, ourApp1)), started: started}
	r := worker.NewReconciler(rendezvousDirectory{Directory: dir, getStarted: started}, acs, rcPolicy, worker.ReconcilerOptions{})
	got, err := r.Reconcile(context.Background(), worker.Target{Principal: rcAlice})
	if err != nil || got.Action != worker.ActionNoop {
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
		script func(*wt.Directory, *wt.Assignments)
		check  func(error) bool
	}{
		{"graph 503 and ACS 400: temporary, not rejected", func(d *wt.Directory, a *wt.Assignments) {
			d.FailNext("User", "", wt.ErrUnavailable())
			a.FailNext("Get", "", wt.ErrBadRequest())
		}, func(err error) bool {
			var p *worker.PermanentError
			return worker.IsTemporary(err) && !errors.As(err, &p)
		}},
		{"graph 403 and ACS not found: systemic", func(d *wt.Directory, _ *wt.Assignments) {
			d.FailNext("User", "", wt.ErrSystemic())
		}, worker.IsSystemic},
		{"user not found and ACS 503: temporary", func(d *wt.Directory, a *wt.Assignments) {
			d.PurgeUser(rcAlice)
			a.FailNext("Get", "", wt.ErrUnavailable())
		}, worker.IsTemporary},
		{"user found and ACS throttled: temporary", func(_ *wt.Directory, a *wt.Assignments) {
			a.FailNext("Get", "", wt.ErrThrottled(time.Second))
		}, func(err error) bool { return worker.IsTemporary(err) && worker.RetryAfterOf(err) == time.Second }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := wt.NewDirectory(*with(fxTeamsUser(rcAlice), func(u *worker.User) { u.AccountEnabled = false }))
			acs := wt.NewAssignments(userAssignment(rcAlice, ourApp1))
			tc.script(dir, acs)
			_, err := worker.NewReconciler(dir, acs, rcPolicy, worker.ReconcilerOptions{}).Reconcile(context.Background(), worker.Target{Principal: rcAlice})
			if err == nil || !tc.check(err) || worker.IsNotFound(err) {
				t.Fatalf("Reconcile() error = %v", err)
			}
			if acs.Writes() != 0 {
				t.Errorf("writes = %d, want 0", acs.Writes())
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := wt.NewDirectory(fxTeamsUser(rcAlice))
	_, err := worker.NewReconciler(dir, wt.NewAssignments(), rcPolicy, worker.ReconcilerOptions{}).Reconcile(ctx, worker.Target{Principal: rcAlice})
	var perm *worker.PermanentError
	if !errors.Is(err, context.Canceled) || errors.As(err, &perm) || worker.IsNotFound(err) {
		t.Errorf("Reconcile(cancelled) error = %v, want context.Canceled", err)
	}
}
