'use strict';

// Queue is one entity's state: available messages in sequence order, peek-locked messages
// keyed by lock token, the consumers (receiver links) that have credit, and the lock timers.
// It knows nothing of AMQP framing: consumers are objects with
//   credit(): number          how many more messages the link may take now
//   receiveAndDelete: boolean messages leave the queue when sent (no lock)
//   send(entry)               deliver one entry (entry.lock is set in peek-lock mode)
//   afterPump()               called once the queue has nothing more to hand out

const crypto = require('crypto');
const sections = require('./sections.js');

const REASON_MAX_DELIVERY = 'MaxDeliveryCountExceeded';

class Queue {
    // opts: {lockDurationMs, maxDeliveryCount (0: never dead-letter automatically),
    //        duplicateDetectionWindowMs (0: the queue has no duplicate detection),
    //        deadLetter: Queue|null, log: function(string)}
    constructor(name, opts) {
        this.name = name;
        this.lockDurationMs = opts.lockDurationMs;
        this.duplicateWindowMs = opts.duplicateDetectionWindowMs || 0;
        this.seenIds = new Map(); // message id -> time (ms) its window ends, oldest first
        this.duplicates = 0;
        this.scheduled = new Map(); // sequence number -> {message, at: Date, timer}
        this.maxDeliveryCount = opts.maxDeliveryCount;
        this.deadLetter = opts.deadLetter || null;
        this.log = opts.log || (() => {});
        this.nextSequence = 1;
        this.available = []; // entries ordered by sequence number
        this.locked = new Map(); // lock token (uuid string) -> entry
        this.consumers = [];
        this.turn = 0;
        this.completed = 0;
        this.expired = 0;
        this.deliveries = 0;
        this.pumping = false;
    }

    // accept takes one sent message (parsed sections), as the service takes a send or a
    // schedule-message request, and returns {sequence, outcome}:
    //   'duplicate'  duplicate detection saw its message id within the window: dropped,
    //                though the send succeeds (and the sequence number is never used)
    //   'scheduled'  it carries an x-opt-scheduled-enqueue-time in the future: held,
    //                invisible to receivers, until then; sequence is its scheduled number
    //   'enqueued'   available now
    accept(m) {
        if (this.isDuplicate(m)) {
            this.duplicates++;
            return { sequence: this.nextSequence++, outcome: 'duplicate' };
        }
        const at = scheduledTime(m);
        if (at !== null && at.getTime() > Date.now()) {
            return { sequence: this.schedule(m, at), outcome: 'scheduled' };
        }
        return { sequence: this.enqueue(m), outcome: 'enqueued' };
    }

    // isDuplicate records m's message id for the duplicate-detection window and reports
    // whether the id was already recorded within it. Only the message id counts, as its
    // string form; a message without one is never a duplicate.
    isDuplicate(m) {
        if (this.duplicateWindowMs <= 0) return false;
        const id = sections.messageIdString(m);
        if (id === null) return false;
        const now = Date.now();
        for (const [k, until] of this.seenIds) { // insertion order is expiry order
            if (until > now) break;
            this.seenIds.delete(k);
        }
        if (this.seenIds.has(id)) return true;
        this.seenIds.set(id, now + this.duplicateWindowMs);
        return false;
    }

    // schedule holds m until at and returns its scheduled sequence number. When at comes,
    // the message is enqueued as if sent then: a new sequence number and enqueued time.
    schedule(m, at) {
        const sequence = this.nextSequence++;
        const wait = Math.max(0, at.getTime() - Date.now());
        const timer = setTimeout(() => {
            this.scheduled.delete(sequence);
            const now = this.enqueue(m);
            this.log(`${this.name}: scheduled message ${sequence} enqueued as ${now}`);
        }, wait);
        this.scheduled.set(sequence, { sequence, message: m, at, submittedAt: new Date(), timer });
        this.log(`${this.name}: message ${sequence} scheduled for ${at.toISOString()}`);
        return sequence;
    }

