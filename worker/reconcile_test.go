package worker_test

import (
	"cmp"
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	wt "github.com/tpe-provisioner/tpe-provisioner/internal/workertest"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

const (
	rcAlice = "a11ce000-0000-4000-8000-00000000000a"
	rcBob   = "b0b00000-0000-4000-8000-00000000000b"
	rcIVR   = "1a2b3c4d-0000-4000-8000-0000000000c1" // a resource account
	rcScope = "5c09e000-0000-4000-8000-0000000000e1"
	rcTeam  = "7ea70000-0000-4000-8000-0000000000e2" // nested in rcScope
)

var rcPolicy = worker.Policy{ClientIDs: []string{ourApp1}}

func userAssignment(oid string, ids ...string) worker.Assignment {
	return worker.Assignment{ObjectID: oid, PrincipalType: worker.PrincipalUser, ClientIDs: ids}
}

func raAssignment(oid string) worker.Assignment {
	return worker.Assignment{ObjectID: oid, PrincipalType: worker.PrincipalResourceAccount}
}

func TestReconcile(t *testing.T) {
	t.Parallel()
	scoped := rcPolicy
	scoped.ScopeGroups = []string{rcScope}
	managed := rcPolicy
	managed.ManageResourceAccounts = true
	tests := []struct {
		name       string
		policy     worker.Policy
		users      []worker.User
		groups     map[string][]string
		stored     []worker.Assignment
		target     worker.Target
		wantAction worker.Action
		wantReason string
		wantType   worker.PrincipalType
		wantStored *worker.Assignment // what ACS holds afterwards; nil = no assignment
		wantWrites int
	}{
		{name: "onboarding: an eligible user gets our client id",
			policy: rcPolicy, users: []worker.User{fxTeamsUser(rcAlice)}, target: worker.Target{Principal: rcAlice},
			wantAction: worker.ActionGrant, wantReason: "teams plan enabled", wantType: worker.PrincipalUser,
			wantStored: refAssignment(userAssignment(rcAlice, ourApp1)), wantWrites: 1},
		{name: "onboarding keeps another application's client id",
			policy: rcPolicy, users: []worker.User{fxTeamsUser(rcAlice)}, stored: []worker.Assignment{userAssignment(rcAlice, foreignApp)},
			target: worker.Target{Principal: rcAlice}, wantAction: worker.ActionGrant, wantReason: "teams plan enabled", wantType: worker.PrincipalUser,
			wantStored: refAssignment(userAssignment(rcAlice, ourApp1, foreignApp)), wantWrites: 1},
		{name: "onboarding by UPN resolves the object id",
			policy: rcPolicy, users: []worker.User{fxTeamsUser(rcAlice)}, target: worker.Target{Principal: fxTeamsUser(rcAlice).UPN},
			wantAction: worker.ActionGrant, wantReason: "teams plan enabled", wantType: worker.PrincipalUser,
			wantStored: refAssignment(userAssignment(rcAlice, ourApp1)), wantWrites: 1},
		{name: "onboarding through a nested scope group",
			policy: scoped, users: []worker.User{fxTeamsUser(rcAlice)}, groups: map[string][]string{rcScope: {rcTeam}, rcTeam: {rcAlice}},
			target: worker.Target{Principal: rcAlice}, wantAction: worker.ActionGrant, wantReason: "teams plan enabled", wantType: worker.PrincipalUser,
			wantStored: refAssignment(userAssignment(rcAlice, ourApp1)), wantWrites: 1},
		{name: "offboarding: a deleted user's assignment is deleted",
			policy: rcPolicy, stored: []worker.Assignment{userAssignment(rcAlice, ourApp1)}, target: worker.Target{Principal: rcAlice},
			wantAction: worker.ActionRevoke, wantReason: "not found in directory", wantWrites: 1},
		{name: "offboarding a deleted user keeps another application's access",
			policy: rcPolicy, stored: []worker.Assignment{userAssignment(rcAlice, strings.ToUpper(ourApp1), foreignApp)},
			target: worker.Target{Principal: rcAlice}, wantAction: worker.ActionRevoke, wantReason: "not found in directory",
			wantStored: refAssignment(userAssignment(rcAlice, foreignApp)), wantWrites: 1},
		{name: "offboarding: a disabled user loses access",
			policy: rcPolicy, users: []worker.User{*with(fxTeamsUser(rcAlice), func(u *worker.User) { u.AccountEnabled = false })},
			stored: []worker.Assignment{userAssignment(rcAlice, ourApp1)}, target: worker.Target{Principal: rcAlice},
			wantAction: worker.ActionRevoke, wantReason: "account disabled", wantWrites: 1},
		{name: "offboarding: a removed licence loses access",
			policy: rcPolicy, users: []worker.User{*with(fxTeamsUser(rcAlice), func(u *worker.User) { u.Plans = nil })},
			stored: []worker.Assignment{userAssignment(rcAlice, ourApp1)}, target: worker.Target{Principal: rcAlice},
			wantAction: worker.ActionRevoke, wantReason: "no teams plan", wantWrites: 1},
		{name: "offboarding: leaving the scope group loses access",
			policy: scoped, users: []worker.User{fxTeamsUser(rcAlice), fxTeamsUser(rcBob)}, groups: map[string][]string{rcScope: {rcBob}},
			stored: []worker.Assignment{userAssignment(rcAlice, ourApp1)}, target: worker.Target{Principal: rcAlice},
			wantAction: worker.ActionRevoke, wantReason: "out of scope", wantWrites: 1},
		{name: "a resource account gets the server-consent assignment though disabled",
			policy: rcPolicy, users: []worker.User{fxResourceAccount(rcIVR)}, target: worker.Target{Principal: rcIVR},
			wantAction: worker.ActionGrant, wantReason: "resource account licence", wantType: worker.PrincipalResourceAccount,
			wantStored: refAssignment(raAssignment(rcIVR)), wantWrites: 1},
		{name: "a licensed user who is also a resource account is a resource account",
			policy: rcPolicy, users: []worker.User{*with(fxTeamsUser(rcIVR), func(u *worker.User) { u.SKUs = []string{raSKU} })},
			stored: []worker.Assignment{userAssignment(rcIVR, ourApp1)}, target: worker.Target{Principal: rcIVR},
			wantAction: worker.ActionGrant, wantReason: "resource account licence", wantType: worker.PrincipalResourceAccount,
			wantStored: refAssignment(raAssignment(rcIVR)), wantWrites: 1},
		{name: "a deleted resource account keeps its assignment unless managed",
			policy: rcPolicy, stored: []worker.Assignment{raAssignment(rcIVR)}, target: worker.Target{Principal: rcIVR},
			wantAction: worker.ActionSkip, wantReason: "resource accounts not managed", wantStored: refAssignment(raAssignment(rcIVR))},
		{name: "a deleted resource account loses its assignment when managed",
			policy: managed, stored: []worker.Assignment{raAssignment(rcIVR)}, target: worker.Target{Principal: rcIVR},
			wantAction: worker.ActionRevoke, wantReason: "not found in directory", wantWrites: 1},
		{name: "an operator grant by UPN with a resource account hint",
			policy: rcPolicy, users: []worker.User{*with(fxTeamsUser(rcIVR), func(u *worker.User) { u.Plans = nil })},
			target:     worker.Target{Principal: strings.ToUpper(fxTeamsUser(rcIVR).UPN), Type: worker.PrincipalResourceAccount, Command: worker.CommandGrant},
			wantAction: worker.ActionGrant, wantReason: "operator grant", wantType: worker.PrincipalResourceAccount,
			wantStored: refAssignment(raAssignment(rcIVR)), wantWrites: 1},
		{name: "an operator grant ignores the scope",
			policy: scoped, users: []worker.User{*with(fxTeamsUser(rcAlice), func(u *worker.User) { u.AccountEnabled = false })},
			target:     worker.Target{Principal: rcAlice, Command: worker.CommandGrant},
			wantAction: worker.ActionGrant, wantReason: "operator grant", wantType: worker.PrincipalUser,
			wantStored: refAssignment(userAssignment(rcAlice, ourApp1)), wantWrites: 1},
		{name: "an operator grant for a principal the directory lacks is skipped",
			policy: rcPolicy, target: worker.Target{Principal: rcAlice, Command: worker.CommandGrant},
			wantAction: worker.ActionSkip, wantReason: "not found in directory"},
		{name: "an operator revoke removes our id from an eligible user",
			policy: rcPolicy, users: []worker.User{fxTeamsUser(rcAlice)}, stored: []worker.Assignment{userAssignment(rcAlice, ourApp1, foreignApp)},
			target:     worker.Target{Principal: rcAlice, Command: worker.CommandRevoke},
			wantAction: worker.ActionRevoke, wantReason: "operator revoke", wantType: worker.PrincipalUser,
			wantStored: refAssignment(userAssignment(rcAlice, foreignApp)), wantWrites: 1},
		{name: "an eligible user already granted costs no write",
			policy: rcPolicy, users: []worker.User{fxTeamsUser(rcAlice)}, stored: []worker.Assignment{userAssignment(rcAlice, ourApp1)},
			target: worker.Target{Principal: rcAlice}, wantAction: worker.ActionNoop, wantReason: "teams plan enabled", wantType: worker.PrincipalUser,
			wantStored: refAssignment(userAssignment(rcAlice, ourApp1))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir, acs := wt.NewDirectory(tt.users...), wt.NewAssignments(tt.stored...)
			for g, members := range tt.groups {
				dir.SetGroup(g, members...)
			}
			r := worker.NewReconciler(dir, acs, tt.policy, worker.ReconcilerOptions{})
			got, err := r.Reconcile(context.Background(), tt.target)
			if err != nil {
				t.Fatalf("Reconcile() error = %v", err)
			}
			if got.Action != tt.wantAction || got.Reason != tt.wantReason || got.Type != tt.wantType {
				t.Errorf("Reconcile() = %s (%s) type %q, want %s (%s) type %q",
					got.Action, got.Reason, got.Type, tt.wantAction, tt.wantReason, tt.wantType)
			}
			wt.CheckStored(t, acs, cmp.Or(got.ObjectID, tt.target.Principal), tt.wantStored)
			if w := acs.Writes(); w != tt.wantWrites {
				t.Errorf("ACS writes = %d, want %d", w, tt.wantWrites)
			}
			if tt.wantWrites > 0 && !strings.HasPrefix(got.CorrelationID, "cv-") {
				t.Errorf("CorrelationID = %q, want the write's ms-cv", got.CorrelationID)
			}
			if tt.wantStored != nil && (got.AfterType != tt.wantStored.PrincipalType || !wt.SameIDs(got.After, tt.wantStored.ClientIDs)) {
				t.Errorf("Result after = %s %v, want %s %v", got.AfterType, got.After, tt.wantStored.PrincipalType, tt.wantStored.ClientIDs)
			}
		})
	}
}

