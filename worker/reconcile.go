package worker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ReconcilerOptions tune a Reconciler. The zero value writes.
type ReconcilerOptions struct {
	// DryRun makes every reconcile read and decide but never write; results say DryRun.
	DryRun bool
}

// Reconciler converges one principal's assignment to the policy: it reads the directory
// and the assignment now, decides (pure), and writes only the difference. The same
// function serves queue messages, backfill and the CLI verbs, so duplicates and replays
// converge and cost reads, not writes. It does not log: callers log Result.LogAttrs.
// A Reconciler is safe for concurrent use if its collaborators are.
type Reconciler struct {
	dir    directory
	acs    Assignments
	policy Policy
	dryRun bool
}

// WithAssignments returns a copy of r that makes its ACS calls through wrap(r's client)
// and writes (no dry run); everything else r was built with (directory, policy, options)
// holds for the copy too. Backfill uses it to count its ACS calls.
func (r *Reconciler) WithAssignments(wrap func(Assignments) Assignments) *Reconciler {
	c := *r
	c.acs, c.dryRun = wrap(r.acs), false
	return &c
}

// Policy returns the policy r decides by.
func (r *Reconciler) Policy() Policy {
	p := r.policy
	p.ClientIDs, p.ScopeGroups = slices.Clone(p.ClientIDs), slices.Clone(p.ScopeGroups)
	return p
}

// maxWriteRounds bounds the writes of one reconcile: when the directory still gives another
// verdict after this many verified writes, the reconcile gives up with a temporary error.
const maxWriteRounds = 3

// NewReconciler returns a Reconciler reading dir and writing acs under policy p.
func NewReconciler(dir directory, acs Assignments, p Policy, o ReconcilerOptions) *Reconciler {
	p.ClientIDs = normalizeClientIDs(p.ClientIDs)
	p.ScopeGroups = slices.Clone(p.ScopeGroups)
	return &Reconciler{dir: dir, acs: acs, policy: p, dryRun: o.DryRun}
}

// Reconcile reads the principal (object id or UPN) from the directory and its assignment
// from ACS side by side, checks scope membership when the policy has scope groups — in the
// same round trip as the user read when the directory offers a combined read
// (userScopeReader), after it otherwise — then converges the assignment. Every write is verified: the directory (and the scope) is read
// again after it, and when that read gives another verdict the reconcile starts over from a
// fresh ACS read, at most maxWriteRounds writes, then a temporary error. So whichever write
// of several replicas lands last is followed by a directory read made after it, and a stale
// write is repaired by its own writer (Result.Repairs counts it).
//
// Only a directory answer of not found makes a principal absent; any other directory or
// ACS error is returned wrapped with context, keeping its classification (errors.go). A
// scope check answering not found right after the user was read is temporary, never "the
// user went away". A UPN that no live user has is resolved through the deleted users: a
// revoke or reconcile then removes what the deleted user holds, a grant is refused; a UPN
// that resolves to nobody at all is a *PermanentError (unresolved). A principal that is
// neither a GUID nor a UPN is a *PermanentError (bad_principal); a collaborator's refusal
// that is neither not-found, temporary nor systemic (an ACS 400, say) also carries a
// *PermanentError (rejected). A write that failed temporarily or ran out of time may still
// be applied by ACS later: its error says so (uncertainWriteOf) so the caller can schedule
// a re-check. On error the Result holds what was known so far.
func (r *Reconciler) Reconcile(ctx context.Context, t Target) (Result, error) {
	t = withDefaults(t)
	principal := strings.TrimSpace(t.Principal)
	var (
		snap snapshot
		cur  *Assignment
		err  error
	)
	switch {
	case isObjectID(principal):
		snap, cur, err = r.readBoth(ctx, t, strings.ToLower(principal))
	case looksLikeUPN(principal):
		snap, cur, err = r.readByUPN(ctx, t, principal)
	default:
		return r.start(t), &PermanentError{Reason: ReasonBadPrincipal,
			Description: fmt.Sprintf("principal %s is neither an object id nor a UPN", quoted(principal))}
	}
	if err != nil {
		res := r.start(t)
		if snap.user != nil {
			res.ObjectID, res.UPN = snap.oid, snap.user.UPN
		}
		return res, err
	}
	return r.converge(ctx, t, snap, cur)
}

// snapshot is what one read of the directory said about a principal.
type snapshot struct {
	oid     string // lower-case object id
	user    *User  // nil: the directory does not have it
	inScope bool   // true when the policy has no scope groups or the command skips the check
}

