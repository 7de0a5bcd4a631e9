// Package graphtest is an in-process Microsoft Graph emulator for tests and local runs: it
// serves, over real HTTP, exactly the endpoints the graph package calls (users by id or UPN,
// filtered and paged user listings, transitive group members, checkMemberGroups, deleted
// users and subscriptions), with Graph's $select, paging and error shapes, and with scripted
// faults (FailNext, a seeded fault rate, added latency) so the real client runs end to end.
//
// # Scripted faults
//
// Whole-server faults: FailNext(status, retryAfter) fails the next requests whatever their
// route; Options.FaultRate fails a seeded share with 429, 500 or 503; Options.Latency slows
// every answer. Per-operation faults, named by the Op constants (OpGetUser, OpListUsers,
// OpCheckMemberGroups, OpTransitiveMembers, OpDeletedItems, OpGetGroup, OpSubscriptions):
//
//	srv.FailOn(graphtest.OpCheckMemberGroups, 403, 0) // 403 on checkMemberGroups only, until cleared
//	srv.FailOn(graphtest.OpGetUser, 503, 2)           // the next two user reads
//	srv.StripProperty("accountEnabled")               // user reads and listings lack it
//	srv.EmptyListing(graphtest.OpTransitiveMembers)   // a valid, empty page
//	srv.ClearFaults()                                 // all of the above, and FailNext, end
//
// FailOn, StripProperty and EmptyListing panic on a name they do not know.
//
// A Directory holds the emulated tenant. It is safe for concurrent use, so tests may mutate
// it (AddUser, DeleteUser, SetPlans, AddMember, ...) while a Server serves it. Its pure
// helpers (LookupUser, TransitiveGroupsOf, TransitiveUserMembers) answer membership questions
// without HTTP, for tests of packages that must not import msgraph-sdk-go.
//
// The package imports only the standard library.
package graphtest
