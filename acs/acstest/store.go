package acstest

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
)

// Assignment is a stored assignment, as the service returns it. PrincipalType is kept as it
// was written, in the letter case and spelling sent.
type Assignment struct {
	ObjectID      string   `json:"objectId"`
	TenantID      string   `json:"tenantId"`
	PrincipalType string   `json:"principalType"`
	ClientIDs     []string `json:"clientIds,omitempty"`
}

type storeKey struct{ tenant, object string }

func keyOf(tenantID, objectID string) storeKey {
	return storeKey{strings.ToLower(tenantID), strings.ToLower(objectID)}
}

func (a Assignment) clone() Assignment {
	a.ClientIDs = slices.Clone(a.ClientIDs)
	return a
}

// Seed stores assignments as they are, without validation, as if written earlier.
func (s *Server) Seed(as ...Assignment) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range as {
		s.store[keyOf(a.TenantID, a.ObjectID)] = a.clone()
	}
}

// Assignments returns a snapshot of the store, ordered by tenant then object id.
func (s *Server) Assignments() []Assignment {
	s.mu.Lock()
	out := make([]Assignment, 0, len(s.store))
	for _, a := range s.store {
		out = append(out, a.clone())
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b Assignment) int {
		if c := strings.Compare(strings.ToLower(a.TenantID), strings.ToLower(b.TenantID)); c != 0 {
			return c
		}
		return strings.Compare(strings.ToLower(a.ObjectID), strings.ToLower(b.ObjectID))
	})
	return out
}

func (s *Server) lookup(tenantID, objectID string) (Assignment, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.store[keyOf(tenantID, objectID)]
	return a.clone(), ok
}

// put stores a and reports whether it was new.
func (s *Server) put(a Assignment) (created bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := keyOf(a.TenantID, a.ObjectID)
	_, existed := s.store[k]
	s.store[k] = a.clone()
	return !existed
}

// remove deletes an assignment and reports whether it was there.
func (s *Server) remove(tenantID, objectID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := keyOf(tenantID, objectID)
	_, ok := s.store[k]
	delete(s.store, k)
	return ok
}

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func isGUID(s string) bool { return guidRE.MatchString(s) }

// resourceAccountSpellings are the two principalType values for a resource account seen in
// Microsoft's sources: the Learn pages' and the OpenAPI spec's.
var resourceAccountSpellings = []string{"teamsResourceAccount", "resourceAccount"}

// parsePutBody validates a PUT body the way the service does and returns the principalType
// as sent and the client ids, or a reason for 400. With strict set (a resource account
// spelling) principalType must be exactly "user" or strict; otherwise either spelling in any
// letter case is accepted.
func parsePutBody(body []byte, strict string) (principalType string, clientIDs []string, reason string) {
	var in struct {
		PrincipalType *string  `json:"principalType"`
		ClientIDs     []string `json:"clientIds"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return "", nil, "the body is not a JSON assignment: " + err.Error()
	}
	if in.PrincipalType == nil {
		return "", nil, "principalType is required"
	}
	pt := *in.PrincipalType
	isUser, isRA := strings.EqualFold(pt, "user"), slices.ContainsFunc(resourceAccountSpellings, func(s string) bool { return strings.EqualFold(pt, s) })
	if strict != "" {
		isUser, isRA = pt == "user", pt == strict
	}
	switch {
	case isUser:
		if len(in.ClientIDs) == 0 {
			return "", nil, "clientIds is required for principalType user"
		}
		for _, id := range in.ClientIDs {
			if !isGUID(id) {
				return "", nil, "clientIds must be GUIDs"
			}
		}
	case isRA:
		if len(in.ClientIDs) != 0 {
			return "", nil, "clientIds is not allowed for a resource account"
		}
	case strict != "":
		return "", nil, "principalType must be user or " + strict
	default:
		return "", nil, "principalType must be user, teamsResourceAccount or resourceAccount"
	}
	return pt, in.ClientIDs, ""
}

// answer returns a as the emulator answers it: with Options.AnswerResourceAccountAs set,
// principalType in its canonical spelling.
func (s *Server) answer(a Assignment) Assignment {
	canon := s.opts.AnswerResourceAccountAs
	switch {
	case canon == "":
	case strings.EqualFold(a.PrincipalType, "user"):
		a.PrincipalType = "user"
	case slices.ContainsFunc(resourceAccountSpellings, func(s string) bool { return strings.EqualFold(a.PrincipalType, s) }):
		a.PrincipalType = canon
	}
	return a
}