// converge decides on snap and cur and, unless in a dry run, writes and verifies each write
// against a new directory read (see Reconcile).
func (r *Reconciler) converge(ctx context.Context, t Target, snap snapshot, cur *Assignment) (Result, error) {
	var beforeType PrincipalType
	var before []string
	for round := 0; ; round++ {
		res, plan := r.plan(t, snap.oid, snap.user, snap.inScope, cur, !r.dryRun)
		if round == 0 {
			beforeType, before = res.BeforeType, res.Before
		} else {
			res.BeforeType, res.Before, res.Repairs = beforeType, before, round
		}
		if r.dryRun || (plan.Put == nil && !plan.Delete) {
			return res, nil
		}
		res, err := r.apply(ctx, res, plan)
		if err != nil || t.Command != CommandReconcile {
			return res, err // operator overrides do not depend on the directory's verdict
		}
		was := r.verdict(t, snap.user, snap.inScope).Type
		next, err := r.readDirectory(ctx, t, snap.oid, r.expectsScope(snap))
		if err != nil {
			return res, fmt.Errorf("%s of %s written, then re-reading the directory: %w", res.Action, snap.oid, err)
		}
		if r.verdict(t, next.user, next.inScope).Type == was {
			return res, nil
		}
		if round+1 >= maxWriteRounds {
			return res, &retryLater{msg: fmt.Sprintf("the directory changed %s again after each of %d writes; will look again",
				snap.oid, maxWriteRounds)}
		}
		snap = next
		if cur, err = r.current(ctx, snap.oid); err != nil {
			return res, err
		}
	}
}

// readBoth reads the user (and the scope) and the assignment side by side.
func (r *Reconciler) readBoth(ctx context.Context, t Target, oid string) (snapshot, *Assignment, error) {
	acs := r.startCurrent(ctx, oid)
	snap, err := r.readDirectory(ctx, t, oid, false)
	if err != nil {
		acs.drop()
		return snap, nil, err
	}
	cur, err := acs.wait()
	return snap, cur, err
}

// readByUPN resolves a UPN through the user read (then reads the scope and the assignment
// side by side) or, when no live user has it, through the deleted users.
func (r *Reconciler) readByUPN(ctx context.Context, t Target, upn string) (snapshot, *Assignment, error) {
	u, err := r.dir.User(ctx, upn)
	switch {
	case IsNotFound(err):
		return r.readDeleted(ctx, t, upn)
	case err != nil:
		return snapshot{}, nil, fmt.Errorf("read user %s: %w", upn, classify(ctx, err))
	}
	oid := strings.ToLower(u.ID)
	if !isObjectID(oid) {
		return snapshot{}, nil, &PermanentError{Reason: ReasonRejected,
			Description: fmt.Sprintf("the directory gave %s an object id that is not a GUID: %s", quoted(upn), quoted(u.ID))}
	}
	snap := snapshot{oid: oid, user: &u}
	acs := r.startCurrent(ctx, oid)
	snap.inScope, err = r.scopeOf(ctx, t, u, nil)
	if err != nil {
		acs.drop()
		return snap, nil, err
	}
	cur, err := acs.wait()
	return snap, cur, err
}

// ReasonUnresolved is the dead-letter reason of a command whose UPN names no user the
// directory has, live or deleted, or names only a deleted user for a grant.
const ReasonUnresolved = "unresolved"

// readDeleted resolves a UPN no live user has through the directory's deleted users. A
// soft-deleted user's assignment is still ours to remove, so a revoke or reconcile goes on
// with its object id and no user; a grant to a deleted user, or a UPN nobody has, is
// refused for good with a reason that says which.
func (r *Reconciler) readDeleted(ctx context.Context, t Target, upn string) (snapshot, *Assignment, error) {
	d, err := r.dir.DeletedUser(ctx, upn)
	switch {
	case IsNotFound(err):
		return snapshot{}, nil, &PermanentError{Reason: ReasonUnresolved, Description: fmt.Sprintf(
			"no user, live or deleted, has the userPrincipalName %s; name the principal by object id", quoted(upn))}
	case err != nil:
		return snapshot{}, nil, fmt.Errorf("look up deleted user %s: %w", upn, classify(ctx, err))
	}
	oid := strings.ToLower(d.ID)
	switch {
	case !isObjectID(oid):
		return snapshot{}, nil, &PermanentError{Reason: ReasonRejected,
			Description: fmt.Sprintf("the directory gave deleted user %s an object id that is not a GUID: %s", quoted(upn), quoted(d.ID))}
	case t.Command == CommandGrant:
		return snapshot{}, nil, &PermanentError{Reason: ReasonUnresolved, Description: fmt.Sprintf(
			"%s is a deleted user (object id %s): not granted", quoted(upn), oid)}
	}
	cur, err := r.current(ctx, oid)
	return snapshot{oid: oid, inScope: true}, cur, err
}

