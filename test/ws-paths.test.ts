// WebSocket through hopscope on every HTTP/1.1 path, with real `ws` peers: what each peer received
// and what the capture holds (messages in order, sizes, compression, frames, how it closed).
//   absolute-form: GET http://… + Upgrade on the proxy port (the active path)
//   connect:       ws:// inside a CONNECT tunnel (the HTTP/1 tap hands over to the WebSocket tap)
//   connect-tls:   wss:// inside a CONNECT tunnel with TLS interception
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { startTestProxy, type TestProxy } from './helpers/proxy.js';
import { startTcpServer, upstreamCaFile } from './helpers/upstream.js';
import { openTunnel } from './helpers/clients.js';
import { encodeFrame } from '../packages/core/test/helpers/ws-encode.js';
import { recordEvents, type EventLog } from './helpers/events.js';
import { ClientLog, connectClient, opened, tcpOf, refused, startWsServer, type TestWsServer, type WsPath } from './helpers/ws-peers.js';
import { getConnection, getExchange, getWebSocket, listWsFrames, listWsMessages } from '../packages/core/src/store/queries.js';
import type { WsClosed } from '../packages/core/src/capture/events.js';

const PATHS: WsPath[] = ['absolute-form', 'connect', 'connect-tls'];

describe('WebSocket on every HTTP/1.1 path', { timeout: 60_000 }, () => {
  let proxy: TestProxy;
  let log: EventLog;
  let caPem: string;
  const servers = new Map<string, TestWsServer>();
  const server = (path: WsPath, deflate: boolean) => servers.get(`${path === 'connect-tls'}-${deflate}`)!;
  let testNo = 0;

  before(async () => {
    for (const tls of [false, true]) {
      for (const deflate of [false, true]) servers.set(`${tls}-${deflate}`, await startWsServer({ tls, perMessageDeflate: deflate }));
    }
    proxy = await startTestProxy({ upstreamCaFiles: [upstreamCaFile] });
    caPem = readFileSync(proxy.caCertPath, 'utf8');
    log = recordEvents(proxy.bus);
  });

  after(async () => {
    log.stop();
    await proxy.close();
    await Promise.all([...servers.values()].map((s) => s.close()));
  });

  /** The handshake exchange of the request whose URL ends with `urlPath`. */
  const handshakeId = async (urlPath: string) => {
    const request = await log.waitFor((e) => e.kind === 'http.request' && e.url.endsWith(urlPath));
    return (request as { exchangeId: number }).exchangeId;
  };
  const closedEvent = (exchangeId: number) => log.waitFor((e): e is WsClosed => e.kind === 'ws.closed' && e.exchangeId === exchangeId);

  for (const path of PATHS) {
    for (const deflate of [false, true]) {
      test(`${path}, ${deflate ? 'permessage-deflate' : 'no extension'}: text, binary, fragments, ping/pong and a close code both ways`, async () => {
        const srv = server(path, deflate);
        const urlPath = `/chat/${++testNo}`;
        const socket = connectClient({ path, proxy, ca: caPem, host: 'site.test', port: srv.port, urlPath, perMessageDeflate: deflate });
        const client = new ClientLog(socket);
        await opened(socket);
        const peer = await srv.nextPeer();
        assert.equal(peer.request.url, urlPath, 'the server got an origin-form request');
        assert.equal(peer.request.headers.upgrade, 'websocket', 'Upgrade reached the server');
        assert.equal(socket.extensions.includes('permessage-deflate'), deflate, 'extensions negotiated end to end');

        const binary = randomBytes(70_000);
        socket.send('hello');
        await client.until(() => client.messages.length === 1);
        socket.send(binary);
        await client.until(() => client.messages.length === 2);
        socket.send('frag-', { fin: false });
        socket.send('ment', { fin: false });
        socket.send('ed', { fin: true });
        await client.until(() => client.messages.length === 3);
        socket.ping('p1');
        await client.until(() => client.pongs.length === 1);
        socket.send('fragments');
        await client.until(() => client.messages.length === 4);
        socket.send('ping srv');
        await client.until(() => client.pings.length === 1);
        socket.close(4001, 'bye now');
        assert.deepEqual(await client.closed, { code: 4001, reason: 'bye now' });
        assert.deepEqual(await peer.closed, { code: 4001, reason: 'bye now' });

        // What each peer received.
        assert.deepEqual(peer.received.map((m) => [m.binary, m.binary ? m.data.length : m.data.toString()]), [
          [false, 'hello'], [true, 70_000], [false, 'frag-mented'], [false, 'fragments'], [false, 'ping srv'],
        ]);
        assert.ok(peer.received[1].data.equals(binary));
        assert.deepEqual(client.messages.map((m) => [m.binary, m.data.toString('latin1')]).map(([b, t], i) => (i === 1 ? [b, (t as string).length] : [b, t])), [
          [false, 'hello'], [true, 70_000], [false, 'frag-mented'], [true, 'first-second-third'],
        ]);
        assert.ok(client.messages[1].data.equals(binary));
        assert.deepEqual([client.pongs.map(String), peer.pings.map(String), client.pings.map(String)], [['p1'], ['p1'], ['srv']]);

        // What the capture holds.
        const exchangeId = await handshakeId(urlPath);
        const closed = await closedEvent(exchangeId);
        await proxy.flush();
        const exchange = getExchange(proxy.db, exchangeId)!;
        assert.deepEqual([exchange.method, exchange.status, exchange.state, exchange.scheme], ['GET', 101, 'complete', path === 'connect-tls' ? 'https' : 'http']);
        if (path === 'connect-tls') assert.equal(getConnection(proxy.db, exchange.connectionId)?.intercepted, true);
        const ws = getWebSocket(proxy.db, exchangeId)!;
        assert.deepEqual([ws.closedBy, ws.closeCode, ws.closeReason, ws.clean, ws.error], ['client', 4001, 'bye now', true, null]);
        assert.equal(ws.deflate !== null, deflate);
        assert.deepEqual([ws.messagesFromClient, ws.messagesFromServer], [8, 7]);
        assert.equal(closed.bytesFromClient, ws.bytesFromClient);

        const messages = listWsMessages(proxy.db, exchangeId, { limit: 100 }).sort((a, b) => a.messageIndex - b.messageIndex);
        const shown = messages.map((m) => [m.side, m.opcode, m.opcode === 2 && m.decodedSize > 100 ? m.decodedSize : m.data?.toString('latin1'), m.frames, m.compressed]);
        const z = deflate;
        assert.deepEqual(shown, [
          ['client', 1, 'hello', 1, z],
          ['server', 1, 'hello', 1, z],
          ['client', 2, 70_000, 1, z],
          ['server', 2, 70_000, 1, z],
          ['client', 1, 'frag-mented', 3, z],
          ['server', 1, 'frag-mented', 1, z],
          ['client', 9, 'p1', 1, false],
          ['server', 10, 'p1', 1, false],
          ['client', 1, 'fragments', 1, z],
          ['server', 2, 'first-second-third', 3, z],
          ['client', 1, 'ping srv', 1, z],
          ['server', 9, 'srv', 1, false],
          ['client', 10, 'srv', 1, false],
          ['client', 8, '\x0f\xa1bye now', 1, false],
          ['server', 8, '\x0f\xa1bye now', 1, false],
        ]);
        assert.deepEqual(messages.map((m) => m.messageIndex), messages.map((_, i) => i), 'indexes have no gaps');
        assert.ok(messages[2].data?.equals(binary) && messages[3].data?.equals(binary), 'binary payloads stored whole and unmasked');
        for (const m of messages) {
          assert.equal(m.truncated, false);
          assert.ok(m.wireSize > m.payloadSize, 'wire size counts frame headers');
          if (!m.compressed) assert.equal(m.payloadSize, m.decodedSize);
        }
        assert.equal(messages[0].utf8Valid, true);
        assert.deepEqual([messages[13].closeCode, messages[13].closeReason], [4001, 'bye now']);

        const fragments = listWsFrames(proxy.db, exchangeId, messages[4].messageIndex);
        assert.deepEqual(fragments.map((f) => [f.fin, f.opcode, f.rsv1, f.masked, /^[0-9a-f]{8}$/.test(f.maskKey ?? '')]), [
          [false, 1, z, true, true], [false, 0, false, true, true], [true, 0, false, true, true],
        ]);
        assert.equal(fragments.reduce((n, f) => n + f.wireSize, 0), messages[4].wireSize);
        assert.deepEqual(listWsFrames(proxy.db, exchangeId, messages[9].messageIndex).map((f) => [f.masked, f.maskKey, f.fin]), [
          [false, null, false], [false, null, false], [false, null, true],
        ]);
      });
    }
  }

  for (const path of PATHS) {
    test(`${path}: a refused upgrade is relayed and captured as an ordinary exchange`, async () => {
      const refusing = await startWsServer({ tls: path === 'connect-tls', refuseWith: 403 });
      try {
        const urlPath = `/refused/${++testNo}`;
        const answer = await refused(connectClient({ path, proxy, ca: caPem, host: 'site.test', port: refusing.port, urlPath }));
        assert.equal(answer.status, 403);
        assert.equal(answer.body, 'Forbidden');
        const exchangeId = await handshakeId(urlPath);
        await log.waitFor((e) => e.kind === 'http.completed' && e.exchangeId === exchangeId);
        await proxy.flush();
        const exchange = getExchange(proxy.db, exchangeId)!;
        assert.deepEqual([exchange.status, exchange.state, exchange.responseBody?.data.toString()], [403, 'complete', 'Forbidden']);
        assert.equal(getWebSocket(proxy.db, exchangeId), null, 'no WebSocket was opened');
      } finally {
        await refusing.close();
      }
    });
  }

  const disappearances: Array<[WsPath, string, 'client' | 'server', string, number]> = [
    ['absolute-form', 'the client drops the connection', 'client', 'closed', 1006],
    ['connect', 'the server resets the connection', 'server', 'reset', 1006],
    ['connect-tls', 'the server drops the connection', 'server', 'closed', 1006],
    ['connect-tls', 'the client resets the connection', 'client', 'reset', 1006],
  ];
  for (const [path, what, who, reason, code] of disappearances) {
    test(`${path}: ${what}; the other side is closed and the capture says why`, async () => {
      const srv = server(path, false);
      const urlPath = `/gone/${++testNo}`;
      const socket = connectClient({ path, proxy, ca: caPem, host: 'site.test', port: srv.port, urlPath });
      const client = new ClientLog(socket);
      await opened(socket);
      const peer = await srv.nextPeer();
      socket.send('before');
      await client.until(() => client.messages.length === 1);
      if (who === 'client') {
        if (reason === 'reset') tcpOf(socket).resetAndDestroy();
        else socket.terminate();
        assert.equal((await peer.closed).code, code, 'the server saw the connection go');
      } else {
        socket.send(reason === 'reset' ? 'reset' : 'terminate');
        assert.equal((await client.closed).code, code, 'the client saw the connection go');
      }
      const exchangeId = await handshakeId(urlPath);
      const closed = await closedEvent(exchangeId);
      assert.equal(closed.error?.reason, reason);
      if (reason === 'closed') assert.equal(closed.error?.message, `the ${who} closed without a close frame`);
      assert.deepEqual([closed.closedBy, closed.clean, closed.messagesFromClient, closed.messagesFromServer], [null, false, who === 'server' ? 2 : 1, 1]);
      await proxy.flush();
      assert.equal(getWebSocket(proxy.db, exchangeId)?.error?.reason, reason);
    });
  }

  test('connect: a protocol error from a peer is captured on that WebSocket; the relay carries on unchanged', async () => {
    const frames = Buffer.concat([
      encodeFrame({ opcode: 1, payload: 'fine' }),
      encodeFrame({ opcode: 3, payload: 'reserved opcode' }),
      encodeFrame({ opcode: 1, payload: 'still relayed' }),
    ]);
    const head = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n';
    const upstream = await startTcpServer((socket) => socket.once('data', () => socket.end(Buffer.concat([Buffer.from(head), frames]))));
    try {
      const urlPath = `/raw/${++testNo}`;
      const raw = await openTunnel(proxy, `site.test:${upstream.port}`);
      const received: Buffer[] = [];
      raw.on('data', (c: Buffer) => received.push(c));
      const ended = new Promise((resolve) => raw.once('end', resolve));
      raw.resume();
      raw.write(`GET ${urlPath} HTTP/1.1\r\nHost: site.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
      await ended;
      raw.end();
      assert.ok(Buffer.concat(received).equals(Buffer.concat([Buffer.from(head), frames])), 'the client got every byte as sent');

      const exchangeId = await handshakeId(urlPath);
      const closed = await closedEvent(exchangeId);
      assert.equal(closed.error?.reason, 'decode');
      assert.equal(closed.error?.code, 'bad-opcode');
      assert.equal(closed.bytesFromServer, frames.length, 'bytes are still counted');
      const request = log.of('http.request').find((e) => e.exchangeId === exchangeId)!;
      const failed = log.of('decode.failed').find((e) => e.connId === request.connId);
      assert.deepEqual([failed?.decoder, failed?.side, failed?.code], ['ws', 'server', 'bad-opcode']);
      await proxy.flush();
      assert.deepEqual(listWsMessages(proxy.db, exchangeId, { limit: 10 }).map((m) => m.data?.toString()), ['fine']);
    } finally {
      await upstream.close();
    }
  });
});
