package graphtest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrNoSuchUser is returned by mutations naming a user the directory does not hold.
var ErrNoSuchUser = errors.New("graphtest: no such user")

// AddUser adds a live user. The id and userPrincipalName must be new; GUIDs are stored
// lower-case; an empty userType means "Member".
func (d *Directory) AddUser(u UserRecord) error {
	u = normalizeUser(u)
	if u.ID == "" || u.UserPrincipalName == "" {
		return fmt.Errorf("graphtest: user needs id and userPrincipalName")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	upn := strings.ToLower(u.UserPrincipalName)
	if d.users[u.ID] != nil || d.deleted[u.ID] != nil || d.byUPN[upn] != "" {
		return fmt.Errorf("graphtest: user %s already exists", u.ID)
	}
	u.DeletedDateTime = u.DeletedDateTime.UTC()
	d.users[u.ID] = &u
	d.byUPN[upn] = u.ID
	d.order = append(d.order, u.ID)
	d.membershipChanged()
	return nil
}

func (d *Directory) addDeleted(u UserRecord) error {
	u = normalizeUser(u)
	if u.ID == "" || u.DeletedDateTime.IsZero() {
		return fmt.Errorf("graphtest: deleted user needs id and deletedDateTime")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.users[u.ID] != nil || d.deleted[u.ID] != nil {
		return fmt.Errorf("graphtest: user %s already exists", u.ID)
	}
	u.UserPrincipalName = DeletedUPN(u.ID, u.UserPrincipalName)
	d.deleted[u.ID] = &u
	d.delOrd = append(d.delOrd, u.ID)
	return nil
}

func normalizeUser(u UserRecord) UserRecord {
	u.ID = strings.ToLower(u.ID)
	if u.UserType == "" {
		u.UserType = "Member"
	}
	u.AssignedLicenses = slices.Clone(u.AssignedLicenses)
	for i := range u.AssignedLicenses {
		u.AssignedLicenses[i].SkuID = strings.ToLower(u.AssignedLicenses[i].SkuID)
	}
	u.AssignedPlans = slices.Clone(u.AssignedPlans)
	for i := range u.AssignedPlans {
		u.AssignedPlans[i].ServicePlanID = strings.ToLower(u.AssignedPlans[i].ServicePlanID)
	}
	return u
}

// DeleteUser soft-deletes a user: it leaves /users (reads return 404
// Request_ResourceNotFound, as in Graph) and appears under deletedItems with deletedDateTime
// set from the directory's clock and its userPrincipalName prefixed with its object id
// (DeletedUPN), which frees the UPN for a new user as in Graph. Group memberships are kept,
// as Graph restores them.
func (d *Directory) DeleteUser(idOrUPN string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	u := d.lookup(idOrUPN)
	if u == nil {
		return fmt.Errorf("%w: %s", ErrNoSuchUser, idOrUPN)
	}
	d.removeLive(u)
	u.UserPrincipalName = DeletedUPN(u.ID, u.UserPrincipalName)
	u.DeletedDateTime = d.clock().UTC()
	d.deleted[u.ID] = u
	d.delOrd = append(d.delOrd, u.ID)
	return nil
}

// PurgeUser permanently deletes a user, live or soft-deleted, and its memberships.
func (d *Directory) PurgeUser(idOrUPN string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if u := d.lookup(idOrUPN); u != nil {
		d.removeLive(u)
		d.dropMemberships(u.ID)
		return nil
	}
	id := strings.ToLower(idOrUPN)
	if d.deleted[id] == nil {
		return fmt.Errorf("%w: %s", ErrNoSuchUser, idOrUPN)
	}
	delete(d.deleted, id)
	d.delOrd = slices.DeleteFunc(d.delOrd, func(s string) bool { return s == id })
	d.dropMemberships(id)
	d.membershipChanged()
	return nil
}

func (d *Directory) removeLive(u *UserRecord) {
	d.membershipChanged()
	delete(d.users, u.ID)
	delete(d.byUPN, strings.ToLower(u.UserPrincipalName))
	d.order = slices.DeleteFunc(d.order, func(s string) bool { return s == u.ID })
}

// SetAccountEnabled changes a live user's accountEnabled.
func (d *Directory) SetAccountEnabled(idOrUPN string, enabled bool) error {
	return d.update(idOrUPN, func(u *UserRecord) { u.AccountEnabled = enabled })
}

// SetLicenses replaces a live user's assignedLicenses with the given SKU ids.
func (d *Directory) SetLicenses(idOrUPN string, skuIDs ...string) error {
	lic := make([]License, len(skuIDs))
	for i, s := range skuIDs {
		lic[i] = License{SkuID: strings.ToLower(s)}
	}
	return d.update(idOrUPN, func(u *UserRecord) { u.AssignedLicenses = lic })
}

// SetPlans replaces a live user's assignedPlans.
func (d *Directory) SetPlans(idOrUPN string, plans ...Plan) error {
	p := slices.Clone(plans)
	for i := range p {
		p[i].ServicePlanID = strings.ToLower(p[i].ServicePlanID)
	}
	return d.update(idOrUPN, func(u *UserRecord) { u.AssignedPlans = p })
}

// update applies f to a copy of the user and swaps it in, so snapshots already handed out
// (and slices shared between generated users) are never changed underneath their readers.
func (d *Directory) update(idOrUPN string, f func(*UserRecord)) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	u := d.lookup(idOrUPN)
	if u == nil {
		return fmt.Errorf("%w: %s", ErrNoSuchUser, idOrUPN)
	}
	c := *u
	f(&c)
	d.users[u.ID] = &c
	return nil
}

// User returns a snapshot of a live user by id or UPN (LookupUser under another name, for
// symmetry with the mutations).
func (d *Directory) User(idOrUPN string) (UserRecord, bool) { return d.LookupUser(idOrUPN) }

// Users returns snapshots of all live users in directory order.
func (d *Directory) Users() []UserRecord {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make([]UserRecord, 0, len(d.order))
	for _, id := range d.order {
		out = append(out, cloneUser(d.users[id]))
	}
	return out
}

// DeletedUsers returns snapshots of the soft-deleted users in deletion order.
func (d *Directory) DeletedUsers() []UserRecord {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make([]UserRecord, 0, len(d.delOrd))
	for _, id := range d.delOrd {
		out = append(out, cloneUser(d.deleted[id]))
	}
	return out
}

// DeletedUPN is the userPrincipalName Graph gives a soft-deleted user: its object id
// without dashes, then the UPN it had ("4c7e…adele@contoso.com"); a UPN that already
// carries the prefix is returned as it is (Graph takes the prefix off on restore).
func DeletedUPN(id, upn string) string {
	prefix := strings.ReplaceAll(strings.ToLower(id), "-", "")
	if strings.HasPrefix(strings.ToLower(upn), prefix) {
		return upn
	}
	return prefix + upn
}
