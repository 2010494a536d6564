// A tunnel whose first message starts but never completes (a ClientHello cut short, the client
// still connected) must not wait for the rest forever: after the header timeout hopscope gives up
// decoding, relays what it holds and records why.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type net from 'node:net';
import { startTestProxy, type TestProxy } from './helpers/proxy.js';
import { startTcpServer } from './helpers/upstream.js';
import { openTunnel } from './helpers/clients.js';
import { recordEvents, type EventLog } from './helpers/events.js';
import { getConnection } from '../packages/core/src/store/queries.js';

const ALERT = Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]);
// A handshake record announcing 500 bytes of ClientHello, of which only the first few are sent.
const CUT_HELLO = Buffer.from([0x16, 0x03, 0x01, 0x01, 0xf4, 0x01, 0x00, 0x01, 0xf0, 0x03, 0x03, 0x07, 0x07]);

describe('tunnel detection with a first message that stalls', { timeout: 20_000 }, () => {
  let proxy: TestProxy;
  let log: EventLog;
  let upstream: { port: number; close(): Promise<void> };
  let upstreamGot!: Promise<Buffer>;

  before(async () => {
    let resolveGot!: (bytes: Buffer) => void;
    upstreamGot = new Promise((resolve) => (resolveGot = resolve));
    upstream = await startTcpServer((socket: net.Socket) => {
      socket.once('data', (bytes: Buffer) => {
        resolveGot(bytes);
        socket.end(ALERT);
      });
    });
    proxy = await startTestProxy({ headersTimeoutMs: 300 });
    log = recordEvents(proxy.bus);
  });

  after(async () => {
    log.stop();
    await proxy.close();
    await upstream.close();
  });

  test('after the header timeout the bytes held so far are relayed and the stall is recorded', async () => {
    const client = await openTunnel(proxy, `site.test:${upstream.port}`);
    const connId = log.of('conn.tunnel').at(-1)!.connId;
    const answer = new Promise<Buffer>((resolve) => client.once('data', resolve));
    client.resume();
    client.write(CUT_HELLO);

    assert.deepEqual(await upstreamGot, CUT_HELLO);
    assert.deepEqual(await answer, ALERT);
    client.destroy();
    await log.waitFor((e) => e.kind === 'conn.closed' && e.connId === connId);
    await proxy.flush();
    const row = getConnection(proxy.db, connId)!;
    assert.equal(row.detectedProtocol, 'opaque');
    assert.deepEqual(row.decodeErrors.map((d) => [d.decoder, d.code]), [['detect', 'stalled']]);
    assert.match(row.decodeErrors[0].message, /still incomplete after 300 ms/);
  });
});
