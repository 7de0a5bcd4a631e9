'use strict';

// Broker wires rhea's AMQP 1.0 container to the queues: SASL, $cbs put-token, attach
// validation, sender and receiver links on queues and their dead-letter sub-queues,
// dispositions, and the $management request/response node.

const rhea = require('rhea');
const address = require('./address.js');
const cbs = require('./cbs.js');
const delivery = require('./delivery.js');
const dispositions = require('./dispositions.js');
const management = require('./management.js');
const sections = require('./sections.js');
const { Queue } = require('./queue.js');

// Each disposition is written with its own outcome (rhea 3.0.5 folds mixed outcomes).
dispositions.install();

const types = rhea.types;
const message = rhea.message;
const BATCH_FORMAT = 0x80013700;
const MAX_MESSAGE_SIZE = 256 * 1024; // the Standard tier's limit

// Refusals of what sbtest does not implement use amqp:not-allowed, with a description that
// starts "sbtest does not implement". azservicebus treats amqp:not-allowed as final and
// returns it at once; amqp:not-implemented has no entry in its table, so the client would
// recover the connection and retry before reporting it.
const REFUSED = 'amqp:not-allowed';

// The application properties that carry a request's status. The error condition's key on
// $management is the one the official clients read (no public page names it).
const CBS_KEYS = { code: 'status-code', description: 'status-description', condition: 'error-condition' };
const MANAGEMENT_KEYS = { code: 'statusCode', description: 'statusDescription', condition: 'errorCondition' };

// rhea hands format-0 messages to handlers already decoded into plain JavaScript values,
// which loses AMQP types. Keep the raw payload next to the decoded message so queue
// messages are stored section by section, exactly as sent.
const decode = message.decode;
message.decode = function (buffer) {
    const m = decode(buffer);
    Object.defineProperty(m, 'raw', { value: buffer, enumerable: false });
    return m;
};

class Broker {
    // opts: {queues: [name], lockDurationMs, maxDeliveryCount, duplicateDetectionWindowMs, keyName, key, log}
    constructor(opts) {
        this.log = opts.log || (() => {});
        this.claims = new cbs.Claims(opts.keyName, opts.key);
        this.keyName = opts.keyName;
        this.key = opts.key;
        this.queues = new Map();
        for (const name of opts.queues) {
            const n = name.toLowerCase();
            const dlq = new Queue(n + '/$deadletterqueue', { lockDurationMs: opts.lockDurationMs, maxDeliveryCount: 0, log: this.log });
            const q = new Queue(n, {
                lockDurationMs: opts.lockDurationMs, maxDeliveryCount: opts.maxDeliveryCount,
                duplicateDetectionWindowMs: opts.duplicateDetectionWindowMs || 0, deadLetter: dlq, log: this.log,
            });
            this.queues.set(n, { queue: q, deadLetter: dlq });
        }
        this.connections = new Set();
        this.sockets = new Set();
        this.container = rhea.create_container({ id: 'sbtest', sender_options: { autosettle: false, treat_modified_as_released: false }, receiver_options: { autoaccept: false } });
        this.configureSasl();
        this.registerHandlers();
    }

    configureSasl() {
        const mechs = this.container.sasl_server_mechanisms;
        mechs.enable_anonymous();
        mechs.enable_plain((user, pass) => user === this.keyName && pass === this.key);
        // MSSBCBS: authentication happens later through $cbs, as with Service Bus.
        mechs.MSSBCBS = () => ({ start() { this.outcome = true; this.username = 'cbs'; } });
    }

    // listen starts accepting AMQP connections and resolves with the bound port.
    listen(host, port) {
        return new Promise((resolve, reject) => {
            const server = this.container.listen({ host, port });
            server.on('connection', (s) => {
                this.sockets.add(s);
                s.on('close', () => this.sockets.delete(s));
            });
            server.once('listening', () => resolve(server.address().port));
            server.once('error', reject);
            this.server = server;
        });
    }

    // entity returns the Queue an address names, or null.
    entity(parsed) {
        const q = this.queues.get(parsed.queue);
        if (!q) return null;
        return parsed.deadLetter ? q.deadLetter : q.queue;
    }

    stats() {
        const out = {};
        for (const [name, q] of this.queues) out[name] = q.queue.stats();
        return out;
    }

    // dropConnections cuts every client connection at the socket, as a network fault
    // would, and returns how many were cut.
    dropConnections() {
        let n = 0;
        for (const conn of Array.from(this.connections)) {
            this.forget(conn);
            conn.abort_socket(conn.socket);
            n++;
        }
        for (const s of Array.from(this.sockets)) {
            s.destroy();
        }
        this.log(`dropped ${n} connection(s)`);
        return n;
    }

