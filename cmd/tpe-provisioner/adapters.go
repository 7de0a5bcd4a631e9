package main

import (
	"context"
	"iter"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/acs"
	"github.com/tpe-provisioner/tpe-provisioner/graph"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// The worker declares the small interfaces it consumes with its own value types; these
// adapters translate the clients' types at the edge. Errors pass through untouched: the
// worker classifies them by behaviour (NotFound, Systemic, Temporary, RetryAfter).

// acsAssignments adapts *acs.Client, bound to our tenant, to the worker's assignments.
type acsAssignments struct {
	client *acs.Client
	tenant string
}

func (a acsAssignments) Get(ctx context.Context, objectID string) (worker.Assignment, error) {
	got, err := a.client.Get(ctx, a.tenant, objectID)
	if err != nil {
		return worker.Assignment{}, err
	}
	return fromACS(got), nil
}

func (a acsAssignments) Put(ctx context.Context, w worker.Assignment) (worker.Assignment, error) {
	got, _, err := a.client.Put(ctx, a.tenant, toACS(w))
	if err != nil {
		return worker.Assignment{}, err
	}
	return fromACS(got), nil
}

func (a acsAssignments) Delete(ctx context.Context, objectID string) (string, error) {
	return a.client.Delete(ctx, a.tenant, objectID)
}

func fromACS(a acs.Assignment) worker.Assignment {
	t := worker.PrincipalType(a.PrincipalType)
	switch a.PrincipalType {
	case acs.PrincipalUser:
		t = worker.PrincipalUser
	case acs.PrincipalResourceAccount:
		t = worker.PrincipalResourceAccount
	}
	return worker.Assignment{ObjectID: a.ObjectID, PrincipalType: t, ClientIDs: a.ClientIDs, CorrelationID: a.CorrelationID}
}

func toACS(a worker.Assignment) acs.Assignment {
	t := acs.PrincipalUser
	if a.PrincipalType == worker.PrincipalResourceAccount {
		t = acs.PrincipalResourceAccount
	}
	return acs.Assignment{ObjectID: a.ObjectID, PrincipalType: t, ClientIDs: a.ClientIDs}
}

// graphDirectory adapts *graph.Client to the worker's directory and enumerator.
type graphDirectory struct{ client *graph.Client }

func (g graphDirectory) User(ctx context.Context, idOrUPN string) (worker.User, error) {
	u, err := g.client.User(ctx, idOrUPN)
	if err != nil {
		return worker.User{}, err
	}
	return fromGraph(u), nil
}

func (g graphDirectory) MemberOf(ctx context.Context, userID string, groupIDs []string) ([]string, error) {
	return g.client.MemberOf(ctx, userID, groupIDs)
}

func (g graphDirectory) GroupMembers(ctx context.Context, groupID string) iter.Seq2[string, error] {
	return g.client.GroupMembers(ctx, groupID)
}

func (g graphDirectory) ScopeMembers(ctx context.Context, groupIDs []string) iter.Seq2[worker.User, error] {
	return users(g.client.ScopeMembers(ctx, groupIDs))
}

func (g graphDirectory) TeamsUsers(ctx context.Context) iter.Seq2[worker.User, error] {
	return users(g.client.TeamsUsers(ctx, worker.TeamsPlanIDs))
}

func (g graphDirectory) ResourceAccounts(ctx context.Context) iter.Seq2[worker.User, error] {
	return users(g.client.ResourceAccounts(ctx, worker.ResourceAccountSKUs))
}

func (g graphDirectory) DeletedUsers(ctx context.Context, since time.Time) iter.Seq2[worker.User, error] {
	return users(g.client.DeletedUsers(ctx, since))
}

func users(seq iter.Seq2[graph.User, error]) iter.Seq2[worker.User, error] {
	return func(yield func(worker.User, error) bool) {
		for u, err := range seq {
			if !yield(fromGraph(u), err) {
				return
			}
		}
	}
}

func fromGraph(u graph.User) worker.User {
	plans := make([]worker.AssignedPlan, len(u.Plans))
	for i, p := range u.Plans {
		plans[i] = worker.AssignedPlan{ServicePlanID: p.ServicePlanID, CapabilityStatus: p.CapabilityStatus, Service: p.Service}
	}
	return worker.User{
		ID: u.ID, UPN: u.UPN, AccountEnabled: u.AccountEnabled, UserType: u.UserType,
		Department: u.Department, SKUs: u.SKUs, Plans: plans,
	}
}
