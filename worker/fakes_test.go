package worker

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"strings"
	"sync"
	"time"
)

// This file holds in-memory doubles of the worker's collaborators (directory, enumerator,
// assignments) for the package's tests. They are safe for concurrent use and can be scripted
// to fail: each Fail* call queues one error for the next matching call.

var (
	_ directory   = (*fakeDirectory)(nil)
	_ Assignments = (*fakeAssignments)(nil)
)

// fakeErr is an error that classifies itself through the behaviour methods of errors.go,
// like the graph and acs packages' errors do.
type fakeErr struct {
	status     int
	code       string
	notFound   bool
	temporary  bool
	systemic   bool
	retryAfter time.Duration
}

func (e *fakeErr) Error() string             { return fmt.Sprintf("fake %d %s", e.status, e.code) }
func (e *fakeErr) NotFound() bool            { return e.notFound }
func (e *fakeErr) Temporary() bool           { return e.temporary }
func (e *fakeErr) Systemic() bool            { return e.systemic }
func (e *fakeErr) RetryAfter() time.Duration { return e.retryAfter }
func (e *fakeErr) StatusCode() int           { return e.status }
func (e *fakeErr) withRetryAfter(d time.Duration) *fakeErr {
	c := *e
	c.retryAfter = d
	return &c
}

// Error constructors, one per behaviour the worker distinguishes.
func errNotFound() error {
	return &fakeErr{status: 404, code: "Request_ResourceNotFound", notFound: true}
}
func errThrottled(retryAfter time.Duration) error {
	return (&fakeErr{status: 429, code: "TooManyRequests", temporary: true}).withRetryAfter(retryAfter)
}
func errUnavailable() error {
	return &fakeErr{status: 503, code: "ServiceUnavailable", temporary: true}
}
func errSystemic() error {
	return &fakeErr{status: 403, code: "SubscriptionNotAllowed", systemic: true}
}
func errBadRequest() error { return &fakeErr{status: 400, code: "BadRequest"} }

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

// fakeDirectory is an in-memory Entra ID: users by id and UPN, soft-deleted users, and groups
// whose members may be users or other groups (membership is resolved transitively).
type fakeDirectory struct {
	script
	mu      sync.Mutex
	users   map[string]User      // lower-case id -> user
	deleted map[string]time.Time // lower-case id -> soft-delete time (user kept in users)
	groups  map[string][]string  // lower-case group id -> direct member ids (users or groups)
	calls   map[string]int       // method -> count
}

func newFakeDirectory(users ...User) *fakeDirectory {
	d := &fakeDirectory{
		users:   map[string]User{},
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
func (d *fakeDirectory) PutUser(u User) {
	d.mu.Lock()
	defer d.mu.Unlock()
	id := strings.ToLower(u.ID)
	d.users[id] = cloneUser(u)
	delete(d.deleted, id)
}

// SoftDelete moves a user to deleted items: reads return not found, DeletedUsers lists it.
func (d *fakeDirectory) SoftDelete(id string, at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.deleted[strings.ToLower(id)] = at
}

// PurgeUser removes a user for good.
func (d *fakeDirectory) PurgeUser(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.users, strings.ToLower(id))
	delete(d.deleted, strings.ToLower(id))
}

// SetGroup sets a group's direct members (user ids or group ids).
func (d *fakeDirectory) SetGroup(groupID string, members ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	low := make([]string, len(members))
	for i, m := range members {
		low[i] = strings.ToLower(m)
	}
	d.groups[strings.ToLower(groupID)] = low
}

// DeleteGroup removes a group; GroupMembers of it then fails with not found.
func (d *fakeDirectory) DeleteGroup(groupID string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.groups, strings.ToLower(groupID))
}

// FailNext makes the next call of method ("User", "DeletedUser", "MemberOf", "GroupMembers",
// "ScopeMembers", "TeamsUsers", "ResourceAccounts", "DeletedUsers") whose principal matches
// key fail with err. An empty key matches any call.
func (d *fakeDirectory) FailNext(method, key string, err error) {
	d.add(method, scripted{key: key, err: err})
}

