package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/tpe-provisioner/tpe-provisioner/acs"
	"github.com/tpe-provisioner/tpe-provisioner/internal/adapt"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

func init() {
	commands["get"] = command{summary: "print a principal's assignment as JSON (OBJECT_ID or UPN)", run: runGet}
	commands["grant"] = command{summary: "grant our client ids (or, with --resource-account, server consent) to OBJECT_ID or UPN", run: assignVerb(worker.CommandGrant)}
	commands["revoke"] = command{summary: "remove our client ids (or, with --resource-account, server consent) from OBJECT_ID or UPN", run: assignVerb(worker.CommandRevoke)}
}

// assignFlags parses the shared flags of get/grant/revoke and returns the principal.
func assignFlags(name string, args []string, stderr io.Writer, extra func(*flag.FlagSet)) (*Config, string, error) {
	var c Config
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: tpe-provisioner %s [flags] OBJECT_ID|UPN\n", name)
		fs.PrintDefaults()
	}
	if err := c.bindFlags(fs, environ, "ACS_CONNECTION_STRING", "ACS_ENDPOINT", "ACS_API_VERSION",
		"ACS_RESOURCE_ACCOUNT_TYPE", "GRAPH_ENDPOINT", "TPE_TENANT_ID", "TPE_CLIENT_IDS",
		"TPE_MANAGE_RESOURCE_ACCOUNTS", "TPE_LOG_LEVEL", "TPE_LOG_FORMAT"); err != nil {
		return nil, "", err
	}
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(flagsFirst(args)); err != nil {
		return nil, "", errUsage
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return nil, "", errUsage
	}
	return &c, strings.TrimSpace(fs.Arg(0)), nil
}

// flagsFirst lets flags follow the positional argument (`grant ID --resource-account`).
func flagsFirst(args []string) []string {
	var flags, pos []string
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			flags = append(flags, a)
		} else {
			pos = append(pos, a)
		}
	}
	return append(flags, pos...)
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
	g, err := newGraphClient(c, newLogger(stderr, "text", c.LogLevel), nil)
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
	client, err := newACSClient(c, newLogger(stderr, "text", c.LogLevel), nil)
	return oid, client, err
}

func runGet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, principal, err := assignFlags("get", args, stderr, nil)
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
	return printJSON(stdout, a)
}

// assignVerb is grant or revoke: read the assignment, decide under the ownership rules (only
// our client ids are added or removed), and write only when something changes.
func assignVerb(cmd worker.Command) func(context.Context, []string, io.Writer, io.Writer) error {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		var ra, force bool
		c, principal, err := assignFlags(string(cmd), args, stderr, func(fs *flag.FlagSet) {
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
		oid, client, err := openPrincipal(ctx, c, principal, needs{acs: true, clientIDs: !ra}, stderr)
		if err != nil {
			return err
		}
		policy := worker.Policy{ClientIDs: c.ClientIDs, ManageResourceAccounts: ra || c.ManageResourceAccounts}
		kind := worker.PrincipalUser
		if ra {
			kind = worker.PrincipalResourceAccount
		}
		return applyVerb(ctx, adapt.ACS{Client: client, Tenant: c.TenantID}, oid, kind, cmd, policy, stdout, stderr)
	}
}

func applyVerb(ctx context.Context, store adapt.ACS, oid string, kind worker.PrincipalType, cmd worker.Command, policy worker.Policy, stdout, stderr io.Writer) error {
	var current *worker.Assignment
	got, err := store.Get(ctx, oid)
	switch {
	case err == nil:
		current = &got
	case !worker.IsNotFound(err):
		return err
	}
	plan := worker.Decide(worker.Verdict{Type: kind}, cmd, current, policy)
	switch {
	case plan.Put != nil:
		plan.Put.ObjectID = oid
		after, err := store.Put(ctx, *plan.Put)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "%s %s: %s (ms-cv %s)\n", plan.Action, oid, plan.Reason, after.CorrelationID)
		out := adapt.ToACS(after)
		out.TenantID = store.Tenant
		return printJSON(stdout, out)
	case plan.Delete:
		cv, err := store.Delete(ctx, oid)
		if err != nil && !worker.IsNotFound(err) {
			return err
		}
		fmt.Fprintf(stderr, "%s %s: assignment deleted (ms-cv %s)\n", plan.Action, oid, cv)
		return nil
	}
	fmt.Fprintf(stderr, "%s %s: %s, nothing to change\n", plan.Action, oid, plan.Reason)
	return nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
