package graphtest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrNoSuchGroup is returned by mutations naming a group the directory does not hold.
var ErrNoSuchGroup = errors.New("graphtest: no such group")

// AddGroup adds a group with its direct members (user ids or ids of groups, added before or
// after this one).
func (d *Directory) AddGroup(id, displayName string, members ...string) error {
	id = strings.ToLower(id)
	if id == "" {
		return fmt.Errorf("graphtest: group needs an id")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.groups[id] != nil {
		return fmt.Errorf("graphtest: group %s already exists", id)
	}
	d.groups[id] = &GroupRecord{ID: id, DisplayName: displayName}
	d.membershipChanged()
	for _, m := range members {
		d.addMember(id, strings.ToLower(m))
	}
	return nil
}

// AddMember makes memberID (a user or a group) a direct member of the group. Adding an
// existing member is a no-op.
func (d *Directory) AddMember(groupID, memberID string) error {
	groupID, memberID = strings.ToLower(groupID), strings.ToLower(memberID)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.groups[groupID] == nil {
		return fmt.Errorf("%w: %s", ErrNoSuchGroup, groupID)
	}
	d.addMember(groupID, memberID)
	return nil
}

func (d *Directory) addMember(groupID, memberID string) {
	d.membershipChanged()
	g := d.groups[groupID]
	if slices.Contains(g.Members, memberID) {
		return
	}
	g.Members = append(g.Members, memberID)
	d.parents[memberID] = append(d.parents[memberID], groupID)
}

// RemoveMember removes a direct member from the group; removing a non-member is a no-op.
func (d *Directory) RemoveMember(groupID, memberID string) error {
	groupID, memberID = strings.ToLower(groupID), strings.ToLower(memberID)
	d.mu.Lock()
	defer d.mu.Unlock()
	g := d.groups[groupID]
	if g == nil {
		return fmt.Errorf("%w: %s", ErrNoSuchGroup, groupID)
	}
	g.Members = slices.DeleteFunc(g.Members, func(s string) bool { return s == memberID })
	d.membershipChanged()
	d.parents[memberID] = slices.DeleteFunc(d.parents[memberID], func(s string) bool { return s == groupID })
	if len(d.parents[memberID]) == 0 {
		delete(d.parents, memberID)
	}
	return nil
}

func (d *Directory) dropMemberships(memberID string) {
	d.membershipChanged()
	for _, gid := range d.parents[memberID] {
		g := d.groups[gid]
		g.Members = slices.DeleteFunc(g.Members, func(s string) bool { return s == memberID })
	}
	delete(d.parents, memberID)
}

// Group returns a snapshot of a group.
func (d *Directory) Group(id string) (GroupRecord, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	g := d.groups[strings.ToLower(id)]
	if g == nil {
		return GroupRecord{}, false
	}
	c := *g
	c.Members = slices.Clone(g.Members)
	return c, true
}
