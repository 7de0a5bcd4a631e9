'use strict';

// Entity addresses as azservicebus v1.11 writes them in attach frames and CBS audiences:
//   <queue>                            the queue
//   <queue>/$DeadLetterQueue           its dead-letter sub-queue
//   <queue>/$management                the request/response node for the queue
//   <queue>/$DeadLetterQueue/$management
//   $cbs                               claims-based security node
// Service Bus treats entity names case-insensitively, so everything is lower-cased.

const DEAD_LETTER = '$deadletterqueue';
const MANAGEMENT = '$management';
const CBS = '$cbs';

// parse returns {kind: 'cbs'} or {kind: 'entity'|'management', queue, deadLetter, path}
// (path is the entity path without the management suffix), or null when the address
// names nothing this endpoint serves the shape of.
function parse(address) {
    if (typeof address !== 'string' || address === '') return null;
    let path = stripNamespace(address).toLowerCase().replace(/^\/+|\/+$/g, '');
    if (path === CBS) return { kind: 'cbs' };
    let kind = 'entity';
    if (path.endsWith('/' + MANAGEMENT)) {
        kind = 'management';
        path = path.slice(0, -(MANAGEMENT.length + 1));
    }
    const parts = path.split('/');
    if (parts.length === 1 && parts[0] !== '') {
        return { kind, queue: parts[0], deadLetter: false, path };
    }
    if (parts.length === 2 && parts[1] === DEAD_LETTER) {
        return { kind, queue: parts[0], deadLetter: true, path };
    }
    return { kind: 'unsupported', path };
}

// stripNamespace turns "amqp://host:port/queue" (a CBS audience) into "queue"; plain
// paths pass through.
function stripNamespace(address) {
    const m = /^[a-z][a-z0-9+.-]*:\/\/[^/]*(\/.*)?$/i.exec(address);
    if (!m) return address;
    return m[1] || '';
}

module.exports = { parse, stripNamespace };
