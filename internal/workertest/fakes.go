package workertest

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// This file holds in-memory doubles of the worker's collaborators (directory, enumerator,
// assignments) for the tests of the worker and the packages around it. They are safe for
// concurrent use and can be scripted to fail: each Fail* call queues one error for the next
// matching call.

// Err is an error that classifies itself through the behaviour methods of errors.go,
// like the graph and acs packages' errors do.
type Err struct {
	status     int
	code       string
	notFound   bool
	temporary  bool
	systemic   bool
	retryAfter time.Duration
}

func (e *Err) Error() string             { return fmt.Sprintf("fake %d %s", e.status, e.code) }
func (e *Err) NotFound() bool            { return e.notFound }
func (e *Err) Temporary() bool           { return e.temporary }
func (e *Err) Systemic() bool            { return e.systemic }
func (e *Err) RetryAfter() time.Duration { return e.retryAfter }
func (e *Err) StatusCode() int           { return e.status }
func (e *Err) withRetryAfter(d time.Duration) *Err {
	c := *e
	c.retryAfter = d
	return &c
}

// Error constructors, one per behaviour the worker distinguishes.
func ErrNotFound() error {
	return &Err{status: 404, code: "Request_ResourceNotFound", notFound: true}
}
func ErrThrottled(retryAfter time.Duration) error {
	return (&Err{status: 429, code: "TooManyRequests", temporary: true}).withRetryAfter(retryAfter)
}
func ErrUnavailable() error {
	return &Err{status: 503, code: "ServiceUnavailable", temporary: true}
}
func ErrSystemic() error {
	return &Err{status: 403, code: "SubscriptionNotAllowed", systemic: true}
}
func ErrBadRequest() error { return &Err{status: 400, code: "BadRequest"} }

// ErrUnauthorized is ACS's answer to a revoked key; ErrForbidden its answer to a write the
// identity may not make. Both are systemic.
func ErrUnauthorized() error { return &Err{status: 401, code: "Unauthorized", systemic: true} }
func ErrForbidden() error    { return &Err{status: 403, code: "Forbidden", systemic: true} }

// script is a per-method queue of scripted failures keyed by principal ("" matches any).
type script struct {
	mu    sync.Mutex
	queue map[string][]scripted // method -> failures in order
}

type scripted struct {
	key   string
	err   error
	after int // for streams: items yielded before the error
}

func (s *script) add(method string, f scripted) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.queue == nil {
		s.queue = map[string][]scripted{}
	}
	s.queue[method] = append(s.queue[method], f)
}

// take removes and returns the first failure queued for method that matches key.
func (s *script) take(method, key string) (scripted, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.queue[method] {
		if f.key == "" || strings.EqualFold(f.key, key) {
			s.queue[method] = slices.Delete(s.queue[method], i, i+1)
			return f, true
		}
	}
	return scripted{}, false
}

// Directory is an in-memory Entra ID: users by id and UPN, soft-deleted users, and groups
// whose members may be users or other groups (membership is resolved transitively).
type Directory struct {
	script
	mu      sync.Mutex
	users   map[string]worker.User // lower-case id -> user
	deleted map[string]time.Time   // lower-case id -> soft-delete time (user kept in users)
	groups  map[string][]string    // lower-case group id -> direct member ids (users or groups)
	calls   map[string]int         // method -> count
}

func NewDirectory(users ...worker.User) *Directory {
	d := &Directory{
		users:   map[string]worker.User{},
		deleted: map[string]time.Time{},
		groups:  map[string][]string{},
		calls:   map[string]int{},
	}
	for _, u := range users {
		d.PutUser(u)
	}
	return d
}

// PutUser adds or replaces a user (and undeletes it).
func (d *Directory) PutUser(u worker.User) {
	d.mu.Lock()
	defer d.mu.Unlock()
	id := strings.ToLower(u.ID)
	d.users[id] = cloneUser(u)
	delete(d.deleted, id)
}

// SoftDelete moves a user to deleted items: reads return not found, DeletedUsers lists it.
func (d *Directory) SoftDelete(id string, at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.deleted[strings.ToLower(id)] = at
}

// PurgeUser removes a user for good.
func (d *Directory) PurgeUser(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.users, strings.ToLower(id))
	delete(d.deleted, strings.ToLower(id))
}

// SetGroup sets a group's direct members (user ids or group ids).
func (d *Directory) SetGroup(groupID string, members ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	low := make([]string, len(members))
	for i, m := range members {
		low[i] = strings.ToLower(m)
	}
	d.groups[strings.ToLower(groupID)] = low
}

// DeleteGroup removes a group; GroupMembers of it then fails with not found.
func (d *Directory) DeleteGroup(groupID string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.groups, strings.ToLower(groupID))
}

// FailNext makes the next call of method ("User", "DeletedUser", "MemberOf", "GroupMembers",
// "ScopeMembers", "TeamsUsers", "ResourceAccounts", "DeletedUsers") whose principal matches
// key fail with err. An empty key matches any call.
func (d *Directory) FailNext(method, key string, err error) {
	d.add(method, scripted{key: key, err: err})
}

