// Path 4: WebSocket over HTTP/2 (RFC 8441) through an intercepted h2 connection. A Node http2
// server that advertises SETTINGS_ENABLE_CONNECT_PROTOCOL speaks WebSocket frames on each extended
// CONNECT stream (decoded with hopscope's own frame parser, encoded with the test encoder); a Node
// http2 client opens the stream through the proxy. The h2 tap hands each stream's DATA to the
// WebSocket tap; the capture must hold the messages as if they had come over HTTP/1.1.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startTestProxy, type TestProxy } from './helpers/proxy.js';
import { upstreamCaFile } from './helpers/upstream.js';
import { recordEvents, type EventLog } from './helpers/events.js';
import { connectThroughProxy, startH2Upstream, type H2Upstream } from './helpers/h2-peers.js';
import { encodeFrame } from '../packages/core/test/helpers/ws-encode.js';
import type { WsWireMessage } from '../packages/core/src/decode/ws/message-assembler.js';
import { deflate, inflate, messageReader, webSocketStream } from './helpers/ws-h2-echo.js';
import { getExchange, getWebSocket, listWsFrames, listWsMessages } from '../packages/core/src/store/queries.js';
import type { WsClosed } from '../packages/core/src/capture/events.js';

const MASK = Buffer.from('a1b2c3d4', 'hex');

