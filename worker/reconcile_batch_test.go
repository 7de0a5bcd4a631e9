package worker_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	wt "github.com/tpe-provisioner/tpe-provisioner/internal/workertest"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

const batchScope = "5d0c2a4e-9b1f-4c6a-8e3d-2f7a1b9c0e11"

// span is one collaborator call's start and end.
type span struct{ start, end time.Time }

// timeline records the calls of one reconcile, each held for callDelay, so that the calls
// made side by side overlap and the critical path can be read off.
type timeline struct {
	mu    sync.Mutex
	spans []span
}

const callDelay = 15 * time.Millisecond

func (tl *timeline) call(ctx context.Context) func() {
	start := time.Now()
	select {
	case <-time.After(callDelay):
	case <-ctx.Done():
	}
	return func() {
		tl.mu.Lock()
		defer tl.mu.Unlock()
		tl.spans = append(tl.spans, span{start, time.Now()})
	}
}

// roundTrips is the longest chain of calls each started after the one before had ended.
func (tl *timeline) roundTrips() int {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	s := slices.Clone(tl.spans)
	slices.SortFunc(s, func(a, b span) int { return a.start.Compare(b.start) })
	depth := make([]int, len(s))
	best := 0
	for i := range s {
		depth[i] = 1
		for j := range i {
			if !s[j].end.After(s[i].start) {
				depth[i] = max(depth[i], depth[j]+1)
			}
		}
		best = max(best, depth[i])
	}
	return best
}

// timedDirectory is the fake directory, with its combined read, on a timeline.
type timedDirectory struct {
	*wt.Directory
	tl *timeline
}

func (d timedDirectory) User(ctx context.Context, id string) (worker.User, error) {
	defer d.tl.call(ctx)()
	return d.Directory.User(ctx, id)
}

func (d timedDirectory) MemberOf(ctx context.Context, id string, groups []string) ([]string, error) {
	defer d.tl.call(ctx)()
	return d.Directory.MemberOf(ctx, id, groups)
}

func (d timedDirectory) UserInGroups(ctx context.Context, id string, groups []string) (worker.User, []string, error) {
	defer d.tl.call(ctx)()
	return d.Directory.UserInGroups(ctx, id, groups)
}

type timedAssignments struct {
	*wt.Assignments
	tl *timeline
}

func (a timedAssignments) Get(ctx context.Context, id string) (worker.Assignment, error) {
	defer a.tl.call(ctx)()
	return a.Assignments.Get(ctx, id)
}

func (a timedAssignments) Put(ctx context.Context, as worker.Assignment) (worker.Assignment, error) {
	defer a.tl.call(ctx)()
	return a.Assignments.Put(ctx, as)
}

func (a timedAssignments) Delete(ctx context.Context, id string) (string, error) {
	defer a.tl.call(ctx)()
	return a.Assignments.Delete(ctx, id)
}

func disabled(u worker.User) worker.User {
	u.AccountEnabled = false
	return u
}

// With a directory that reads the user and its scope in one request, every directory read
// of a reconcile with scope groups is that one request: an eligible no-op and a refused
// user take one round trip, a verified write three (read, write, read).
func TestReconcileReadsUserAndScopeInOneRequest(t *testing.T) {
	t.Parallel()
	ours := worker.Assignment{ObjectID: wt.OID(1), PrincipalType: worker.PrincipalUser, ClientIDs: []string{wt.App}}
	for _, tc := range []struct {
		name       string
		user       worker.User
		member     bool
		current    *worker.Assignment
		action     worker.Action
		roundTrips int
		batches    int
	}{
		{"eligible no-op", wt.TeamsUser(1), true, &ours, worker.ActionNoop, 1, 1},
		{"refused user with nothing to remove", disabled(wt.TeamsUser(1)), false, nil, worker.ActionNoop, 1, 1},
		{"grant, verified", wt.TeamsUser(1), true, nil, worker.ActionGrant, 3, 2},
		{"revoke out of scope, verified", wt.TeamsUser(1), false, &ours, worker.ActionRevoke, 3, 2},
		{"revoke of a refused user, verified", disabled(wt.TeamsUser(1)), true, &ours, worker.ActionRevoke, 3, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := wt.NewDirectory(tc.user)
			if tc.member {
				dir.SetGroup(batchScope, tc.user.ID)
			} else {
				dir.SetGroup(batchScope)
			}
			acs := wt.NewAssignments()
			if tc.current != nil {
				acs.Set(*tc.current)
			}
			tl := &timeline{}
			p := wt.Policy
			p.ScopeGroups = []string{batchScope}
			r := worker.NewReconciler(timedDirectory{dir, tl}, timedAssignments{acs, tl}, p, worker.ReconcilerOptions{})
			res, err := r.Reconcile(context.Background(), worker.Target{Principal: tc.user.ID})
			if err != nil || res.Action != tc.action {
				t.Fatalf("Reconcile = %s (%s), %v; want %s", res.Action, res.Reason, err, tc.action)
			}
			if got := dir.Calls("UserInGroups"); got != tc.batches {
				t.Errorf("%d combined reads, want %d", got, tc.batches)
			}
			if alone := dir.Calls("User") + dir.Calls("MemberOf") - 2*dir.Calls("UserInGroups"); alone != 0 {
				t.Errorf("%d user reads or scope checks sent on their own, want none", alone)
			}
			if got := tl.roundTrips(); got != tc.roundTrips {
				t.Errorf("%d round trips, want %d", got, tc.roundTrips)
			}
		})
	}
}

