// Package acs is the worker's way into Azure Communication Services: a client for the Teams
// Phone extensibility access assignments API (GET, PUT and DELETE of
// /access/teamsExtension/tenants/{tenantId}/assignments/{objectId}).
//
// In the flow receive → decode → reconcile → settle, the acs client is the "read ACS" and
// "apply" half of reconcile. It is built on the azcore pipeline and authenticates either with
// the resource's access key (HMAC-SHA256, [NewClientFromConnectionString]) or with a
// Microsoft Entra ID token ([NewClient]). Every try of a request is signed afresh.
//
// Retries are the pipeline's: 408, 429, 500, 502, 503, 504 and transport errors, honouring
// Retry-After up to [Options].MaxThrottleWait. A service that asks for a longer wait gets a
// [*ThrottledError] carrying that wait instead of a long sleep.
//
// Errors classify themselves through the methods the worker looks for (NotFound, Systemic,
// Temporary, RetryAfter) so callers never compare strings: see [ResponseError],
// [ThrottledError], [TransportError] and the helpers [IsNotFound], [IsThrottled],
// [IsSystemic], [IsTemporary]. Each carries the service's ms-cv correlation id when there was
// a response; the caller logs it. No error, log line or field ever holds the access key, a
// signature or a token.
//
// The package acstest holds an emulator of the API over real HTTP for tests and local runs.
package acs
