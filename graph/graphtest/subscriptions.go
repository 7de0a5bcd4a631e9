package graphtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// MaxSubscriptionLifetime is Graph's longest expiration for user and group subscriptions.
const MaxSubscriptionLifetime = 41760 * time.Minute

// SubscriptionRecord is one subscription the emulator holds.
type SubscriptionRecord struct {
	ID                       string
	Resource                 string
	ChangeType               string
	NotificationURL          string
	LifecycleNotificationURL string
	ClientState              string
	ExpirationDateTime       time.Time
	// Reauthorized counts POST /subscriptions/{id}/reauthorize calls.
	Reauthorized int
}

type subscriptions struct {
	byID  map[string]*SubscriptionRecord
	order []string
	seq   int
}

func newSubscriptions() *subscriptions {
	return &subscriptions{byID: map[string]*SubscriptionRecord{}}
}

// expire drops subscriptions past their expiration, as Graph does.
func (ss *subscriptions) expire(now time.Time) {
	ss.order = slices.DeleteFunc(ss.order, func(id string) bool {
		if ss.byID[id].ExpirationDateTime.Before(now) {
			delete(ss.byID, id)
			return true
		}
		return false
	})
}

// Subscriptions returns snapshots of the live subscriptions in creation order.
func (s *Server) Subscriptions() []SubscriptionRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subs.expire(s.now())
	out := make([]SubscriptionRecord, 0, len(s.subs.order))
	for _, id := range s.subs.order {
		out = append(out, *s.subs.byID[id])
	}
	return out
}

type subscriptionBody struct {
	Resource                 string     `json:"resource"`
	ChangeType               string     `json:"changeType"`
	NotificationURL          string     `json:"notificationUrl"`
	LifecycleNotificationURL string     `json:"lifecycleNotificationUrl"`
	ClientState              string     `json:"clientState"`
	ExpirationDateTime       *time.Time `json:"expirationDateTime"`
}

func renderSubscription(r *SubscriptionRecord) map[string]any {
	return map[string]any{
		"id":                        r.ID,
		"resource":                  r.Resource,
		"changeType":                r.ChangeType,
		"notificationUrl":           r.NotificationURL,
		"lifecycleNotificationUrl":  nullable(r.LifecycleNotificationURL),
		"clientState":               nullable(r.ClientState),
		"expirationDateTime":        r.ExpirationDateTime.UTC().Format("2006-01-02T15:04:05.0000000Z"),
		"applicationId":             "3f1a9d2c-7b4e-4c55-9a61-0d2e8b7c4f10",
		"latestSupportedTlsVersion": "v1_2",
	}
}

func (s *Server) createSubscription(w http.ResponseWriter, r *http.Request) {
	var b subscriptionBody
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&b); err != nil {
		s.writeError(w, r, badRequest("InvalidRequest", "Invalid request body: "+err.Error()))
		return
	}
	if e := s.validateSubscription(b); e != nil {
		s.writeError(w, r, e)
		return
	}
	s.mu.Lock()
	s.subs.expire(s.now())
	var e *apiError
	for _, id := range s.subs.order {
		if o := s.subs.byID[id]; sameCombination(o, b) {
			e = &apiError{status: http.StatusConflict, code: "ObjectIdentifierInUse",
				msg: "Subscription Id " + o.ID + " already exists for the requested combination"}
			break
		}
	}
	if e == nil && len(s.subs.order) >= s.opts.MaxSubscriptions {
		e = &apiError{status: http.StatusForbidden, code: "ExtensionError",
			msg: fmt.Sprintf("Operation: Create; Exception: [Status Code: Forbidden; Reason: Subscription limit of %d for this application has been reached]", s.opts.MaxSubscriptions)}
	}
	var rec SubscriptionRecord
	if e == nil {
		s.subs.seq++
		rec = SubscriptionRecord{
			ID:       fmt.Sprintf("7f105c7d-2dc5-4530-97cd-%012x", s.subs.seq),
			Resource: b.Resource, ChangeType: b.ChangeType, NotificationURL: b.NotificationURL,
			LifecycleNotificationURL: b.LifecycleNotificationURL, ClientState: b.ClientState,
			ExpirationDateTime: b.ExpirationDateTime.UTC(),
		}
		s.subs.byID[rec.ID] = &rec
		s.subs.order = append(s.subs.order, rec.ID)
	}
	s.mu.Unlock()
	if e != nil {
		s.writeError(w, r, e)
		return
	}
	body := renderSubscription(&rec)
	body["@odata.context"] = "https://graph.microsoft.com/v1.0/$metadata#subscriptions/$entity"
	writeJSON(w, http.StatusCreated, body)
}

// sameCombination reports whether a new subscription duplicates o: Graph keys duplicates by
// resource and changeType, whatever the notification URL (subscription-post-subscriptions,
// "Duplicate subscription behavior"). The resource is compared without letter case or
// surrounding slashes and changeType as a set: the emulator's reading, not documented.
func sameCombination(o *SubscriptionRecord, b subscriptionBody) bool {
	norm := func(r string) string { return strings.ToLower(strings.Trim(r, "/")) }
	return norm(o.Resource) == norm(b.Resource) && changeTypeSet(o.ChangeType) == changeTypeSet(b.ChangeType)
}

