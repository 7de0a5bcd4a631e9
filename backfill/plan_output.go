package backfill

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// PlanRow is one principal of a backfill plan: what it is judged to be, what its assignment
// holds and what the plan leaves. It also carries the assignment as read (BeforeType and
// Before), so applying the plan writes without reading ACS a second time.
type PlanRow struct {
	ObjectID string               `json:"object_id"`
	UPN      string               `json:"upn,omitempty"`
	Type     worker.PrincipalType `json:"type"` // "" when not eligible
	Action   worker.Action        `json:"action"`
	Reason   string               `json:"reason"`
	// Before and After are the assignment's client ids: null for no assignment, [] for a
	// resource-account assignment.
	Before     []string             `json:"before"`
	After      []string             `json:"after"`
	BeforeType worker.PrincipalType `json:"before_type,omitempty"` // "" when there was no assignment
	AfterType  worker.PrincipalType `json:"after_type,omitempty"`  // "" when none is left
	Source     string               `json:"source,omitempty"`      // which candidate set it came from
}

// planRowOf turns a planned worker.Result into a row.
func planRowOf(res worker.Result) PlanRow {
	return PlanRow{ObjectID: res.ObjectID, UPN: res.UPN, Type: res.Type, Action: res.Action,
		Reason: res.Reason, Before: res.Before, After: res.After, BeforeType: res.BeforeType,
		AfterType: res.AfterType, Source: res.Source}
}

// writes reports whether applying the row changes ACS.
func (r PlanRow) writes() bool {
	return r.Action == worker.ActionGrant || r.Action == worker.ActionRevoke
}

// PlanTotals closes a plan: counts by action and what was done about them.
type PlanTotals struct {
	Candidates int                   `json:"candidates"`
	Planned    map[worker.Action]int `json:"planned"`
	Errors     int                   `json:"errors"`
	// Applied counts what was written (or, with Enqueue, handed to the queue); empty in a
	// dry run.
	Applied map[worker.Action]int `json:"applied"`
	// Stale counts planned changes a fresh read decided otherwise when they were applied.
	Stale    int         `json:"stale"`
	Withheld int         `json:"withheld_revokes"` // revokes the brake held back
	Brake    *BrakeError `json:"brake,omitempty"`  // set when the brake tripped
	DryRun   bool        `json:"dry_run"`
	Enqueued bool        `json:"enqueued"`
}

// PlanWriter receives a backfill plan as it is computed: rows in completion order (not
// sorted), then one totals record. Backfill calls it from one goroutine.
type PlanWriter interface {
	WriteRow(PlanRow) error
	WriteTotals(PlanTotals) error
}

// planFlushEvery bounds how many rows sit in the buffer before they are shown.
const planFlushEvery = 64

// PlanTable writes a plan as an aligned text table for a person at a terminal. Columns
// have fixed widths so rows can stream; an unusually long UPN or reason only shifts its
// own row.
type PlanTable struct {
	w      *bufio.Writer
	header bool
	rows   int
}

// NewPlanTable returns a table writer on w.
func NewPlanTable(w io.Writer) *PlanTable { return &PlanTable{w: bufio.NewWriter(w)} }

const planTableFormat = "%-6s  %-20s  %-36s  %-40s  %-32s  %s\n"

// WriteRow writes one row (and the header before the first).
func (t *PlanTable) WriteRow(r PlanRow) error {
	if !t.header {
		t.printf(planTableFormat, "ACTION", "TYPE", "OBJECT ID", "UPN", "REASON", "CHANGE")
		t.header = true
	}
	t.printf(planTableFormat, r.Action, orDash(string(r.Type)), r.ObjectID, orDash(r.UPN), r.Reason,
		describeAssignment(r.BeforeType, r.Before)+" -> "+describeAssignment(r.AfterType, r.After))
	if t.rows++; t.rows%planFlushEvery == 0 {
		return t.w.Flush()
	}
	return nil
}

// WriteTotals writes the totals by action and what was applied, then flushes.
func (t *PlanTable) WriteTotals(s PlanTotals) error {
	t.printf("\nplanned: %s  errors %d  (%d candidates)\n", actionCounts(s.Planned), s.Errors, s.Candidates)
	switch {
	case s.DryRun:
		t.printf("dry run: nothing written\n")
	case s.Enqueued:
		t.printf("enqueued: %s\n", actionCounts(s.Applied))
	default:
		t.printf("applied: %s\n", actionCounts(s.Applied))
	}
	if s.Stale > 0 {
		t.printf("stale: %d planned changes decided otherwise on a fresh read (applied as read)\n", s.Stale)
	}
	if s.Brake != nil {
		t.printf("brake: %s; nothing applied, %d revokes withheld (rerun with force to apply the plan)\n", s.Brake.Error(), s.Withheld)
	}
	return t.w.Flush()
}

// printf buffers whole lines; a write error sticks in t.w and is returned by the next Flush.
func (t *PlanTable) printf(format string, args ...any) {
	_ = writeLines(t.w, fmt.Appendf(nil, format, args...))
}