// FailStreamAfter makes the next stream of method for key yield n items, then err.
func (d *fakeDirectory) FailStreamAfter(method, key string, n int, err error) {
	d.add(method, scripted{key: key, err: err, after: n})
}

// Calls returns how many times method was called.
func (d *fakeDirectory) Calls(method string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.calls[method]
}

func (d *fakeDirectory) count(method string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls[method]++
}

func (d *fakeDirectory) User(ctx context.Context, idOrUPN string) (User, error) {
	d.count("User")
	if err := ctx.Err(); err != nil {
		return User{}, err
	}
	if f, ok := d.take("User", idOrUPN); ok {
		return User{}, f.err
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
	return User{}, errNotFound()
}

// DeletedUser finds a soft-deleted user by the UPN it had (the fake keeps UPNs unprefixed).
func (d *fakeDirectory) DeletedUser(ctx context.Context, upn string) (User, error) {
	d.count("DeletedUser")
	if err := ctx.Err(); err != nil {
		return User{}, err
	}
	if f, ok := d.take("DeletedUser", upn); ok {
		return User{}, f.err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for id := range d.deleted {
		if u := d.users[id]; strings.EqualFold(u.UPN, upn) {
			return cloneUser(u), nil
		}
	}
	return User{}, errNotFound()
}

func (d *fakeDirectory) MemberOf(ctx context.Context, userID string, groupIDs []string) ([]string, error) {
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

func (d *fakeDirectory) GroupMembers(ctx context.Context, groupID string) iter.Seq2[string, error] {
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
			yield("", errNotFound())
		}
	}
}

// membersLocked returns the transitive user members of group g (lower-case ids, sorted).
func (d *fakeDirectory) membersLocked(g string) []string {
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
func (d *fakeDirectory) ScopeMembers(ctx context.Context, groupIDs []string) iter.Seq2[User, error] {
	d.count("ScopeMembers")
	d.mu.Lock()
	var users []User
	for _, g := range groupIDs {
		for _, id := range d.membersLocked(strings.ToLower(g)) {
			users = append(users, cloneUser(d.users[id]))
		}
	}
	d.mu.Unlock()
	return d.stream(ctx, "ScopeMembers", strings.Join(groupIDs, ","), users)
}

// TeamsUsers streams users holding any Teams plan (in any state, as a Graph filter would).
func (d *fakeDirectory) TeamsUsers(ctx context.Context) iter.Seq2[User, error] {
	d.count("TeamsUsers")
	return d.stream(ctx, "TeamsUsers", "", d.liveUsers(func(u User) bool {
		return slices.ContainsFunc(u.Plans, func(p AssignedPlan) bool { return containsFold(TeamsPlanIDs, p.ServicePlanID) })
	}))
}

// ResourceAccounts streams users holding a resource account licence SKU.
func (d *fakeDirectory) ResourceAccounts(ctx context.Context) iter.Seq2[User, error] {
	d.count("ResourceAccounts")
	return d.stream(ctx, "ResourceAccounts", "", d.liveUsers(func(u User) bool {
		return slices.ContainsFunc(u.SKUs, func(s string) bool { return containsFold(ResourceAccountSKUs, s) })
	}))
}

// DeletedUsers streams users soft-deleted at or after since.
func (d *fakeDirectory) DeletedUsers(ctx context.Context, since time.Time) iter.Seq2[User, error] {
	d.count("DeletedUsers")
	d.mu.Lock()
	var users []User
	for id, at := range d.deleted {
		if !at.Before(since) {
			users = append(users, cloneUser(d.users[id]))
		}
	}
	d.mu.Unlock()
	slices.SortFunc(users, func(a, b User) int { return strings.Compare(a.ID, b.ID) })
	return d.stream(ctx, "DeletedUsers", "", users)
}

func (d *fakeDirectory) liveUsers(keep func(User) bool) []User {
	d.mu.Lock()
	defer d.mu.Unlock()
	var users []User
	for id, u := range d.users {
		if _, gone := d.deleted[id]; !gone && keep(u) {
			users = append(users, cloneUser(u))
		}
	}
	slices.SortFunc(users, func(a, b User) int { return strings.Compare(a.ID, b.ID) })
	return users
}

func (d *fakeDirectory) stream(ctx context.Context, method, key string, users []User) iter.Seq2[User, error] {
	return func(yield func(User, error) bool) {
		f, failing := d.take(method, key)
		for i, u := range users {
			if failing && i == f.after {
				break
			}
			if ctx.Err() != nil {
				yield(User{}, ctx.Err())
				return
			}
			if !yield(u, nil) {
				return
			}
		}
		if failing {
			yield(User{}, f.err)
		}
	}
}

func cloneUser(u User) User {
	u.SKUs = slices.Clone(u.SKUs)
	u.Plans = slices.Clone(u.Plans)
	return u
}

// fakeAssignments is an in-memory ACS assignments store for one tenant. Like the service it
// rejects a user assignment without client ids, and answers each call with a fresh
// correlation id ("cv-1", "cv-2", ...).
type fakeAssignments struct {
	script
	mu    sync.Mutex
	m     map[string]Assignment // lower-case object id -> assignment
	calls map[string]int        // "Get", "Put", "Delete" -> count
	seq   int
}

func newFakeAssignments(as ...Assignment) *fakeAssignments {
	f := &fakeAssignments{m: map[string]Assignment{}, calls: map[string]int{}}
	for _, a := range as {
		f.Set(a)
	}
	return f
}

// Set stores an assignment directly (no call counted).
func (f *fakeAssignments) Set(a Assignment) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a.ObjectID = strings.ToLower(a.ObjectID)
	a.ClientIDs = slices.Clone(a.ClientIDs)
	f.m[a.ObjectID] = a
}

// Lookup returns the stored assignment (no call counted).
func (f *fakeAssignments) Lookup(objectID string) (Assignment, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.m[strings.ToLower(objectID)]
	a.ClientIDs = slices.Clone(a.ClientIDs)
	return a, ok
}

// Len returns how many assignments are stored.
func (f *fakeAssignments) Len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.m)
}

