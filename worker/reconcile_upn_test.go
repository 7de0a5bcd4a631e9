package worker_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	wt "github.com/tpe-provisioner/tpe-provisioner/internal/workertest"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// An operator command or a reconcile by UPN is never a silent no-op: a UPN no live user
// has is resolved through the deleted users (a soft-deleted user's assignment is still ours
// to remove), and a UPN that resolves to nobody, or only to a deleted user for a grant, is
// refused for good with a reason that says so (dead-lettered from the queue, an error from
// the CLI).
func TestReconcileByUPNResolvesDeletedUsers(t *testing.T) {
	t.Parallel()
	alice := fxTeamsUser(rcAlice)
	for _, tc := range []struct {
		name       string
		command    worker.Command
		principal  string
		deleted    bool // alice is soft-deleted (else she is purged)
		wantAction worker.Action
		wantReason string // PermanentError reason; "" for success
		wantStored *worker.Assignment
	}{
		{"revoke of a soft-deleted user's UPN revokes", worker.CommandRevoke, alice.UPN, true, worker.ActionRevoke, "", nil},
		{"reconcile of a soft-deleted user's UPN revokes", worker.CommandReconcile, strings.ToUpper(alice.UPN), true, worker.ActionRevoke, "", nil},
		{"grant to a soft-deleted user's UPN is refused", worker.CommandGrant, alice.UPN, true, "", worker.ReasonUnresolved,
			refAssignment(userAssignment(rcAlice, ourApp1, foreignApp))},
		{"revoke of a UPN nobody has is refused", worker.CommandRevoke, alice.UPN, false, "", worker.ReasonUnresolved,
			refAssignment(userAssignment(rcAlice, ourApp1, foreignApp))},
		{"grant to a UPN nobody has is refused", worker.CommandGrant, "nobody@contoso.com", false, "", worker.ReasonUnresolved,
			refAssignment(userAssignment(rcAlice, ourApp1, foreignApp))},
		{"reconcile of a UPN nobody has is refused", worker.CommandReconcile, "nobody@contoso.com", false, "", worker.ReasonUnresolved,
			refAssignment(userAssignment(rcAlice, ourApp1, foreignApp))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := wt.NewDirectory(alice)
			if tc.deleted {
				dir.SoftDelete(rcAlice, time.Now())
			} else {
				dir.PurgeUser(rcAlice)
			}
			acs := wt.NewAssignments(userAssignment(rcAlice, ourApp1, foreignApp))
			got, err := worker.NewReconciler(dir, acs, rcPolicy, worker.ReconcilerOptions{}).Reconcile(context.Background(),
				worker.Target{Principal: tc.principal, Command: tc.command})
			if tc.wantReason == "" {
				if err != nil || got.Action != tc.wantAction || got.ObjectID != rcAlice {
					t.Fatalf("Reconcile() = %s on %q, %v; want %s on %s", got.Action, got.ObjectID, err, tc.wantAction, rcAlice)
				}
				wt.CheckStored(t, acs, rcAlice, refAssignment(userAssignment(rcAlice, foreignApp)))
				return
			}
			var perm *worker.PermanentError
			if !errors.As(err, &perm) || perm.Reason != tc.wantReason || !strings.Contains(perm.Description, strings.ToLower(tc.principal)) {
				t.Fatalf("Reconcile() = %s, %v; want a permanent %s error naming the UPN", got.Action, err, tc.wantReason)
			}
			if acs.Writes() != 0 {
				t.Errorf("writes = %d, want 0", acs.Writes())
			}
			wt.CheckStored(t, acs, rcAlice, tc.wantStored)
		})
	}
}

// A failure looking up the deleted users is an error to retry, never "nobody has it".
func TestReconcileByUPNDeletedLookupFailureIsTemporary(t *testing.T) {
	t.Parallel()
	dir := wt.NewDirectory()
	dir.FailNext("DeletedUser", "", wt.ErrUnavailable())
	acs := wt.NewAssignments()
	_, err := worker.NewReconciler(dir, acs, rcPolicy, worker.ReconcilerOptions{}).Reconcile(context.Background(),
		worker.Target{Principal: "gone@contoso.com", Command: worker.CommandRevoke})
	var perm *worker.PermanentError
	if err == nil || !worker.IsTemporary(err) || worker.IsNotFound(err) || errors.As(err, &perm) {
		t.Fatalf("Reconcile() error = %v, want temporary", err)
	}
}