// Graph and ACS failures are errors to retry or to pause on, never a revoke.
func TestReconcileFailuresNeverRevoke(t *testing.T) {
	t.Parallel()
	scoped := rcPolicy
	scoped.ScopeGroups = []string{rcScope}
	tests := []struct {
		name   string
		policy worker.Policy
		script func(*wt.Directory, *wt.Assignments)
		check  func(error) bool
		want   string // what check asserts
	}{
		{"graph 5xx reading the user is temporary", rcPolicy,
			func(d *wt.Directory, _ *wt.Assignments) { d.FailNext("User", rcAlice, wt.ErrUnavailable()) }, worker.IsTemporary, "temporary"},
		{"graph auth failure is systemic", rcPolicy,
			func(d *wt.Directory, _ *wt.Assignments) { d.FailNext("User", "", wt.ErrSystemic()) }, worker.IsSystemic, "systemic"},
		{"graph throttling keeps its Retry-After", rcPolicy,
			func(d *wt.Directory, _ *wt.Assignments) { d.FailNext("User", "", wt.ErrThrottled(7*time.Second)) },
			func(err error) bool { return worker.RetryAfterOf(err) == 7*time.Second }, "retry after 7s"},
		{"scope check failure is temporary", scoped,
			func(d *wt.Directory, _ *wt.Assignments) {
				// Enabled but out of scope: only the failed scope check stands between her and a revoke.
				d.PutUser(fxTeamsUser(rcAlice))
				d.SetGroup(rcScope)
				d.FailNext("MemberOf", rcAlice, wt.ErrUnavailable())
			}, worker.IsTemporary, "temporary"},
		{"ACS read throttled", rcPolicy,
			func(_ *wt.Directory, a *wt.Assignments) { a.FailNext("Get", rcAlice, wt.ErrThrottled(time.Second)) }, worker.IsTemporary, "temporary"},
		{"ACS write not allowed is systemic", rcPolicy,
			func(_ *wt.Directory, a *wt.Assignments) { a.FailNext("Delete", rcAlice, wt.ErrSystemic()) }, worker.IsSystemic, "systemic"},
		{"ACS write throttled while granting", rcPolicy,
			func(d *wt.Directory, a *wt.Assignments) {
				d.PutUser(fxTeamsUser(rcAlice))
				a.Set(userAssignment(rcAlice, foreignApp))
				a.FailNext("Put", rcAlice, wt.ErrThrottled(0))
			}, worker.IsTemporary, "temporary"},
		{"ACS bad request is rejected for good", rcPolicy,
			func(_ *wt.Directory, a *wt.Assignments) { a.FailNext("Delete", rcAlice, wt.ErrBadRequest()) },
			func(err error) bool {
				var perm *worker.PermanentError
				var fe *wt.Err
				return errors.As(err, &perm) && perm.Reason == worker.ReasonRejected && errors.As(err, &fe) && fe.StatusCode() == 400
			}, "rejected, keeping the original error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// Alice is disabled: a successful reconcile would revoke.
			dir := wt.NewDirectory(*with(fxTeamsUser(rcAlice), func(u *worker.User) { u.AccountEnabled = false }))
			dir.SetGroup(rcScope, rcAlice)
			acs := wt.NewAssignments(userAssignment(rcAlice, ourApp1))
			tt.script(dir, acs)
			r := worker.NewReconciler(dir, acs, tt.policy, worker.ReconcilerOptions{})
			_, err := r.Reconcile(context.Background(), worker.Target{Principal: rcAlice})
			if err == nil || !tt.check(err) {
				t.Fatalf("Reconcile() error = %v, want %s", err, tt.want)
			}
			if worker.IsNotFound(err) {
				t.Errorf("Reconcile() error %v says not found", err)
			}
			if !strings.Contains(err.Error(), rcAlice) {
				t.Errorf("Reconcile() error %q does not name the principal", err)
			}
			if acs.Calls("Put")+acs.Calls("Delete") > 0 {
				if _, ok := acs.Lookup(rcAlice); !ok {
					t.Errorf("a failed write removed the assignment")
				}
			} else {
				wt.CheckStored(t, acs, rcAlice, refAssignment(userAssignment(rcAlice, ourApp1)))
			}
		})
	}
}

