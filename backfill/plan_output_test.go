package backfill

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/tpe-provisioner/tpe-provisioner/worker"

	wt "github.com/tpe-provisioner/tpe-provisioner/internal/workertest"
)

var planFixtureRows = []PlanRow{
	{ObjectID: "00000000-0000-4000-8000-000000000001", UPN: "ada@contoso.test", Type: worker.PrincipalUser,
		Action: worker.ActionGrant, Reason: "teams plan enabled", After: []string{"app-1"}, AfterType: worker.PrincipalUser},
	{ObjectID: "00000000-0000-4000-8000-000000000002", Action: worker.ActionRevoke, Reason: "not found in directory",
		Before: []string{}, BeforeType: worker.PrincipalResourceAccount},
	{ObjectID: "00000000-0000-4000-8000-000000000003", UPN: "bob@contoso.test", Action: worker.ActionRevoke,
		Reason: "account disabled", Before: []string{"app-1", "app-2"}, BeforeType: worker.PrincipalUser,
		After: []string{"app-2"}, AfterType: worker.PrincipalUser},
}

var planFixtureTotals = PlanTotals{
	Candidates: 10,
	Planned:    map[worker.Action]int{worker.ActionGrant: 1, worker.ActionRevoke: 2, worker.ActionNoop: 7},
	Applied:    map[worker.Action]int{worker.ActionGrant: 1},
	Withheld:   2,
	Brake:      &BrakeError{Revokes: 2, Assigned: 9, MaxRevokes: 1},
}

// writePlan writes rows and totals to pw as Backfill would.
func writePlan(t *testing.T, pw PlanWriter, rows []PlanRow, totals PlanTotals) {
	t.Helper()
	for _, r := range rows {
		if err := pw.WriteRow(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := pw.WriteTotals(totals); err != nil {
		t.Fatal(err)
	}
}

func TestPlanTable(t *testing.T) {
	var out bytes.Buffer
	writePlan(t, NewPlanTable(&out), planFixtureRows, planFixtureTotals)
	want := strings.Join([]string{
		"ACTION  TYPE                  OBJECT ID                             UPN                                       REASON                            CHANGE",
		"grant   user                  00000000-0000-4000-8000-000000000001  ada@contoso.test                          teams plan enabled                none -> user[app-1]",
		"revoke  -                     00000000-0000-4000-8000-000000000002  -                                         not found in directory            teamsResourceAccount -> none",
		"revoke  -                     00000000-0000-4000-8000-000000000003  bob@contoso.test                          account disabled                  user[app-1,app-2] -> user[app-2]",
		"",
		"planned: grant 1  revoke 2  noop 7  skip 0  errors 0  (10 candidates)",
		"applied: grant 1  revoke 0  noop 0  skip 0",
		"brake: revoke brake tripped: 2 revokes planned of 9 assigned (max 1); nothing applied, 2 revokes withheld (rerun with force to apply the plan)",
		"",
	}, "\n")
	if got := out.String(); got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
}

func TestPlanTableSaysDryRunAndEnqueue(t *testing.T) {
	tests := []struct {
		name   string
		totals PlanTotals
		want   string
	}{
		{"dry run", PlanTotals{DryRun: true}, "dry run: nothing written\n"},
		{"enqueue", PlanTotals{Enqueued: true, Applied: map[worker.Action]int{worker.ActionRevoke: 4}},
			"enqueued: grant 0  revoke 4  noop 0  skip 0\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			writePlan(t, NewPlanTable(&out), nil, tt.totals)
			if got := out.String(); !strings.HasSuffix(got, tt.want) || strings.Contains(got, "ACTION") {
				t.Errorf("got %q, want it to end with %q and have no header", got, tt.want)
			}
		})
	}
}

func TestPlanJSONIsOneDocument(t *testing.T) {
	var out bytes.Buffer
	writePlan(t, NewPlanJSON(&out), planFixtureRows, planFixtureTotals)
	var doc struct {
		Plan   []json.RawMessage `json:"plan"`
		Totals *PlanTotals       `json:"totals"`
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("not one JSON document: %v\n%s", err, out.String())
	}
	if len(doc.Plan) != len(planFixtureRows) {
		t.Fatalf("%d rows, want %d", len(doc.Plan), len(planFixtureRows))
	}
	for i, want := range planFixtureRows {
		var got PlanRow
		if err := json.Unmarshal(doc.Plan[i], &got); err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		if got.ObjectID != want.ObjectID || got.Action != want.Action || got.BeforeType != want.BeforeType ||
			strings.Join(got.After, ",") != strings.Join(want.After, ",") {
			t.Errorf("row %d = %+v, want %+v", i, got, want)
		}
	}
	// No assignment and a resource-account assignment must stay distinguishable.
	if !strings.Contains(string(doc.Plan[0]), `"before":null`) || !strings.Contains(string(doc.Plan[1]), `"before":[]`) {
		t.Errorf("before of rows 0 and 1: %s / %s; want null and []", doc.Plan[0], doc.Plan[1])
	}
	if doc.Totals == nil || doc.Totals.Planned[worker.ActionNoop] != 7 || doc.Totals.Withheld != 2 || doc.Totals.Brake == nil ||
		doc.Totals.Brake.Revokes != 2 {
		t.Errorf("totals = %+v, want 7 noops, 2 withheld and the brake", doc.Totals)
	}
	// A row a line, so a reader of the stream sees each as it is planned.
	if lines := strings.Count(out.String(), "\n"); lines != len(planFixtureRows)+3 {
		t.Errorf("%d lines, want the head, a row per line, and the totals' two:\n%s", lines, out.String())
	}
}

// A run that fails before its totals still leaves a document a script can parse.
func TestPlanJSONClosedWithoutTotals(t *testing.T) {
	for _, rows := range []int{0, 2} {
		var out bytes.Buffer
		j := NewPlanJSON(&out)
		for _, r := range planFixtureRows[:rows] {
			if err := j.WriteRow(r); err != nil {
				t.Fatal(err)
			}
		}
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Plan   []PlanRow   `json:"plan"`
			Totals *PlanTotals `json:"totals"`
		}
		if err := json.Unmarshal(out.Bytes(), &doc); err != nil || len(doc.Plan) != rows || doc.Totals != nil {
			t.Errorf("%d rows: %+v, %v from\n%s; want %d rows and no totals", rows, doc, err, out.String(), rows)
		}
	}
}