    close() {
        for (const q of this.queues.values()) {
            q.queue.close();
            q.deadLetter.close();
        }
        if (this.server) this.server.close();
        for (const s of this.sockets) s.destroy();
    }

    registerHandlers() {
        const c = this.container;
        c.on('connection_open', (ctx) => {
            ctx.connection.sbtest = { claims: new Map(), replyLinks: { byAddress: new Map(), byName: new Map() }, consumers: new Set() };
            this.connections.add(ctx.connection);
        });
        c.on('connection_close', (ctx) => this.forget(ctx.connection));
        c.on('disconnected', (ctx) => this.forget(ctx.connection));
        c.on('session_close', (ctx) => this.forgetLinks(ctx.connection, (l) => l.session === ctx.session));
        c.on('sender_close', (ctx) => this.forgetLinks(ctx.connection, (l) => l === ctx.sender));
        c.on('receiver_close', () => {});
        for (const e of ['connection_error', 'session_error', 'sender_error', 'receiver_error', 'error']) {
            c.on(e, (ctx) => this.log(`${e}: ${describeError(ctx)}`));
        }
        c.on('sender_open', (ctx) => this.onSenderOpen(ctx.connection, ctx.sender));
        c.on('receiver_open', (ctx) => this.onReceiverOpen(ctx.connection, ctx.receiver));
        c.on('sender_flow', (ctx) => this.onFlow(ctx.sender));
        c.on('message', (ctx) => this.onMessage(ctx));
        for (const outcome of ['accepted', 'released', 'rejected', 'modified']) {
            c.on(outcome, (ctx) => this.onOutcome(ctx.delivery, outcome));
        }
    }

    forget(conn) {
        if (!conn.sbtest) return;
        this.connections.delete(conn);
        this.forgetLinks(conn, () => true);
    }

    forgetLinks(conn, match) {
        if (!conn || !conn.sbtest) return;
        for (const m of [conn.sbtest.replyLinks.byAddress, conn.sbtest.replyLinks.byName]) {
            for (const [key, link] of Array.from(m)) {
                if (match(link)) m.delete(key);
            }
        }
        for (const entry of Array.from(conn.sbtest.consumers)) {
            if (match(entry.link)) {
                entry.queue.removeConsumer(entry.consumer);
                conn.sbtest.consumers.delete(entry);
            }
        }
    }

    authorized(conn, path) {
        const now = Date.now();
        for (const [claim, expires] of conn.sbtest.claims) {
            if (expires > now && cbs.covers(claim, path)) return true;
        }
        return false;
    }

    // check returns the refusal for attaching to parsed, or null when the attach may go on.
    check(conn, parsed, role) {
        if (!parsed || parsed.kind === 'unsupported') {
            return { condition: REFUSED, description: `sbtest does not implement ${parsed ? parsed.path : 'an empty address'}: it serves queues, their $DeadLetterQueue and $management only (no topics)` };
        }
        if (parsed.kind === 'cbs') return null;
        if (!this.entity(parsed)) {
            return { condition: 'amqp:not-found', description: `The messaging entity '${parsed.path}' could not be found.` };
        }
        const path = parsed.kind === 'management' ? parsed.path + '/$management' : parsed.path;
        if (!this.authorized(conn, path)) {
            return { condition: 'amqp:unauthorized-access', description: `no valid token was put on $cbs for '${path}'` };
        }
        if (parsed.kind === 'entity' && parsed.deadLetter && role === 'send') {
            return { condition: 'amqp:not-allowed', description: 'messages cannot be sent to a dead-letter queue' };
        }
        return null;
    }

    refuse(link, err) {
        this.log(`refused link ${link.name}: ${err.condition}: ${err.description}`);
        link.close(err);
    }

