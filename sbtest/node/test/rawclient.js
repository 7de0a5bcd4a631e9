'use strict';

// A bare rhea client for tests that need control over individual AMQP frames: it logs in
// through $cbs with a Shared Access Signature and leaves links to the caller.

const crypto = require('crypto');
const rhea = require('rhea');

// endpoint reads the connection string Go passes in SBTEST_CONNECTION_STRING.
function endpoint() {
    const cs = process.env.SBTEST_CONNECTION_STRING;
    if (!cs) throw new Error('SBTEST_CONNECTION_STRING is not set (run through go test ./sbtest)');
    const f = {};
    for (const part of cs.split(';')) {
        const i = part.indexOf('=');
        if (i > 0) f[part.slice(0, i)] = part.slice(i + 1);
    }
    const u = new URL(f.Endpoint.replace(/^sb:/, 'http:'));
    return { host: u.hostname, port: Number(u.port), keyName: f.SharedAccessKeyName, key: f.SharedAccessKey, connectionString: cs };
}

function sasToken(audience, keyName, key, ttlSeconds) {
    const sr = encodeURIComponent(audience).toLowerCase();
    const se = Math.floor(Date.now() / 1000) + ttlSeconds;
    const sig = crypto.createHmac('sha256', key).update(sr + '\n' + se).digest('base64');
    return `SharedAccessSignature sr=${sr}&sig=${encodeURIComponent(sig)}&se=${se}&skn=${keyName}`;
}

function withTimeout(p, ms, what) {
    let timer;
    return Promise.race([p, new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(what)), ms); })])
        .finally(() => clearTimeout(timer));
}

function once(emitter, event) {
    return new Promise((resolve, reject) => {
        emitter.once(event, resolve);
        emitter.once('error', (ctx) => reject(ctx.error || ctx));
    });
}

// connect opens a connection and puts a token for entity on $cbs. With opts.replyByName
// the reply link has no target address and reply-to names the link (as @azure/core-amqp
// does).
async function connect(entity, opts = {}) {
    const ep = endpoint();
    const container = rhea.create_container({ id: 'sbtest-raw-' + process.pid });
    const conn = container.connect({ host: ep.host, port: ep.port, reconnect: false, username: ep.keyName, password: ep.key });
    await once(conn, 'connection_open');
    const replyTo = 'cbs-reply-' + crypto.randomUUID();
    const requests = conn.open_sender({ target: { address: '$cbs' } });
    const replies = opts.replyByName
        ? conn.open_receiver({ name: replyTo, source: { address: '$cbs' } })
        : conn.open_receiver({ source: { address: '$cbs' }, target: { address: replyTo } });
    await Promise.all([once(requests, 'sendable'), once(replies, 'receiver_open')]);
    const audience = `sb://${ep.host}:${ep.port}/${entity}`;
    const answer = withTimeout(once(replies, 'message'), 5000, 'no answer to put-token');
    requests.send({
        message_id: crypto.randomUUID(),
        reply_to: replyTo,
        application_properties: { operation: 'put-token', type: 'servicebus.windows.net:sastoken', name: audience },
        body: sasToken(audience, ep.keyName, ep.key, 3600),
    });
    try {
        const ctx = await answer;
        const status = ctx.message.application_properties['status-code'];
        if (status !== 202) throw new Error(`put-token answered ${status}`);
    } catch (e) {
        conn.close();
        throw e;
    }
    requests.close();
    replies.close();
    return conn;
}

// request sends one request to node over a fresh request/reply link pair and resolves
// with the answer. The reply link has no target address; reply-to is its name.
async function request(conn, node, applicationProperties, body) {
    const replyTo = 'reply-' + crypto.randomUUID();
    const requests = conn.open_sender({ target: { address: node } });
    const replies = conn.open_receiver({ name: replyTo, source: { address: node } });
    await Promise.all([once(requests, 'sendable'), once(replies, 'receiver_open')]);
    const answer = withTimeout(once(replies, 'message'), 5000, `no answer from ${node}`);
    requests.send({ message_id: crypto.randomUUID(), reply_to: replyTo, application_properties: applicationProperties, body });
    const ctx = await answer;
    requests.close();
    replies.close();
    return ctx.message;
}

module.exports = { endpoint, connect, request, once, withTimeout, sasToken };
