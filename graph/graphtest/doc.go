// Package graphtest is an in-process Microsoft Graph emulator for tests and local runs: it
// serves, over real HTTP, exactly the endpoints the graph package calls (users by id or UPN,
// filtered and paged user listings, transitive group members, checkMemberGroups, deleted
// users and subscriptions), with Graph's $select, paging and error shapes, and with scripted
// faults (FailNext, a seeded fault rate, added latency) so the real client runs end to end.
//
// A Directory holds the emulated tenant. It is safe for concurrent use, so tests may mutate
// it (AddUser, DeleteUser, SetPlans, AddMember, ...) while a Server serves it. Its pure
// helpers (LookupUser, TransitiveGroupsOf, TransitiveUserMembers) answer membership questions
// without HTTP, for tests of packages that must not import msgraph-sdk-go.
//
// The package imports only the standard library.
package graphtest
