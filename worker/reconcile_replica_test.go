package worker_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	wt "github.com/tpe-provisioner/tpe-provisioner/internal/workertest"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// hookedAssignments runs a hook just before a write reaches the store, so a test can put
// another replica's whole reconcile, or a directory change, between a reconcile's reads and
// its write: the window ACS leaves open because a PUT is last-writer-wins, with no ETag.
type hookedAssignments struct {
	worker.Assignments
	beforeWrite func(method, objectID string)
}

func (h *hookedAssignments) Put(ctx context.Context, a worker.Assignment) (worker.Assignment, error) {
	if h.beforeWrite != nil {
		h.beforeWrite("Put", a.ObjectID)
	}
	return h.Assignments.Put(ctx, a)
}

func (h *hookedAssignments) Delete(ctx context.Context, objectID string) (string, error) {
	if h.beforeWrite != nil {
		h.beforeWrite("Delete", objectID)
	}
	return h.Assignments.Delete(ctx, objectID)
}

// Two replicas share one directory and one ACS resource, each with its own Reconciler. The
// trace of the multi-replica chaos run: replica 1 reads the user (eligible) and the
// assignment (none); the directory changes; replica 0 reads the new state and decides there
// is nothing to do; only then does replica 1's write land. Whichever write lands last must be
// followed by a read of the directory made after it, so the stale write is repaired by its
// own writer before its reconcile returns.
func TestReconcileStaleWriteOfAnotherReplicaIsRepaired(t *testing.T) {
	t.Parallel()
	enabled := fxTeamsUser(rcAlice)
	disabled := *with(enabled, func(u *worker.User) { u.AccountEnabled = false })
	unlicensed := *with(enabled, func(u *worker.User) { u.Plans = nil })
	for _, tc := range []struct {
		name            string
		before, after   worker.User         // the directory when replica 1 reads, and when replica 0 does
		stored          []worker.Assignment // ACS before both
		scope           []string            // scope groups of the policy
		leaveScope      bool                // the change is alice leaving the scope group
		wantReplica0    worker.Action       // replica 0, which reads after the change
		wantStored      *worker.Assignment  // ACS afterwards
		wantFirstAction worker.Action       // what replica 1 set out to do
		wantActionAfter worker.Action       // what replica 1's reconcile reports in the end
	}{
		{name: "a grant decided before the account was disabled",
			before: enabled, after: disabled, wantReplica0: worker.ActionNoop,
			wantFirstAction: worker.ActionGrant, wantActionAfter: worker.ActionRevoke},
		{name: "a grant decided before the licence was removed keeps another application's access",
			before: enabled, after: unlicensed, stored: []worker.Assignment{userAssignment(rcAlice, foreignApp)},
			wantReplica0: worker.ActionNoop, wantStored: refAssignment(userAssignment(rcAlice, foreignApp)),
			wantFirstAction: worker.ActionGrant, wantActionAfter: worker.ActionRevoke},
		{name: "a grant decided before the user left the scope",
			before: enabled, after: enabled, scope: []string{rcScope}, leaveScope: true, wantReplica0: worker.ActionNoop,
			wantFirstAction: worker.ActionGrant, wantActionAfter: worker.ActionRevoke},
		{name: "a revoke decided before the account was enabled again",
			before: disabled, after: enabled, stored: []worker.Assignment{userAssignment(rcAlice, ourApp1)},
			wantReplica0: worker.ActionNoop, wantStored: refAssignment(userAssignment(rcAlice, ourApp1)),
			wantFirstAction: worker.ActionRevoke, wantActionAfter: worker.ActionGrant},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := rcPolicy
			p.ScopeGroups = tc.scope
			dir := wt.NewDirectory(tc.before)
			dir.SetGroup(rcScope, rcAlice)
			store := wt.NewAssignments(tc.stored...)
			replica0 := worker.NewReconciler(dir, store, p, worker.ReconcilerOptions{})
			var once sync.Once
			var r0 worker.Result
			var r0err error
			acs1 := &hookedAssignments{Assignments: store}
			acs1.beforeWrite = func(string, string) {
				once.Do(func() {
					dir.PutUser(tc.after)
					if tc.leaveScope {
						dir.SetGroup(rcScope)
					}
					r0, r0err = replica0.Reconcile(context.Background(), worker.Target{Principal: rcAlice})
				})
			}
			replica1 := worker.NewReconciler(dir, acs1, p, worker.ReconcilerOptions{})

			got, err := replica1.Reconcile(context.Background(), worker.Target{Principal: rcAlice})
			if r0err != nil || r0.Action != tc.wantReplica0 {
				t.Fatalf("replica 0 = %s (%s), %v; want %s", r0.Action, r0.Reason, r0err, tc.wantReplica0)
			}
			if err != nil {
				t.Fatalf("replica 1: %v", err)
			}
			wt.CheckStored(t, store, rcAlice, tc.wantStored)
			if got.Action != tc.wantActionAfter || got.Repairs != 1 {
				t.Errorf("replica 1 = %s (%s), %d repairs; want %s after repairing its %s once",
					got.Action, got.Reason, got.Repairs, tc.wantActionAfter, tc.wantFirstAction)
			}
		})
	}
}

