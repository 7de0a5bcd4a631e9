'use strict';

// The official JavaScript client, @azure/service-bus, against the endpoint: a client the
// endpoint was not written with. Each test uses a queue of its own (SBTEST_QUEUES); the Go
// test that runs this script gives them a short lock, MaxDeliveryCount 3 and duplicate
// detection, and passes the lock duration in SBTEST_LOCK_MS.

const test = require('node:test');
const assert = require('node:assert');
const { ServiceBusClient, isServiceBusError } = require('@azure/service-bus');

const connectionString = process.env.SBTEST_CONNECTION_STRING;
const queues = new Set((process.env.SBTEST_QUEUES || '').split(',').filter(Boolean));
const lockMs = Number(process.env.SBTEST_LOCK_MS);
const maxDeliveryCount = Number(process.env.SBTEST_MAX_DELIVERY_COUNT);
const retryOptions = { maxRetries: 2, retryDelayInMs: 50, maxRetryDelayInMs: 200, timeoutInMs: 10000 };

function queue(name) {
    if (!queues.has(name)) throw new Error(`the Go test serves no queue ${name} (SBTEST_QUEUES=${[...queues].join(',')})`);
    return name;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// withClient runs fn with a client and closes it (and so every link) afterwards.
async function withClient(fn, cs = connectionString) {
    const client = new ServiceBusClient(cs, { retryOptions });
    try {
        return await fn(client);
    } finally {
        await client.close();
    }
}

// receive collects n messages within ms.
async function receive(receiver, n, ms = 5000) {
    const got = [];
    const deadline = Date.now() + ms;
    while (got.length < n && Date.now() < deadline) {
        got.push(...await receiver.receiveMessages(n - got.length, { maxWaitTimeInMs: Math.max(1, deadline - Date.now()) }));
    }
    assert.strictEqual(got.length, n, `received ${got.length} of ${n} messages`);
    return got;
}

async function receiveNone(receiver, ms) {
    const got = await receiver.receiveMessages(1, { maxWaitTimeInMs: ms });
    assert.deepStrictEqual(got.map((m) => m.messageId), [], 'nothing more is delivered');
}

// rejectsWithCode expects a ServiceBusError with code. For an error it retries
// (@azure/core-amqp retries UnauthorizedError, as keys may be rotating) the client throws
// an AggregateError of one error per attempt: each must carry code.
async function rejectsWithCode(promise, code) {
    await assert.rejects(promise, (err) => {
        const errors = err instanceof AggregateError ? err.errors : [err];
        assert.ok(errors.length > 0, 'at least one error');
        for (const e of errors) {
            assert.ok(isServiceBusError(e), `a ServiceBusError, got ${e && e.name}: ${e && e.message}`);
            assert.strictEqual(e.code, code, e.message);
        }
        return true;
    });
}

test('send single and batch, peek-lock receive and complete', () => withClient(async (client) => {
    const q = queue('send');
    const sender = client.createSender(q);
    await sender.sendMessages({ messageId: 'single', body: { a: 1 }, subject: 'Subject', applicationProperties: { n: 7, s: 'x' } });
    const batch = await sender.createMessageBatch();
    for (const id of ['b1', 'b2', 'b3']) assert.ok(batch.tryAddMessage({ messageId: id, body: 'body-' + id }));
    await sender.sendMessages(batch);

    const receiver = client.createReceiver(q, { receiveMode: 'peekLock' });
    const got = await receive(receiver, 4);
    assert.deepStrictEqual(got.map((m) => m.messageId), ['single', 'b1', 'b2', 'b3']);
    assert.deepStrictEqual(got[0].body, { a: 1 });
    assert.strictEqual(got[0].subject, 'Subject');
    assert.deepStrictEqual(got[0].applicationProperties, { n: 7, s: 'x' });
    assert.strictEqual(got[2].body, 'body-b2');
    for (let i = 1; i < got.length; i++) {
        assert.ok(got[i].sequenceNumber.greaterThan(got[i - 1].sequenceNumber), 'sequence numbers increase');
    }
    for (const m of got) {
        assert.ok(m.lockToken, 'peek-lock deliveries carry a lock token');
        assert.ok(m.lockedUntilUtc instanceof Date && m.lockedUntilUtc > new Date(), 'lockedUntilUtc is in the future');
        assert.ok(m.enqueuedTimeUtc instanceof Date);
        await receiver.completeMessage(m);
    }
    await receiveNone(receiver, 300);
}));

test('abandon redelivers with the delivery count raised by one', () => withClient(async (client) => {
    const q = queue('abandon');
    await client.createSender(q).sendMessages({ messageId: 'm1', body: 'x' });
    const receiver = client.createReceiver(q);
    const [first] = await receive(receiver, 1);
    await receiver.abandonMessage(first);
    const [again] = await receive(receiver, 1);
    assert.strictEqual(again.messageId, 'm1');
    assert.strictEqual(again.deliveryCount, first.deliveryCount + 1);
    assert.ok(again.sequenceNumber.equals(first.sequenceNumber));
    assert.notStrictEqual(again.lockToken, first.lockToken);
    await receiver.completeMessage(again);
}));

test('dead-letter with reason and description, read from the dead-letter sub-queue', () => withClient(async (client) => {
    const q = queue('deadletter');
    await client.createSender(q).sendMessages({ messageId: 'bad', body: 'not json', applicationProperties: { source: 'graph' } });
    const receiver = client.createReceiver(q);
    const [m] = await receive(receiver, 1);
    await receiver.deadLetterMessage(m, { deadLetterReason: 'malformed', deadLetterErrorDescription: 'body is not JSON' });
    await receiveNone(receiver, 300);

    const dlq = client.createReceiver(q, { subQueueType: 'deadLetter' });
    const [d] = await receive(dlq, 1);
    assert.strictEqual(d.messageId, 'bad');
    assert.strictEqual(d.body, 'not json');
    assert.strictEqual(d.deadLetterReason, 'malformed');
    assert.strictEqual(d.deadLetterErrorDescription, 'body is not JSON');
    assert.strictEqual(d.applicationProperties.source, 'graph');
    await dlq.completeMessage(d);
}));

test('MaxDeliveryCount dead-letters with MaxDeliveryCountExceeded', () => withClient(async (client) => {
    const q = queue('maxdelivery');
    await client.createSender(q).sendMessages({ messageId: 'poison', body: 'x' });
    const receiver = client.createReceiver(q);
    for (let i = 0; i < maxDeliveryCount; i++) {
        const [m] = await receive(receiver, 1);
        await receiver.abandonMessage(m);
    }
    await receiveNone(receiver, 300);
    const dlq = client.createReceiver(q, { subQueueType: 'deadLetter' });
    const [d] = await receive(dlq, 1);
    assert.strictEqual(d.messageId, 'poison');
    assert.strictEqual(d.deadLetterReason, 'MaxDeliveryCountExceeded');
    assert.ok(d.deadLetterErrorDescription, 'a description says why');
    await dlq.completeMessage(d);
}));

test('lock renewal keeps the message past its lock', () => withClient(async (client) => {
    const q = queue('renew');
    await client.createSender(q).sendMessages({ messageId: 'slow', body: 'x' });
    const receiver = client.createReceiver(q, { maxAutoLockRenewalDurationInMs: 0 });
    const [m] = await receive(receiver, 1);
    const firstUntil = m.lockedUntilUtc;
    const end = Date.now() + 2 * lockMs;
    let until = firstUntil;
    while (Date.now() < end) {
        await sleep(lockMs / 4);
        until = await receiver.renewMessageLock(m);
    }
    assert.ok(until.getTime() > firstUntil.getTime() + lockMs, `lockedUntil ${until.toISOString()} moved past ${firstUntil.toISOString()} + lock`);
    await receiver.completeMessage(m);
}));

test('an expired lock is MessageLockLost on settle and renew', () => withClient(async (client) => {
    const q = queue('expiry');
    await client.createSender(q).sendMessages({ messageId: 'late', body: 'x' });
    const receiver = client.createReceiver(q, { maxAutoLockRenewalDurationInMs: 0 });
    const [stale] = await receive(receiver, 1);
    await sleep(lockMs + 300);
    await rejectsWithCode(receiver.completeMessage(stale), 'MessageLockLost');
    await rejectsWithCode(receiver.renewMessageLock(stale), 'MessageLockLost');
    const [again] = await receive(receiver, 1);
    assert.strictEqual(again.messageId, 'late');
    assert.strictEqual(again.deliveryCount, stale.deliveryCount + 1);
    await receiver.completeMessage(again);
}));

test('peek shows messages without locking them, and an empty list past the end', () => withClient(async (client) => {
    const q = queue('peek');
    await client.createSender(q).sendMessages([{ messageId: 'p1', body: 'one' }, { messageId: 'p2', body: 'two' }]);
    const receiver = client.createReceiver(q);
    const peeked = await receiver.peekMessages(10);
    assert.deepStrictEqual(peeked.map((m) => m.messageId), ['p1', 'p2']);
    assert.strictEqual(peeked[1].body, 'two');
    assert.strictEqual(peeked[0].lockToken, undefined, 'peeked messages hold no lock');
    assert.deepStrictEqual(await receiver.peekMessages(10), [], 'the next peek starts past the end');
    const got = await receive(receiver, 2);
    assert.deepStrictEqual(got.map((m) => m.deliveryCount), [peeked[0].deliveryCount, peeked[1].deliveryCount], 'peeking did not count as a delivery');
    for (const m of got) await receiver.completeMessage(m);
}));

test('receive-and-delete removes messages as they are delivered', () => withClient(async (client) => {
    const q = queue('receivedelete');
    await client.createSender(q).sendMessages([{ messageId: 'r1', body: 'x' }, { messageId: 'r2', body: 'y' }]);
    const receiver = client.createReceiver(q, { receiveMode: 'receiveAndDelete' });
    const got = await receive(receiver, 2);
    assert.deepStrictEqual(got.map((m) => m.messageId), ['r1', 'r2']);
    assert.strictEqual(got[0].lockToken, undefined);
    await receiveNone(receiver, 300);
    assert.deepStrictEqual(await receiver.peekMessages(10), [], 'nothing is left to peek');
}));

test('duplicate detection drops a repeated message id, single and batch', () => withClient(async (client) => {
    const q = queue('duplicate');
    const sender = client.createSender(q);
    await sender.sendMessages({ messageId: 'dup', body: 'first' });
    await sender.sendMessages({ messageId: 'dup', body: 'second' });
    const batch = await sender.createMessageBatch();
    assert.ok(batch.tryAddMessage({ messageId: 'dup', body: 'third' }));
    assert.ok(batch.tryAddMessage({ messageId: 'new', body: 'fourth' }));
    await sender.sendMessages(batch);
    const receiver = client.createReceiver(q, { receiveMode: 'receiveAndDelete' });
    const got = await receive(receiver, 2);
    assert.deepStrictEqual(got.map((m) => m.body), ['first', 'fourth']);
    await receiveNone(receiver, 300);
}));

test('scheduled messages wait for their time; cancelled ones never come', () => withClient(async (client) => {
    const q = queue('schedule');
    const sender = client.createSender(q);
    const receiver = client.createReceiver(q, { receiveMode: 'receiveAndDelete' });
    const at = new Date(Date.now() + 600);
    const [keep, cancel] = await sender.scheduleMessages([{ messageId: 'keep', body: 'k' }, { messageId: 'cancel', body: 'c' }], at);
    assert.ok(!keep.equals(cancel), 'one sequence number per message');
    await sender.cancelScheduledMessages([cancel]);
    await sender.sendMessages({ messageId: 'plain-scheduled', body: 'p', scheduledEnqueueTimeUtc: at });
    const peeked = await receiver.peekMessages(10);
    assert.deepStrictEqual(peeked.map((m) => m.messageId).sort(), ['keep', 'plain-scheduled'], 'peek shows the scheduled messages');
    if (Date.now() < at.getTime()) { // a machine slow enough to pass the time first has nothing to see here
        assert.ok(peeked.every((m) => m.state === 'scheduled'), 'peeked as scheduled before the time');
    }
    await receiveNone(receiver, Math.max(1, at.getTime() - Date.now() - 150));
    const got = await receive(receiver, 2);
    assert.ok(Date.now() >= at.getTime(), 'not before the scheduled time');
    assert.deepStrictEqual(got.map((m) => m.messageId).sort(), ['keep', 'plain-scheduled']);
    await receiveNone(receiver, 300);
}));

test('a wrong key is UnauthorizedAccess', async () => {
    const wrong = connectionString.replace(/SharedAccessKey=[^;]*/, 'SharedAccessKey=' + Buffer.from('wrong key').toString('base64'));
    assert.notStrictEqual(wrong, connectionString);
    await withClient(async (client) => {
        await rejectsWithCode(client.createSender(queue('send')).sendMessages({ body: 'x' }), 'UnauthorizedAccess');
    }, wrong);
});

test('a missing queue is MessagingEntityNotFound', () => withClient(async (client) => {
    await rejectsWithCode(client.createSender('no-such-queue').sendMessages({ body: 'x' }), 'MessagingEntityNotFound');
}));