    // cancelScheduled deletes the scheduled messages with the given sequence numbers and
    // returns how many it deleted. Numbers that name no scheduled message are ignored.
    cancelScheduled(sequences) {
        let n = 0;
        for (const seq of sequences) {
            const s = this.scheduled.get(seq);
            if (!s) continue;
            clearTimeout(s.timer);
            this.scheduled.delete(seq);
            n++;
        }
        return n;
    }

    // enqueue stores a message that is available now.
    enqueue(m) {
        const entry = { sequence: this.nextSequence++, enqueuedAt: new Date(), message: m, deliveryCount: 0, lock: null };
        this.insert(entry);
        this.pump();
        return entry.sequence;
    }

    // adopt takes an entry moved here from another queue (dead-lettering), keeping its
    // sequence number, enqueued time and delivery count.
    adopt(entry) {
        entry.lock = null;
        this.insert(entry);
        this.pump();
    }

    insert(entry) {
        let i = this.available.length;
        while (i > 0 && this.available[i - 1].sequence > entry.sequence) i--;
        this.available.splice(i, 0, entry);
    }

    addConsumer(c) {
        this.consumers.push(c);
        this.pump();
    }

    removeConsumer(c) {
        this.consumers = this.consumers.filter((x) => x !== c);
    }

    // pump hands available messages to consumers with credit, round robin.
    pump() {
        if (this.pumping) return;
        this.pumping = true;
        try {
            while (this.available.length > 0) {
                const c = this.nextConsumer();
                if (!c) break;
                const entry = this.available.shift();
                if (this.hasExpired(entry)) {
                    this.expired++;
                    this.log(`${this.name}: message ${entry.sequence} expired (time to live)`);
                    continue;
                }
                if (c.receiveAndDelete) {
                    this.completed++;
                } else {
                    this.lock(entry);
                }
                this.deliveries++;
                c.send(entry);
            }
            for (const c of this.consumers.slice()) c.afterPump();
        } finally {
            this.pumping = false;
        }
    }

    nextConsumer() {
        const n = this.consumers.length;
        for (let i = 0; i < n; i++) {
            const c = this.consumers[(this.turn + i) % n];
            if (c.credit() > 0) {
                this.turn = (this.turn + i + 1) % n;
                return c;
            }
        }
        return null;
    }

    hasExpired(entry) {
        const ttl = sections.ttlMillis(entry.message);
        return ttl > 0 && entry.enqueuedAt.getTime() + ttl <= Date.now();
    }

    lock(entry) {
        const token = crypto.randomUUID();
        entry.lock = { token, until: new Date(Date.now() + this.lockDurationMs), timer: null };
        this.armTimer(entry);
        this.locked.set(token, entry);
    }

    armTimer(entry) {
        if (entry.lock.timer) clearTimeout(entry.lock.timer);
        const wait = Math.max(0, entry.lock.until.getTime() - Date.now());
        entry.lock.timer = setTimeout(() => this.lockExpired(entry.lock.token), wait);
    }

    // unlock removes the lock and returns the entry, or null when the token holds no lock
    // (settled already, or expired).
    unlock(token) {
        const entry = this.locked.get(token);
        if (!entry) return null;
        this.locked.delete(token);
        clearTimeout(entry.lock.timer);
        entry.lock = null;
        return entry;
    }

    lockExpired(token) {
        const entry = this.unlock(token);
        if (!entry) return;
        this.log(`${this.name}: lock on message ${entry.sequence} expired`);
        this.failedDelivery(entry);
    }