// writeLines buffers p, which ends at a line's end, so that w only ever writes whole
// lines: it flushes first when p does not fit (a p longer than the buffer is then written
// at once). stdout is often merged with stderr's progress and log lines, which would
// otherwise run into a row cut in two.
func writeLines(w *bufio.Writer, p []byte) error {
	if len(p) > w.Available() && w.Buffered() > 0 {
		if err := w.Flush(); err != nil {
			return err
		}
	}
	_, err := w.Write(p)
	return err
}

// actionCounts formats counts in a fixed order: grant, revoke, noop, skip.
func actionCounts(m map[worker.Action]int) string {
	parts := make([]string, 0, 4)
	for _, a := range []worker.Action{worker.ActionGrant, worker.ActionRevoke, worker.ActionNoop, worker.ActionSkip} {
		parts = append(parts, fmt.Sprintf("%s %d", a, m[a]))
	}
	return strings.Join(parts, "  ")
}

// describeAssignment prints an assignment compactly: "none", "teamsResourceAccount", or
// "user[id1,id2]".
func describeAssignment(t worker.PrincipalType, ids []string) string {
	switch t {
	case "":
		return "none"
	case worker.PrincipalUser:
		return string(t) + "[" + strings.Join(ids, ",") + "]"
	}
	return string(t)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// PlanJSON writes a plan as one JSON document, {"plan":[rows],"totals":{...}}, a row per
// line, so a script parses it whole while a tenant-wide plan is never held in memory. A run
// that ends before its totals still gets a parseable document from Close (without totals).
// Each row waits for the next (it only then knows whether a comma follows it), so what is
// flushed always ends at a line's end.
type PlanJSON struct {
	w       *bufio.Writer
	rows    int
	pending []byte // the last row, not yet written
	closed  bool
}

var (
	_ PlanWriter = (*PlanTable)(nil)
	_ PlanWriter = (*PlanJSON)(nil)
)

// NewPlanJSON returns a JSON document writer on w. Call Close when the run ends.
func NewPlanJSON(w io.Writer) *PlanJSON { return &PlanJSON{w: bufio.NewWriter(w)} }

// WriteRow adds one row to the plan array.
func (j *PlanJSON) WriteRow(r PlanRow) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := j.release(",\n"); err != nil {
		return err
	}
	j.pending = append([]byte("  "), b...)
	if j.rows++; j.rows%planFlushEvery == 0 {
		return j.w.Flush()
	}
	return nil
}

// WriteTotals ends the document with the totals and flushes.
func (j *PlanJSON) WriteTotals(s PlanTotals) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return j.end(fmt.Appendf(nil, "],\n\"totals\":%s}\n", b))
}

// Close ends a document whose totals were never written (a run that failed before them) and
// flushes.
func (j *PlanJSON) Close() error { return j.end([]byte("]}\n")) }

// end writes the pending row and tail, once, and flushes.
func (j *PlanJSON) end(tail []byte) error {
	if !j.closed {
		if err := j.release("\n"); err != nil {
			return err
		}
		if err := writeLines(j.w, tail); err != nil {
			return err
		}
		j.closed = true
	}
	return j.w.Flush()
}

// release writes the document's head before the first row, or the pending row followed by
// sep.
func (j *PlanJSON) release(sep string) error {
	if j.pending == nil {
		if j.rows > 0 || j.closed {
			return nil
		}
		return writeLines(j.w, []byte("{\"plan\":[\n"))
	}
	p := append(j.pending, sep...)
	j.pending = nil
	return writeLines(j.w, p)
}

// ErrBrake says a backfill planned more revokes than the brake allows and therefore applied
// nothing at all, grants included: the plan as a whole is in doubt (a listing fault or a
// wrong setting shows as mass revokes, and the grants come from the same listings). The
// error returned is a *BrakeError that matches ErrBrake with errors.Is. The CLI exits 3 on
// it.
var ErrBrake = errors.New("revoke brake tripped")

// BrakeError is the revoke brake's verdict, like Entra provisioning's accidental-deletion
// threshold: Revokes planned out of Assigned principals that held an assignment, against
// the limits.
type BrakeError struct {
	Revokes    int     `json:"revokes"`
	Assigned   int     `json:"assigned"`
	MaxRevokes int     `json:"max_revokes"`           // -1 = no count limit
	MaxPercent float64 `json:"max_percent,omitempty"` // 0 or negative = no percentage limit
}

func (e *BrakeError) Error() string {
	var limits []string
	if e.MaxRevokes >= 0 {
		limits = append(limits, fmt.Sprintf("max %d", e.MaxRevokes))
	}
	if e.MaxPercent > 0 {
		limits = append(limits, fmt.Sprintf("max %s%% of assigned", strconv.FormatFloat(e.MaxPercent, 'g', -1, 64)))
	}
	return fmt.Sprintf("%s: %d revokes planned of %d assigned (%s)",
		ErrBrake, e.Revokes, e.Assigned, strings.Join(limits, ", "))
}

// Is makes errors.Is(err, ErrBrake) true.
func (e *BrakeError) Is(target error) bool { return target == ErrBrake }
