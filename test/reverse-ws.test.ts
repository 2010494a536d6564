// WebSockets through the reverse proxy with translation: an RFC 8441 client (Node's http2 doing
// extended CONNECT, frames by hand) in front of an HTTP/1.1 `ws` server, and a `ws` client (HTTP/1.1
// Upgrade) in front of HTTP/2-only servers that accept extended CONNECT. Subprotocol and
// permessage-deflate are negotiated end to end; the capture shows both legs' protocols and the
// messages under the handshake exchange.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { WebSocket } from 'ws';
import { getConnection, getExchange, listExchanges } from '../packages/core/src/store/queries.js';
import { getWebSocket, listWsMessages } from '../packages/core/src/store/ws-queries.js';
import type { ExchangeDetail } from '../packages/core/src/store/row-types.js';
import { parseReverseRule } from '../packages/core/src/reverse/reverse-rules.js';
import { startTestProxy, type TestProxy } from './helpers/proxy.js';
import { upstreamCaFile, upstreamTls } from './helpers/upstream.js';
import { ClientLog, opened, refused, startWsServer, type TestWsServer } from './helpers/ws-peers.js';
import { encodeFrame, FrameReader } from './helpers/ws-frames.js';

const TEXT = 0x1;
const BINARY = 0x2;
const CLOSE = 0x8;

interface H2WsServer {
  port: number;
  /** Request header lists of the extended CONNECTs it got (raw, pseudo-headers included). */
  handshakes: Array<Array<[string, string]>>;
  /** Messages it received, inflated. */
  received: Array<{ opcode: number; text: string; compressed: boolean }>;
  close(): Promise<void>;
}

/**
 * An HTTP/2-only WebSocket server (RFC 8441): answers extended CONNECT with 200, the first offered
 * subprotocol and permessage-deflate without context takeover when offered; echoes every message
 * compressed; answers a close with a close. `/forbidden` gets a 403 with a body.
 */
async function startH2WsServer(options: { tls: boolean; connectProtocol: boolean }): Promise<H2WsServer> {
  const settings = { enableConnectProtocol: options.connectProtocol };
  const server = options.tls ? http2.createSecureServer({ ...upstreamTls, settings }) : http2.createServer({ settings });
  const handshakes: H2WsServer['handshakes'] = [];
  const received: H2WsServer['received'] = [];
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s: http2.ServerHttp2Session) => {
    sessions.add(s);
    s.on('error', () => {});
    s.once('close', () => sessions.delete(s));
  });
  server.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, _flags: number, raw: string[]) => {
    stream.on('error', () => {});
    const list: Array<[string, string]> = [];
    for (let i = 0; i < raw.length; i += 2) list.push([raw[i], raw[i + 1]]);
    handshakes.push(list);
    if (String(headers[':path']).endsWith('/forbidden')) {
      stream.respond({ ':status': 403, 'content-type': 'text/plain' });
      return stream.end('no websockets here');
    }
    const offered = String(headers['sec-websocket-protocol'] ?? '').split(',')[0].trim();
    const deflate = /permessage-deflate/.test(String(headers['sec-websocket-extensions'] ?? ''));
    stream.respond({
      ':status': 200,
      ...(offered ? { 'sec-websocket-protocol': offered } : {}),
      ...(deflate ? { 'sec-websocket-extensions': 'permessage-deflate; server_no_context_takeover; client_no_context_takeover' } : {}),
    });
    const reader = new FrameReader();
    let seen = 0;
    stream.on('data', (chunk: Buffer) => {
      reader.push(chunk);
      for (; seen < reader.frames.length; seen++) {
        const f = reader.frames[seen];
        if (f.opcode === CLOSE) {
          stream.end(encodeFrame(CLOSE, f.payload, { mask: false }));
          continue;
        }
        received.push({ opcode: f.opcode, text: f.payload.toString(), compressed: f.rsv1 });
        stream.write(encodeFrame(f.opcode, f.payload, { mask: false, deflate }));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    handshakes,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sessions) s.destroy();
        server.close(() => resolve());
      }),
  };
}

