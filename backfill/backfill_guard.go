package backfill

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// The listing rules. A scope listing (the transitive members of the scope groups) is read
// through Graph's advanced-query index, which lags behind direct reads and can come back
// short or empty during an incident. Read at face value, a short listing makes every holder
// left out of it an out-of-scope candidate of the sweep, i.e. a revoke. So, with scope
// groups, the plan is refused (a *ListingError, never a verdict) when the scope listing
//
//   - holds no user at all, or
//   - holds fewer than half (listingShrinkFactor) of the users of the previous listing of
//     the same process, when that one held at least listingShrinkMinPrevious users.
//
// The comparison is with the immediately previous listing, refused or not: a shrink that
// holds over two consecutive listings is believed, and its revokes still go one by one
// through a full Reconcile (the user's own scope check) and the revoke brake. Force (the
// CLI's --force) plans from the listing anyway, under the same per-user confirmation.
// Without scope groups nothing is revoked for being absent from a listing, so no rule
// applies.
const (
	listingShrinkFactor      = 2
	listingShrinkMinPrevious = 10
)

// ErrListing says a backfill refused to plan from a scope listing it did not trust. The
// error returned is a *ListingError, which matches ErrListing with errors.Is.
var ErrListing = errors.New("scope listing refused")

// ListingError is the listing rules' verdict on one scope listing.
type ListingError struct {
	Groups   []string // the scope groups listed
	Listed   int      // users the listing held
	Previous int      // users of the previous listing of the same process; 0 = unknown
}

func (e *ListingError) Error() string {
	groups := strings.Join(e.Groups, ", ")
	if e.Listed == 0 {
		return fmt.Sprintf("%s: the transitive members of scope groups %s came back empty; an empty listing "+
			"is taken as a directory fault, not as \"nobody is in scope\", so nothing was planned "+
			"(if the groups really are empty, add members; an operator may rerun backfill with --force)", ErrListing, groups)
	}
	return fmt.Sprintf("%s: the transitive members of scope groups %s fell from %d to %d users since the "+
		"previous listing; a listing that loses more than half its users at once is taken as a directory "+
		"fault, so nothing was planned (the next resync believes it if it holds; an operator may rerun "+
		"backfill with --force)", ErrListing, groups, e.Previous, e.Listed)
}

// Is makes errors.Is(err, ErrListing) true.
func (e *ListingError) Is(target error) bool { return target == ErrListing }

// checkListing applies the listing rules to a scope listing of n users.
func (b *backfillRun) checkListing(n int) error {
	prev := b.o.PreviousListing
	if b.o.Force || (n > 0 && (prev < listingShrinkMinPrevious || n*listingShrinkFactor >= prev)) {
		return nil
	}
	return &ListingError{Groups: b.policy.ScopeGroups, Listed: n, Previous: prev}
}

// ErrNoSuchGroup says a configured scope group does not exist in the directory: every
// membership check against it would answer "not a member", and every user would be
// revoked as out of scope.
var ErrNoSuchGroup = errors.New("scope group does not exist in the directory")

// groupReader is what CheckScopeGroups reads.
type groupReader interface {
	// GroupExists reports whether the directory holds the group; only a not-found answer
	// is false with no error.
	GroupExists(ctx context.Context, groupID string) (bool, error)
}

// CheckScopeGroups reads each scope group and returns an error naming every one the
// directory does not hold (errors.Is ErrNoSuchGroup), or the first read error, which keeps
// its classification and is never taken for "missing". Run it before any reconcile.
func CheckScopeGroups(ctx context.Context, g groupReader, groupIDs []string) error {
	var missing []string
	for _, id := range groupIDs {
		ok, err := g.GroupExists(ctx, id)
		if err != nil {
			return fmt.Errorf("read scope group %s: %w", id, err)
		}
		if !ok {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s", ErrNoSuchGroup, strings.Join(missing, ", "))
	}
	return nil
}
