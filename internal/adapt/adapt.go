package adapt

import (
	"context"
	"iter"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/acs"
	"github.com/tpe-provisioner/tpe-provisioner/graph"
	"github.com/tpe-provisioner/tpe-provisioner/subscriptions"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// ACS adapts *acs.Client, bound to our tenant, to the worker's assignments.
type ACS struct {
	Client *acs.Client
	Tenant string
}

func (a ACS) Get(ctx context.Context, objectID string) (worker.Assignment, error) {
	got, err := a.Client.Get(ctx, a.Tenant, objectID)
	if err != nil {
		return worker.Assignment{}, err
	}
	return FromACS(got), nil
}

func (a ACS) Put(ctx context.Context, w worker.Assignment) (worker.Assignment, error) {
	got, _, err := a.Client.Put(ctx, a.Tenant, ToACS(w))
	if err != nil {
		return worker.Assignment{}, err
	}
	return FromACS(got), nil
}

func (a ACS) Delete(ctx context.Context, objectID string) (string, error) {
	return a.Client.Delete(ctx, a.Tenant, objectID)
}

// FromACS converts an ACS assignment to the worker's.
func FromACS(a acs.Assignment) worker.Assignment {
	t := worker.PrincipalType(a.PrincipalType)
	switch a.PrincipalType {
	case acs.PrincipalUser:
		t = worker.PrincipalUser
	case acs.PrincipalResourceAccount:
		t = worker.PrincipalResourceAccount
	}
	return worker.Assignment{ObjectID: a.ObjectID, PrincipalType: t, ClientIDs: a.ClientIDs, CorrelationID: a.CorrelationID}
}

// ToACS converts the worker's assignment to the ACS client's.
func ToACS(a worker.Assignment) acs.Assignment {
	t := acs.PrincipalUser
	if a.PrincipalType == worker.PrincipalResourceAccount {
		t = acs.PrincipalResourceAccount
	}
	return acs.Assignment{ObjectID: a.ObjectID, PrincipalType: t, ClientIDs: a.ClientIDs}
}

// Graph adapts *graph.Client to the worker's directory and enumerator.
type Graph struct{ Client *graph.Client }

func (g Graph) User(ctx context.Context, idOrUPN string) (worker.User, error) {
	u, err := g.Client.User(ctx, idOrUPN)
	if err != nil {
		return worker.User{}, err
	}
	return fromGraph(u), nil
}

// DeletedUser finds the soft-deleted user whose userPrincipalName was upn. Its UPN is
// returned as Graph holds it (prefixed with its object id).
func (g Graph) DeletedUser(ctx context.Context, upn string) (worker.User, error) {
	u, err := g.Client.DeletedUser(ctx, upn)
	if err != nil {
		return worker.User{}, err
	}
	return fromGraph(u), nil
}

func (g Graph) MemberOf(ctx context.Context, userID string, groupIDs []string) ([]string, error) {
	return g.Client.MemberOf(ctx, userID, groupIDs)
}

// UserInGroups reads the user and which of groupIDs it is a transitive member of in one
// Graph $batch (the worker's combined read).
func (g Graph) UserInGroups(ctx context.Context, userID string, groupIDs []string) (worker.User, []string, error) {
	u, in, err := g.Client.UserInGroups(ctx, userID, groupIDs)
	if err != nil {
		return worker.User{}, nil, err
	}
	return fromGraph(u), in, nil
}

// GroupExists reports whether the directory holds the group; only Graph's 404 says no.
func (g Graph) GroupExists(ctx context.Context, groupID string) (bool, error) {
	return g.Client.GroupExists(ctx, groupID)
}

func (g Graph) GroupMembers(ctx context.Context, groupID string) iter.Seq2[string, error] {
	return g.Client.GroupMembers(ctx, groupID)
}

func (g Graph) ScopeMembers(ctx context.Context, groupIDs []string) iter.Seq2[worker.User, error] {
	return users(g.Client.ScopeMembers(ctx, groupIDs))
}

func (g Graph) TeamsUsers(ctx context.Context) iter.Seq2[worker.User, error] {
	return users(g.Client.TeamsUsers(ctx, worker.TeamsPlanIDs))
}

func (g Graph) ResourceAccounts(ctx context.Context) iter.Seq2[worker.User, error] {
	return users(g.Client.ResourceAccounts(ctx, worker.ResourceAccountSKUs))
}

func (g Graph) DeletedUsers(ctx context.Context, since time.Time) iter.Seq2[worker.User, error] {
	return users(g.Client.DeletedUsers(ctx, since))
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

// Subscriptions adapts *graph.Client to the worker's subscription keeper.
type Subscriptions struct{ Client *graph.Client }

func (g Subscriptions) ListSubscriptions(ctx context.Context) ([]subscriptions.Subscription, error) {
	subs, err := g.Client.ListSubscriptions(ctx)
	out := make([]subscriptions.Subscription, 0, len(subs))
	for _, s := range subs {
		out = append(out, fromGraphSubscription(s))
	}
	return out, err
}

func (g Subscriptions) CreateSubscription(ctx context.Context, s subscriptions.SubscriptionSpec) (subscriptions.Subscription, error) {
	got, err := g.Client.CreateSubscription(ctx, graph.SubscriptionSpec{
		Resource: s.Resource, ChangeType: s.ChangeType, NotificationURL: s.NotificationURL,
		LifecycleNotificationURL: s.LifecycleNotificationURL, ClientState: s.ClientState,
		ExpirationDateTime: s.ExpirationDateTime,
	})
	return fromGraphSubscription(got), err
}

func (g Subscriptions) RenewSubscription(ctx context.Context, id string, exp time.Time) (subscriptions.Subscription, error) {
	got, err := g.Client.RenewSubscription(ctx, id, exp)
	return fromGraphSubscription(got), err
}

func (g Subscriptions) ReauthorizeSubscription(ctx context.Context, id string) error {
	return g.Client.ReauthorizeSubscription(ctx, id)
}

func (g Subscriptions) DeleteSubscription(ctx context.Context, id string) error {
	return g.Client.DeleteSubscription(ctx, id)
}

func fromGraphSubscription(s graph.Subscription) subscriptions.Subscription {
	return subscriptions.Subscription{ID: s.ID, Resource: s.Resource, ChangeType: s.ChangeType,
		NotificationURL: s.NotificationURL, LifecycleNotificationURL: s.LifecycleNotificationURL,
		ExpirationDateTime: s.ExpirationDateTime}
}
