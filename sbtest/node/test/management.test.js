'use strict';

// Reply links routed by name, and the $management answer's shape.

const test = require('node:test');
const assert = require('node:assert');
const { connect, request, once } = require('./rawclient.js');

const queue = process.env.SBTEST_QUEUE;

test('put-token is answered on a reply link that has only a name', async () => {
    const conn = await connect(queue, { replyByName: true });
    conn.close();
    await once(conn, 'connection_close').catch(() => {});
});

test('peek past the end answers 204 with statusCode and no messages', async () => {
    const conn = await connect(queue, { replyByName: true });
    try {
        const resp = await request(conn, queue + '/$management',
            { operation: 'com.microsoft:peek-message' },
            { 'from-sequence-number': require('rhea').types.wrap_long(1), 'message-count': require('rhea').types.wrap_int(10) });
        const ap = resp.application_properties;
        assert.strictEqual(ap.statusCode, 204, 'statusCode, as the request/response operations document it');
        assert.strictEqual(typeof ap.statusDescription, 'string');
        // 204 No Content: no messages (an absent body or an empty list).
        const messages = resp.body ? resp.body.messages : undefined;
        assert.ok(messages === undefined || (Array.isArray(messages) && messages.length === 0), `body ${JSON.stringify(resp.body)}`);
    } finally {
        conn.close();
        await once(conn, 'connection_close').catch(() => {});
    }
});