// FailNext makes the next call of method ("Get", "Put", "Delete") for objectID fail with
// err. An empty objectID matches any call.
func (f *fakeAssignments) FailNext(method, objectID string, err error) {
	f.add(method, scripted{key: objectID, err: err})
}

// Calls returns how many times method was called.
func (f *fakeAssignments) Calls(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

// Writes returns how many Put and Delete calls were made.
func (f *fakeAssignments) Writes() int { return f.Calls("Put") + f.Calls("Delete") }

func (f *fakeAssignments) begin(ctx context.Context, method, objectID string) (string, error) {
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

func (f *fakeAssignments) Get(ctx context.Context, objectID string) (Assignment, error) {
	cv, err := f.begin(ctx, "Get", objectID)
	if err != nil {
		return Assignment{}, err
	}
	a, ok := f.Lookup(objectID)
	if !ok {
		return Assignment{}, errNotFound()
	}
	a.CorrelationID = cv
	return a, nil
}

func (f *fakeAssignments) Put(ctx context.Context, a Assignment) (Assignment, error) {
	cv, err := f.begin(ctx, "Put", a.ObjectID)
	if err != nil {
		return Assignment{}, err
	}
	if a.PrincipalType == PrincipalUser && len(a.ClientIDs) == 0 {
		return Assignment{}, errBadRequest()
	}
	a.CorrelationID = ""
	f.Set(a)
	a, _ = f.Lookup(a.ObjectID)
	a.CorrelationID = cv
	return a, nil
}

func (f *fakeAssignments) Delete(ctx context.Context, objectID string) (string, error) {
	cv, err := f.begin(ctx, "Delete", objectID)
	if err != nil {
		return cv, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	id := strings.ToLower(objectID)
	if _, ok := f.m[id]; !ok {
		return cv, errNotFound()
	}
	delete(f.m, id)
	return cv, nil
}
