'use strict';

// A local Service Bus endpoint for tests: the AMQP 1.0 subset that azservicebus v1.11
// uses, over plain AMQP on loopback (the client's UseDevelopmentEmulator=true mode).
//
// Configuration comes as JSON in the SBTEST_CONFIG environment variable (so the key does
// not show in the process list):
//   {"queues": ["tasks"], "lockDurationMs": 60000, "maxDeliveryCount": 10,
//    "duplicateDetectionWindowMs": 0 (no duplicate detection) or the history window,
//    "keyName": "...", "key": "...", "host": "127.0.0.1", "port": 0, "controlPort": 0}
// Once listening it prints one JSON line to stdout: {"amqpPort": n, "controlPort": n}.
// Diagnostics go to stderr. It exits when stdin closes, so it never outlives its parent.

const { Broker } = require('./lib/broker.js');
const control = require('./lib/control.js');

function config() {
    const c = JSON.parse(process.env.SBTEST_CONFIG || '{}');
    const out = {
        queues: Array.isArray(c.queues) && c.queues.length > 0 ? c.queues : ['tasks'],
        lockDurationMs: c.lockDurationMs > 0 ? c.lockDurationMs : 60000,
        maxDeliveryCount: c.maxDeliveryCount > 0 ? c.maxDeliveryCount : 10,
        duplicateDetectionWindowMs: c.duplicateDetectionWindowMs > 0 ? c.duplicateDetectionWindowMs : 0,
        keyName: c.keyName || 'RootManageSharedAccessKey',
        key: c.key,
        host: c.host || '127.0.0.1',
        port: c.port || 0,
        controlPort: c.controlPort || 0,
    };
    if (!out.key) throw new Error('SBTEST_CONFIG must carry a key');
    return out;
}

function log(line) {
    process.stderr.write(`sbtest ${new Date().toISOString()} ${line}\n`);
}

async function main() {
    const cfg = config();
    const broker = new Broker(Object.assign({}, cfg, { log }));
    const amqpPort = await broker.listen(cfg.host, cfg.port);
    const ctl = await control.serve(broker, cfg.host, cfg.controlPort);
    process.stdout.write(JSON.stringify({ amqpPort, controlPort: ctl.port }) + '\n');
    log(`listening on amqp://${cfg.host}:${amqpPort} (control ${ctl.port}), queues ${cfg.queues.join(', ')}, lock ${cfg.lockDurationMs} ms, max delivery count ${cfg.maxDeliveryCount}, duplicate detection ${cfg.duplicateDetectionWindowMs > 0 ? cfg.duplicateDetectionWindowMs + ' ms' : 'off'}`);
    const stop = () => {
        broker.close();
        ctl.server.close();
        process.exit(0);
    };
    process.stdin.on('end', stop);
    process.stdin.on('close', stop);
    process.stdin.resume();
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
}

main().catch((e) => {
    log(`failed to start: ${e.message}`);
    process.exit(1);
});
