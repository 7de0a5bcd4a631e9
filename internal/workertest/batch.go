package workertest

import (
	"context"
	"iter"

	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// UserInGroups reads the user and which of groupIDs it is a transitive member of in one
// call, as graph.Client.UserInGroups reads both in one JSON batch. The call counts as
// "UserInGroups", and its two inner reads as "User" and "MemberOf" (they are two requests
// to the directory, one round trip); FailNext("User", …) and FailNext("MemberOf", …) script
// the inner reads. As in the graph package, only the user read can say not found: a
// membership read answering not found is a temporary error.
func (d *Directory) UserInGroups(ctx context.Context, userID string, groupIDs []string) (worker.User, []string, error) {
	d.count("UserInGroups")
	u, uerr := d.User(ctx, userID)
	in, merr := d.MemberOf(ctx, userID, groupIDs)
	switch {
	case uerr != nil:
		return worker.User{}, nil, uerr
	case worker.IsNotFound(merr):
		return worker.User{}, nil, &Err{code: "MembershipNotFoundAfterUserRead", temporary: true}
	case merr != nil:
		return worker.User{}, nil, merr
	}
	return u, in, nil
}

// Sequential returns d without its combined read: a directory the Reconciler reads one call
// at a time (the user, then the scope when it can change the verdict), as it reads any
// directory that has no UserInGroups. Calls and scripted failures are d's.
func (d *Directory) Sequential() *SequentialDirectory { return &SequentialDirectory{d: d} }

// SequentialDirectory is a Directory seen without UserInGroups (see Sequential).
type SequentialDirectory struct{ d *Directory }

func (s *SequentialDirectory) User(ctx context.Context, idOrUPN string) (worker.User, error) {
	return s.d.User(ctx, idOrUPN)
}

func (s *SequentialDirectory) DeletedUser(ctx context.Context, upn string) (worker.User, error) {
	return s.d.DeletedUser(ctx, upn)
}

func (s *SequentialDirectory) MemberOf(ctx context.Context, userID string, groupIDs []string) ([]string, error) {
	return s.d.MemberOf(ctx, userID, groupIDs)
}

func (s *SequentialDirectory) GroupMembers(ctx context.Context, groupID string) iter.Seq2[string, error] {
	return s.d.GroupMembers(ctx, groupID)
}
