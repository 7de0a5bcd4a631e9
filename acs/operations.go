package acs

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
)

// assignmentPath is the resource path of one assignment; both ids are validated GUIDs.
func assignmentPath(tenantID, objectID string) string {
	return "/access/teamsExtension/tenants/" + tenantID + "/assignments/" + objectID
}

// Get reads the assignment of objectID in tenantID. An absent assignment is a
// *ResponseError whose NotFound is true.
func (c *Client) Get(ctx context.Context, tenantID, objectID string) (Assignment, error) {
	op := "GET assignment " + objectID
	if err := checkIDs(tenantID, objectID); err != nil {
		return Assignment{}, err
	}
	resp, err := c.do(ctx, op, http.MethodGet, assignmentPath(tenantID, objectID), nil, http.StatusOK)
	if err != nil {
		return Assignment{}, err
	}
	return decodeAssignment(op, resp, Assignment{TenantID: tenantID, ObjectID: objectID})
}

// Put creates or replaces (last writer wins) the assignment a.ObjectID in tenantID and
// returns what the service stored; created is true when it did not exist before (201).
// a.TenantID and a.CorrelationID are not sent. A user assignment needs client ids, a
// resource-account assignment must have none; either mistake fails before anything is sent.
func (c *Client) Put(ctx context.Context, tenantID string, a Assignment) (_ Assignment, created bool, _ error) {
	op := "PUT assignment " + a.ObjectID
	if err := checkIDs(tenantID, a.ObjectID); err != nil {
		return Assignment{}, false, err
	}
	body, err := putBodyFor(a, c.raName)
	if err != nil {
		return Assignment{}, false, err
	}
	if a.PrincipalType == PrincipalResourceAccount {
		// Which spelling the service takes is unconfirmed; an error names the one sent, in
		// our words, whatever the service's message says.
		op += " as principalType " + body.PrincipalType
	}
	resp, err := c.do(ctx, op, http.MethodPut, assignmentPath(tenantID, a.ObjectID), body, http.StatusOK, http.StatusCreated)
	if err != nil {
		return Assignment{}, false, err
	}
	sent := Assignment{ObjectID: a.ObjectID, TenantID: tenantID, PrincipalType: normalisePrincipalType(body.PrincipalType), ClientIDs: body.ClientIDs}
	got, err := decodeAssignment(op, resp, sent)
	if err != nil {
		return Assignment{}, false, err
	}
	return got, resp.StatusCode == http.StatusCreated, nil
}

// Delete removes the assignment of objectID in tenantID and returns the response's ms-cv.
// Deleting an absent assignment is a *ResponseError whose NotFound is true.
func (c *Client) Delete(ctx context.Context, tenantID, objectID string) (correlationID string, err error) {
	op := "DELETE assignment " + objectID
	if err := checkIDs(tenantID, objectID); err != nil {
		return "", err
	}
	resp, err := c.do(ctx, op, http.MethodDelete, assignmentPath(tenantID, objectID), nil, http.StatusNoContent, http.StatusOK)
	if err != nil {
		return "", err
	}
	return resp.Header.Get(headerCorrelation), nil
}

// decodeAssignment reads a success body. Ids the body leaves out are those of the request;
// an empty body stands for req itself when req is a complete assignment (a PUT's).
func decodeAssignment(op string, resp *http.Response, req Assignment) (Assignment, error) {
	cv := resp.Header.Get(headerCorrelation)
	body, err := runtime.Payload(resp)
	if err != nil {
		return Assignment{}, &TransportError{Op: op, Err: err}
	}
	if len(body) == 0 && req.PrincipalType != "" {
		req.CorrelationID = cv
		return req, nil
	}
	var w wireAssignment
	if err := json.Unmarshal(body, &w); err != nil {
		return Assignment{}, fmt.Errorf("acs: %s: %d answer is not an assignment (ms-cv=%s): %s",
			op, resp.StatusCode, orDash(cv), clean(string(body), 128))
	}
	if w.ObjectID == "" {
		w.ObjectID = req.ObjectID
	}
	if w.TenantID == "" {
		w.TenantID = req.TenantID
	}
	return w.assignment(cv), nil
}