    // onSenderOpen handles a client receiver: a queue consumer, or the reply side of $cbs
    // or $management.
    onSenderOpen(conn, sender) {
        const remote = sender.remote.attach;
        const src = remote.source ? remote.source.address : undefined;
        const parsed = address.parse(src);
        const err = this.check(conn, parsed, 'receive');
        if (err) return this.refuse(sender, err);
        const filters = remote.source && remote.source.filter ? Object.keys(remote.source.filter) : [];
        if (filters.length > 0) {
            return this.refuse(sender, { condition: REFUSED, description: `sbtest does not implement source filters (${filters.join(', ')}): no sessions` });
        }
        sender.set_source({ address: src });
        sender.set_target({ address: remote.target ? remote.target.address : undefined });
        sender.local.attach.snd_settle_mode = remote.snd_settle_mode;
        sender.local.attach.rcv_settle_mode = remote.rcv_settle_mode;
        sender.local.attach.max_message_size = MAX_MESSAGE_SIZE;
        if (parsed.kind !== 'entity') {
            // A request's reply-to names its reply link by the link's target address (as
            // the request/response operations describe it) or by the link's name (what
            // @azure/core-amqp sends, with no target address): keep both.
            if (remote.target && remote.target.address) conn.sbtest.replyLinks.byAddress.set(remote.target.address, sender);
            conn.sbtest.replyLinks.byName.set(sender.name, sender);
            return;
        }
        const queue = this.entity(parsed);
        const consumer = newConsumer(sender);
        conn.sbtest.consumers.add({ link: sender, queue, consumer });
        sender.sbtest = { consumer, queue };
        this.log(`receiver attached to ${queue.name} (${consumer.receiveAndDelete ? 'receive-and-delete' : 'peek-lock'})`);
        queue.addConsumer(consumer);
    }

    // onReceiverOpen handles a client sender: to a queue, to $management or to $cbs.
    onReceiverOpen(conn, receiver) {
        const remote = receiver.remote.attach;
        const tgt = remote.target ? remote.target.address : undefined;
        const parsed = address.parse(tgt);
        const err = this.check(conn, parsed, 'send');
        if (err) return this.refuse(receiver, err);
        receiver.set_target({ address: tgt });
        receiver.set_source({ address: remote.source ? remote.source.address : undefined });
        receiver.local.attach.snd_settle_mode = remote.snd_settle_mode;
        receiver.local.attach.rcv_settle_mode = remote.rcv_settle_mode;
        receiver.local.attach.max_message_size = MAX_MESSAGE_SIZE;
        receiver.sbtest = { node: parsed, queue: parsed.kind === 'cbs' ? null : this.entity(parsed) };
    }

    onFlow(sender) {
        if (sender.sbtest) sender.sbtest.queue.pump();
    }

    onMessage(ctx) {
        const r = ctx.receiver.sbtest;
        if (!r) return;
        try {
            switch (r.node.kind) {
            case 'cbs': return this.onPutToken(ctx);
            case 'management': return this.onManagement(ctx, r.queue);
            default: return this.onSend(ctx, r.queue);
            }
        } catch (e) {
            this.log(`message on ${ctx.receiver.name} failed: ${e.message}`);
            ctx.delivery.reject({ condition: 'amqp:decode-error', description: e.message });
        }
    }

    // onSend stores a message (or each message of a batch) sent to a queue.
    onSend(ctx, queue) {
        let payloads;
        if (ctx.format === BATCH_FORMAT) {
            payloads = sections.splitBatch(ctx.message);
        } else if (!ctx.format) {
            payloads = [ctx.message.raw];
        } else {
            return ctx.delivery.reject({ condition: REFUSED, description: `sbtest does not implement message format ${ctx.format}` });
        }
        const parsed = payloads.map((p) => sections.parse(p));
        const results = parsed.map((m) => queue.accept(m));
        this.log(`${queue.name}: received ${results.length} message(s): ${results.map((r) => `${r.sequence} ${r.outcome}`).join(', ')}`);
        ctx.delivery.accept();
    }

    onPutToken(ctx) {
        const req = ctx.message;
        const props = req.application_properties || {};
        ctx.delivery.accept();
        if (props.operation !== 'put-token') {
            return this.reply(ctx.connection, req, { status: 501, description: `sbtest does not implement $cbs operation ${props.operation}` }, CBS_KEYS);
        }
        const v = this.claims.verify(props.type, props.name, req.body);
        if (v.ok) ctx.connection.sbtest.claims.set(v.path, v.expires);
        this.log(`$cbs put-token for '${v.ok ? v.path : props.name}': ${v.status} ${v.description}`);
        this.reply(ctx.connection, req, v, CBS_KEYS);
    }

    onManagement(ctx, queue) {
        const req = ctx.message;
        const props = req.application_properties || {};
        ctx.delivery.accept();
        const resp = management.handle(queue, props.operation, req.body);
        this.log(`${queue.name}/$management ${props.operation}: ${resp.status}`);
        this.reply(ctx.connection, req, resp, MANAGEMENT_KEYS);
    }

    // replyLink is the open reply link a request's reply-to names: by target address
    // first, then by link name.
    replyLink(conn, replyTo) {
        for (const m of [conn.sbtest.replyLinks.byAddress, conn.sbtest.replyLinks.byName]) {
            const link = m.get(replyTo);
            if (link && link.is_open()) return link;
        }
        return null;
    }

