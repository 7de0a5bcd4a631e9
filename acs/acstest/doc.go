// Package acstest is an in-process emulator of the ACS Teams Phone extensibility access
// assignments API over real HTTP, so the acs client — and everything above it, up to the
// worker and the binary — runs end to end in tests and local runs without Azure.
//
// The emulator checks what the service checks: the HMAC-SHA256 signature recomputed from the
// request as received (verb, path and query, x-ms-date, Host, and a x-ms-content-sha256
// that matches the body), or a configured bearer token; the api-version; GUIDs in the path;
// and the PUT body's principalType and clientIds. It stores assignments per tenant and
// object id and answers with the service's status codes, bodies and an ms-cv header on every
// response.
//
// # What backs each behaviour
//
// From Microsoft's Learn pages on Teams Phone extensibility (the access assignments
// quickstart and its REST API page) and the ACS HMAC authentication documentation:
//   - the routes GET, PUT and DELETE /access/teamsExtension/tenants/{tenantId}/assignments/{objectId},
//     PUT answering 201 Created with the assignment, DELETE 204, GET of a removed one 404;
//   - the assignment's shape (objectId, tenantId, principalType, clientIds), principalType
//     "user" with clientIds and "teamsResourceAccount" for a resource account's server consent;
//   - the 403 SubscriptionNotAllowed answer ("API is not allowed to be accessed with your
//     subscription.") and the error shape {"error":{"code","message"}};
//   - the HMAC scheme (SignedHeaders x-ms-date;host;x-ms-content-sha256) and the body hash;
//   - the published api-versions (DefaultAPIVersions; Options.APIVersions changes the list).
//
// Observed from the service, not documented: the 401 body's code "Denied" (the message after
// "Denied by the resource provider:" is the emulator's, naming what failed); the ms-cv header.
//
// The emulator's own choices, which no public source settles, each with its switch where
// the service may differ:
//   - which resource account spelling is accepted: the acs package's notes record
//     "resourceAccount" in the OpenAPI enum against Learn's "teamsResourceAccount"; by
//     default either is accepted, in any letter case, and stored as sent;
//     Options.AcceptResourceAccountAs accepts exactly one (and exactly "user"), and
//     Options.AnswerResourceAccountAs answers every principalType in one spelling;
//   - DELETE of a missing assignment is 404 NotFound (not 204);
//   - the x-ms-date window is ±15 minutes (Options.MaxSkew);
//   - clientIds are required, non-empty GUIDs for principalType user and refused for a
//     resource account;
//   - PATCH and other verbs are 405 MethodNotAllowed with Allow: GET, PUT, DELETE;
//   - PUT of an existing assignment answers 200 (replaced);
//   - the other error codes (InvalidArgument, NotFound, UnsupportedApiVersion, Forbidden,
//     TooManyRequests, ...) and their messages;
//   - Retry-After in whole seconds, plus retry-after-ms when the wait has a fraction.
//
// # Faults
//
// Faults are scripted (FailNext, ResetNext, StallNext: a FIFO queue served before
// authentication), per verb (FailOn("PUT", 403, 0): only PUTs fail, after authentication,
// until ClearFaults; a positive count fails that many), or random (SetFaultRate, seeded), and
// SetLatency slows every answer. ClearFaults ends the scripted ones. Requests, Counts and
// Assignments let a test see what the client did; GET /_emulator/assignments shows the store
// to a person, without auth.
//
// It imports only the standard library.
package acstest
