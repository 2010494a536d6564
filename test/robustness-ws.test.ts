// Malformed WebSocket frames on ws:// in a CONNECT tunnel and in absolute-form: the WebSocket tap
// flags the first protocol error (decode.failed `ws`) and stops decoding that WebSocket, while the
// relay carries every byte on unchanged, the bad frame and what follows it. A deflate bomb stops
// the inflater at its limit. New WebSockets and ones already open keep working.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import zlib from 'node:zlib';
import { createHash } from 'node:crypto';
import { startTestProxy, type TestProxy } from './helpers/proxy.js';
import { startTcpServer } from './helpers/upstream.js';
import { openTunnel } from './helpers/clients.js';
import { recordEvents, type EventLog } from './helpers/events.js';
import { ClientLog, connectClient, opened, startWsServer, type TestWsServer } from './helpers/ws-peers.js';
import { encodeFrame } from '../packages/core/test/helpers/ws-encode.js';
import { getConnection, getWebSocket, listWsMessages } from '../packages/core/src/store/queries.js';

const MASK = Buffer.from([0x11, 0x22, 0x33, 0x44]);
const masked = (opcode: number, payload: Buffer | string, extra: { rsv1?: boolean; lengthForm?: 16 } = {}) =>
  encodeFrame({ opcode, payload, mask: MASK, ...extra });

