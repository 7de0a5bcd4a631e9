package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

func init() {
	commands["explain"] = command{
		summary: "say why OBJECT_ID or UPN is (not) eligible and what a reconcile would do (reads only)",
		args:    "OBJECT_ID|UPN",
		detail: `Reads the principal from Graph and its assignment from ACS, applies every rule of the
policy, and says what a reconcile would do. It writes nothing.`,
		run: runExplain,
	}
}

// explainGroups are the settings explain (and grant's policy check) read.
var explainGroups = []settingGroup{groupACS, groupTenant, groupGraph, groupPolicy, groupLog}

func runExplain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c Config
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	if err := c.bindGroups(fs, environ, explainGroups...); err != nil {
		return err
	}
	out := outputFormatFlag(fs, "table")
	pos, err := parseArgs(fs, args, stdout)
	if err != nil {
		return err
	}
	if err := onePositional(pos, "OBJECT_ID or UPN"); err != nil {
		return err
	}
	if err := c.Validate(needs{acs: true, graph: true}); err != nil {
		return err
	}
	svc, err := newService(&c, newLogger(stderr, c.LogFormat, c.LogLevel), nil)
	if err != nil {
		return err
	}
	rep, err := explainPrincipal(ctx, svc, strings.TrimSpace(pos[0]))
	if err != nil {
		return err
	}
	if *out == "json" {
		return printJSON(stdout, rep)
	}
	rep.table(stdout)
	return nil
}

// explainReport is explain's answer: the rules, the assignment now and the dry-run
// reconcile's plan.
type explainReport struct {
	Principal string `json:"principal"`
	worker.Explanation
	Eligible   bool                 `json:"eligible"`
	EligibleAs worker.PrincipalType `json:"eligibleAs,omitempty"`
	Reason     string               `json:"reason"`
	Assignment *explainAssignment   `json:"assignment"`
	Reconcile  *explainPlan         `json:"reconcile"`
}

type explainAssignment struct {
	PrincipalType worker.PrincipalType `json:"principalType"`
	ClientIDs     []string             `json:"clientIds"`
}

type explainPlan struct {
	Action worker.Action      `json:"action"`
	Reason string             `json:"reason"`
	After  *explainAssignment `json:"after"`
}

// explainPrincipal reads the principal and its scope membership, explains the verdict,
// and asks a dry-run Reconciler what it would do with the same reads. Any Graph or ACS
// error is returned: an explanation is only given from answers that were understood.
func explainPrincipal(ctx context.Context, svc *service, principal string) (*explainReport, error) {
	if !guidRE.MatchString(principal) && !strings.Contains(principal, "@") {
		return nil, fmt.Errorf("%q is neither an object id (GUID) nor a UPN", principal)
	}
	rep := &explainReport{Principal: principal}
	u, err := svc.dir.User(ctx, principal)
	switch {
	case worker.IsNotFound(err) && !guidRE.MatchString(principal):
		rep.Explanation = worker.Explain(nil, nil, svc.policy())
		rep.UPN = principal
		rep.fill()
		return rep, nil // ACS keys assignments by object id: there is nothing to read
	case worker.IsNotFound(err):
		rep.Explanation = worker.Explain(nil, nil, svc.policy())
		rep.ObjectID = strings.ToLower(principal)
		return rep, rep.plan(ctx, svc, nil, false)
	case err != nil:
		return nil, fmt.Errorf("read %s from Graph: %w", principal, err)
	}
	var memberOf []string
	if groups := svc.policy().ScopeGroups; len(groups) > 0 {
		if memberOf, err = svc.dir.MemberOf(ctx, u.ID, groups); err != nil {
			return nil, fmt.Errorf("check the scope groups of %s: %w", principal, err)
		}
	}
	rep.Explanation = worker.Explain(&u, memberOf, svc.policy())
	inScope := len(svc.policy().ScopeGroups) == 0 || len(memberOf) > 0
	return rep, rep.plan(ctx, svc, &u, inScope)
}

// plan fills the assignment and the reconcile a dry-run Reconciler plans from u.
func (r *explainReport) plan(ctx context.Context, svc *service, u *worker.User, inScope bool) error {
	r.fill()
	rec := worker.NewReconciler(svc.dir, svc.store, svc.policy(), worker.ReconcilerOptions{DryRun: true})
	res, err := rec.PlanKnown(ctx, worker.Target{Principal: r.ObjectID, Source: "explain"}, u, inScope)
	if err != nil {
		return fmt.Errorf("plan the reconcile of %s: %w", r.ObjectID, err)
	}
	r.Assignment = assignmentOf(res.BeforeType, res.Before)
	r.Reconcile = &explainPlan{Action: res.Action, Reason: res.Reason, After: assignmentOf(res.AfterType, res.After)}
	return nil
}

