package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/tpe-provisioner/tpe-provisioner/acs"
	"github.com/tpe-provisioner/tpe-provisioner/internal/adapt"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

func init() {
	commands["get"] = command{summary: "print a principal's assignment (OBJECT_ID or UPN), as JSON unless -o table", args: "OBJECT_ID|UPN",
		exits: []exitCode{{4, "no assignment for the principal in the tenant"}}, run: runGet}
	commands["grant"] = command{summary: "grant our client ids (or, with --resource-account, server consent) to OBJECT_ID or UPN", args: "OBJECT_ID|UPN",
		detail: "The assignment written is printed as JSON on stdout. A principal the policy refuses is\nnot granted unless --force (the next resync would undo it).",
		exits:  []exitCode{{1, "also: the policy refuses the principal and --force was not given"}}, run: assignVerb(worker.CommandGrant)}
	commands["revoke"] = command{summary: "remove our client ids (or, with --resource-account, server consent) from OBJECT_ID or UPN", args: "OBJECT_ID|UPN",
		detail: "The assignment left is printed as JSON on stdout; nothing when it was deleted.", run: assignVerb(worker.CommandRevoke)}
}

// assignFlags parses the shared flags of get/grant/revoke and returns the principal.
func assignFlags(name string, args []string, stdout io.Writer, extra func(*flag.FlagSet)) (*Config, string, error) {
	var c Config
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	if err := c.bindGroups(fs, environ, groupACS, groupTenant, groupGraph, groupPolicy, groupLog); err != nil {
		return nil, "", err
	}
	if extra != nil {
		extra(fs)
	}
	pos, err := parseArgs(fs, args, stdout)
	if err != nil {
		return nil, "", err
	}
	if err := onePositional(pos, "OBJECT_ID or UPN"); err != nil {
		return nil, "", err
	}
	return &c, strings.TrimSpace(pos[0]), nil
}

// onePositional checks that exactly one positional argument, what, was given.
func onePositional(pos []string, what string) error {
	switch {
	case len(pos) == 0:
		return usagef("missing %s", what)
	case len(pos) > 1:
		return usagef("unexpected argument %q: takes one %s", pos[1], what)
	}
	return nil
}

// resolve turns a UPN into an object id through Graph; an object id is used as it is.
func resolve(ctx context.Context, c *Config, principal string, stderr io.Writer) (string, error) {
	if guidRE.MatchString(principal) {
		return strings.ToLower(principal), nil
	}
	if err := checkPrincipalForm(principal); err != nil {
		return "", err
	}
	if err := c.Validate(needs{graph: true}); err != nil {
		return "", err
	}
	g, err := newGraphClient(c, newLogger(stderr, c.LogFormat, c.LogLevel), nil)
	if err != nil {
		return "", err
	}
	u, err := g.User(ctx, principal)
	if err != nil {
		if worker.IsNotFound(err) {
			return "", fmt.Errorf("no user %s in the directory", principal)
		}
		return "", fmt.Errorf("resolve %s: %w", principal, err)
	}
	fmt.Fprintf(stderr, "%s is object id %s\n", principal, u.ID)
	return u.ID, nil
}

// checkPrincipalForm refuses, before any call, a principal that is neither an object id nor a
// UPN: control, format and bidirectional characters never reach Graph, ACS or a log.
func checkPrincipalForm(principal string) error {
	if guidRE.MatchString(principal) || worker.LooksLikeUPN(principal) {
		return nil
	}
	return fmt.Errorf("%q is neither an object id (GUID) nor a UPN (control, format and bidirectional characters are refused)", principal)
}

// openPrincipal validates the settings, resolves the principal to an object id and opens
// the ACS client.
func openPrincipal(ctx context.Context, c *Config, principal string, n needs, stderr io.Writer) (string, *acs.Client, error) {
	if err := c.Validate(n); err != nil {
		return "", nil, err
	}
	oid, err := resolve(ctx, c, principal, stderr)
	if err != nil {
		return "", nil, err
	}
	client, err := newACSClient(c, newLogger(stderr, c.LogFormat, c.LogLevel), nil)
	return oid, client, err
}