// A membership read that fails inside the combined read decides nothing: the reconcile
// fails temporarily and the assignment stays.
func TestReconcileCombinedReadFailureNeverRevokes(t *testing.T) {
	t.Parallel()
	for name, err := range map[string]error{
		"membership not found right after the user": wt.ErrNotFound(),
		"membership throttled":                      wt.ErrThrottled(time.Second),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := wt.NewDirectory(wt.TeamsUser(1))
			dir.SetGroup(batchScope, wt.OID(1))
			acs := wt.NewAssignments(worker.Assignment{ObjectID: wt.OID(1), PrincipalType: worker.PrincipalUser, ClientIDs: []string{wt.App}})
			dir.FailNext("MemberOf", wt.OID(1), err)
			p := wt.Policy
			p.ScopeGroups = []string{batchScope}
			_, rerr := worker.NewReconciler(dir, acs, p, worker.ReconcilerOptions{}).Reconcile(context.Background(), worker.Target{Principal: wt.OID(1)})
			if !worker.IsTemporary(rerr) || worker.IsNotFound(rerr) {
				t.Errorf("Reconcile error %v, want temporary and never not found", rerr)
			}
			if _, ok := acs.Lookup(wt.OID(1)); !ok || acs.Writes() != 0 {
				t.Errorf("the assignment was touched (%d writes) on an answer that decides nothing", acs.Writes())
			}
			if dir.Calls("UserInGroups") != 1 {
				t.Errorf("%d combined reads, want 1", dir.Calls("UserInGroups"))
			}
		})
	}
}

// A directory without the combined read is read one call at a time: the scope only when it
// can change the verdict, so a refused user costs no scope check and a verified write four
// round trips (user ∥ GET, scope, write, user ∥ scope).
func TestReconcileSequentialDirectoryChecksScopeOnlyWhenItMatters(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		user       worker.User
		memberOf   int
		roundTrips int
	}{
		{"grant to a user in scope", wt.TeamsUser(1), 2, 4},
		{"no-op for a refused user", disabled(wt.TeamsUser(1)), 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := wt.NewDirectory(tc.user)
			dir.SetGroup(batchScope, tc.user.ID)
			tl := &timeline{}
			p := wt.Policy
			p.ScopeGroups = []string{batchScope}
			r := worker.NewReconciler(timedSequential{dir.Sequential(), tl}, timedAssignments{wt.NewAssignments(), tl}, p, worker.ReconcilerOptions{})
			if _, err := r.Reconcile(context.Background(), worker.Target{Principal: tc.user.ID}); err != nil {
				t.Fatal(err)
			}
			if dir.Calls("UserInGroups") != 0 || dir.Calls("MemberOf") != tc.memberOf {
				t.Errorf("%d combined reads and %d scope checks, want 0 and %d", dir.Calls("UserInGroups"), dir.Calls("MemberOf"), tc.memberOf)
			}
			if got := tl.roundTrips(); got != tc.roundTrips {
				t.Errorf("%d round trips, want %d", got, tc.roundTrips)
			}
		})
	}
}

type timedSequential struct {
	*wt.SequentialDirectory
	tl *timeline
}

func (d timedSequential) User(ctx context.Context, id string) (worker.User, error) {
	defer d.tl.call(ctx)()
	return d.SequentialDirectory.User(ctx, id)
}

func (d timedSequential) MemberOf(ctx context.Context, id string, groups []string) ([]string, error) {
	defer d.tl.call(ctx)()
	return d.SequentialDirectory.MemberOf(ctx, id, groups)
}