// A scope check answering not found right after the user read succeeded says nothing
// sure about the user (Graph's replicas disagree for a moment, or the group's side lags):
// only the user read decides that the user is gone. It is a temporary error, never a revoke.
func TestReconcileScopeNotFoundAfterTheUserReadIsTemporary(t *testing.T) {
	t.Parallel()
	p := rcPolicy
	p.ScopeGroups = []string{rcScope}
	dir := wt.NewDirectory(fxTeamsUser(rcAlice))
	dir.SetGroup(rcScope, rcAlice)
	dir.FailNext("MemberOf", rcAlice, wt.ErrNotFound())
	acs := wt.NewAssignments(userAssignment(rcAlice, ourApp1))
	_, err := worker.NewReconciler(dir, acs, p, worker.ReconcilerOptions{}).Reconcile(context.Background(), worker.Target{Principal: rcAlice})
	if err == nil || !worker.IsTemporary(err) || worker.IsNotFound(err) || !strings.Contains(err.Error(), rcAlice) {
		t.Fatalf("Reconcile() error = %v; want a temporary error naming the user, not a not-found", err)
	}
	if acs.Writes() != 0 {
		t.Errorf("writes = %d, want 0", acs.Writes())
	}
	wt.CheckStored(t, acs, rcAlice, refAssignment(userAssignment(rcAlice, ourApp1)))
}

