package main

import (
	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
)

// dupShare is the share of messages that repeat the one before (Graph sends several
// notifications per change, Event Grid delivers at least once).
const dupShare = 0.10

// messageGen produces notification i from (seed, i) alone, so messages are made lazily
// and a run of any length holds only the ones in flight.
type messageGen struct {
	ids     []string
	deleted []bool
	seed    uint64
}

func newMessageGen(dir *graphtest.Directory, seed int64) *messageGen {
	g := &messageGen{seed: uint64(seed)}
	for _, u := range dir.Users() {
		g.ids, g.deleted = append(g.ids, u.ID), append(g.deleted, false)
	}
	for _, u := range dir.DeletedUsers() {
		g.ids, g.deleted = append(g.ids, u.ID), append(g.deleted, true)
	}
	return g
}

// body returns message i: a webhook collection or an Event Grid event about a random
// principal, or a duplicate of message i-1.
func (g *messageGen) body(i int) []byte {
	for i > 0 && unit(mix(g.seed, uint64(i), 1)) < dupShare {
		i--
	}
	r := mix(g.seed, uint64(i), 2)
	k := int(r % uint64(len(g.ids)))
	return userBody(g.ids[k], g.deleted[k], r>>63 == 1, i)
}

// mix is splitmix64 over the seed, the index and a stream number: a cheap, allocation-free
// random value per message.
func mix(seed, i, stream uint64) uint64 {
	z := seed*0x9e3779b97f4a7c15 + i*0xbf58476d1ce4e5b9 + stream*0x94d049bb133111eb
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// unit maps a random value to [0, 1).
func unit(r uint64) float64 { return float64(r>>11) / (1 << 53) }