/** A permessage-deflate payload (RFC 7692: the trailing 00 00 ff ff left off). */
function deflated(data: Buffer): Buffer {
  const out = zlib.deflateRawSync(data, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  return out.subarray(0, out.length - 4);
}

interface RawWsServer {
  port: number;
  /** Bytes each connection received after its handshake, in order. */
  received: Buffer[][];
  close(): Promise<void>;
}

/**
 * A WebSocket upstream that completes the handshake (agreeing to permessage-deflate when offered),
 * optionally sends `greet` frames, then only records what arrives: it never judges a frame.
 */
async function startRawWsServer(greet: () => Buffer | null): Promise<RawWsServer> {
  const received: Buffer[][] = [];
  const server = await startTcpServer((socket) => {
    let head = Buffer.alloc(0);
    let bytes: Buffer[] | null = null;
    socket.once('end', () => socket.end());
    socket.on('data', (chunk: Buffer) => {
      if (bytes) return void bytes.push(chunk);
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      const text = head.subarray(0, end).toString('latin1');
      const key = /sec-websocket-key: *(\S+)/i.exec(text)?.[1] ?? '';
      const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
      const deflate = /permessage-deflate/i.test(text) ? 'Sec-WebSocket-Extensions: permessage-deflate\r\n' : '';
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n${deflate}\r\n`);
      const greeting = greet();
      if (greeting) socket.write(greeting);
      bytes = [];
      received.push(bytes);
      if (head.length > end + 4) bytes.push(head.subarray(end + 4));
    });
  });
  return { port: server.port, received, close: () => server.close() };
}

type Path = 'connect' | 'absolute-form';

describe('robustness: malformed WebSocket frames', { timeout: 60_000 }, () => {
  let proxy: TestProxy;
  let log: EventLog;
  let raw: RawWsServer;
  let echo: TestWsServer;
  let greeting: Buffer | null = null;
  let heldOpen: ClientLog;

  before(async () => {
    raw = await startRawWsServer(() => greeting);
    echo = await startWsServer();
    proxy = await startTestProxy();
    log = recordEvents(proxy.bus);
    const held = connectClient({ path: 'connect', proxy, host: 'site.test', port: echo.port });
    heldOpen = new ClientLog(held);
    await opened(held);
  });

  after(async () => {
    heldOpen.socket.terminate();
    log.stop();
    await proxy.close();
    await raw.close();
    await echo.close();
  });

  /** A WebSocket to the raw upstream over `path`, by hand, up to the 101. */
  async function handshake(path: Path, deflate: boolean, urlPath: string): Promise<{ socket: net.Socket; connId: number; rest: Buffer }> {
    const request = (target: string) =>
      `GET ${target} HTTP/1.1\r\nHost: site.test:${raw.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n` +
      (deflate ? 'Sec-WebSocket-Extensions: permessage-deflate\r\n' : '') +
      '\r\n';
    let socket: net.Socket;
    if (path === 'connect') {
      socket = await openTunnel(proxy, `site.test:${raw.port}`);
      socket.write(request(urlPath));
    } else {
      socket = net.connect(proxy.port, proxy.host);
      socket.write(request(`http://site.test:${raw.port}${urlPath}`));
    }
    socket.on('error', () => {});
    const [head, rest] = await new Promise<[string, Buffer]>((resolve) => {
      let bytes = Buffer.alloc(0);
      const onData = (c: Buffer) => {
        bytes = Buffer.concat([bytes, c]);
        const end = bytes.indexOf('\r\n\r\n');
        if (end < 0) return;
        socket.removeListener('data', onData);
        resolve([bytes.subarray(0, end + 4).toString('latin1'), bytes.subarray(end + 4)]);
      };
      socket.on('data', onData);
      socket.resume();
    });
    assert.match(head, /^HTTP\/1\.1 101 /);
    const started = await log.waitFor((e) => e.kind === 'http.request' && e.url.endsWith(urlPath));
    return { socket, connId: (started as { connId: number }).connId, rest };
  }

  const stillServes = async () => {
    const fresh = connectClient({ path: 'absolute-form', proxy, host: 'site.test', port: echo.port });
    const freshLog = new ClientLog(fresh);
    await opened(fresh);
    fresh.send('fresh');
    await freshLog.until(() => freshLog.messages.length === 1);
    assert.equal(freshLog.messages[0].data.toString(), 'fresh', 'a new WebSocket is served');
    fresh.close();
    const before = heldOpen.messages.length;
    heldOpen.socket.send('held');
    await heldOpen.until(() => heldOpen.messages.length === before + 1);
    assert.equal(heldOpen.messages.at(-1)!.data.toString(), 'held', 'the WebSocket opened before is undisturbed');
  };

  let caseNo = 0;
  const cases: Array<{ name: string; bad: () => Buffer; code: string; deflate?: boolean; fromServer?: boolean }> = [
    { name: 'a reserved data opcode (0x3)', bad: () => masked(0x3, 'x'), code: 'bad-opcode' },
    { name: 'a reserved control opcode (0xB)', bad: () => masked(0xb, 'x'), code: 'bad-opcode' },
    { name: 'a ping of 126 bytes', bad: () => masked(0x9, Buffer.alloc(126, 0x70), { lengthForm: 16 }), code: 'bad-control-frame' },
    { name: 'a fragmented close', bad: () => encodeFrame({ opcode: 0x8, fin: false, payload: Buffer.from([3, 0xe8]), mask: MASK }), code: 'bad-control-frame' },
    { name: 'an unmasked client frame', bad: () => encodeFrame({ opcode: 0x1, payload: 'bare' }), code: 'bad-mask' },
    { name: 'RSV1 without permessage-deflate', bad: () => masked(0x1, 'x', { rsv1: true }), code: 'bad-rsv' },
    { name: 'a masked server frame', bad: () => encodeFrame({ opcode: 0x1, payload: 'masked', mask: MASK }), code: 'bad-mask', fromServer: true },
    {
      name: 'a deflate bomb (16 MiB of zeros in 16 KiB)',
      bad: () => masked(0x2, deflated(Buffer.alloc(16 * 1024 * 1024)), { rsv1: true }),
      code: 'deflate-bomb',
      deflate: true,
    },
  ];

  for (const path of ['connect', 'absolute-form'] as const) {
    for (const c of cases) {
      test(`${path}: ${c.name}: decode.failed ${c.code}, every byte relayed`, async () => {
        const urlPath = `/case-${++caseNo}`;
        const good = c.deflate ? masked(0x1, deflated(Buffer.from('before')), { rsv1: true }) : masked(0x1, 'before');
        const after = masked(0x1, 'after');
        greeting = c.fromServer ? c.bad() : null;
        const connections = raw.received.length;
        const { socket, connId, rest } = await handshake(path, c.deflate === true, urlPath);
        const fromClient = c.fromServer ? [good, after] : [good, c.bad(), after];
        const sent = Buffer.concat(fromClient);
        const clientGot: Buffer[] = [rest];
        socket.on('data', (chunk: Buffer) => clientGot.push(chunk));
        // One frame per write: the tap sees the good message before the bad frame.
        for (const frame of fromClient) socket.write(frame);
        const failed = await log.waitFor((e) => e.kind === 'decode.failed' && e.connId === connId, 10_000);
        const upstreamGot = () => Buffer.concat(raw.received[connections] ?? []);
        while (upstreamGot().length < sent.length) await new Promise((resolve) => setImmediate(resolve));
        assert.ok(upstreamGot().equals(sent), 'the upstream got every frame, the bad one included, unchanged');
        if (c.fromServer) {
          while (Buffer.concat(clientGot).length < greeting!.length) await new Promise((resolve) => setImmediate(resolve));
          assert.ok(Buffer.concat(clientGot).equals(greeting!), 'the client got the bad server frame unchanged');
        }
        assert.ok(failed.kind === 'decode.failed');
        assert.deepEqual([failed.decoder, failed.side, failed.code], ['ws', c.fromServer ? 'server' : 'client', c.code]);

        socket.destroy();
        const request = log.of('http.request').find((e) => e.url.endsWith(urlPath))!;
        const closed = await log.waitFor((e) => e.kind === 'ws.closed' && e.exchangeId === request.exchangeId, 10_000);
        await log.waitFor((e) => e.kind === 'conn.closed' && e.connId === connId);
        await proxy.flush();
        assert.ok(closed.kind === 'ws.closed');
        const ws = getWebSocket(proxy.db, request.exchangeId)!;
        assert.deepEqual([ws.error?.reason, ws.error?.code], ['decode', c.code], 'the WebSocket is captured as ended by the decoder');
        const messages = listWsMessages(proxy.db, request.exchangeId, { limit: 10 });
        const texts = messages.map((m) => [m.side, m.data?.toString()]);
        // The bad server frame comes with the 101, before anything from the client.
        assert.deepEqual(texts[0], c.fromServer ? undefined : ['client', 'before'], 'what came before the bad frame is captured');
        assert.ok(!texts.some(([, t]) => t === 'after'), 'nothing is decoded after the failure');
        if (c.deflate) {
          const bomb = messages.find((m) => m.opcode === 0x2)!;
          assert.ok(bomb.truncated && bomb.decodedSize < 8 * 1024 * 1024, `inflating stopped early (${bomb.decodedSize} bytes)`);
        }
        const conn = getConnection(proxy.db, connId)!;
        assert.ok(conn.decodeErrors.some((d) => d.decoder === 'ws' && d.code === c.code));
        await stillServes();
      });
    }
  }
});
