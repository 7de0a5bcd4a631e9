package graphtest

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// UserRecord is one user of the emulated directory, in Graph's property names.
// GUIDs are stored lower-case. DeletedDateTime is zero for a live user.
type UserRecord struct {
	ID                string    `json:"id"`
	UserPrincipalName string    `json:"userPrincipalName"`
	DisplayName       string    `json:"displayName,omitempty"`
	AccountEnabled    bool      `json:"accountEnabled"`
	UserType          string    `json:"userType,omitempty"`
	Department        string    `json:"department,omitempty"`
	AssignedLicenses  []License `json:"assignedLicenses,omitempty"`
	AssignedPlans     []Plan    `json:"assignedPlans,omitempty"`
	DeletedDateTime   time.Time `json:"deletedDateTime,omitzero"`
}

// License is one entry of assignedLicenses.
type License struct {
	SkuID string `json:"skuId"`
}

// Plan is one entry of assignedPlans.
type Plan struct {
	ServicePlanID    string    `json:"servicePlanId"`
	Service          string    `json:"service,omitempty"`
	CapabilityStatus string    `json:"capabilityStatus"`
	AssignedDateTime time.Time `json:"assignedDateTime,omitzero"`
}

// GroupRecord is one group; Members holds user ids and nested group ids.
type GroupRecord struct {
	ID          string   `json:"id"`
	DisplayName string   `json:"displayName,omitempty"`
	Members     []string `json:"members,omitempty"`
}

// fixture is the JSON shape of a directory file.
type fixture struct {
	TenantID     string        `json:"tenantId"`
	Users        []UserRecord  `json:"users"`
	Groups       []GroupRecord `json:"groups"`
	DeletedUsers []UserRecord  `json:"deletedUsers"`
}

// Directory is the emulated tenant: users, groups and soft-deleted users. All methods are
// safe for concurrent use. The zero value is not usable; build one with NewDirectory,
// LoadDirectory or Generate.
type Directory struct {
	mu       sync.RWMutex
	tenantID string
	clock    func() time.Time

	users   map[string]*UserRecord // by lower-case id
	byUPN   map[string]string      // lower-case UPN → id
	order   []string               // live user ids in insertion order (stable paging)
	deleted map[string]*UserRecord
	delOrd  []string

	groups  map[string]*GroupRecord
	parents map[string][]string // member id → ids of groups that list it directly

	// members caches transitiveUserMembers by group, so that paging through a large group
	// does not walk it again for every page. It is read and filled under mu's read lock
	// (hence its own mutex) and cleared by every change to memberships or to which users
	// are live, which hold mu's write lock.
	membersMu sync.Mutex
	members   map[string][]string
}

// NewDirectory returns an empty directory for the tenant.
func NewDirectory(tenantID string) *Directory {
	return &Directory{
		tenantID: strings.ToLower(tenantID),
		clock:    time.Now,
		users:    map[string]*UserRecord{},
		byUPN:    map[string]string{},
		deleted:  map[string]*UserRecord{},
		groups:   map[string]*GroupRecord{},
		parents:  map[string][]string{},
	}
}

// LoadDirectory reads a directory fixture: {"tenantId", "users": [...], "groups": [...],
// "deletedUsers": [...]} with Graph's property names.
func LoadDirectory(r io.Reader) (*Directory, error) {
	var f fixture
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("graphtest: decode directory: %w", err)
	}
	d := NewDirectory(f.TenantID)
	for _, u := range f.Users {
		if err := d.AddUser(u); err != nil {
			return nil, err
		}
	}
	for _, u := range f.DeletedUsers {
		if err := d.addDeleted(u); err != nil {
			return nil, err
		}
	}
	for _, g := range f.Groups {
		if err := d.AddGroup(g.ID, g.DisplayName, g.Members...); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// LoadDirectoryFile reads a directory fixture from a file.
func LoadDirectoryFile(path string) (*Directory, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("graphtest: %w", err)
	}
	defer f.Close()
	return LoadDirectory(f)
}

// TenantID returns the directory's tenant id.
func (d *Directory) TenantID() string { return d.tenantID }

// SetClock sets the clock used to stamp deletions (time.Now when never set).
func (d *Directory) SetClock(now func() time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.clock = now
}

// LookupUser finds a live (not deleted) user by object id or userPrincipalName, case
// insensitively, and returns a copy. It is a pure in-memory read for tests that need the
// directory's answer without HTTP.
func (d *Directory) LookupUser(idOrUPN string) (UserRecord, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	u := d.lookup(idOrUPN)
	if u == nil {
		return UserRecord{}, false
	}
	return cloneUser(u), true
}

func (d *Directory) lookup(idOrUPN string) *UserRecord {
	key := strings.ToLower(idOrUPN)
	if u, ok := d.users[key]; ok {
		return u
	}
	if id, ok := d.byUPN[key]; ok {
		return d.users[id]
	}
	return nil
}

// TransitiveGroupsOf returns the ids of every group the object (user or group) belongs to,
// directly or through nested groups, sorted. It is a pure in-memory read.
func (d *Directory) TransitiveGroupsOf(memberID string) []string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.transitiveGroupsOf(strings.ToLower(memberID))
}

func (d *Directory) transitiveGroupsOf(id string) []string {
	seen := map[string]bool{}
	queue := []string{id}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, g := range d.parents[cur] {
			if !seen[g] {
				seen[g] = true
				queue = append(queue, g)
			}
		}
	}
	out := make([]string, 0, len(seen))
	for g := range seen {
		out = append(out, g)
	}
	slices.Sort(out)
	return out
}

// TransitiveUserMembers returns the ids of the live users who are members of the group
// directly or through nested groups, sorted, each once. It returns nil for an unknown group.
// It is a pure in-memory read.
func (d *Directory) TransitiveUserMembers(groupID string) []string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return slices.Clone(d.transitiveUserMembers(strings.ToLower(groupID)))
}

// transitiveUserMembers returns the sorted ids of the live users in the group, directly or
// through nested groups. The slice is shared: callers must not change it. Callers hold mu
// (read or write).
func (d *Directory) transitiveUserMembers(groupID string) []string {
	d.membersMu.Lock()
	defer d.membersMu.Unlock()
	if ids, ok := d.members[groupID]; ok {
		return ids
	}
	ids := d.walkUserMembers(groupID)
	if d.members == nil {
		d.members = map[string][]string{}
	}
	d.members[groupID] = ids
	return ids
}

// membershipChanged drops the cached group closures. Callers hold mu's write lock.
func (d *Directory) membershipChanged() {
	d.membersMu.Lock()
	d.members = nil
	d.membersMu.Unlock()
}

func (d *Directory) walkUserMembers(groupID string) []string {
	if _, ok := d.groups[groupID]; !ok {
		return nil
	}
	users := map[string]bool{}
	seen := map[string]bool{groupID: true}
	stack := []string{groupID}
	for len(stack) > 0 {
		g := d.groups[stack[len(stack)-1]]
		stack = stack[:len(stack)-1]
		for _, m := range g.Members {
			if _, isGroup := d.groups[m]; isGroup {
				if !seen[m] {
					seen[m] = true
					stack = append(stack, m)
				}
			} else if _, live := d.users[m]; live {
				users[m] = true
			}
		}
	}
	out := make([]string, 0, len(users))
	for id := range users {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

func cloneUser(u *UserRecord) UserRecord {
	c := *u
	c.AssignedLicenses = slices.Clone(u.AssignedLicenses)
	c.AssignedPlans = slices.Clone(u.AssignedPlans)
	return c
}
