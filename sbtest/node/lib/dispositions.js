'use strict';

// Every delivery's disposition goes out with its own outcome.
//
// rhea 3.0.5 writes a session's pending dispositions through its private
// write_dispositions, which folds deliveries with consecutive ids into one disposition
// frame carrying the first delivery's state. It compares outcomes only once a range holds
// two deliveries, so an abandon of delivery 1 and a complete of delivery 2 settled in the
// same turn go out as one frame [1,2] with the abandon's state, and the client is told the
// wrong outcome for delivery 2. The same code writes the dispositions of received messages
// (a rejected send followed by an accepted one).
//
// install() replaces that writer for outgoing deliveries (Outgoing.update collects, and
// Outgoing.process writes after rhea's own processing) and for incoming ones
// (Incoming.process writes its updated list before rhea's). Deliveries are still folded
// into one range when their ids are consecutive, their settled flags agree and both
// outcomes are accepted (the only outcome without fields); anything else gets a frame of
// its own. The patch is written against rhea 3.0.5, which package.json pins; install
// refuses another version rather than guess at its internals.

const RHEA_VERSION = '3.0.5';
const ACCEPTED = 0x24;

let installed = false;

function install() {
    if (installed) return;
    const version = require('rhea/package.json').version;
    if (version !== RHEA_VERSION) {
        throw new Error(`lib/dispositions.js is written against rhea ${RHEA_VERSION}, found ${version}: review it before upgrading`);
    }
    const Session = require('rhea/lib/session.js');
    const probe = new Session({}, 0);
    const Outgoing = Object.getPrototypeOf(probe.outgoing);
    const Incoming = Object.getPrototypeOf(probe.incoming);

    Outgoing.update = function (delivery, settled, state) {
        if (!delivery) return;
        delivery.settled = settled;
        if (state !== undefined) delivery.state = state;
        if (!delivery.remote_settled) {
            if (!this.sbtestDispositions) this.sbtestDispositions = [];
            this.sbtestDispositions.push(delivery);
        }
        delivery.link.connection._register();
    };
    const outgoingProcess = Outgoing.process;
    Outgoing.process = function () {
        const r = outgoingProcess.apply(this, arguments);
        // rhea's process may dispatch outcomes whose handlers settle more deliveries: write
        // until nothing is pending.
        while (this.sbtestDispositions && this.sbtestDispositions.length > 0) {
            const pending = this.sbtestDispositions;
            this.sbtestDispositions = [];
            writeDispositions(pending);
        }
        return r;
    };

    const incomingProcess = Incoming.process;
    Incoming.process = function () {
        if (this.updated.length > 0) {
            const pending = this.updated;
            this.updated = [];
            writeDispositions(pending);
        }
        return incomingProcess.apply(this, arguments);
    };
    installed = true;
}

// foldable reports whether delivery d may share a disposition frame with the range
// first..last.
function foldable(first, last, d) {
    return d.link.session === first.link.session &&
        d.link.is_receiver() === first.link.is_receiver() &&
        d.id === last.id + 1 &&
        d.settled === first.settled &&
        isAccepted(first.state) && isAccepted(d.state);
}

function isAccepted(state) {
    return state !== undefined && state !== null && state.descriptor !== undefined && Number(state.descriptor.value) === ACCEPTED;
}

function writeDispositions(deliveries) {
    const frames = require('rhea/lib/frames.js');
    let first;
    let last;
    const flush = () => first.link.session.output(frames.disposition({
        role: first.link.is_receiver(), first: first.id, last: last.id, state: first.state, settled: first.settled,
    }));
    for (const d of deliveries) {
        if (first !== undefined && d === last) continue; // updated twice: its latest state goes once
        if (first !== undefined && foldable(first, last, d)) {
            last = d;
            continue;
        }
        if (first !== undefined) flush();
        first = d;
        last = d;
    }
    if (first !== undefined) flush();
}

module.exports = { install, writeDispositions };
