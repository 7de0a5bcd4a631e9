'use strict';

// Claims-based security: the client puts a token on the $cbs node for an audience
// ("amqp://host:port/<entity path>") before it attaches links to that entity. Tokens are
// Shared Access Signatures checked against the configured key:
//   SharedAccessSignature sr=<lower(urlencode(audience))>&sig=<urlencode(base64(hmac))>&se=<unix>&skn=<key name>
//   hmac = HMAC-SHA256(key, sr + "\n" + se)
// Neither the token nor the key is ever logged.

const crypto = require('crypto');
const address = require('./address.js');

const SAS_TYPE = 'servicebus.windows.net:sastoken';

class Claims {
    constructor(keyName, key) {
        this.keyName = keyName;
        this.key = key;
    }

    // verify checks one put-token request and returns {ok, status, description, path, expires}.
    verify(tokenType, audience, token) {
        if (tokenType !== SAS_TYPE) {
            return fail(401, `token type ${tokenType} is not accepted here; use a SharedAccessKey connection string`);
        }
        if (typeof token !== 'string' || !token.startsWith('SharedAccessSignature ')) {
            return fail(401, 'malformed shared access signature');
        }
        const fields = {};
        for (const part of token.slice('SharedAccessSignature '.length).split('&')) {
            const i = part.indexOf('=');
            if (i > 0) fields[part.slice(0, i)] = part.slice(i + 1);
        }
        if (!fields.sr || !fields.sig || !fields.se || !fields.skn) {
            return fail(401, 'shared access signature lacks sr, sig, se or skn');
        }
        if (fields.skn !== this.keyName) return fail(401, 'unknown shared access key name');
        const expires = Number(fields.se) * 1000;
        if (!(expires > Date.now())) return fail(401, 'shared access signature has expired');
        const want = crypto.createHmac('sha256', this.key).update(fields.sr + '\n' + fields.se).digest();
        let got;
        try {
            got = Buffer.from(decodeURIComponent(fields.sig), 'base64');
        } catch (e) {
            return fail(401, 'malformed signature');
        }
        if (got.length !== want.length || !crypto.timingSafeEqual(got, want)) {
            return fail(401, 'signature does not match the shared access key');
        }
        const signedFor = decodeURIComponent(fields.sr).toLowerCase();
        if (typeof audience === 'string' && audience.toLowerCase() !== signedFor) {
            return fail(401, 'token was signed for another audience');
        }
        const path = address.stripNamespace(signedFor).toLowerCase().replace(/^\/+|\/+$/g, '');
        return { ok: true, status: 202, description: 'Accepted', path, expires };
    }
}

function fail(status, description) {
    return { ok: false, status, description };
}

// covers reports whether a claim on claimPath grants access to entityPath: the namespace
// root grants everything, an entity grants itself and its sub-paths.
function covers(claimPath, entityPath) {
    return claimPath === '' || entityPath === claimPath || entityPath.startsWith(claimPath + '/');
}

module.exports = { Claims, covers, SAS_TYPE };