// readDirectory reads the user by object id and, when it can change the verdict, the
// scope: both in one round trip when the directory offers a combined read
// (userScopeReader, the graph client's $batch), whatever the user turns out to be.
// Otherwise the scope check follows the user read, and is skipped for a user the policy
// refuses anyway; with speculate it runs beside the user read instead (one round trip, at
// the cost of a wasted check when the user is refused), which callers ask only when the
// last read found the user otherwise eligible (the verifying read after a write).
func (r *Reconciler) readDirectory(ctx context.Context, t Target, oid string, speculate bool) (snapshot, error) {
	if rd, ok := r.dir.(userScopeReader); ok && r.needsScope(t) {
		return r.readCombined(ctx, rd, oid)
	}
	snap := snapshot{oid: oid, inScope: true}
	var early *pendingScope
	if speculate && r.needsScope(t) {
		early = r.startScope(ctx, oid)
	}
	u, err := r.dir.User(ctx, oid)
	switch {
	case IsNotFound(err):
		early.drop()
		return snap, nil
	case err != nil:
		early.drop()
		return snap, fmt.Errorf("read user %s: %w", oid, classify(ctx, err))
	}
	snap.user = &u
	snap.inScope, err = r.scopeOf(ctx, t, u, early)
	return snap, err
}

// userScopeReader is a directory that reads a user and the user's membership in groups in
// one round trip (graph.Client.UserInGroups: one JSON $batch). Only the user read may say
// not found; a membership read that fails, or answers not found, is an error of its own.
type userScopeReader interface {
	// UserInGroups returns the user and which of groupIDs it is a transitive member of
	// (empty: of none).
	UserInGroups(ctx context.Context, userID string, groupIDs []string) (User, []string, error)
}

// readCombined reads the user and the scope together: one round trip whatever the user
// turns out to be. A user the policy refuses whatever the scope gets inScope true, as
// scopeOf gives it, so the reason names what makes the user ineligible.
func (r *Reconciler) readCombined(ctx context.Context, rd userScopeReader, oid string) (snapshot, error) {
	snap := snapshot{oid: oid, inScope: true}
	u, groups, err := rd.UserInGroups(ctx, oid, r.policy.ScopeGroups)
	switch {
	case IsNotFound(err):
		return snap, nil
	case err != nil:
		return snap, fmt.Errorf("read user %s and its scope: %w", oid, classify(ctx, err))
	}
	snap.user = &u
	snap.inScope = len(groups) > 0 || Eligibility(&u, true, r.policy).Type == ""
	return snap, nil
}

// needsScope reports whether the policy's scope applies to t: operator commands bypass
// eligibility, so they skip the lookup.
func (r *Reconciler) needsScope(t Target) bool {
	return len(r.policy.ScopeGroups) > 0 && t.Command == CommandReconcile
}

// expectsScope reports whether the next read of snap's principal will likely need the
// scope check: the user passed every other rule last time.
func (r *Reconciler) expectsScope(snap snapshot) bool {
	return snap.user != nil && Eligibility(snap.user, true, r.policy).Type != ""
}

// scopeOf reports whether u is in the policy's scope, using early's answer when the check
// was started beside the user read. With no scope groups everyone is, and a user the policy
// refuses whatever the scope (disabled, a guest, no enabled Teams plan) is not looked up:
// membership cannot change that verdict, so it saves a Graph call per such notification,
// and the reason then names what makes the user ineligible. Not found from the scope check,
// right after the user was read, is a temporary error: the user read decides whether the
// user exists, and a revoke must never rest on a second call's 404.
func (r *Reconciler) scopeOf(ctx context.Context, t Target, u User, early *pendingScope) (bool, error) {
	if !r.needsScope(t) || Eligibility(&u, true, r.policy).Type == "" {
		early.drop()
		return true, nil
	}
	var groups []string
	var err error
	if early != nil {
		groups, err = early.wait()
	} else {
		groups, err = r.dir.MemberOf(ctx, u.ID, r.policy.ScopeGroups)
	}
	switch {
	case IsNotFound(err):
		return false, &retryLater{msg: fmt.Sprintf("check scope of %s: the directory answered not found right after "+
			"reading the user; will look again", u.ID)}
	case err != nil:
		return false, fmt.Errorf("check scope of %s: %w", u.ID, classify(ctx, err))
	}
	return len(groups) > 0, nil
}