// A write followed by a directory read that confirms the verdict costs one more directory
// read and nothing else; with scope groups the scope is checked again beside it.
func TestReconcileVerifiesEveryWriteOnce(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		scope        []string
		user         *worker.User
		stored       []worker.Assignment
		wantAction   worker.Action
		wantUser     int
		wantMemberOf int
	}{
		{"grant", nil, refUser(fxTeamsUser(rcAlice)), nil, worker.ActionGrant, 2, 0},
		{"grant in scope", []string{rcScope}, refUser(fxTeamsUser(rcAlice)), nil, worker.ActionGrant, 2, 2},
		{"revoke of a deleted user", nil, nil, []worker.Assignment{userAssignment(rcAlice, ourApp1)}, worker.ActionRevoke, 2, 0},
		{"noop", nil, refUser(fxTeamsUser(rcAlice)), []worker.Assignment{userAssignment(rcAlice, ourApp1)}, worker.ActionNoop, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := wt.NewDirectory()
			if tc.user != nil {
				dir.PutUser(*tc.user)
			}
			dir.SetGroup(rcScope, rcAlice)
			store := wt.NewAssignments(tc.stored...)
			p := rcPolicy
			p.ScopeGroups = tc.scope
			got, err := worker.NewReconciler(dir, store, p, worker.ReconcilerOptions{}).Reconcile(context.Background(), worker.Target{Principal: rcAlice})
			if err != nil || got.Action != tc.wantAction || got.Repairs != 0 {
				t.Fatalf("Reconcile() = %s, %d repairs, %v; want %s, none", got.Action, got.Repairs, err, tc.wantAction)
			}
			if dir.Calls("User") != tc.wantUser || dir.Calls("MemberOf") != tc.wantMemberOf || store.Calls("Get") != 1 {
				t.Errorf("calls: User %d, MemberOf %d, Get %d; want %d, %d, 1",
					dir.Calls("User"), dir.Calls("MemberOf"), store.Calls("Get"), tc.wantUser, tc.wantMemberOf)
			}
		})
	}
}

// A directory that changes between every write and its verifying read does not keep the
// reconcile writing forever: after a few rounds it gives up with a temporary error, so the
// message comes back later, and it never returns success on a write it could not verify.
func TestReconcileGivesUpOnADirectoryThatKeepsChanging(t *testing.T) {
	t.Parallel()
	enabled := fxTeamsUser(rcAlice)
	disabled := *with(enabled, func(u *worker.User) { u.AccountEnabled = false })
	dir := wt.NewDirectory(enabled)
	store := wt.NewAssignments()
	var flips atomic.Int32
	acs := &hookedAssignments{Assignments: store, beforeWrite: func(string, string) {
		if flips.Add(1)%2 == 1 {
			dir.PutUser(disabled)
		} else {
			dir.PutUser(enabled)
		}
	}}
	_, err := worker.NewReconciler(dir, acs, rcPolicy, worker.ReconcilerOptions{}).Reconcile(context.Background(), worker.Target{Principal: rcAlice})
	if err == nil || !worker.IsTemporary(err) || worker.IsNotFound(err) {
		t.Fatalf("Reconcile() error = %v, want a temporary error", err)
	}
	if n := store.Writes(); n < 2 || n > worker.MaxWriteRounds {
		t.Errorf("writes = %d, want 2..%d", n, worker.MaxWriteRounds)
	}
}