func TestReconcileDeleteOfAnAlreadyGoneAssignmentSucceeds(t *testing.T) {
	t.Parallel()
	acs := wt.NewAssignments(userAssignment(rcAlice, ourApp1))
	acs.FailNext("Delete", rcAlice, wt.ErrNotFound()) // someone else deleted it between GET and DELETE
	r := worker.NewReconciler(wt.NewDirectory(), acs, rcPolicy, worker.ReconcilerOptions{})
	got, err := r.Reconcile(context.Background(), worker.Target{Principal: rcAlice})
	if err != nil || got.Action != worker.ActionRevoke {
		t.Fatalf("Reconcile() = %s, %v; want revoke, no error", got.Action, err)
	}
}

func TestReconcileRejectsImpossiblePrincipals(t *testing.T) {
	t.Parallel()
	for _, principal := range []string{"", "not a principal", "../users", "{" + rcAlice + "}"} {
		dir, acs := wt.NewDirectory(), wt.NewAssignments()
		r := worker.NewReconciler(dir, acs, rcPolicy, worker.ReconcilerOptions{})
		_, err := r.Reconcile(context.Background(), worker.Target{Principal: principal})
		var perm *worker.PermanentError
		if !errors.As(err, &perm) || perm.Reason != worker.ReasonBadPrincipal {
			t.Errorf("Reconcile(%q) error = %v, want bad_principal", principal, err)
		}
		if n := dir.Calls("User") + acs.Calls("Get"); n != 0 {
			t.Errorf("Reconcile(%q) made %d calls, want none", principal, n)
		}
	}
}