// FailStreamAfter makes the next stream of method for key yield n items, then err.
func (d *Directory) FailStreamAfter(method, key string, n int, err error) {
	d.add(method, scripted{key: key, err: err, after: n})
}

// Calls returns how many times method was called.
func (d *Directory) Calls(method string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.calls[method]
}

func (d *Directory) count(method string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls[method]++
}

func (d *Directory) User(ctx context.Context, idOrUPN string) (worker.User, error) {
	d.count("User")
	if err := ctx.Err(); err != nil {
		return worker.User{}, err
	}
	if f, ok := d.take("User", idOrUPN); ok {
		return worker.User{}, f.err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, u := range d.users {
		if _, gone := d.deleted[id]; gone {
			continue
		}
		if strings.EqualFold(id, idOrUPN) || strings.EqualFold(u.UPN, idOrUPN) {
			return cloneUser(u), nil
		}
	}
	return worker.User{}, ErrNotFound()
}

// DeletedUser finds a soft-deleted user by the UPN it had (the fake keeps UPNs unprefixed).
func (d *Directory) DeletedUser(ctx context.Context, upn string) (worker.User, error) {
	d.count("DeletedUser")
	if err := ctx.Err(); err != nil {
		return worker.User{}, err
	}
	if f, ok := d.take("DeletedUser", upn); ok {
		return worker.User{}, f.err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for id := range d.deleted {
		if u := d.users[id]; strings.EqualFold(u.UPN, upn) {
			return cloneUser(u), nil
		}
	}
	return worker.User{}, ErrNotFound()
}

func (d *Directory) MemberOf(ctx context.Context, userID string, groupIDs []string) ([]string, error) {
	d.count("MemberOf")
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if f, ok := d.take("MemberOf", userID); ok {
		return nil, f.err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var in []string
	for _, g := range groupIDs {
		if slices.Contains(d.membersLocked(strings.ToLower(g)), strings.ToLower(userID)) {
			in = append(in, g)
		}
	}
	return in, nil
}

func (d *Directory) GroupMembers(ctx context.Context, groupID string) iter.Seq2[string, error] {
	d.count("GroupMembers")
	return func(yield func(string, error) bool) {
		d.mu.Lock()
		_, exists := d.groups[strings.ToLower(groupID)]
		ids := d.membersLocked(strings.ToLower(groupID))
		d.mu.Unlock()
		f, failing := d.take("GroupMembers", groupID)
		for i, id := range ids {
			if failing && i == f.after {
				break
			}
			if ctx.Err() != nil {
				yield("", ctx.Err())
				return
			}
			if !yield(id, nil) {
				return
			}
		}
		switch {
		case failing:
			yield("", f.err)
		case !exists:
			yield("", ErrNotFound())
		}
	}
}

// membersLocked returns the transitive user members of group g (lower-case ids, sorted).
func (d *Directory) membersLocked(g string) []string {
	seen := map[string]bool{}
	var users []string
	var walk func(string)
	walk = func(id string) {
		if seen[id] {
			return
		}
		seen[id] = true
		members, isGroup := d.groups[id]
		if !isGroup {
			if _, isUser := d.users[id]; isUser {
				if _, gone := d.deleted[id]; !gone {
					users = append(users, id)
				}
			}
			return
		}
		for _, m := range members {
			walk(m)
		}
	}
	walk(g)
	slices.Sort(users)
	return users
}

// ScopeMembers streams the transitive user members of the groups (duplicates possible).
func (d *Directory) ScopeMembers(ctx context.Context, groupIDs []string) iter.Seq2[worker.User, error] {
	d.count("ScopeMembers")
	d.mu.Lock()
	var users []worker.User
	for _, g := range groupIDs {
		for _, id := range d.membersLocked(strings.ToLower(g)) {
			users = append(users, cloneUser(d.users[id]))
		}
	}
	d.mu.Unlock()
	return d.stream(ctx, "ScopeMembers", strings.Join(groupIDs, ","), users)
}

// TeamsUsers streams users holding any Teams plan (in any state, as a Graph filter would).
func (d *Directory) TeamsUsers(ctx context.Context) iter.Seq2[worker.User, error] {
	d.count("TeamsUsers")
	return d.stream(ctx, "TeamsUsers", "", d.liveUsers(func(u worker.User) bool {
		return slices.ContainsFunc(u.Plans, func(p worker.AssignedPlan) bool { return containsFold(worker.TeamsPlanIDs, p.ServicePlanID) })
	}))
}

// ResourceAccounts streams users holding a resource account licence SKU.
func (d *Directory) ResourceAccounts(ctx context.Context) iter.Seq2[worker.User, error] {
	d.count("ResourceAccounts")
	return d.stream(ctx, "ResourceAccounts", "", d.liveUsers(func(u worker.User) bool {
		return slices.ContainsFunc(u.SKUs, func(s string) bool { return containsFold(worker.ResourceAccountSKUs, s) })
	}))
}

// DeletedUsers streams users soft-deleted at or after since.
func (d *Directory) DeletedUsers(ctx context.Context, since time.Time) iter.Seq2[worker.User, error] {
	d.count("DeletedUsers")
	d.mu.Lock()
	var users []worker.User
	for id, at := range d.deleted {
		if !at.Before(since) {
			users = append(users, cloneUser(d.users[id]))
		}
	}
	d.mu.Unlock()
	slices.SortFunc(users, func(a, b worker.User) int { return strings.Compare(a.ID, b.ID) })
	return d.stream(ctx, "DeletedUsers", "", users)
}

func (d *Directory) liveUsers(keep func(worker.User) bool) []worker.User {
	d.mu.Lock()
	defer d.mu.Unlock()
	var users []worker.User
	for id, u := range d.users {
		if _, gone := d.deleted[id]; !gone && keep(u) {
			users = append(users, cloneUser(u))
		}
	}
	slices.SortFunc(users, func(a, b worker.User) int { return strings.Compare(a.ID, b.ID) })
	return users
}

func (d *Directory) stream(ctx context.Context, method, key string, users []worker.User) iter.Seq2[worker.User, error] {
	return func(yield func(worker.User, error) bool) {
		f, failing := d.take(method, key)
		for i, u := range users {
			if failing && i == f.after {
				break
			}
			if ctx.Err() != nil {
				yield(worker.User{}, ctx.Err())
				return
			}
			if !yield(u, nil) {
				return
			}
		}
		if failing {
			yield(worker.User{}, f.err)
		}
	}
}

func cloneUser(u worker.User) worker.User {
	u.SKUs = slices.Clone(u.SKUs)
	u.Plans = slices.Clone(u.Plans)
	return u
}

// Assignments is an in-memory ACS assignments store for one tenant. Like the service it
// rejects a user assignment without client ids, and answers each call with a fresh
// correlation id ("cv-1", "cv-2", ...).
type Assignments struct {
	script
	mu    sync.Mutex
	m     map[string]worker.Assignment // lower-case object id -> assignment
	calls map[string]int               // "Get", "Put", "Delete" -> count
	seq   int
}

func NewAssignments(as ...worker.Assignment) *Assignments {
	f := &Assignments{m: map[string]worker.Assignment{}, calls: map[string]int{}}
	for _, a := range as {
		f.Set(a)
	}
	return f
}

// Set stores an assignment directly (no call counted).
func (f *Assignments) Set(a worker.Assignment) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a.ObjectID = strings.ToLower(a.ObjectID)
	a.ClientIDs = slices.Clone(a.ClientIDs)
	f.m[a.ObjectID] = a
}

// Lookup returns the stored assignment (no call counted).
func (f *Assignments) Lookup(objectID string) (worker.Assignment, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.m[strings.ToLower(objectID)]
	a.ClientIDs = slices.Clone(a.ClientIDs)
	return a, ok
}

// Len returns how many assignments are stored.
func (f *Assignments) Len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.m)
}

