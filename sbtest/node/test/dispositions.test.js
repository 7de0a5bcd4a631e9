'use strict';

// Two deliveries settled with different outcomes in one write are each answered with their
// own outcome.

const test = require('node:test');
const assert = require('node:assert');
// The client side needs a correct disposition writer too, or rhea would fold the two
// outcomes into one frame before they ever reach the endpoint.
require('../lib/dispositions.js').install();
const { connect, once } = require('./rawclient.js');

const queue = process.env.SBTEST_QUEUE;

test('abandon and complete in one write are answered per delivery', async () => {
    const conn = await connect(queue);
    try {
        const sender = conn.open_sender({ target: { address: queue } });
        await once(sender, 'sendable');
        for (const id of ['d1', 'd2', 'd3']) {
            const d = sender.send({ message_id: id, body: 'x' });
            await new Promise((resolve, reject) => {
                sender.on('accepted', (ctx) => { if (ctx.delivery === d) resolve(); });
                sender.on('rejected', (ctx) => { if (ctx.delivery === d) reject(new Error('send rejected')); });
            });
        }

        // rcv-settle-mode second: the endpoint answers each disposition with a settled one.
        const receiver = conn.open_receiver({ source: { address: queue }, credit_window: 0, autoaccept: false, rcv_settle_mode: 1 });
        await once(receiver, 'receiver_open');
        const got = [];
        const all = new Promise((resolve) => {
            receiver.on('message', (ctx) => {
                got.push(ctx.delivery);
                if (got.length === 3) resolve();
            });
        });
        receiver.add_credit(3);
        await all;

        const settled = new Set();
        const done = new Promise((resolve) => {
            receiver.on('settled', (ctx) => {
                settled.add(ctx.delivery);
                if (settled.size === 3) resolve();
            });
        });
        // rhea writes each frame with its own socket write; corked, the three dispositions
        // leave in one write and reach the endpoint in one read.
        conn.socket.cork();
        got[0].update(false, require('rhea').message.modified({ delivery_failed: true }).described());
        got[1].update(false, require('rhea').message.accepted().described());
        got[2].update(false, require('rhea').message.accepted().described());
        setImmediate(() => conn.socket.uncork());
        await done;

        const outcome = (d) => d.remote_state && d.remote_state.constructor.composite_type;
        assert.deepStrictEqual(got.map(outcome), ['modified', 'accepted', 'accepted'],
            'each delivery is answered with the outcome it was settled with');
    } finally {
        conn.close();
        await once(conn, 'connection_close').catch(() => {});
    }
});

test('a refused send and an accepted one in one write are answered per delivery', async () => {
    const conn = await connect(queue);
    try {
        const sender = conn.open_sender({ target: { address: queue }, autosettle: false });
        await once(sender, 'sendable');
        const outcomes = new Map();
        const done = new Promise((resolve) => {
            const record = (name) => (ctx) => {
                outcomes.set(ctx.delivery, name);
                if (outcomes.size === 2) resolve();
            };
            sender.on('accepted', record('accepted'));
            sender.on('rejected', record('rejected'));
        });
        // Both transfers reach the endpoint in one read, so its answers leave in one write.
        conn.socket.cork();
        const rhea = require('rhea');
        const refused = sender.send(rhea.message.encode({ message_id: 'f1', body: 'x' }), undefined, 1); // message format 1
        const fine = sender.send({ message_id: 'ok', body: 'y' });
        setImmediate(() => conn.socket.uncork());
        await done;
        assert.deepStrictEqual([outcomes.get(refused), outcomes.get(fine)], ['rejected', 'accepted']);
    } finally {
        conn.close();
        await once(conn, 'connection_close').catch(() => {});
    }
});
