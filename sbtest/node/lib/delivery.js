'use strict';

// How a stored entry goes out on the wire, as Service Bus sends it: the header's
// delivery-count is the number of earlier failed deliveries, the message annotations carry
// the broker's system properties, and the delivery tag is the lock token in .NET GUID byte
// order (azservicebus swaps it back to RFC 4122 order).

const types = require('rhea').types;
const sections = require('./sections.js');

// encodeEntry returns the transfer payload for entry (lock optional).
function encodeEntry(entry) {
    const annotations = {
        'x-opt-sequence-number': types.wrap_long(entry.sequence),
        'x-opt-enqueued-time': types.wrap_timestamp(entry.enqueuedAt.getTime()),
    };
    if (entry.lock) {
        annotations['x-opt-locked-until'] = types.wrap_timestamp(entry.lock.until.getTime());
    }
    if (entry.scheduled) {
        annotations['x-opt-message-state'] = types.wrap_int(2); // scheduled (peek only)
    }
    return sections.encode(entry.message, entry.deliveryCount, annotations);
}

// uuidBytes turns "xxxxxxxx-xxxx-..." into its 16 RFC 4122 bytes.
function uuidBytes(s) {
    return Buffer.from(s.replace(/-/g, ''), 'hex');
}

// uuidString turns 16 RFC 4122 bytes into the canonical string.
function uuidString(b) {
    const h = Buffer.from(b).toString('hex');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// lockTag is the delivery tag for a lock token: the .NET GUID layout, whose first three
// fields are little-endian.
function lockTag(token) {
    const b = uuidBytes(token);
    return Buffer.from([b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], ...b.subarray(8)]);
}

module.exports = { encodeEntry, uuidBytes, uuidString, lockTag };