describe('WebSocket over HTTP/2 (RFC 8441), intercepted', { timeout: 30_000 }, () => {
  let proxy: TestProxy;
  let log: EventLog;
  let upstream: H2Upstream;
  let caPem: string;

  before(async () => {
    upstream = await startH2Upstream(webSocketStream, { settings: { enableConnectProtocol: true } });
    proxy = await startTestProxy({ upstreamCaFiles: [upstreamCaFile] });
    caPem = readFileSync(proxy.caCertPath, 'utf8');
    log = recordEvents(proxy.bus);
  });

  after(async () => {
    log.stop();
    await proxy.close();
    await upstream.close();
  });

  for (const compressed of [false, true]) {
    test(`${compressed ? 'permessage-deflate' : 'no extension'}: messages both ways, fragments, ping/pong, the closing handshake`, async () => {
      const session = await connectThroughProxy(proxy, 'site.test', upstream.port, { caPem });
      if (!session.remoteSettings.enableConnectProtocol) await new Promise((resolve) => session.once('remoteSettings', resolve));
      assert.equal(session.remoteSettings.enableConnectProtocol, true, 'the server\'s setting crossed the relay');
      const path = `/chat/h2/${compressed}`;
      const stream = session.request(
        {
          ':method': 'CONNECT', ':protocol': 'websocket', ':scheme': 'https', ':path': path, ':authority': `site.test:${upstream.port}`,
          'sec-websocket-version': '13', ...(compressed ? { 'sec-websocket-extensions': 'permessage-deflate' } : {}),
        },
        { endStream: false },
      );
      const status = await new Promise<number>((resolve) => stream.once('response', (h) => resolve(Number(h[':status']))));
      assert.equal(status, 200);

      const received: WsWireMessage[] = [];
      let wake: () => void = () => {};
      stream.on('data', messageReader('server', compressed, (m) => {
        received.push(m);
        wake();
      }));
      const until = async (n: number) => {
        while (received.length < n) await new Promise<void>((resolve) => (wake = resolve));
      };
      const send = (spec: Parameters<typeof encodeFrame>[0]) => stream.write(encodeFrame({ mask: MASK, ...spec }));

      if (compressed) send({ opcode: 1, rsv1: true, payload: deflate('hello over h2') });
      else send({ opcode: 1, payload: 'hello over h2' });
      await until(1);
      send({ opcode: 2, fin: false, payload: Buffer.from([1, 2]) });
      send({ opcode: 0, fin: false, payload: Buffer.from([3]) });
      send({ opcode: 0, payload: Buffer.from([4, 5, 6]) });
      await until(2);
      send({ opcode: 9, payload: 'are you there' });
      await until(3);
      send({ opcode: 8, payload: Buffer.concat([Buffer.from([0x03, 0xe8]), Buffer.from('bye')]) });
      await until(4);
      stream.end();
      await new Promise((resolve) => stream.once('close', resolve));
      session.close();

      // What the client received.
      const text = (m: WsWireMessage) => (m.compressed ? inflate(m.payload) : m.payload).toString('latin1');
      assert.deepEqual(received.map((m) => [m.name, m.compressed, text(m)]), [
        ['text', compressed, 'hello over h2'],
        ['binary', false, '\x01\x02\x03\x04\x05\x06'],
        ['pong', false, 'are you there'],
        ['close', false, '\x03\xe8bye'],
      ]);

      // What the capture holds.
      const request = await log.waitFor((e) => e.kind === 'http.request' && e.target === path);
      const exchangeId = (request as { exchangeId: number }).exchangeId;
      const closed = await log.waitFor((e): e is WsClosed => e.kind === 'ws.closed' && e.exchangeId === exchangeId);
      assert.deepEqual([closed.closedBy, closed.closeCode, closed.closeReason, closed.clean, closed.error], ['client', 1000, 'bye', true, null]);
      await proxy.flush();
      const exchange = getExchange(proxy.db, exchangeId)!;
      assert.deepEqual([exchange.method, exchange.status, exchange.protocol, exchange.state], ['CONNECT', 200, 'h2', 'complete']);
      assert.ok(exchange.streamId !== null && exchange.streamId % 2 === 1);
      const ws = getWebSocket(proxy.db, exchangeId)!;
      assert.equal(ws.deflate !== null, compressed, 'deflate agreed in the h2 headers');
      assert.equal(ws.clean, true);
      const messages = listWsMessages(proxy.db, exchangeId, { limit: 20 }).sort((a, b) => a.messageIndex - b.messageIndex);
      assert.deepEqual(messages.map((m) => [m.side, m.opcode, m.frames, m.compressed, m.data?.toString('latin1')]), [
        ['client', 1, 1, compressed, 'hello over h2'],
        ['server', 1, 1, compressed, 'hello over h2'],
        ['client', 2, 3, false, '\x01\x02\x03\x04\x05\x06'],
        ['server', 2, 1, false, '\x01\x02\x03\x04\x05\x06'],
        ['client', 9, 1, false, 'are you there'],
        ['server', 10, 1, false, 'are you there'],
        ['client', 8, 1, false, '\x03\xe8bye'],
        ['server', 8, 1, false, '\x03\xe8bye'],
      ]);
      const frames = listWsFrames(proxy.db, exchangeId, messages[2].messageIndex);
      assert.deepEqual(frames.map((f) => [f.opcode, f.fin, f.masked, f.maskKey]), [[2, false, true, 'a1b2c3d4'], [0, false, true, 'a1b2c3d4'], [0, true, true, 'a1b2c3d4']]);
    });
  }

  test('a refused extended CONNECT is an ordinary exchange with no WebSocket', async () => {
    const session = await connectThroughProxy(proxy, 'site.test', upstream.port, { caPem });
    if (!session.remoteSettings.enableConnectProtocol) await new Promise((resolve) => session.once('remoteSettings', resolve));
    const stream = session.request({ ':method': 'CONNECT', ':protocol': 'not-websocket', ':scheme': 'https', ':path': '/refused/h2', ':authority': `site.test:${upstream.port}` }, { endStream: false });
    const status = await new Promise<number>((resolve) => stream.once('response', (h) => resolve(Number(h[':status']))));
    assert.equal(status, 400);
    stream.resume();
    await new Promise((resolve) => stream.once('close', resolve));
    session.close();
    const request = await log.waitFor((e) => e.kind === 'http.request' && e.target === '/refused/h2');
    const exchangeId = (request as { exchangeId: number }).exchangeId;
    await log.waitFor((e) => (e.kind === 'http.completed' || e.kind === 'http.failed') && e.exchangeId === exchangeId);
    await proxy.flush();
    assert.equal(getExchange(proxy.db, exchangeId)?.status, 400);
    assert.equal(getWebSocket(proxy.db, exchangeId), null);
  });
});