func TestReconcileCancelledIsNotRejected(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := worker.NewReconciler(wt.NewDirectory(fxTeamsUser(rcAlice)), wt.NewAssignments(), rcPolicy, worker.ReconcilerOptions{})
	_, err := r.Reconcile(ctx, worker.Target{Principal: rcAlice})
	var perm *worker.PermanentError
	if !errors.Is(err, context.Canceled) || errors.As(err, &perm) {
		t.Fatalf("Reconcile(cancelled) error = %v, want context.Canceled and not permanent", err)
	}
}

func TestReconcileDryRunWritesNothing(t *testing.T) {
	t.Parallel()
	dir := wt.NewDirectory(fxTeamsUser(rcAlice), *with(fxTeamsUser(rcBob), func(u *worker.User) { u.AccountEnabled = false }))
	acs := wt.NewAssignments(userAssignment(rcBob, ourApp1, foreignApp))
	r := worker.NewReconciler(dir, acs, rcPolicy, worker.ReconcilerOptions{DryRun: true})
	ctx := context.Background()

	alice, err := r.Reconcile(ctx, worker.Target{Principal: rcAlice})
	if err != nil {
		t.Fatal(err)
	}
	bob, err := r.Reconcile(ctx, worker.Target{Principal: rcBob})
	if err != nil {
		t.Fatal(err)
	}
	if acs.Writes() != 0 {
		t.Errorf("dry run made %d writes", acs.Writes())
	}
	for _, tc := range []struct {
		got        worker.Result
		wantAction worker.Action
		wantAfter  []string
	}{{alice, worker.ActionGrant, []string{ourApp1}}, {bob, worker.ActionRevoke, []string{foreignApp}}} {
		if !tc.got.DryRun || tc.got.Action != tc.wantAction || !reflect.DeepEqual(tc.got.After, tc.wantAfter) {
			t.Errorf("dry run result = %+v, want DryRun %s leaving %v", tc.got, tc.wantAction, tc.wantAfter)
		}
	}
	wt.CheckStored(t, acs, rcAlice, nil)
	wt.CheckStored(t, acs, rcBob, refAssignment(userAssignment(rcBob, ourApp1, foreignApp)))
}