// The plan goes to stdout, which is often merged with stderr's progress and log lines: a
// flush must never end inside a row, whatever the rows' length, or another line runs into
// it.
func TestPlanWritersFlushWholeLines(t *testing.T) {
	writers := map[string]func(io.Writer) PlanWriter{
		"table": func(w io.Writer) PlanWriter { return NewPlanTable(w) },
		"json":  func(w io.Writer) PlanWriter { return NewPlanJSON(w) },
	}
	for name, newWriter := range writers {
		t.Run(name, func(t *testing.T) {
			rows := make([]PlanRow, 3*planFlushEvery)
			for i := range rows {
				rows[i] = planFixtureRows[i%len(planFixtureRows)]
				rows[i].Reason = strings.Repeat("long reason ", 2*i) // the last rows outgrow a 4 KB buffer
			}
			var out wt.LogSink
			writePlan(t, newWriter(&out), rows, planFixtureTotals)
			writes := out.Writes()
			for i, w := range writes {
				if !strings.HasSuffix(w, "\n") {
					t.Fatalf("write %d of %d ends inside a line: ...%q", i+1, len(writes), w[max(len(w)-40, 0):])
				}
			}
			if lines := strings.Count(out.String(), "\n"); lines < 3*planFlushEvery {
				t.Errorf("%d lines written, want every row", lines)
			}
		})
	}
}

func ExampleNewPlanTable() {
	table := NewPlanTable(os.Stdout)
	table.WriteRow(PlanRow{ObjectID: "00000000-0000-4000-8000-000000000001", UPN: "ada@contoso.test",
		Type: worker.PrincipalUser, Action: worker.ActionGrant, Reason: "teams plan enabled",
		After: []string{"app-1"}, AfterType: worker.PrincipalUser})
	table.WriteTotals(PlanTotals{Candidates: 3, DryRun: true,
		Planned: map[worker.Action]int{worker.ActionGrant: 1, worker.ActionNoop: 2}})
	// Output:
	// ACTION  TYPE                  OBJECT ID                             UPN                                       REASON                            CHANGE
	// grant   user                  00000000-0000-4000-8000-000000000001  ada@contoso.test                          teams plan enabled                none -> user[app-1]
	//
	// planned: grant 1  revoke 0  noop 2  skip 0  errors 0  (3 candidates)
	// dry run: nothing written
}
