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

function once(emitter, event) {
    return new Promise((resolve, reject) => {
        emitter.once(event, resolve);
        emitter.once('error', (ctx) => reject(ctx.error || ctx));
    });
}

// connect opens a connection and puts a token for entity on $cbs.
async function connect(entity) {
    const ep = endpoint();
    const container = rhea.create_container({ id: 'sbtest-raw-' + process.pid });
    const conn = container.connect({ host: ep.host, port: ep.port, reconnect: false, username: ep.keyName, password: ep.key });
    await once(conn, 'connection_open');
    const replyTo = 'cbs-reply-' + crypto.randomUUID();
    const requests = conn.open_sender({ target: { address: '$cbs' } });
    const replies = conn.open_receiver({ source: { address: '$cbs' }, target: { address: replyTo } });
    await Promise.all([once(requests, 'sendable'), once(replies, 'receiver_open')]);
    const audience = `sb://${ep.host}:${ep.port}/${entity}`;
    const answer = once(replies, 'message');
    requests.send({
        message_id: crypto.randomUUID(),
        reply_to: replyTo,
        application_properties: { operation: 'put-token', type: 'servicebus.windows.net:sastoken', name: audience },
        body: sasToken(audience, ep.keyName, ep.key, 3600),
    });
    const ctx = await answer;
    const status = ctx.message.application_properties['status-code'];
    if (status !== 202) throw new Error(`put-token answered ${status}`);
    requests.close();
    replies.close();
    return conn;
}

module.exports = { endpoint, connect, once, sasToken };