func (r *explainReport) fill() {
	r.EligibleAs, r.Reason = r.Verdict.Type, r.Verdict.Reason
	r.Eligible = r.EligibleAs != ""
}

func assignmentOf(t worker.PrincipalType, ids []string) *explainAssignment {
	if t == "" {
		return nil
	}
	return &explainAssignment{PrincipalType: t, ClientIDs: slices.Clone(ids)}
}

func (r *explainReport) verdictLine() string {
	if r.Eligible {
		return fmt.Sprintf("eligible as %s (%s)", r.EligibleAs, r.Reason)
	}
	return fmt.Sprintf("not eligible (%s)", r.Reason)
}

func (a *explainAssignment) String() string {
	if a == nil {
		return "none"
	}
	if a.PrincipalType == worker.PrincipalResourceAccount {
		return string(a.PrincipalType)
	}
	return fmt.Sprintf("%s [%s]", a.PrincipalType, strings.Join(a.ClientIDs, ", "))
}

// table prints the report for people: the principal, the verdict, one line per rule (the
// deciding ones starred), the assignment and the plan.
func (r *explainReport) table(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	who := r.Principal
	if r.UPN != "" && r.ObjectID != "" {
		who = fmt.Sprintf("%s (%s)", r.UPN, r.ObjectID)
	}
	fmt.Fprintf(tw, "principal\t%s\n", who)
	fmt.Fprintf(tw, "verdict\t%s\n\n", r.verdictLine())
	fmt.Fprintln(tw, "RULE\tRESULT\tDETAIL")
	for _, rule := range r.Rules {
		name := rule.Name
		if rule.Decisive {
			name = "* " + name
		} else {
			name = "  " + name
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", name, rule.Outcome, rule.Detail)
	}
	fmt.Fprintln(tw)
	switch {
	case r.Reconcile == nil:
		fmt.Fprintln(tw, "assignment\tnot read (no object id: ACS keys assignments by object id)")
		fmt.Fprintln(tw, "reconcile\tnothing to do")
	default:
		fmt.Fprintf(tw, "assignment\t%s\n", r.Assignment)
		fmt.Fprintf(tw, "reconcile\t%s: %s\n", r.Reconcile.Action, r.Reconcile.Reason)
		fmt.Fprintf(tw, "afterwards\t%s\n", r.Reconcile.After)
	}
	tw.Flush()
	fmt.Fprintln(w, "(* marks the rule that decided the verdict)")
}

// errPolicyRefuses is a grant the policy contradicts, refused without --force.
var errPolicyRefuses = errors.New("the policy refuses this grant")

// grantAgainstPolicy explains principal against the policy before an operator grant. When
// the policy refuses it (or judges it another kind than the one asked for) it prints the
// explanation and refuses, unless force, which only warns: the next resync, or any
// notification about the principal, will undo the grant. It returns the principal's object
// id when the directory knows it, so the grant needs no second lookup.
func grantAgainstPolicy(ctx context.Context, c *Config, principal string, ra, force bool, stderr io.Writer) (string, error) {
	if err := c.Validate(needs{acs: true, graph: true}); err != nil {
		return "", err
	}
	svc, err := newService(c, newLogger(stderr, c.LogFormat, c.LogLevel), nil)
	if err != nil {
		return "", err
	}
	rep, err := explainPrincipal(ctx, svc, principal)
	if err != nil {
		if force {
			fmt.Fprintf(stderr, "warning: could not check the grant against the policy (%v); granting because of --force\n", err)
			return principal, nil
		}
		return "", fmt.Errorf("check the grant against the policy: %w (--force grants without the check)", err)
	}
	want := worker.PrincipalUser
	if ra {
		want = worker.PrincipalResourceAccount
	}
	if rep.ObjectID != "" {
		principal = rep.ObjectID
	}
	var refusal string
	switch {
	case !rep.Found:
		return "", fmt.Errorf("%s is not in the directory: nothing to grant", rep.Principal)
	case !rep.Eligible:
		refusal = fmt.Sprintf("the policy refuses %s: %s", rep.Principal, rep.Reason)
	case rep.EligibleAs != want:
		refusal = fmt.Sprintf("the policy judges %s a %s (%s), not a %s", rep.Principal, rep.EligibleAs, rep.Reason, want)
	default:
		return principal, nil
	}
	rep.table(stderr)
	fmt.Fprintln(stderr)
	if !force {
		return "", &exitError{code: 1, err: fmt.Errorf("%w: %s; the next resync would undo the grant. Fix the directory, or pass --force to grant anyway", errPolicyRefuses, refusal)}
	}
	fmt.Fprintf(stderr, "warning: %s; granting because of --force. The next resync (or any notification about this principal) will undo it.\n", refusal)
	return principal, nil
}
