package graph

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	abs "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"
)

// The single reads (a user, checkMemberGroups, listing pages) are built and sent
// by the SDK — its request builders, token, retry and redirect middleware, and its mapping
// of Graph's error body into odataerrors.ODataError, which classify reads — but a
// successful answer is decoded with encoding/json into the small structs below instead of
// kiota's parse nodes and models. For the worker, kiota's decoding was about a fifth of the
// CPU spent per notification; these structs hold exactly what the policy reads.

// odataErrors maps every error status to Graph's error body, as the SDK's own calls do.
var odataErrors = abs.ErrorMappings{"XXX": odataerrors.CreateODataErrorFromDiscriminatorValue}

// getJSON sends info through the SDK's adapter and decodes a successful JSON answer into v.
// A 2xx answer that is empty or not the JSON expected is an error (temporary to classify:
// nothing says the principal is absent).
func (c *Client) getJSON(ctx context.Context, info *abs.RequestInformation, v any) error {
	raw, err := c.adapter.SendPrimitive(ctx, info, "[]byte", odataErrors)
	if err != nil {
		return err
	}
	body, _ := raw.([]byte)
	if len(body) == 0 {
		return fmt.Errorf("empty answer")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	return nil
}

// wireUser is a user as Graph sends it, with the properties userSelect asks for (and
// deletedDateTime for deleted items). Pointers are nil when the property is absent or
// null; the nullable strings record whether the property was present at all.
type wireUser struct {
	ID               *string      `json:"id"`
	UPN              *string      `json:"userPrincipalName"`
	AccountEnabled   *bool        `json:"accountEnabled"`
	UserType         wireNullable `json:"userType"`
	Department       wireNullable `json:"department"`
	AssignedLicenses *[]struct {
		SkuID string `json:"skuId"`
	} `json:"assignedLicenses"`
	AssignedPlans *[]struct {
		ServicePlanID    string `json:"servicePlanId"`
		CapabilityStatus string `json:"capabilityStatus"`
		Service          string `json:"service"`
	} `json:"assignedPlans"`
	DeletedDateTime *time.Time `json:"deletedDateTime"`
}

// wireNullable is a string property whose null is a real answer (Graph sends null for an
// unset department or userType), told apart from a property the answer lacks.
type wireNullable struct {
	present bool
	value   string
}

func (n *wireNullable) UnmarshalJSON(b []byte) error {
	n.present = true
	if string(b) == "null" {
		return nil
	}
	return json.Unmarshal(b, &n.value)
}

// errIncomplete is an answer that lacks what the request selected: Graph always returns a
// selected property, so its absence means the answer cannot be trusted (a proxy, a
// truncated or rewritten body), never that the value is false or empty.
type errIncomplete struct{ what string }

func (e *errIncomplete) Error() string { return "answer lacks " + e.what }

// missing returns the first selected property w lacks (or holds null where the policy needs
// a value), or "".
func (w *wireUser) missing(sel []string) string {
	for _, p := range sel {
		var ok bool
		switch p {
		case "id":
			ok = w.ID != nil && *w.ID != ""
		case "userPrincipalName":
			ok = w.UPN != nil && *w.UPN != ""
		case "accountEnabled":
			ok = w.AccountEnabled != nil
		case "userType":
			ok = w.UserType.present
		case "department":
			ok = w.Department.present
		case "assignedLicenses":
			ok = w.AssignedLicenses != nil
		case "assignedPlans":
			ok = w.AssignedPlans != nil
		case "deletedDateTime":
			ok = w.DeletedDateTime != nil
		default:
			ok = true
		}
		if !ok {
			return p
		}
	}
	return ""
}

// user converts w into our struct after checking that every property of sel (the $select
// sent) is there; GUIDs are lower-cased.
func (w *wireUser) user(sel []string) (User, error) {
	if p := w.missing(sel); p != "" {
		return User{}, &errIncomplete{what: "selected property " + p}
	}
	out := User{
		UserType:   w.UserType.value,
		Department: w.Department.value,
	}
	if w.ID != nil {
		out.ID = strings.ToLower(*w.ID)
	}
	if w.UPN != nil {
		out.UPN = *w.UPN
	}
	if w.AccountEnabled != nil {
		out.AccountEnabled = *w.AccountEnabled
	}
	if w.AssignedLicenses != nil {
		for _, l := range *w.AssignedLicenses {
			if l.SkuID != "" {
				out.SKUs = append(out.SKUs, strings.ToLower(l.SkuID))
			}
		}
	}
	if w.AssignedPlans != nil {
		for _, p := range *w.AssignedPlans {
			out.Plans = append(out.Plans, Plan{ServicePlanID: strings.ToLower(p.ServicePlanID),
				CapabilityStatus: p.CapabilityStatus, Service: p.Service})
		}
	}
	if w.DeletedDateTime != nil {
		out.DeletedAt = w.DeletedDateTime.UTC()
	}
	return out, nil
}

// wirePage is one page of a user listing. Value is nil when the answer has no value array
// (an empty page has an empty one).
type wirePage struct {
	Value    []wireUser `json:"value"`
	NextLink string     `json:"@odata.nextLink"`
}

// wireStrings is an answer whose value is a list of strings (checkMemberGroups); Value is
// nil when the answer has none.
type wireStrings struct {
	Value []string `json:"value"`
}

// wireObjects is a page of a directoryObject collection with ids selected
// (transitiveMemberOf). Value is nil when the answer has no value array.
type wireObjects struct {
	Value *[]struct {
		ID   string `json:"id"`
		Type string `json:"@odata.type"`
	} `json:"value"`
	NextLink string `json:"@odata.nextLink"`
}
