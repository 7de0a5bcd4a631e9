package acs

import (
	"regexp"
	"strings"
)

// PrincipalType is the kind of principal an assignment is for, normalised: whatever letter
// case or alias the service used, a read yields one of the constants below (or, for a value
// this package does not know, the value as sent).
type PrincipalType string

const (
	// PrincipalUser is a Teams user; its assignment carries client ids.
	PrincipalUser PrincipalType = "user"
	// PrincipalResourceAccount is a Teams resource account (the server consent). It is
	// written with Options.ResourceAccountWireName.
	PrincipalResourceAccount PrincipalType = "teamsResourceAccount"
)

// normalisePrincipalType maps the service's spellings onto the constants.
func normalisePrincipalType(s string) PrincipalType {
	switch {
	case strings.EqualFold(s, "user"):
		return PrincipalUser
	case strings.EqualFold(s, "teamsResourceAccount"), strings.EqualFold(s, "resourceAccount"):
		return PrincipalResourceAccount
	}
	return PrincipalType(s)
}

// Assignment is one Teams Phone extensibility access assignment.
type Assignment struct {
	ObjectID      string        `json:"objectId"`
	TenantID      string        `json:"tenantId"`
	PrincipalType PrincipalType `json:"principalType"`
	// ClientIDs are the Entra application client ids a user assignment grants; nil for a
	// resource account.
	ClientIDs []string `json:"clientIds,omitempty"`
	// CorrelationID is the ms-cv header of the response that returned this value. It is
	// for the caller's logs and is never sent.
	CorrelationID string `json:"-"`
}

// wireAssignment is the body the service returns.
type wireAssignment struct {
	ObjectID      string   `json:"objectId"`
	TenantID      string   `json:"tenantId"`
	PrincipalType string   `json:"principalType"`
	ClientIDs     []string `json:"clientIds"`
}

func (w wireAssignment) assignment(cv string) Assignment {
	return Assignment{
		ObjectID:      w.ObjectID,
		TenantID:      w.TenantID,
		PrincipalType: normalisePrincipalType(w.PrincipalType),
		ClientIDs:     w.ClientIDs,
		CorrelationID: cv,
	}
}

// putBody is the body of a PUT.
type putBody struct {
	PrincipalType string   `json:"principalType"`
	ClientIDs     []string `json:"clientIds,omitempty"`
}

// putBodyFor checks a and builds the body to send; raName is the resource-account wire name.
func putBodyFor(a Assignment, raName string) (putBody, error) {
	switch normalisePrincipalType(string(a.PrincipalType)) {
	case PrincipalUser:
		if len(a.ClientIDs) == 0 {
			return putBody{}, &ValidationError{Field: "assignment", Value: a.ObjectID, Reason: "is for a user and needs at least one client id"}
		}
		for _, id := range a.ClientIDs {
			if !isGUID(id) {
				return putBody{}, &ValidationError{Field: "client id", Value: shorten(id), Reason: "is not a GUID"}
			}
		}
		return putBody{PrincipalType: string(PrincipalUser), ClientIDs: a.ClientIDs}, nil
	case PrincipalResourceAccount:
		if len(a.ClientIDs) != 0 {
			return putBody{}, &ValidationError{Field: "assignment", Value: a.ObjectID, Reason: "is for a resource account and must not carry client ids"}
		}
		return putBody{PrincipalType: raName}, nil
	}
	return putBody{}, &ValidationError{Field: "principal type", Value: shorten(string(a.PrincipalType)), Reason: "must be user or teamsResourceAccount"}
}

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// isGUID reports whether s is a GUID in the 8-4-4-4-12 form.
func isGUID(s string) bool { return guidRE.MatchString(s) }

// checkIDs validates the tenant and object ids of a call before anything is sent.
func checkIDs(tenantID, objectID string) error {
	if !isGUID(tenantID) {
		return &ValidationError{Field: "tenant id", Value: shorten(tenantID), Reason: "is not a GUID"}
	}
	if !isGUID(objectID) {
		return &ValidationError{Field: "object id", Value: shorten(objectID), Reason: "is not a GUID"}
	}
	return nil
}

// shorten bounds a caller-supplied value quoted in an error.
func shorten(s string) string { return clean(s, 64) }
