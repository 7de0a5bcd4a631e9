'use strict';

// A stored message is kept as its typed AMQP sections (rhea's Typed values, never unwrapped
// to plain JavaScript), so properties, application properties and the body leave the
// endpoint exactly as they arrived: an int32 stays an int32, a uuid stays a uuid. Only the
// header and the message annotations are rewritten on each delivery, as Service Bus does.

const types = require('rhea').types;

const HEADER = 0x70;
const DELIVERY_ANNOTATIONS = 0x71;
const MESSAGE_ANNOTATIONS = 0x72;
const PROPERTIES = 0x73;
const APPLICATION_PROPERTIES = 0x74;
const DATA = 0x75;

const SYMBOLIC = {
    'amqp:header:list': 0x70,
    'amqp:delivery-annotations:map': 0x71,
    'amqp:message-annotations:map': 0x72,
    'amqp:properties:list': 0x73,
    'amqp:application-properties:map': 0x74,
    'amqp:data:binary': 0x75,
    'amqp:amqp-sequence:list': 0x76,
    'amqp:value:*': 0x77,
    'amqp:footer:map': 0x78,
};

function sectionCode(typed) {
    const d = typed.descriptor;
    if (!d) throw new Error('message section without a descriptor');
    if (typeof d.value === 'number') return d.value;
    if (typeof d.value === 'string' && SYMBOLIC[d.value] !== undefined) return SYMBOLIC[d.value];
    throw new Error('unknown message section descriptor ' + String(d.value));
}

function isTyped(v) {
    return v !== null && typeof v === 'object' && v.type !== undefined && 'value' in v;
}

// normalize makes a value read by rhea's Reader writable again by its Writer: array items
// are read as Typed values but written as raw ones.
function normalize(t) {
    if (!isTyped(t)) return t;
    const code = t.type.typecode;
    if ((code === 0xe0 || code === 0xf0) && Array.isArray(t.value)) {
        t.value = t.value.map((i) => (isTyped(i) ? normalize(i).value : i));
    } else if (Array.isArray(t.value)) {
        t.value.forEach(normalize);
    }
    return t;
}

// parse splits an encoded message (transfer payload of format 0) into its sections.
function parse(buffer) {
    const reader = new types.Reader(buffer);
    const m = { header: undefined, messageAnnotations: undefined, properties: undefined, applicationProperties: undefined, rest: [] };
    while (reader.remaining() > 0) {
        const s = normalize(reader.read());
        switch (sectionCode(s)) {
        case HEADER: m.header = s; break;
        case DELIVERY_ANNOTATIONS: break; // per hop; never stored
        case MESSAGE_ANNOTATIONS: m.messageAnnotations = s; break;
        case PROPERTIES: m.properties = s; break;
        case APPLICATION_PROPERTIES: m.applicationProperties = s; break;
        default: m.rest.push(s); // body sections and footer, in order
        }
    }
    return m;
}

// splitBatch returns the encoded messages inside a batch envelope (message format
// 0x80013700): each data section of the envelope's body is one whole message.
function splitBatch(buffer) {
    const reader = new types.Reader(buffer);
    const out = [];
    while (reader.remaining() > 0) {
        const s = reader.read();
        if (sectionCode(s) === DATA) out.push(s.value);
    }
    return out;
}

function wrapValue(v) {
    return isTyped(v) ? v : types.wrap(v);
}

// mapEntries returns a map section's [key, value, ...] list, or [] when absent.
function mapEntries(section) {
    return section && Array.isArray(section.value) ? section.value.slice() : [];
}

function keyName(k) {
    return isTyped(k) ? String(k.value) : String(k);
}

// withEntries returns a map section like section with the given keys set (replacing any
// entry of the same name). keyWrap makes a key: symbols for annotations, strings for
// application properties.
function withEntries(code, section, values, keyWrap) {
    const names = new Set(Object.keys(values));
    const entries = [];
    const old = mapEntries(section);
    for (let i = 0; i + 1 < old.length; i += 2) {
        if (!names.has(keyName(old[i]))) entries.push(old[i], old[i + 1]);
    }
    for (const name of names) entries.push(keyWrap(name), wrapValue(values[name]));
    return types.described(types.wrap_ulong(code), types.Map32(entries));
}

// readMap returns a map section as a plain object of unwrapped values (for lookups only).
function readMap(section) {
    const out = {};
    const e = mapEntries(section);
    for (let i = 0; i + 1 < e.length; i += 2) out[keyName(e[i])] = types.unwrap(e[i + 1]);
    return out;
}

// withApplicationProperties returns a copy of m with the given application properties set.
function withApplicationProperties(m, values) {
    return Object.assign({}, m, { applicationProperties: withEntries(APPLICATION_PROPERTIES, m.applicationProperties, values, types.wrap_string) });
}

function headerField(m, i) {
    if (!m.header || !Array.isArray(m.header.value)) return null;
    const v = m.header.value[i];
    return v === undefined ? null : v;
}

// ttlMillis is the header's time-to-live, or 0 when none was set.
function ttlMillis(m) {
    const t = headerField(m, 2);
    return t && typeof t.value === 'number' ? t.value : 0;
}

// encode writes m for one delivery: a header carrying deliveryCount (the number of earlier
// failed deliveries), the stored annotations plus the given ones (symbol keys), then the
// stored properties, application properties, body and footer untouched.
function encode(m, deliveryCount, annotations) {
    const header = types.described(types.wrap_ulong(HEADER), types.List32([
        headerField(m, 0) || types.Null(), // durable
        headerField(m, 1) || types.Null(), // priority
        headerField(m, 2) || types.Null(), // ttl
        types.wrap_boolean(deliveryCount === 0), // first-acquirer
        types.Uint(deliveryCount),
    ]));
    const w = new types.Writer();
    w.write(header);
    w.write(withEntries(MESSAGE_ANNOTATIONS, m.messageAnnotations, annotations, types.wrap_symbol));
    if (m.properties) w.write(m.properties);
    if (m.applicationProperties) w.write(m.applicationProperties);
    for (const s of m.rest) w.write(s);
    return w.toBuffer();
}

// messageIdString is m's message-id in string form (a uuid in its canonical form, binary
// as hex, numbers in decimal), or null when it has none.
function messageIdString(m) {
    if (!m.properties || !Array.isArray(m.properties.value)) return null;
    const t = m.properties.value[0];
    if (t === undefined || t === null) return null;
    const v = isTyped(t) ? t.value : t;
    if (v === null || v === undefined) return null;
    if (Buffer.isBuffer(v)) {
        const h = v.toString('hex');
        if (isTyped(t) && t.type.typecode === 0x98) {
            return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
        }
        return h;
    }
    return String(v);
}

// annotation returns one stored message annotation (unwrapped), or undefined.
function annotation(m, name) {
    return readMap(m.messageAnnotations)[name];
}

module.exports = {
    parse, splitBatch, encode, annotation, readMap, withApplicationProperties, ttlMillis, isTyped, messageIdString,
};