async function exchangeFor(proxy: TestProxy, path: string): Promise<ExchangeDetail> {
  await proxy.flush();
  const all = listExchanges(proxy.db, { limit: 1000, order: 'oldest' }).map((e) => getExchange(proxy.db, e.id)!);
  const found = all.filter((e) => new URL(e.url).pathname === path).at(-1);
  assert.ok(found, `no exchange for ${path}`);
  return found;
}

const header = (list: Array<[string, string]>, name: string) => list.find(([n]) => n.toLowerCase() === name)?.[1];

describe('WebSocket through the reverse proxy, translated', { timeout: 30_000 }, () => {
  let proxy: TestProxy;
  let wsServer: TestWsServer;
  let h2c: H2WsServer;
  let h2tls: H2WsServer;
  let h2NoConnect: H2WsServer;
  let refusing: TestWsServer;
  let ca: string;
  let base: string;

  before(async () => {
    [wsServer, h2c, h2tls, h2NoConnect, refusing] = await Promise.all([
      startWsServer({ perMessageDeflate: true }),
      startH2WsServer({ tls: false, connectProtocol: true }),
      startH2WsServer({ tls: true, connectProtocol: true }),
      startH2WsServer({ tls: false, connectProtocol: false }),
      startWsServer({ refuseWith: 401 }),
    ]);
    proxy = await startTestProxy({
      upstreamCaFiles: [upstreamCaFile],
      reverse: {
        rules: [
          parseReverseRule(`/chat=http://127.0.0.1:${wsServer.port}`),
          parseReverseRule(`/h2c=h2c://127.0.0.1:${h2c.port}`),
          parseReverseRule(`/h2tls=https://localhost:${h2tls.port}`),
          parseReverseRule(`/noconnect=h2c://127.0.0.1:${h2NoConnect.port}`),
          parseReverseRule(`/refusing=http://127.0.0.1:${refusing.port}`),
        ],
        listenHost: '127.0.0.1',
        listenPort: 0,
        tls: true,
        hostHeader: 'upstream',
      },
    });
    ca = readFileSync(proxy.caCertPath, 'utf8');
    base = proxy.reverseUrl!;
  });
  after(async () => {
    await proxy.close();
    await Promise.all([wsServer.close(), h2c.close(), h2tls.close(), h2NoConnect.close(), refusing.close()]);
  });

  test('an RFC 8441 client (extended CONNECT) in front of an HTTP/1.1 ws server: 101 -> 200, subprotocol and permessage-deflate end to end', async () => {
    const session = http2.connect(base, { ca });
    session.on('error', () => {});
    const settings = await new Promise<http2.Settings>((resolve) => session.once('remoteSettings', resolve));
    assert.equal(settings.enableConnectProtocol, true, 'the reverse listener advertises RFC 8441');
    const stream = session.request(
      {
        ':method': 'CONNECT',
        ':protocol': 'websocket',
        ':scheme': 'https',
        ':path': '/chat?room=1',
        ':authority': new URL(base).host,
        'sec-websocket-version': '13',
        'sec-websocket-protocol': 'chat, superchat',
        'sec-websocket-extensions': 'permessage-deflate; client_no_context_takeover; server_no_context_takeover',
        origin: 'https://app.test',
      },
      { endStream: false },
    );
    const response = await new Promise<http2.IncomingHttpHeaders>((resolve) => stream.once('response', resolve));
    assert.equal(response[':status'], 200);
    assert.equal(response['sec-websocket-protocol'], 'chat');
    assert.match(String(response['sec-websocket-extensions']), /^permessage-deflate/);
    assert.equal(response['sec-websocket-accept'], undefined, 'no accept on HTTP/2');

    const reader = new FrameReader();
    stream.on('data', (c: Buffer) => reader.push(c));
    stream.write(encodeFrame(TEXT, 'hello plain', { mask: true }));
    stream.write(encodeFrame(TEXT, 'hello deflated', { mask: true, deflate: true }));
    stream.write(encodeFrame(BINARY, Buffer.from([1, 2, 3]), { mask: true }));
    const echoes = await reader.until(3);
    assert.deepEqual(echoes.map((f) => [f.opcode, f.payload.toString('hex'), f.rsv1]), [
      [TEXT, Buffer.from('hello plain').toString('hex'), true],
      [TEXT, Buffer.from('hello deflated').toString('hex'), true],
      [BINARY, '010203', true],
    ]);
    const close = Buffer.alloc(2);
    close.writeUInt16BE(1000);
    stream.write(encodeFrame(CLOSE, close, { mask: true }));
    const frames = await reader.until(4);
    assert.equal(frames[3].opcode, CLOSE);
    stream.end();
    await new Promise<void>((resolve) => stream.once('close', () => resolve()));
    session.close();

    const peer = await wsServer.nextPeer();
    assert.deepEqual(peer.received.map((m) => m.data.toString('hex')), ['hello plain', 'hello deflated', '\x01\x02\x03'].map((t) => Buffer.from(t).toString('hex')));
    const upgrade = peer.request.headers;
    assert.equal(upgrade.upgrade, 'websocket');
    assert.match(String(upgrade['sec-websocket-key']), /^[A-Za-z0-9+/]{22}==$/, 'a key generated for the HTTP/1.1 leg');
    assert.equal(upgrade['sec-websocket-protocol'], 'chat, superchat');
    assert.equal(upgrade.origin, 'https://app.test');
    assert.equal(upgrade.host, `127.0.0.1:${wsServer.port}`);
    assert.equal(peer.request.url, '/chat?room=1');
    assert.equal((await peer.closed).code, 1000);

    const ex = await exchangeFor(proxy, '/chat');
    assert.equal(ex.protocol, 'h2');
    assert.equal(ex.responseProtocol, 'HTTP/1.1');
    assert.equal(ex.method, 'CONNECT');
    assert.equal(ex.status, 101, 'the upstream leg switched with a 101');
    assert.equal(ex.state, 'complete');
    assert.equal(getConnection(proxy.db, ex.connectionId)?.listener, 'reverse');
    const ws = getWebSocket(proxy.db, ex.id)!;
    assert.equal(ws.subprotocol, 'chat');
    assert.ok(ws.deflate, 'permessage-deflate is in the capture');
    assert.equal(ws.deflate!.server.noContextTakeover, true);
    const messages = listWsMessages(proxy.db, ex.id, { limit: 100 });
    const sent = (side: string) => messages.filter((m) => m.side === side && m.opcode !== CLOSE).map((m) => [m.opcode, m.compressed, m.data?.toString() ?? '']);
    assert.deepEqual(sent('client'), [
      [TEXT, false, 'hello plain'],
      [TEXT, true, 'hello deflated'],
      [BINARY, false, '\x01\x02\x03'],
    ]);
    assert.deepEqual(sent('server'), [
      [TEXT, true, 'hello plain'],
      [TEXT, true, 'hello deflated'],
      [BINARY, true, '\x01\x02\x03'],
    ]);
    assert.deepEqual(messages.filter((m) => m.opcode === CLOSE).map((m) => [m.side, m.closeCode]), [['client', 1000], ['server', 1000]]);
    assert.equal(ws.clean, true);
  });

  for (const [prefix, upstreamProtocol] of [['/h2c', 'h2c'], ['/h2tls', 'h2']] as const) {
    test(`a ws client (HTTP/1.1 Upgrade) in front of an HTTP/2-only server (${upstreamProtocol}): extended CONNECT upstream, 200 -> 101 with our accept`, async () => {
      const server = prefix === '/h2c' ? h2c : h2tls;
      const client = new WebSocket(`${base}${prefix}/room`, ['chat', 'other'], {
        ca,
        perMessageDeflate: { threshold: 0, clientNoContextTakeover: true, serverNoContextTakeover: true },
      });
      client.on('error', () => {});
      const log = new ClientLog(client);
      await opened(client);
      assert.equal(client.protocol, 'chat');
      assert.match(client.extensions, /permessage-deflate/);
      client.send('hi from ws');
      client.send(Buffer.from([9, 8, 7]));
      await log.until(() => log.messages.length === 2);
      assert.deepEqual(log.messages.map((m) => [m.binary, m.data.toString('hex')]), [
        [false, Buffer.from('hi from ws').toString('hex')],
        [true, '090807'],
      ]);
      client.close(1000, 'bye');
      assert.equal((await log.closed).code, 1000);

      const handshake = server.handshakes.at(-1)!;
      assert.equal(header(handshake, ':method'), 'CONNECT');
      assert.equal(header(handshake, ':protocol'), 'websocket');
      assert.equal(header(handshake, ':path'), `${prefix}/room`);
      assert.equal(header(handshake, ':scheme'), upstreamProtocol === 'h2' ? 'https' : 'http');
      assert.equal(header(handshake, 'sec-websocket-version'), '13');
      assert.equal(header(handshake, 'sec-websocket-protocol'), 'chat,other', 'as the ws client wrote it');
      assert.equal(header(handshake, 'sec-websocket-key'), undefined, 'no key on HTTP/2');
      assert.equal(header(handshake, 'upgrade'), undefined);
      assert.deepEqual(server.received.slice(-2).map((m) => [m.opcode, m.compressed]), [[TEXT, true], [BINARY, true]]);

      const ex = await exchangeFor(proxy, `${prefix}/room`);
      assert.equal(ex.protocol, 'HTTP/1.1');
      assert.equal(ex.responseProtocol, upstreamProtocol);
      assert.equal(ex.status, 200);
      assert.equal(ex.state, 'complete');
      const upstreamLeg = getConnection(proxy.db, ex.connectionId)!.tls.upstream;
      assert.deepEqual(upstreamLeg && [upstreamLeg.sni, upstreamLeg.alpn], upstreamProtocol === 'h2' ? ['localhost', 'h2'] : null, 'the upstream TLS leg');
      const ws = getWebSocket(proxy.db, ex.id)!;
      assert.equal(ws.subprotocol, 'chat');
      assert.ok(ws.deflate);
      const messages = listWsMessages(proxy.db, ex.id, { limit: 100 });
      for (const side of ['client', 'server']) {
        assert.deepEqual(
          messages.filter((m) => m.side === side && m.opcode !== CLOSE).map((m) => [m.opcode, m.compressed, m.data?.toString('hex')]),
          [
            [TEXT, true, Buffer.from('hi from ws').toString('hex')],
            [BINARY, true, '090807'],
          ],
          side,
        );
      }
      assert.deepEqual(messages.filter((m) => m.opcode === CLOSE).map((m) => [m.side, m.closeCode, m.closeReason]), [['client', 1000, 'bye'], ['server', 1000, 'bye']]);
    });
  }

  test('same protocol on both legs: a ws client to the ws server (its key passes through), an RFC 8441 client to an HTTP/2 server', async () => {
    // RFC 6455 §1.3's sample key and accept: an HTTP/1.1 client's key goes on to an HTTP/1.1 upstream.
    const { socket, accept } = await new Promise<{ socket: Duplex; accept: string | undefined }>((resolve, reject) => {
      const req = https.request(`${base}/chat/direct`, {
        ca,
        agent: false,
        headers: { Upgrade: 'websocket', Connection: 'Upgrade', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version': '13' },
      });
      req.on('upgrade', (res, upgraded: Duplex) => resolve({ socket: upgraded, accept: res.headers['sec-websocket-accept'] }));
      req.on('response', (res) => reject(new Error(`no switch: ${res.statusCode}`)));
      req.on('error', reject);
      req.end();
    });
    assert.equal(accept, 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
    const peer = await wsServer.nextPeer();
    assert.equal(peer.request.headers['sec-websocket-key'], 'dGhlIHNhbXBsZSBub25jZQ==');
    const frames = new FrameReader();
    socket.on('data', (c: Buffer) => frames.push(c));
    socket.write(encodeFrame(TEXT, 'same', { mask: true }));
    assert.equal((await frames.until(1))[0].payload.toString(), 'same');
    socket.destroy();
    const h1Ex = await exchangeFor(proxy, '/chat/direct');
    assert.deepEqual([h1Ex.protocol, h1Ex.responseProtocol, h1Ex.status], ['HTTP/1.1', 'HTTP/1.1', 101]);

    const session = http2.connect(base, { ca });
    session.on('error', () => {});
    await new Promise((resolve) => session.once('remoteSettings', resolve));
    const stream = session.request(
      { ':method': 'CONNECT', ':protocol': 'websocket', ':scheme': 'https', ':path': '/h2tls/both', ':authority': new URL(base).host, 'sec-websocket-version': '13' },
      { endStream: false },
    );
    const response = await new Promise<http2.IncomingHttpHeaders>((resolve) => stream.once('response', resolve));
    assert.equal(response[':status'], 200);
    const reader = new FrameReader();
    stream.on('data', (c: Buffer) => reader.push(c));
    stream.write(encodeFrame(TEXT, 'over h2 twice', { mask: true }));
    const [echo] = await reader.until(1);
    assert.equal(echo.payload.toString(), 'over h2 twice');
    stream.close();
    session.close();
    const h2Ex = await exchangeFor(proxy, '/h2tls/both');
    assert.deepEqual([h2Ex.protocol, h2Ex.responseProtocol, h2Ex.status], ['h2', 'h2', 200]);
    assert.equal(header(h2tls.handshakes.at(-1)!, ':protocol'), 'websocket');
  });

  test('an HTTP/2 upstream without SETTINGS_ENABLE_CONNECT_PROTOCOL: the ws client gets a 502 saying so', async () => {
    const client = new WebSocket(`${base}/noconnect/x`, { ca });
    client.on('error', () => {});
    const answer = await refused(client);
    assert.equal(answer.status, 502);
    assert.match(answer.body, /^hopscope: h2c:\/\/127\.0\.0\.1:\d+ does not accept WebSockets over HTTP\/2: .*SETTINGS_ENABLE_CONNECT_PROTOCOL/);
    assert.equal(h2NoConnect.handshakes.length, 0, 'no CONNECT was sent');
    const ex = await exchangeFor(proxy, '/noconnect/x');
    assert.equal(ex.state, 'failed');
    assert.equal(ex.error?.code, 'no-extended-connect');
  });

  test('refused handshakes are relayed as ordinary responses: 403 from an HTTP/2 server to a ws client, 401 from a ws server to an RFC 8441 client', async () => {
    const client = new WebSocket(`${base}/h2c/forbidden`, { ca });
    client.on('error', () => {});
    const answer = await refused(client);
    assert.equal(answer.status, 403);
    assert.equal(answer.body, 'no websockets here');
    const ex = await exchangeFor(proxy, '/h2c/forbidden');
    assert.equal(ex.status, 403);
    assert.equal(ex.state, 'complete');
    assert.equal(ex.responseBody?.data.toString(), 'no websockets here');

    const session = http2.connect(base, { ca });
    session.on('error', () => {});
    const result = await new Promise<{ status: number; body: string }>((resolve) => {
      const stream = session.request({ ':method': 'CONNECT', ':protocol': 'websocket', ':scheme': 'https', ':path': '/refusing', ':authority': new URL(base).host, 'sec-websocket-version': '13' });
      let status = 0;
      let body = '';
      stream.on('response', (h) => (status = Number(h[':status'])));
      stream.setEncoding('utf8').on('data', (d: string) => (body += d));
      stream.on('close', () => resolve({ status, body }));
    });
    session.close();
    assert.equal(result.status, 401);
    assert.equal(result.body, 'Unauthorized');
    const refusedEx = await exchangeFor(proxy, '/refusing');
    assert.equal(refusedEx.protocol, 'h2');
    assert.equal(refusedEx.responseProtocol, 'HTTP/1.1');
    assert.equal(refusedEx.status, 401);
    assert.equal(refusedEx.state, 'complete');
  });
});