// pendingScope is a scope check running in the background.
type pendingScope struct {
	cancel context.CancelFunc
	done   chan struct{}
	groups []string
	err    error
}

func (r *Reconciler) startScope(ctx context.Context, oid string) *pendingScope {
	ctx, cancel := context.WithCancel(ctx)
	p := &pendingScope{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.groups, p.err = r.dir.MemberOf(ctx, oid, r.policy.ScopeGroups)
	}()
	return p
}

// wait returns the check's answer.
func (p *pendingScope) wait() ([]string, error) {
	<-p.done
	p.cancel()
	return p.groups, p.err
}

// drop abandons the check (nil-safe) and waits for it to end, so no call outlives the
// reconcile that started it.
func (p *pendingScope) drop() {
	if p != nil {
		p.cancel()
		<-p.done
	}
}

// pendingRead is an assignment read running in the background.
type pendingRead struct {
	cancel context.CancelFunc
	done   chan struct{}
	cur    *Assignment
	err    error
}

func (r *Reconciler) startCurrent(ctx context.Context, oid string) *pendingRead {
	ctx, cancel := context.WithCancel(ctx)
	p := &pendingRead{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.cur, p.err = r.current(ctx, oid)
	}()
	return p
}

func (p *pendingRead) wait() (*Assignment, error) {
	<-p.done
	p.cancel()
	return p.cur, p.err
}

func (p *pendingRead) drop() {
	p.cancel()
	<-p.done
}

// retryLater is a temporary failure of the reconciler's own making: it wraps no
// collaborator error, so nothing in it can read as not found.
type retryLater struct{ msg string }

func (e *retryLater) Error() string   { return e.msg }
func (e *retryLater) Temporary() bool { return true }

// ReconcileKnown converges a principal already read from the directory (backfill reads
// users in pages): no directory calls. u nil means the directory does not have it, and then
// t.Principal must be its object id.
func (r *Reconciler) ReconcileKnown(ctx context.Context, t Target, u *User, inScope bool) (Result, error) {
	return r.known(ctx, t, u, inScope, !r.dryRun)
}

// PlanKnown is ReconcileKnown that reads the assignment and decides but never writes: the
// result is marked DryRun and After is what a write would leave.
func (r *Reconciler) PlanKnown(ctx context.Context, t Target, u *User, inScope bool) (Result, error) {
	return r.known(ctx, t, u, inScope, false)
}

func (r *Reconciler) known(ctx context.Context, t Target, u *User, inScope, write bool) (Result, error) {
	t = withDefaults(t)
	oid := t.Principal
	if u != nil {
		oid = u.ID
	}
	if !isObjectID(oid) {
		return r.start(t), &PermanentError{Reason: ReasonBadPrincipal,
			Description: fmt.Sprintf("object id %s is not a GUID", quoted(oid))}
	}
	oid = strings.ToLower(oid)
	cur, err := r.current(ctx, oid)
	if err != nil {
		res := r.start(t)
		res.ObjectID = oid
		return res, err
	}
	res, plan := r.plan(t, oid, u, inScope, cur, write)
	if !write {
		return res, nil
	}
	return r.apply(ctx, res, plan)
}

// verdict is the policy's answer for t: operator overrides bypass eligibility (the
// verdict then only tells the kind), and a grant makes a user assignment unless the user,
// or the command's hint, says resource account.
func (r *Reconciler) verdict(t Target, u *User, inScope bool) Verdict {
	if t.Command != CommandReconcile {
		inScope = true
	}
	v := Eligibility(u, inScope, r.policy)
	if t.Command == CommandGrant && u != nil {
		if t.Type == PrincipalResourceAccount {
			v.Type = PrincipalResourceAccount
		}
		v.Type = cmp.Or(v.Type, PrincipalUser)
	}
	return v
}

// plan decides what to do with the assignment cur of principal oid: pure. write false
// marks the result as a dry run.
func (r *Reconciler) plan(t Target, oid string, u *User, inScope bool, cur *Assignment, write bool) (Result, Plan) {
	res := r.start(t)
	res.ObjectID, res.DryRun = oid, !write
	if u != nil {
		res.UPN = u.UPN
	}
	v := r.verdict(t, u, inScope)
	res.Type = v.Type
	if t.Command == CommandGrant && u == nil {
		res.Action, res.Reason = ActionSkip, reasonNotFound
		return res, Plan{Action: ActionSkip, Reason: reasonNotFound}
	}
	res.BeforeType, res.Before = describe(cur)
	if cur != nil {
		res.CorrelationID = cur.CorrelationID
	}
	plan := Decide(v, t.Command, cur, r.policy)
	return withPlan(res, plan), plan
}

