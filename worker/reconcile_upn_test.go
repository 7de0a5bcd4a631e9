package worker

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
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
		command    Command
		principal  string
		deleted    bool // alice is soft-deleted (else she is purged)
		wantAction Action
		wantReason string // PermanentError reason; "" for success
		wantStored *Assignment
	}{
		{"revoke of a soft-deleted user's UPN revokes", CommandRevoke, alice.UPN, true, ActionRevoke, "", nil},
		{"reconcile of a soft-deleted user's UPN revokes", CommandReconcile, strings.ToUpper(alice.UPN), true, ActionRevoke, "", nil},
		{"grant to a soft-deleted user's UPN is refused", CommandGrant, alice.UPN, true, "", ReasonUnresolved,
			refAssignment(userAssignment(rcAlice, ourApp1, foreignApp))},
		{"revoke of a UPN nobody has is refused", CommandRevoke, alice.UPN, false, "", ReasonUnresolved,
			refAssignment(userAssignment(rcAlice, ourApp1, foreignApp))},
		{"grant to a UPN nobody has is refused", CommandGrant, "nobody@contoso.com", false, "", ReasonUnresolved,
			refAssignment(userAssignment(rcAlice, ourApp1, foreignApp))},
		{"reconcile of a UPN nobody has is refused", CommandReconcile, "nobody@contoso.com", false, "", ReasonUnresolved,
			refAssignment(userAssignment(rcAlice, ourApp1, foreignApp))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := newFakeDirectory(alice)
			if tc.deleted {
				dir.SoftDelete(rcAlice, time.Now())
			} else {
				dir.PurgeUser(rcAlice)
			}
			acs := newFakeAssignments(userAssignment(rcAlice, ourApp1, foreignApp))
			got, err := NewReconciler(dir, acs, rcPolicy, ReconcilerOptions{}).Reconcile(context.Background(),
				Target{Principal: tc.principal, Command: tc.command})
			if tc.wantReason == "" {
				if err != nil || got.Action != tc.wantAction || got.ObjectID != rcAlice {
					t.Fatalf("Reconcile() = %s on %q, %v; want %s on %s", got.Action, got.ObjectID, err, tc.wantAction, rcAlice)
				}
				checkStored(t, acs, rcAlice, refAssignment(userAssignment(rcAlice, foreignApp)))
				return
			}
			var perm *PermanentError
			if !errors.As(err, &perm) || perm.Reason != tc.wantReason || !strings.Contains(perm.Description, strings.ToLower(tc.principal)) {
				t.Fatalf("Reconcile() = %s, %v; want a permanent %s error naming the UPN", got.Action, err, tc.wantReason)
			}
			if acs.Writes() != 0 {
				t.Errorf("writes = %d, want 0", acs.Writes())
			}
			checkStored(t, acs, rcAlice, tc.wantStored)
		})
	}
}

// A failure looking up the deleted users is an error to retry, never "nobody has it".
func TestReconcileByUPNDeletedLookupFailureIsTemporary(t *testing.T) {
	t.Parallel()
	dir := newFakeDirectory()
	dir.FailNext("DeletedUser", "", errUnavailable())
	acs := newFakeAssignments()
	_, err := NewReconciler(dir, acs, rcPolicy, ReconcilerOptions{}).Reconcile(context.Background(),
		Target{Principal: "gone@contoso.com", Command: CommandRevoke})
	var perm *PermanentError
	if err == nil || !IsTemporary(err) || IsNotFound(err) || errors.As(err, &perm) {
		t.Fatalf("Reconcile() error = %v, want temporary", err)
	}
}
