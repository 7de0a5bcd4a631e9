// Package acstest is an in-process emulator of the ACS Teams Phone extensibility access
// assignments API over real HTTP, so the acs client — and everything above it, up to the
// worker and the binary — runs end to end in tests and local runs without Azure.
//
// The emulator checks what the service checks: the HMAC-SHA256 signature recomputed from the
// request as received (verb, path and query, x-ms-date within 15 minutes, Host, and a
// x-ms-content-sha256 that matches the body), or a configured bearer token; the api-version;
// GUIDs in the path; and the PUT body's principalType and clientIds. It stores assignments
// per tenant and object id and answers with the service's status codes, bodies and an ms-cv
// header on every response.
//
// Faults are scripted (FailNext, ResetNext, StallNext: a FIFO queue served before
// authentication), per verb (FailOn("PUT", 403, 0): only PUTs fail, after authentication,
// until ClearFaults; a positive count fails that many), or random (SetFaultRate, seeded), and
// SetLatency slows every answer. ClearFaults ends the scripted ones. Requests, Counts and Assignments let a test see
// what the client did; GET /_emulator/assignments shows the store to a person, without auth.
//
// It imports only the standard library.
package acstest