// Level-triggered: a replayed or duplicated notification converges to the same state and
// costs one directory read and one ACS read, no write.
func TestReconcileReplayCostsReadsOnly(t *testing.T) {
	t.Parallel()
	for _, start := range []struct {
		name   string
		users  []worker.User
		stored []worker.Assignment
	}{
		{"grant", []worker.User{fxTeamsUser(rcAlice)}, nil},
		{"revoke", nil, []worker.Assignment{userAssignment(rcAlice, foreignApp, ourApp1)}},
	} {
		t.Run(start.name, func(t *testing.T) {
			t.Parallel()
			dir, acs := wt.NewDirectory(start.users...), wt.NewAssignments(start.stored...)
			r := worker.NewReconciler(dir, acs, rcPolicy, worker.ReconcilerOptions{})
			ctx := context.Background()
			if _, err := r.Reconcile(ctx, worker.Target{Principal: rcAlice}); err != nil {
				t.Fatal(err)
			}
			writes, gets, reads := acs.Writes(), acs.Calls("Get"), dir.Calls("User")
			for range 3 {
				got, err := r.Reconcile(ctx, worker.Target{Principal: rcAlice})
				if err != nil || got.Action != worker.ActionNoop {
					t.Fatalf("replay = %s, %v; want noop", got.Action, err)
				}
			}
			if acs.Writes() != writes || acs.Calls("Get") != gets+3 || dir.Calls("User") != reads+3 {
				t.Errorf("replays cost %d writes, %d ACS reads, %d directory reads; want 0, 3, 3",
					acs.Writes()-writes, acs.Calls("Get")-gets, dir.Calls("User")-reads)
			}
		})
	}
}

func TestReconcileKnownMakesNoDirectoryCalls(t *testing.T) {
	t.Parallel()
	dir := wt.NewDirectory()
	acs := wt.NewAssignments(userAssignment(rcBob, ourApp1))
	r := worker.NewReconciler(dir, acs, rcPolicy, worker.ReconcilerOptions{})
	ctx := context.Background()
	alice := fxTeamsUser(rcAlice)

	plan, err := r.PlanKnown(ctx, worker.Target{Principal: rcAlice}, &alice, true)
	if err != nil || plan.Action != worker.ActionGrant || !plan.DryRun || acs.Writes() != 0 {
		t.Fatalf("PlanKnown() = %+v, %v with %d writes; want a dry-run grant and no write", plan, err, acs.Writes())
	}
	got, err := r.ReconcileKnown(ctx, worker.Target{Principal: rcAlice}, &alice, true)
	if err != nil || got.Action != worker.ActionGrant || got.DryRun {
		t.Fatalf("ReconcileKnown() = %+v, %v; want a grant", got, err)
	}
	got, err = r.ReconcileKnown(ctx, worker.Target{Principal: rcBob, Source: "backfill"}, nil, false)
	if err != nil || got.Action != worker.ActionRevoke || got.Source != "backfill" {
		t.Fatalf("ReconcileKnown(deleted) = %+v, %v; want a revoke", got, err)
	}
	if n := dir.Calls("User") + dir.Calls("MemberOf"); n != 0 {
		t.Errorf("known reconciles made %d directory calls, want 0", n)
	}
	wt.CheckStored(t, acs, rcAlice, refAssignment(userAssignment(rcAlice, ourApp1)))
	wt.CheckStored(t, acs, rcBob, nil)

	_, err = r.ReconcileKnown(ctx, worker.Target{Principal: "someone@contoso.com"}, nil, true)
	var perm *worker.PermanentError
	if !errors.As(err, &perm) || perm.Reason != worker.ReasonBadPrincipal {
		t.Errorf("ReconcileKnown(UPN, no user) error = %v, want bad_principal", err)
	}
}

