package main

import (
	"math/rand/v2"
	"slices"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// mutator changes the directory while messages flow and sends the notifications Graph
// would send for each change: duplicated (copies, or one to three when 0), and delayed by
// up to maxDelay each so they arrive out of order.
type mutator struct {
	dir      *graphtest.Directory
	q        *queue
	rng      *rand.Rand
	maxDelay time.Duration
	copies   int
	// alwaysDelta sends every group notification with members@delta, so no fan-out
	// reconciles the group's other members (which would repair their stale writes by
	// chance).
	alwaysDelta bool
	sent        int
	seq         int
}

// sendCopies sends body copies times (one to three when copies is 0), each after a random
// delay.
func (m *mutator) sendCopies(body []byte) {
	n := m.copies
	if n <= 0 {
		n = 1 + m.rng.IntN(3)
	}
	for range n {
		m.q.send(body, time.Duration(m.rng.Int64N(int64(m.maxDelay)+1)))
		m.sent++
	}
}

// initial sends one notification per principal in random order, and a duplicate of one
// in ten of them at a random place, at most limit in all (a limit below the number of
// principals leaves some without a message).
func (m *mutator) initial(limit int) {
	type note struct {
		id      string
		deleted bool
	}
	var notes []note
	for _, u := range m.dir.Users() {
		notes = append(notes, note{id: u.ID})
	}
	for _, u := range m.dir.DeletedUsers() {
		notes = append(notes, note{id: u.ID, deleted: true})
	}
	m.rng.Shuffle(len(notes), func(i, j int) { notes[i], notes[j] = notes[j], notes[i] })
	for _, n := range slices.Clone(notes) {
		if m.rng.Float64() < dupShare {
			notes = slices.Insert(notes, m.rng.IntN(len(notes)+1), n)
		}
	}
	for _, n := range notes[:min(limit, len(notes))] {
		m.seq++
		m.q.send(userBody(n.id, n.deleted, m.rng.IntN(2) == 0, m.seq), 0)
		m.sent++
	}
}

// mutate makes one random change to a random live user and sends its notifications.
func (m *mutator) mutate() {
	users := m.dir.Users()
	if len(users) == 0 {
		return
	}
	m.change(users[m.rng.IntN(len(users))], true)
}

// change makes one random change to the live user u (a deletion only when mayDelete) and
// sends its notifications.
func (m *mutator) change(u graphtest.UserRecord, mayDelete bool) {
	m.seq++
	event := m.rng.IntN(2) == 0
	teams := []graphtest.Plan{{ServicePlanID: graphtest.TeamsPlanID, Service: "TeamspaceAPI", CapabilityStatus: "Enabled"}}
	switch m.rng.IntN(5) {
	case 0:
		_ = m.dir.SetAccountEnabled(u.ID, !u.AccountEnabled)
	case 1:
		plans := [][]graphtest.Plan{nil, teams, {{ServicePlanID: graphtest.TeamsPlanID, CapabilityStatus: "Suspended"}}}
		_ = m.dir.SetPlans(u.ID, plans[m.rng.IntN(len(plans))]...)
	case 2:
		if m.rng.IntN(3) == 0 && mayDelete { // deletions are rarer than changes
			_ = m.dir.DeleteUser(u.ID)
			m.sendCopies(userBody(u.ID, true, event, m.seq))
			return
		}
		_ = m.dir.SetPlans(u.ID, teams...)
	default:
		m.membership(u.ID)
		return
	}
	m.sendCopies(userBody(u.ID, false, event, m.seq))
}

// membership adds the user to the scope group or removes it, and sends the group's
// notification: with members@delta, or (one in twenty) without, so the worker lists the
// group's members and reconciles every one of them within that one message.
func (m *mutator) membership(id string) {
	g, _ := m.dir.Group(graphtest.ScopeGroupID)
	delta := []worker.MemberDelta{{ID: id}}
	if slices.Contains(g.Members, id) {
		_ = m.dir.RemoveMember(graphtest.ScopeGroupID, id)
		delta[0].Removed = true
	} else {
		_ = m.dir.AddMember(graphtest.ScopeGroupID, id)
	}
	if m.rng.IntN(20) == 0 && !m.alwaysDelta {
		delta = nil
	}
	m.sendCopies(groupBody(graphtest.ScopeGroupID, delta))
}
