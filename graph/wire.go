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

// The reads on the hot paths (a user, checkMemberGroups, listing pages) are built and sent
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
// deletedDateTime for deleted items).
type wireUser struct {
	ID               string `json:"id"`
	UPN              string `json:"userPrincipalName"`
	AccountEnabled   *bool  `json:"accountEnabled"`
	UserType         string `json:"userType"`
	Department       string `json:"department"`
	AssignedLicenses []struct {
		SkuID string `json:"skuId"`
	} `json:"assignedLicenses"`
	AssignedPlans []struct {
		ServicePlanID    string `json:"servicePlanId"`
		CapabilityStatus string `json:"capabilityStatus"`
		Service          string `json:"service"`
	} `json:"assignedPlans"`
	DeletedDateTime *time.Time `json:"deletedDateTime"`
}

// user converts w into our struct; GUIDs are lower-cased.
func (w *wireUser) user() User {
	out := User{
		ID:         strings.ToLower(w.ID),
		UPN:        w.UPN,
		UserType:   w.UserType,
		Department: w.Department,
	}
	if w.AccountEnabled != nil {
		out.AccountEnabled = *w.AccountEnabled
	}
	for _, l := range w.AssignedLicenses {
		if l.SkuID != "" {
			out.SKUs = append(out.SKUs, strings.ToLower(l.SkuID))
		}
	}
	for _, p := range w.AssignedPlans {
		out.Plans = append(out.Plans, Plan{ServicePlanID: strings.ToLower(p.ServicePlanID),
			CapabilityStatus: p.CapabilityStatus, Service: p.Service})
	}
	if w.DeletedDateTime != nil {
		out.DeletedAt = w.DeletedDateTime.UTC()
	}
	return out
}

// wirePage is one page of a user listing.
type wirePage struct {
	Value    []wireUser `json:"value"`
	NextLink string     `json:"@odata.nextLink"`
}

// wireStrings is an answer whose value is a list of strings (checkMemberGroups).
type wireStrings struct {
	Value []string `json:"value"`
}
