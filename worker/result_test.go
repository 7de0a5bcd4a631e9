package worker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"reflect"
	"testing"

	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

func TestResultLogAttrsWriteOneAuditLine(t *testing.T) {
	t.Parallel()
	res := worker.Result{
		ObjectID: rcAlice, UPN: "alice@contoso.com", Type: worker.PrincipalUser,
		Action: worker.ActionRevoke, Reason: "account disabled",
		Before: []string{ourApp1, foreignApp}, After: []string{foreignApp},
		BeforeType: worker.PrincipalUser, AfterType: worker.PrincipalUser,
		CorrelationID: "cv-7", DryRun: true, Source: "users/updated", Command: worker.CommandReconcile,
	}
	got := auditRecord(t, res)
	delete(got, "time")
	want := map[string]any{
		"level": "INFO", "msg": "reconciled",
		"object_id": rcAlice, "upn": "alice@contoso.com", "principal_type": "user",
		"action": "revoke", "reason": "account disabled",
		"before": []any{ourApp1, foreignApp}, "after": []any{foreignApp},
		"before_type": "user", "after_type": "user",
		"ms_cv": "cv-7", "dry_run": true, "source": "users/updated", "command": "reconcile",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("audit line =\n %v\nwant\n %v", got, want)
	}
}

// A reconcile that repaired a stale write says how many times, so the audit log shows it.
func TestResultLogAttrsNameRepairs(t *testing.T) {
	t.Parallel()
	count := func(res worker.Result) (any, bool) {
		v, ok := auditRecord(t, res)["repairs"]
		return v, ok
	}
	if v, ok := count(worker.Result{ObjectID: rcAlice, Action: worker.ActionRevoke, Repairs: 1}); !ok || v != float64(1) {
		t.Errorf("repairs = %v (present %v), want 1", v, ok)
	}
	if v, ok := count(worker.Result{ObjectID: rcAlice, Action: worker.ActionGrant}); ok {
		t.Errorf("repairs = %v on a reconcile without any, want absent", v)
	}
}

func TestResultLogAttrsOfAnAbsentAssignmentIsNull(t *testing.T) {
	t.Parallel()
	got := auditRecord(t, worker.Result{ObjectID: rcAlice, Action: worker.ActionGrant, After: []string{ourApp1}, AfterType: worker.PrincipalUser})
	if before, ok := got["before"]; !ok || before != nil {
		t.Errorf("before = %v (present %v), want null: there was no assignment", before, ok)
	}
	if got["before_type"] != "" {
		t.Errorf("before_type = %v, want empty", got["before_type"])
	}
}

// auditRecord is the JSON record a "reconciled" line with res's attributes decodes to.
func auditRecord(t *testing.T, res worker.Result) map[string]any {
	t.Helper()
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).LogAttrs(context.Background(), slog.LevelInfo, "reconciled", res.LogAttrs()...)
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	return got
}