// changeTypeSet returns the change types sorted and comma-joined.
func changeTypeSet(ct string) string {
	parts := strings.Split(ct, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

func (s *Server) validateSubscription(b subscriptionBody) *apiError {
	res := strings.ToLower(strings.TrimPrefix(b.Resource, "/"))
	if !strings.HasPrefix(res, "users") && !strings.HasPrefix(res, "groups") {
		return badRequest("InvalidRequest", "Resource '"+b.Resource+"' is not supported.")
	}
	if !validChangeType(b.ChangeType) {
		return badRequest("InvalidRequest", "changeType must be a comma-separated subset of created, updated, deleted.")
	}
	if !validNotificationURL(b.NotificationURL) {
		return badRequest("InvalidRequest", "notificationUrl must be an https URL or an EventGrid: URL with azuresubscriptionid, resourcegroup, partnertopic and location.")
	}
	if b.LifecycleNotificationURL != "" && !validNotificationURL(b.LifecycleNotificationURL) {
		return badRequest("InvalidRequest", "lifecycleNotificationUrl must be an https URL or an EventGrid: URL.")
	}
	if len(b.ClientState) > 128 {
		return badRequest("InvalidRequest", "clientState must be at most 128 characters.")
	}
	return s.validateExpiration(b.ExpirationDateTime)
}

func (s *Server) validateExpiration(exp *time.Time) *apiError {
	now := s.now()
	switch {
	case exp == nil:
		return badRequest("InvalidRequest", "expirationDateTime is required.")
	case !exp.After(now):
		return badRequest("InvalidRequest", "Subscription expiration can only be in the future.")
	case exp.Sub(now) > MaxSubscriptionLifetime:
		return badRequest("InvalidRequest", "Subscription expiration can only be 41760 minutes in the future.")
	}
	return nil
}

func validChangeType(ct string) bool {
	if ct == "" {
		return false
	}
	seen := map[string]bool{}
	for c := range strings.SplitSeq(ct, ",") {
		c = strings.TrimSpace(c)
		if (c != "created" && c != "updated" && c != "deleted") || seen[c] {
			return false
		}
		seen[c] = true
	}
	return true
}

// validNotificationURL accepts an https URL with a host, or
// "EventGrid:?azuresubscriptionid=…&resourcegroup=…&partnertopic=…&location=…".
func validNotificationURL(raw string) bool {
	if q, ok := strings.CutPrefix(raw, "EventGrid:?"); ok {
		v, err := url.ParseQuery(q)
		if err != nil {
			return false
		}
		for _, k := range []string{"azuresubscriptionid", "resourcegroup", "partnertopic", "location"} {
			if v.Get(k) == "" {
				return false
			}
		}
		return true
	}
	u, err := url.Parse(raw)
	return err == nil && u.Scheme == "https" && u.Host != ""
}

func subscriptionNotFound() *apiError {
	return &apiError{status: http.StatusNotFound, code: "ResourceNotFound", msg: "The object was not found."}
}

// listSubscriptions answers with clientState null: subscription-list says the property
// "is not returned for security purposes".
func (s *Server) listSubscriptions(w http.ResponseWriter, r *http.Request) {
	value := []map[string]any{}
	for _, rec := range s.Subscriptions() {
		m := renderSubscription(&rec)
		m["clientState"] = nil
		value = append(value, m)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#subscriptions",
		"value":          value,
	})
}

// withSubscription runs f on the live subscription named in the path, under the server's
// lock, or answers 404 ResourceNotFound.
func (s *Server) withSubscription(w http.ResponseWriter, r *http.Request, f func(*SubscriptionRecord)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subs.expire(s.now())
	rec := s.subs.byID[r.PathValue("id")]
	if rec == nil {
		return false
	}
	f(rec)
	return true
}

func (s *Server) getSubscription(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	if !s.withSubscription(w, r, func(rec *SubscriptionRecord) { body = renderSubscription(rec) }) {
		s.writeError(w, r, subscriptionNotFound())
		return
	}
	writeJSON(w, http.StatusOK, body)
}

// patchSubscription renews: only expirationDateTime may change.
func (s *Server) patchSubscription(w http.ResponseWriter, r *http.Request) {
	var b subscriptionBody
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&b); err != nil {
		s.writeError(w, r, badRequest("InvalidRequest", "Invalid request body: "+err.Error()))
		return
	}
	if e := s.validateExpiration(b.ExpirationDateTime); e != nil {
		s.writeError(w, r, e)
		return
	}
	var body map[string]any
	if !s.withSubscription(w, r, func(rec *SubscriptionRecord) {
		rec.ExpirationDateTime = b.ExpirationDateTime.UTC()
		body = renderSubscription(rec)
	}) {
		s.writeError(w, r, subscriptionNotFound())
		return
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) reauthorizeSubscription(w http.ResponseWriter, r *http.Request) {
	if !s.withSubscription(w, r, func(rec *SubscriptionRecord) { rec.Reauthorized++ }) {
		s.writeError(w, r, subscriptionNotFound())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) deleteSubscription(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !s.withSubscription(w, r, func(*SubscriptionRecord) {
		delete(s.subs.byID, id)
		s.subs.order = slices.DeleteFunc(s.subs.order, func(o string) bool { return o == id })
	}) {
		s.writeError(w, r, subscriptionNotFound())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