    // reply answers a request. keys names the application properties that carry the status:
    // CBS_KEYS on $cbs ("status-code", as the AMQP protocol guide's CBS section has it),
    // MANAGEMENT_KEYS on $management ("statusCode", as the request/response operations
    // have it).
    reply(conn, req, resp, keys) {
        const link = this.replyLink(conn, req.reply_to);
        if (!link) {
            this.log(`no reply link for '${req.reply_to}'`);
            return;
        }
        const ap = { [keys.code]: types.Int(resp.status), [keys.description]: resp.description || '' };
        if (resp.condition) ap[keys.condition] = types.wrap_symbol(resp.condition);
        link.send({ correlation_id: req.message_id, application_properties: ap, body: resp.body === undefined ? null : resp.body });
    }

    // onOutcome settles a peek-locked delivery with the client's outcome and answers with
    // the settled disposition the client waits for (receiver settle mode "second").
    onOutcome(d, outcome) {
        const link = d.link;
        if (!link || !link.sbtest || !d.sbtestLock) return;
        const queue = link.sbtest.queue;
        const state = d.remote_state;
        if (outcome === 'modified' && state.undeliverable_here) {
            this.log(`${queue.name}: refused deferral of a message`);
            return d.update(true, message.rejected({ error: { condition: REFUSED, description: 'sbtest does not implement deferral' } }).described());
        }
        const ok = queue.settle(d.sbtestLock, toQueueOutcome(outcome, state));
        this.log(`${queue.name}: ${outcome} ${ok ? 'applied' : 'refused: lock lost'}`);
        if (!ok) {
            return d.update(true, message.rejected({ error: {
                condition: 'com.microsoft:message-lock-lost',
                description: 'The lock supplied is invalid. Either the lock expired, or the message has already been removed from the queue.',
            } }).described());
        }
        d.update(true, echo(outcome));
    }
}

function toQueueOutcome(outcome, state) {
    switch (outcome) {
    case 'accepted':
        return { type: 'complete' };
    case 'released':
        return { type: 'release' };
    case 'modified':
        return { type: 'abandon', properties: state.message_annotations || {} };
    default: { // rejected
        const err = state.error || {};
        const info = Object.assign({}, err.info || {});
        const reason = typeof info.DeadLetterReason === 'string' ? info.DeadLetterReason : String(err.condition || '');
        const description = typeof info.DeadLetterErrorDescription === 'string' ? info.DeadLetterErrorDescription : String(err.description || '');
        delete info.DeadLetterReason;
        delete info.DeadLetterErrorDescription;
        return { type: 'deadLetter', reason, description, properties: info };
    }
    }
}

// echo is the settled state sent back for an applied outcome. A rejected state carries no
// error: go-amqp would report one as a failed settlement.
function echo(outcome) {
    switch (outcome) {
    case 'accepted': return message.accepted().described();
    case 'released': return message.released().described();
    case 'modified': return message.modified({}).described();
    default: return message.rejected({}).described();
    }
}

// newConsumer adapts a sender link to the Queue's consumer interface. sent mirrors the
// link's delivery-count as the receiving client counts it; sender.credit +
// sender.delivery_count is the limit granted by the client's last flow, so the difference is
// the credit left even for deliveries rhea has queued but not yet written.
function newConsumer(sender) {
    const c = {
        sent: 0,
        receiveAndDelete: sender.local.attach.snd_settle_mode === 1,
        limit() { return sender.credit + sender.delivery_count; },
        credit() {
            if (!sender.is_open()) return 0;
            return Math.min(c.limit() - c.sent, sender.session.outgoing.available());
        },
        send(entry) {
            const tag = entry.lock ? delivery.lockTag(entry.lock.token) : Buffer.from(String(entry.sequence));
            const d = sender.send(delivery.encodeEntry(entry), tag, 0);
            c.sent++;
            if (entry.lock) d.sbtestLock = entry.lock.token;
        },
        afterPump() {
            // drain: nothing more to send, so use up the credit and tell the client.
            if (sender._draining && sender.is_open() && c.limit() - c.sent > 0) {
                c.sent = c.limit();
                sender.set_drained(true);
            }
        },
    };
    return c;
}

function describeError(ctx) {
    const e = ctx.error || (ctx.sender && ctx.sender.error) || (ctx.receiver && ctx.receiver.error) || (ctx.session && ctx.session.error) || (ctx.connection && ctx.connection.error);
    if (!e) return 'unknown';
    return `${e.condition || ''} ${e.description || e.message || ''}`.trim();
}

module.exports = { Broker };