// Read one call at a time, the scope is read once per directory read, and only when it can change the verdict: the policy has scope groups,
// the message asks for a reconcile, and the user is otherwise eligible. A user refused for
// another reason is revoked with that reason, whatever the scope.
func TestReconcileScopeIsReadOnlyWhenItCanChangeTheVerdict(t *testing.T) {
	t.Parallel()
	disabled := func(u *worker.User) { u.AccountEnabled = false }
	unlicensed := func(u *worker.User) { u.Plans = nil }
	for _, tc := range []struct {
		name       string
		scope      []string
		user       worker.User
		target     worker.Target
		want       int
		wantReason string
	}{
		{"unscoped policy", nil, fxTeamsUser(rcAlice), worker.Target{Principal: rcAlice}, 0, "teams plan enabled"},
		{"scoped policy", []string{rcScope}, fxTeamsUser(rcAlice), worker.Target{Principal: rcAlice}, 1, "teams plan enabled"},
		// The revoke is verified by a second read, scope included.
		{"scoped resource account", []string{rcScope}, fxResourceAccount(rcAlice), worker.Target{Principal: rcAlice}, 2, "out of scope"},
		{"operator command", []string{rcScope}, fxTeamsUser(rcAlice), worker.Target{Principal: rcAlice, Command: worker.CommandGrant}, 0, ""},
		{"disabled user", []string{rcScope}, *with(fxTeamsUser(rcAlice), disabled), worker.Target{Principal: rcAlice}, 0, "account disabled"},
		{"user without a teams plan", []string{rcScope}, *with(fxTeamsUser(rcAlice), unlicensed), worker.Target{Principal: rcAlice}, 0, "no teams plan"},
	} {
		dir := wt.NewDirectory(tc.user)
		dir.SetGroup(rcScope, rcBob)
		if tc.name == "scoped policy" {
			dir.SetGroup(rcScope, rcAlice)
		}
		p := rcPolicy
		p.ScopeGroups = tc.scope
		acs := wt.NewAssignments(userAssignment(rcAlice, ourApp1))
		// The one-call-at-a-time path: a directory without the combined read
		// (TestReconcileReadsUserAndScopeInOneRequest covers the combined one).
		r := worker.NewReconciler(dir.Sequential(), acs, p, worker.ReconcilerOptions{})
		res, err := r.Reconcile(context.Background(), tc.target)
		if err != nil {
			t.Fatal(err)
		}
		if got := dir.Calls("MemberOf"); got != tc.want {
			t.Errorf("%s: MemberOf calls = %d, want %d", tc.name, got, tc.want)
		}
		if tc.wantReason != "" && res.Reason != tc.wantReason {
			t.Errorf("%s: reason = %q, want %q", tc.name, res.Reason, tc.wantReason)
		}
	}
}

// The runtime reconciles different principals concurrently; run with -race.
func TestReconcileConcurrentPrincipals(t *testing.T) {
	t.Parallel()
	ids := []string{rcAlice, rcBob, rcIVR}
	dir := wt.NewDirectory(fxTeamsUser(rcAlice), fxTeamsUser(rcBob), fxResourceAccount(rcIVR))
	acs := wt.NewAssignments()
	r := worker.NewReconciler(dir, acs, rcPolicy, worker.ReconcilerOptions{})
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Go(func() {
			if _, err := r.Reconcile(context.Background(), worker.Target{Principal: ids[i%len(ids)]}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if acs.Len() != len(ids) {
		t.Errorf("assignments = %d, want %d", acs.Len(), len(ids))
	}
}

func refAssignment(a worker.Assignment) *worker.Assignment { return &a }
