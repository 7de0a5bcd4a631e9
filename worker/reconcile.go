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
	acs    assignments
	policy Policy
	dryRun bool
}

// reasonUPNNotFound: ACS keys assignments by object id, so a UPN the directory does not
// know leaves nothing to act on.
const reasonUPNNotFound = "not found in directory (by UPN; no object id)"

// NewReconciler returns a Reconciler reading dir and writing acs under policy p.
func NewReconciler(dir directory, acs assignments, p Policy, o ReconcilerOptions) *Reconciler {
	p.ClientIDs = normalizeClientIDs(p.ClientIDs)
	p.ScopeGroups = slices.Clone(p.ScopeGroups)
	return &Reconciler{dir: dir, acs: acs, policy: p, dryRun: o.DryRun}
}

// Reconcile reads the principal (object id or UPN) from the directory, checks scope
// membership when the policy has scope groups, then converges its assignment. Only a
// directory answer of not found makes a principal absent; any other directory or ACS error
// is returned wrapped with context, keeping its classification (errors.go). A principal
// that is neither a GUID nor a UPN is a *PermanentError (bad_principal); a collaborator's
// refusal that is neither not-found, temporary nor systemic (an ACS 400, say) also carries
// a *PermanentError (rejected). On error the Result holds what was known so far.
func (r *Reconciler) Reconcile(ctx context.Context, t Target) (Result, error) {
	t = withDefaults(t)
	principal := strings.TrimSpace(t.Principal)
	byUPN := false
	switch {
	case isObjectID(principal):
		principal = strings.ToLower(principal)
	case looksLikeUPN(principal):
		byUPN = true
	default:
		return r.start(t), &PermanentError{Reason: ReasonBadPrincipal,
			Description: fmt.Sprintf("principal %s is neither an object id nor a UPN", quoted(principal))}
	}
	u, err := r.dir.User(ctx, principal)
	switch {
	case IsNotFound(err) && byUPN:
		res := r.start(t)
		res.UPN, res.Action, res.Reason = principal, ActionNoop, reasonUPNNotFound
		return res, nil
	case IsNotFound(err):
		return r.converge(ctx, t, principal, nil, false, !r.dryRun)
	case err != nil:
		return r.start(t), fmt.Errorf("read user %s: %w", principal, classify(ctx, err))
	}
	inScope, err := r.inScope(ctx, t, u)
	switch {
	case IsNotFound(err): // the user went away between the two reads
		return r.converge(ctx, t, strings.ToLower(u.ID), nil, false, !r.dryRun)
	case err != nil:
		return r.start(t), fmt.Errorf("check scope of %s: %w", principal, classify(ctx, err))
	}
	return r.converge(ctx, t, strings.ToLower(u.ID), &u, inScope, !r.dryRun)
}

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
	return r.converge(ctx, t, strings.ToLower(oid), u, inScope, write)
}

// inScope reports whether u is in the policy's scope. With no scope groups everyone is;
// operator commands bypass eligibility, so they skip the lookup. So does a user the policy
// refuses whatever the scope (disabled, a guest, no enabled Teams plan): membership cannot
// change that verdict, so it saves a Graph call per such notification, and the reason then
// names what makes the user ineligible.
func (r *Reconciler) inScope(ctx context.Context, t Target, u User) (bool, error) {
	if len(r.policy.ScopeGroups) == 0 || t.Command != CommandReconcile {
		return true, nil
	}
	if Eligibility(&u, true, r.policy).Type == "" {
		return true, nil
	}
	groups, err := r.dir.MemberOf(ctx, u.ID, r.policy.ScopeGroups)
	return len(groups) > 0, err
}

// converge reads the assignment, decides, and (when write) applies the plan.
func (r *Reconciler) converge(ctx context.Context, t Target, oid string, u *User, inScope, write bool) (Result, error) {
	res := r.start(t)
	res.ObjectID, res.DryRun = oid, !write
	if u != nil {
		res.UPN = u.UPN
	}
	if t.Command != CommandReconcile {
		inScope = true // operator overrides bypass eligibility; the verdict only tells the kind
	}
	v := Eligibility(u, inScope, r.policy)
	if t.Command == CommandGrant {
		if u == nil {
			res.Action, res.Reason = ActionSkip, reasonNotFound
			return res, nil
		}
		if t.Type == PrincipalResourceAccount {
			v.Type = PrincipalResourceAccount
		}
		v.Type = cmp.Or(v.Type, PrincipalUser)
	}
	res.Type = v.Type

	cur, err := r.current(ctx, oid)
	if err != nil {
		return res, err
	}
	res.BeforeType, res.Before = describe(cur)
	if cur != nil {
		res.CorrelationID = cur.CorrelationID
	}
	plan := Decide(v, t.Command, cur, r.policy)
	res = withPlan(res, plan)
	if !write {
		return res, nil
	}
	return r.apply(ctx, res, plan)
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

// apply performs the plan's write, if any, on res from withPlan. Deleting an assignment that is already gone is
// success.
func (r *Reconciler) apply(ctx context.Context, res Result, plan Plan) (Result, error) {
	switch {
	case plan.Put != nil:
		put := *plan.Put
		put.ObjectID = res.ObjectID
		got, err := r.acs.Put(ctx, put)
		if err != nil {
			return res, fmt.Errorf("put assignment %s: %w", res.ObjectID, classify(ctx, err))
		}
		if got.PrincipalType != "" {
			res.AfterType, res.After = describe(&got)
		}
		res.CorrelationID = got.CorrelationID
	case plan.Delete:
		cv, err := r.acs.Delete(ctx, res.ObjectID)
		if err != nil && !IsNotFound(err) {
			return res, fmt.Errorf("delete assignment %s: %w", res.ObjectID, classify(ctx, err))
		}
		res.CorrelationID = cv
	}
	return res, nil
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
