'use strict';

// The request/response operations on "<entity>/$management" that azservicebus v1.11 uses
// for a queue receiver. Anything else is answered 501 with a description that says so.

const types = require('rhea').types;
const delivery = require('./delivery.js');
const sections = require('./sections.js');

const LOCK_LOST = 410;

// handle runs one request against queue and returns {status, description, body?}.
// operation is the request's "operation" application property, body its decoded value.
function handle(queue, operation, body) {
    switch (operation) {
    case 'com.microsoft:renew-lock':
        return renewLock(queue, body);
    case 'com.microsoft:update-disposition':
        return updateDisposition(queue, body);
    case 'com.microsoft:peek-message':
        return peek(queue, body);
    case 'com.microsoft:schedule-message':
        return scheduleMessages(queue, body);
    case 'com.microsoft:cancel-scheduled-message':
        return cancelScheduled(queue, body);
    default:
        return { status: 501, description: `sbtest does not implement the management operation ${operation}` };
    }
}

function lockTokens(body) {
    const raw = body && body['lock-tokens'];
    if (!Array.isArray(raw) || raw.length === 0) return null;
    return raw.map((b) => delivery.uuidString(b));
}

function renewLock(queue, body) {
    const tokens = lockTokens(body);
    if (!tokens) return { status: 400, description: 'lock-tokens is required' };
    const until = queue.renew(tokens);
    if (!until) return lockLost();
    const expirations = types.wrap_array(until.map((d) => d.getTime()), 0x83);
    return { status: 200, description: 'OK', body: types.wrap_map({ expirations }) };
}

const DISPOSITIONS = {
    completed: 'complete',
    abandoned: 'abandon',
    suspended: 'deadLetter',
};

function updateDisposition(queue, body) {
    const tokens = lockTokens(body);
    if (!tokens) return { status: 400, description: 'lock-tokens is required' };
    const status = body['disposition-status'];
    const type = DISPOSITIONS[status];
    if (!type) {
        return { status: 501, description: `sbtest does not implement disposition-status ${status} (deferral is not supported)` };
    }
    const outcome = {
        type,
        reason: stringOr(body['deadletter-reason'], ''),
        description: stringOr(body['deadletter-description'], ''),
        properties: body['properties-to-modify'] || {},
    };
    let lost = false;
    for (const t of tokens) {
        if (!queue.settle(t, outcome)) lost = true;
    }
    return lost ? lockLost() : { status: 200, description: 'OK' };
}

function peek(queue, body) {
    const from = Number(body && body['from-sequence-number']) || 0;
    const count = Number(body && body['message-count']) || 1;
    const entries = queue.peek(from, count);
    if (entries.length === 0) return { status: 204, description: 'No Content' };
    const messages = entries.map((e) => types.wrap_map({ message: types.wrap_binary(delivery.encodeEntry(Object.assign({}, e, { lock: null }))) }));
    return { status: 200, description: 'OK', body: types.wrap_map({ messages: types.List32(messages) }) };
}

// scheduleMessages takes {messages: [{message-id, message: <encoded AMQP message>, ...}]}
// (message-id and message are required, as the request/response operations list them);
// each encoded message carries its x-opt-scheduled-enqueue-time. It answers
// {sequence-numbers: long[]} in request order.
function scheduleMessages(queue, body) {
    const list = body && body.messages;
    if (!Array.isArray(list) || list.length === 0) return { status: 400, description: 'messages is required' };
    const parsed = [];
    for (const item of list) {
        if (!item || typeof item['message-id'] !== 'string') {
            return { status: 400, description: 'each entry of messages needs its message-id as a string' };
        }
        const raw = item.message;
        if (!Buffer.isBuffer(raw)) return { status: 400, description: 'each entry of messages needs a binary message' };
        let m;
        try {
            m = sections.parse(raw);
        } catch (e) {
            return { status: 400, description: `message does not decode: ${e.message}` };
        }
        if (sections.annotation(m, 'x-opt-scheduled-enqueue-time') === undefined) {
            return { status: 400, description: 'message lacks x-opt-scheduled-enqueue-time' };
        }
        parsed.push(m);
    }
    const seqs = parsed.map((m) => queue.accept(m).sequence);
    return { status: 200, description: 'OK', body: types.wrap_map({ 'sequence-numbers': types.wrap_array(seqs, 0x81) }) };
}

// cancelScheduled takes {sequence-numbers: long[]}.
function cancelScheduled(queue, body) {
    const raw = body && body['sequence-numbers'];
    if (!Array.isArray(raw) || raw.length === 0) return { status: 400, description: 'sequence-numbers is required' };
    queue.cancelScheduled(raw.map(Number));
    return { status: 200, description: 'OK' };
}

function lockLost() {
    return {
        status: LOCK_LOST,
        description: 'The lock supplied is invalid. Either the lock expired, or the message has already been removed from the queue.',
        condition: 'com.microsoft:message-lock-lost',
    };
}

function stringOr(v, d) {
    return typeof v === 'string' ? v : d;
}

module.exports = { handle };