func runGet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var out *string
	c, principal, err := assignFlags("get", args, stdout, func(fs *flag.FlagSet) { out = outputFormatFlag(fs, "json") })
	if err != nil {
		return err
	}
	oid, client, err := openPrincipal(ctx, c, principal, needs{acs: true}, stderr)
	if err != nil {
		return err
	}
	a, err := client.Get(ctx, c.TenantID, oid)
	if acs.IsNotFound(err) {
		fmt.Fprintf(stderr, "no assignment for %s in tenant %s\n", oid, c.TenantID)
		return &exitError{code: 4}
	}
	if err != nil {
		return err
	}
	if *out == "json" {
		return printJSON(stdout, a)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "OBJECT ID\tTENANT\tPRINCIPAL TYPE\tCLIENT IDS")
	fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.ObjectID, a.TenantID, a.PrincipalType, orNone(strings.Join(a.ClientIDs, ",")))
	return tw.Flush()
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// assignVerb is grant or revoke: an operator override through the Reconciler, as a grant
// or revoke command from the queue is. It reads the principal (a UPN also through deleted
// users) and the assignment, decides under the ownership rules (only our client ids are
// added or removed), and writes only when something changes; a grant of a principal the
// directory does not know is skipped.
func assignVerb(cmd worker.Command) func(context.Context, []string, io.Writer, io.Writer) error {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		var ra, force bool
		c, principal, err := assignFlags(string(cmd), args, stdout, func(fs *flag.FlagSet) {
			fs.BoolVar(&ra, "resource-account", false, "the principal is a Teams resource account (server consent)")
			if cmd == worker.CommandGrant {
				fs.BoolVar(&force, "force", false, "grant even when the policy refuses the principal (the next resync undoes it)")
			}
		})
		if err != nil {
			return err
		}
		if err := checkPrincipalForm(principal); err != nil {
			return err
		}
		if cmd == worker.CommandGrant {
			if principal, err = grantAgainstPolicy(ctx, c, principal, ra, force, stderr); err != nil {
				return err
			}
		}
		if err := c.Validate(needs{acs: true, graph: true, clientIDs: !ra}); err != nil {
			return err
		}
		svc, err := newService(c, newLogger(stderr, c.LogFormat, c.LogLevel), nil)
		if err != nil {
			return err
		}
		policy := worker.Policy{ClientIDs: c.ClientIDs, ManageResourceAccounts: ra || c.ManageResourceAccounts}
		kind := worker.PrincipalUser
		if ra {
			kind = worker.PrincipalResourceAccount
		}
		rec := worker.NewReconciler(svc.dir, svc.store, policy, worker.ReconcilerOptions{})
		res, err := rec.Reconcile(ctx, worker.Target{Principal: principal, Type: kind, Command: cmd, Source: "cli"})
		if err != nil {
			return err
		}
		return printVerb(res, svc.store.Tenant, principal, stdout, stderr)
	}
}

// printVerb reports what a grant or revoke did: the assignment written on stdout, a line on
// stderr.
func printVerb(res worker.Result, tenant, principal string, stdout, stderr io.Writer) error {
	if !guidRE.MatchString(principal) && res.ObjectID != "" {
		fmt.Fprintf(stderr, "%s is object id %s\n", principal, res.ObjectID)
	}
	oid := cmp.Or(res.ObjectID, principal)
	wrote := res.BeforeType != res.AfterType || !slices.Equal(res.Before, res.After)
	switch {
	case wrote && res.AfterType != "":
		fmt.Fprintf(stderr, "%s %s: %s (ms-cv %s)\n", res.Action, oid, res.Reason, res.CorrelationID)
		out := adapt.ToACS(worker.Assignment{ObjectID: oid, PrincipalType: res.AfterType, ClientIDs: res.After})
		out.TenantID = tenant
		return printJSON(stdout, out)
	case wrote:
		fmt.Fprintf(stderr, "%s %s: assignment deleted (ms-cv %s)\n", res.Action, oid, res.CorrelationID)
		return nil
	}
	fmt.Fprintf(stderr, "%s %s: %s, nothing to change\n", res.Action, oid, res.Reason)
	return nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