    // failedDelivery counts a delivery that was abandoned or whose lock expired; at
    // maxDeliveryCount the message is dead-lettered, otherwise it is available again.
    failedDelivery(entry) {
        entry.deliveryCount++;
        if (this.maxDeliveryCount > 0 && entry.deliveryCount >= this.maxDeliveryCount && this.deadLetter) {
            this.moveToDeadLetter(entry, REASON_MAX_DELIVERY,
                `Message could not be consumed after ${this.maxDeliveryCount} delivery attempts.`, {});
            return;
        }
        this.insert(entry);
        this.pump();
    }

    moveToDeadLetter(entry, reason, description, properties) {
        if (!this.deadLetter) {
            // A dead-letter queue has no dead-letter queue of its own: Service Bus keeps the
            // message where it is.
            this.insert(entry);
            this.pump();
            return;
        }
        const values = Object.assign({}, properties, { DeadLetterReason: reason, DeadLetterErrorDescription: description });
        entry.message = sections.withApplicationProperties(entry.message, values);
        this.log(`${this.name}: message ${entry.sequence} dead-lettered (${reason})`);
        this.deadLetter.adopt(entry);
    }

    // settle applies one outcome to the message locked by token. outcome.type is one of
    // complete, abandon, release, deadLetter; properties (optional) are application
    // properties to set. It returns false when the lock is lost.
    settle(token, outcome) {
        const entry = this.unlock(token);
        if (!entry) return false;
        const props = outcome.properties || {};
        if (Object.keys(props).length > 0 && outcome.type !== 'deadLetter') {
            entry.message = sections.withApplicationProperties(entry.message, props);
        }
        switch (outcome.type) {
        case 'complete':
            this.completed++;
            this.pump();
            break;
        case 'abandon':
            this.failedDelivery(entry);
            break;
        case 'release':
            this.insert(entry);
            this.pump();
            break;
        case 'deadLetter':
            this.moveToDeadLetter(entry, outcome.reason || '', outcome.description || '', props);
            this.pump();
            break;
        default:
            throw new Error('unknown outcome ' + outcome.type);
        }
        return true;
    }

    // renew extends the given locks by the lock duration and returns the new expiry times,
    // or null when any of them is lost (none is renewed then).
    renew(tokens) {
        const entries = tokens.map((t) => this.locked.get(t));
        if (entries.some((e) => !e)) return null;
        const until = new Date(Date.now() + this.lockDurationMs);
        for (const e of entries) {
            e.lock.until = until;
            this.armTimer(e);
        }
        return entries.map(() => until);
    }

    // peek returns up to count entries (available, locked or scheduled) from sequence
    // number from on. Scheduled ones carry scheduled: true.
    peek(from, count) {
        const scheduled = Array.from(this.scheduled.values()).map((s) => ({
            sequence: s.sequence, enqueuedAt: s.submittedAt, message: s.message, deliveryCount: 0, lock: null, scheduled: true,
        }));
        const all = this.available.concat(Array.from(this.locked.values()), scheduled);
        return all.filter((e) => e.sequence >= from).sort((a, b) => a.sequence - b.sequence).slice(0, count);
    }

    stats() {
        const s = {
            active: this.available.length,
            locked: this.locked.size,
            completed: this.completed,
            expired: this.expired,
            deliveries: this.deliveries,
            scheduled: this.scheduled.size,
            duplicates: this.duplicates,
        };
        if (this.deadLetter) {
            s.deadLettered = this.deadLetter.available.length + this.deadLetter.locked.size;
        }
        return s;
    }

    close() {
        for (const e of this.locked.values()) clearTimeout(e.lock.timer);
        for (const e of this.scheduled.values()) clearTimeout(e.timer);
    }
}

// scheduledTime is m's x-opt-scheduled-enqueue-time as a Date, or null.
function scheduledTime(m) {
    const v = sections.annotation(m, 'x-opt-scheduled-enqueue-time');
    if (v === undefined || v === null) return null;
    const d = v instanceof Date ? v : new Date(Number(v));
    return isNaN(d.getTime()) ? null : d;
}

module.exports = { Queue, REASON_MAX_DELIVERY };
