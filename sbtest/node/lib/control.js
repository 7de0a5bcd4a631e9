'use strict';

// The test-control port (HTTP on loopback): what a test needs to observe or disturb that
// the Service Bus protocol itself does not offer.
//   GET  /stats   {"queues": {"<name>": {"active", "locked", "deadLettered", "completed", "expired", "deliveries"}}}
//   POST /drop    cut every AMQP connection at the socket; {"dropped": n}

const http = require('http');

function serve(broker, host, port) {
    const server = http.createServer((req, res) => {
        const send = (status, body) => {
            res.writeHead(status, { 'content-type': 'application/json' });
            res.end(JSON.stringify(body));
        };
        const path = req.url.split('?')[0];
        if (req.method === 'GET' && path === '/stats') return send(200, { queues: broker.stats() });
        if (req.method === 'POST' && path === '/drop') return send(200, { dropped: broker.dropConnections() });
        return send(404, { error: `no ${req.method} ${path}` });
    });
    return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => resolve({ server, port: server.address().port }));
    });
}

module.exports = { serve };