// current reads the assignment; not found is nil, not an error.
func (r *Reconciler) current(ctx context.Context, oid string) (*Assignment, error) {
	a, err := r.acs.Get(ctx, oid)
	switch {
	case IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("read assignment %s: %w", oid, classify(ctx, err))
	}
	return &a, nil
}

// withPlan returns res with the plan's action and reason, and After set to what the plan's
// write would leave (Before when it writes nothing).
func withPlan(res Result, plan Plan) Result {
	res.Action, res.Reason = plan.Action, plan.Reason
	res.AfterType, res.After = res.BeforeType, res.Before
	switch {
	case plan.Put != nil:
		res.AfterType, res.After = describe(plan.Put)
	case plan.Delete:
		res.AfterType, res.After = "", nil
	}
	return res
}

// apply performs the plan's write, if any, on res from withPlan. Deleting an assignment
// that is already gone is success. A write that failed temporarily or was cut short by the
// context may still land later, so its error is marked uncertain (uncertainWriteOf).
func (r *Reconciler) apply(ctx context.Context, res Result, plan Plan) (Result, error) {
	switch {
	case plan.Put != nil:
		put := *plan.Put
		put.ObjectID = res.ObjectID
		got, err := r.acs.Put(ctx, put)
		if err != nil {
			return res, writeFailed(ctx, res.ObjectID, fmt.Errorf("put assignment %s: %w", res.ObjectID, classify(ctx, err)))
		}
		if got.PrincipalType != "" {
			res.AfterType, res.After = describe(&got)
		}
		res.CorrelationID = got.CorrelationID
	case plan.Delete:
		cv, err := r.acs.Delete(ctx, res.ObjectID)
		if err != nil && !IsNotFound(err) {
			return res, writeFailed(ctx, res.ObjectID, fmt.Errorf("delete assignment %s: %w", res.ObjectID, classify(ctx, err)))
		}
		res.CorrelationID = cv
	}
	return res, nil
}

// uncertainWrite is a write the ACS client gave up on (a timeout, retries spent, the
// context ended) that the service may still apply after our last read: nothing but a later
// look at the principal can tell. It keeps the write's error, and its classification, in
// the chain.
type uncertainWrite struct {
	objectID string
	err      error
}

func (e *uncertainWrite) Error() string { return e.err.Error() }
func (e *uncertainWrite) Unwrap() error { return e.err }

// writeFailed marks err uncertain unless the service refused the write for sure
// (systemic, rejected): those are answers, not silence.
func writeFailed(ctx context.Context, oid string, err error) error {
	if IsTemporary(err) || ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &uncertainWrite{objectID: oid, err: err}
	}
	return err
}

// uncertainWriteOf reports whether err says a write to a principal may still be applied
// after the reconcile returned, and which principal (its object id).
func uncertainWriteOf(err error) (objectID string, ok bool) {
	var u *uncertainWrite
	if errors.As(err, &u) {
		return u.objectID, true
	}
	return "", false
}

// start is the part of a Result known before any read.
func (r *Reconciler) start(t Target) Result {
	res := Result{Source: t.Source, Command: t.Command, DryRun: r.dryRun}
	if isObjectID(t.Principal) {
		res.ObjectID = strings.ToLower(t.Principal)
	}
	return res
}

// describe returns an assignment's type and client ids for the audit record: "" and nil
// for none, a non-nil (possibly empty) list otherwise.
func describe(a *Assignment) (PrincipalType, []string) {
	if a == nil {
		return "", nil
	}
	return a.PrincipalType, append([]string{}, a.ClientIDs...)
}

func withDefaults(t Target) Target {
	if t.Command == "" {
		t.Command = CommandReconcile
	}
	return t
}

// classify returns err unchanged when it already says how to handle it (not found,
// temporary, systemic) or when the context ended; any other error is a refusal no retry can
// fix (an ACS 400, say) and is marked permanent ("rejected") while keeping err in the chain.
func classify(ctx context.Context, err error) error {
	if IsNotFound(err) || IsTemporary(err) || IsSystemic(err) || ctx.Err() != nil ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &rejectedError{
		perm: &PermanentError{Reason: ReasonRejected, Description: truncate(err.Error(), 200)},
		err:  err,
	}
}

// rejectedError is a collaborator's error marked permanent: errors.As finds both the
// *PermanentError and the original.
type rejectedError struct {
	perm *PermanentError
	err  error
}

func (e *rejectedError) Error() string   { return e.perm.Error() }
func (e *rejectedError) Unwrap() []error { return []error{e.perm, e.err} }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