// FailNext makes the next call of method ("Get", "Put", "Delete") for objectID fail with
// err. An empty objectID matches any call.
func (f *Assignments) FailNext(method, objectID string, err error) {
	f.add(method, scripted{key: objectID, err: err})
}

// Calls returns how many times method was called.
func (f *Assignments) Calls(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

// Writes returns how many Put and Delete calls were made.
func (f *Assignments) Writes() int { return f.Calls("Put") + f.Calls("Delete") }

func (f *Assignments) begin(ctx context.Context, method, objectID string) (string, error) {
	f.mu.Lock()
	f.calls[method]++
	f.seq++
	cv := fmt.Sprintf("cv-%d", f.seq)
	f.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return cv, err
	}
	if s, ok := f.take(method, objectID); ok {
		return cv, s.err
	}
	return cv, nil
}

func (f *Assignments) Get(ctx context.Context, objectID string) (worker.Assignment, error) {
	cv, err := f.begin(ctx, "Get", objectID)
	if err != nil {
		return worker.Assignment{}, err
	}
	a, ok := f.Lookup(objectID)
	if !ok {
		return worker.Assignment{}, ErrNotFound()
	}
	a.CorrelationID = cv
	return a, nil
}

func (f *Assignments) Put(ctx context.Context, a worker.Assignment) (worker.Assignment, error) {
	cv, err := f.begin(ctx, "Put", a.ObjectID)
	if err != nil {
		return worker.Assignment{}, err
	}
	if a.PrincipalType == worker.PrincipalUser && len(a.ClientIDs) == 0 {
		return worker.Assignment{}, ErrBadRequest()
	}
	a.CorrelationID = ""
	f.Set(a)
	a, _ = f.Lookup(a.ObjectID)
	a.CorrelationID = cv
	return a, nil
}

func (f *Assignments) Delete(ctx context.Context, objectID string) (string, error) {
	cv, err := f.begin(ctx, "Delete", objectID)
	if err != nil {
		return cv, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	id := strings.ToLower(objectID)
	if _, ok := f.m[id]; !ok {
		return cv, ErrNotFound()
	}
	delete(f.m, id)
	return cv, nil
}

func containsFold(list []string, s string) bool {
	return slices.ContainsFunc(list, func(x string) bool { return strings.EqualFold(x, s) })
}
