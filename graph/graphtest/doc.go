// Package graphtest is an in-process Microsoft Graph emulator for tests and local runs: it
// serves, over real HTTP, exactly the endpoints the graph package calls (users by id or UPN,
// filtered and paged user listings, transitive group members, checkMemberGroups, a user's
// transitiveMemberOf, a group, deleted users, subscriptions, and JSON batches of these), with Graph's $select, paging and error shapes, and with
// scripted faults, so the real client runs end to end.
//
// A Directory holds the emulated tenant. It is safe for concurrent use, so tests may mutate
// it (AddUser, DeleteUser, SetPlans, AddMember, ...) while a Server serves it. Its pure
// helpers (LookupUser, TransitiveGroupsOf, TransitiveUserMembers) answer membership questions
// without HTTP, for tests of packages that must not import msgraph-sdk-go.
//
// # What Microsoft documents
//
// Each behaviour below follows the named page of the Graph documentation
// (microsoftgraph/microsoft-graph-docs-contrib):
//   - user-get, user resource: accountEnabled, assignedLicenses, assignedPlans, userType and
//     department are returned only when $select names them; a selected property is always
//     in the answer. A UPN that starts with $ must be addressed as /users('$x@y'): the form
//     /users/$x@y is 400, because OData keeps $-prefixed segments for system options.
//   - errors ("Microsoft Graph error responses"): {"error":{"code","message","innerError":
//     {"date","request-id","client-request-id"}}}, a request-id header; 404
//     Request_ResourceNotFound for a user that does not exist or is soft-deleted.
//   - throttling ("Microsoft Graph throttling guidance"): 429 TooManyRequests with
//     innerError code and status "429" and a Retry-After that may be fractional
//     ("Retry-After: 2.128" in the sample); the emulator sends one on 429, 503 and 504.
//   - paging ("Paging Microsoft Graph data in your app"): absolute @odata.nextLink URLs; $top
//     at most 999 for directory objects; without $top, 100 users a page.
//   - aad-advanced-queries ("Advanced query capabilities on directory objects"): an OData
//     cast on a transitive members list ("Use of OData cast with transitive members list")
//     needs ConsistencyLevel: eventual and $count; without the header ?$count=true is
//     silently ignored and the /$count segment is an error; the index behind these queries
//     is separate from the one direct reads use.
//   - user-checkmembergroups: at most 20 group ids per call.
//   - user-list-transitivememberof: the user's groups (direct and nested) as directoryObjects
//     with @odata.type; $select and $top (default 100, at most 999) in standard query mode;
//     $search, $filter, $orderby and the OData cast need ConsistencyLevel: eventual.
//   - json-batching: POST /v1.0/$batch with requests[{id, method, url, headers, body,
//     dependsOn}], at most 20, ids unique regardless of case, relative urls, Content-Type
//     with a body; responses[{id, status, headers, body}] in any order; a malformed batch is
//     400, a parseable one 200 whatever its requests answered; each request is throttled on
//     its own (an inner 429); a request depending on a failed one answers 424.
//   - subscription-post-subscriptions, "Duplicate subscription behavior": a second
//     subscription for the same resource and changeType, whatever its notificationUrl, is
//     409 "Subscription Id <id> already exists for the requested combination".
//   - subscription resource: at most 41,760 minutes ahead for users and groups; expired
//     subscriptions disappear. subscription-list: clientState is not returned in a listing
//     ("for security purposes"); subscription-get returns it.
//   - change-notifications-delivery-event-grid: the EventGrid:?azuresubscriptionid=…&
//     resourcegroup=…&partnertopic=…&location=… notification URL.
//
// # The emulator's own choices
//
// No public source settles these; each has a switch where the service may differ:
//   - The transitive members cast without the advanced query parameters is refused with 400
//     Request_UnsupportedQuery (strict, the default; the service has been seen to serve it):
//     Options.LenientAdvancedQueries serves it.
//   - How far advanced-query listings lag behind direct reads: none by default;
//     Options.AdvancedQueryLag serves them from a copy of the directory up to that old, and
//     Server.SnapshotListings takes the copy on demand. checkMemberGroups and user reads are
//     never lagged.
//   - Retry-After with up to three decimals when the wait has a fraction, and never 0 (a
//     zero wait is sent as 0.001): Options.RetryAfterWholeSeconds rounds up to whole seconds
//     (at least 1), as older samples show.
//   - $top above 999 is 400 Request_UnsupportedQuery "Invalid page size specified: 'N'. Must
//     be between 1 and 999 inclusive." (observed, as quoted by public clients);
//     Options.MaxPageSize serves smaller pages than asked, as Graph may.
//   - The 409 on a duplicate subscription has code ObjectIdentifierInUse (observed in public
//     clients' notes); the resource is compared without letter case and changeType as a set.
//   - The subscription quota is Options.MaxSubscriptions (100 by default).
//   - The 400 for a $-prefixed key segment says "Resource not found for the segment ...".
//   - client-request-id is echoed; without one the answer carries the request-id in it.
//   - $filter on assignedPlans is refused without the advanced query parameters (the user
//     resource says only that it supports $filter eq; the graph package sends them).
//   - $filter understands only the any() lambdas on assignedPlans/servicePlanId and
//     assignedLicenses/skuId the graph package sends; any other filter is 400
//     Request_UnsupportedQuery (deletedItems and transitiveMembers take none).
//   - GET /groups/{id} returns only id and displayName.
//   - $batch: the codes of the whole-batch 400s; a body without Content-Type fails the whole
//     batch; a nested batch is refused; requests run one after another (without a second
//     Latency); the envelope meets FailNext, FailOn(OpBatch) and the fault rate like any
//     request; responses are shuffled by the seeded generator.
//   - transitiveMemberOf: items ordered by id; @odata.type sent with $select=id too; $filter,
//     $search, $orderby and $count are refused (not implemented); the emulator holds no
//     directory roles or administrative units.
//
// # Scripted faults
//
// Faults model answers the client must survive; none of them is Graph's normal behaviour.
// Whole-server: FailNext(status, retryAfter) fails the next requests whatever their route;
// Options.FaultRate fails a seeded share with 429, 500 or 503; Options.Latency slows every
// answer. Per operation, named by the Op constants (OpGetUser, OpListUsers,
// OpCheckMemberGroups, OpTransitiveMembers, OpTransitiveMemberOf, OpDeletedItems,
// OpGetGroup, OpSubscriptions, OpBatch for a batch's envelope; a batch's requests meet the
// faults of their own operations):
//
//	srv.FailOn(graphtest.OpCheckMemberGroups, 403, 0) // 403 on checkMemberGroups only, until cleared
//	srv.FailOn(graphtest.OpGetUser, 503, 2)           // the next two user reads
//	srv.StripProperty("accountEnabled")               // user reads and listings lack it
//	srv.EmptyListing(graphtest.OpTransitiveMembers)   // a valid, empty page
//	srv.ClearFaults()                                 // all of the above, and FailNext, end
//
// FailOn, StripProperty and EmptyListing panic on a name they do not know.
//
// The package imports only the standard library.
package graphtest
