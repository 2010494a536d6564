// Malformed TLS and HTTP/2 inside CONNECT tunnels. A broken ClientHello is reported (decode.failed
// `tls-hello`) and the tunnel is relayed blind, byte for byte; HTTP/2 is relayed unchanged and
// tapped passively, so a protocol attack gets whatever the real upstream answers (its GOAWAY),
// the tap records why it stopped decoding, the frames it keeps stay within the cap, and the proxy
// keeps serving new connections and the ones already open.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { readFileSync } from 'node:fs';
import { startTestProxy, type TestProxy } from './helpers/proxy.js';
import { startTcpServer, startUpstream, upstreamCaFile, type TestUpstream } from './helpers/upstream.js';
import { openTunnel } from './helpers/clients.js';
import { recordEvents, type EventLog } from './helpers/events.js';
import { connectThroughProxy, h2Request, startH2Upstream, type H2Upstream } from './helpers/h2-peers.js';
import { countH2Frames, getConnection, listExchanges, listH2Frames } from '../packages/core/src/store/queries.js';
import { parseClientHello } from '../packages/core/src/decode/client-hello.js';
import { PREFACE, dataFrame, headersFrame, hpackIndexed, hpackLiteral, hpackSizeUpdate, rstStreamFrame, settingsFrame } from '../packages/core/test/helpers/h2-encode.js';

/** The bytes of a real ClientHello (Node's TLS client), caught by a plain TCP server. */
async function realHello(servername: string): Promise<Buffer> {
  let resolve!: (hello: Buffer) => void;
  const caught = new Promise<Buffer>((r) => (resolve = r));
  const server = await startTcpServer((socket) => {
    let bytes = Buffer.alloc(0);
    socket.on('data', (data: Buffer) => {
      bytes = Buffer.concat([bytes, data]);
      if (parseClientHello(bytes).status === 'ok') resolve(bytes);
    });
  });
  const client = tls.connect({ host: '127.0.0.1', port: server.port, servername, ALPNProtocols: ['h2', 'http/1.1'] });
  client.on('error', () => {});
  try {
    return await caught;
  } finally {
    client.destroy();
    await server.close();
  }
}

// A hand-built ClientHello: legacy_version, random, session id, one suite, null compression, extensions.
const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
const vec16 = (b: Buffer) => Buffer.concat([u16(b.length), b]);
const ext = (type: number, data: Buffer) => Buffer.concat([u16(type), vec16(data)]);
const sni = (name: Buffer) => ext(0, vec16(Buffer.concat([Buffer.from([0]), vec16(name)])));
function helloRecord(extensions: Buffer, extensionsLength = extensions.length): Buffer {
  const body = Buffer.concat([u16(0x0303), Buffer.alloc(32, 7), Buffer.from([0]), vec16(u16(0x1301)), Buffer.from([1, 0]), u16(extensionsLength), extensions]);
  const message = Buffer.concat([Buffer.from([1, 0, body.length >> 8, body.length & 0xff]), body]);
  return Buffer.concat([Buffer.from([0x16, 3, 1]), u16(message.length), message]);
}

/** What the upstream answers a hello it did not like: a fatal handshake_failure alert. */
const FAKE_ALERT = Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]);

/** Resolves with everything the stream delivered once it ended or closed. */
function drained(stream: Duplex): Promise<Buffer> {
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  stream.on('error', () => {});
  return new Promise((resolve) => {
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      resolve(Buffer.concat(chunks));
    };
    stream.once('end', finish);
    stream.once('close', finish);
    stream.resume();
  });
}

describe('robustness: TLS ClientHellos inside CONNECT', { timeout: 60_000 }, () => {
  let proxy: TestProxy;
  let https: TestUpstream;
  let recorder: { port: number; close(): Promise<void> };
  /** What the raw upstream received, per connection, in order. */
  const received: Buffer[][] = [];
  let log: EventLog;
  let caPem: string;
  let heldOpen: tls.TLSSocket;

  before(async () => {
    https = await startUpstream((req, res) => res.end(`ok ${req.url}`), { tls: true });
    recorder = await startTcpServer((socket) => {
      const bytes: Buffer[] = [];
      received.push(bytes);
      socket.on('data', (c: Buffer) => {
        if (bytes.length === 0) socket.end(FAKE_ALERT);
        bytes.push(c);
      });
    });
    proxy = await startTestProxy({ upstreamCaFiles: [upstreamCaFile] });
    log = recordEvents(proxy.bus);
    caPem = readFileSync(proxy.caCertPath, 'utf8');
    heldOpen = await interceptedTls();
    assert.match(await get(heldOpen, '/before'), /ok \/before$/);
  });

  after(async () => {
    heldOpen.destroy();
    log.stop();
    await proxy.close();
    await https.close();
    await recorder.close();
  });

  async function interceptedTls(): Promise<tls.TLSSocket> {
    const raw = await openTunnel(proxy, `site.test:${https.port}`);
    const secure = tls.connect({ socket: raw, servername: 'site.test', ca: caPem, ALPNProtocols: ['http/1.1'] });
    await new Promise<void>((resolve, reject) => secure.once('secureConnect', resolve).once('error', reject));
    return secure;
  }

  /** One keep-alive request on an open TLS socket; resolves with the whole response. */
  function get(socket: tls.TLSSocket, path: string): Promise<string> {
    return new Promise((resolve) => {
      let text = '';
      const onData = (c: Buffer) => {
        text += c.toString('latin1');
        const end = text.indexOf('\r\n\r\n');
        const length = /content-length: (\d+)/i.exec(text);
        if (end >= 0 && length && text.length >= end + 4 + Number(length[1])) {
          socket.removeListener('data', onData);
          resolve(text);
        }
      };
      socket.on('data', onData);
      socket.write(`GET ${path} HTTP/1.1\r\nHost: site.test\r\n\r\n`);
    });
  }

  const stillServes = async () => {
    const fresh = await interceptedTls();
    assert.match(await get(fresh, '/fresh'), /^HTTP\/1\.1 200 [^]*ok \/fresh$/, 'a new intercepted connection is served');
    fresh.destroy();
    assert.match(await get(heldOpen, '/held'), /ok \/held$/, 'the connection opened before is undisturbed');
  };

  async function sendHello(bytes: Buffer, hangUp: boolean): Promise<{ answer: Buffer; connId: number; upstreamGot: Buffer }> {
    const before = received.length;
    const socket = await openTunnel(proxy, `site.test:${recorder.port}`);
    const connId = log.of('conn.tunnel').filter((e) => e.port === recorder.port).at(-1)!.connId;
    const answer = drained(socket);
    socket.write(bytes);
    if (hangUp) socket.end();
    const got = await answer;
    socket.destroy();
    await log.waitFor((e) => e.kind === 'conn.closed' && e.connId === connId);
    return { answer: got, connId, upstreamGot: Buffer.concat(received[before] ?? []) };
  }

  const cases: Array<[string, () => Promise<Buffer> | Buffer, string]> = [
    ['a record longer than TLS allows', () => Buffer.concat([Buffer.from([0x16, 3, 1, 0x50, 0]), Buffer.alloc(100, 1)]), 'bad-record'],
    ['a ServerHello where the ClientHello belongs', async () => {
      const hello = Buffer.from(await realHello('site.test'));
      hello[5] = 2;
      return hello;
    }, 'not-client-hello'],
    ['a ClientHello declaring 128 KiB', () => Buffer.from([0x16, 3, 1, 0, 4, 1, 0x02, 0, 0]), 'hello-too-large'],
    ['a session id of 238 bytes', () => helloRecord(Buffer.alloc(0)).fill(0xee, 5 + 4 + 34, 5 + 4 + 35), 'bad-hello'],
    ['two SNI extensions', () => helloRecord(Buffer.concat([sni(Buffer.from('a.test')), sni(Buffer.from('b.test'))])), 'duplicate-extension'],
    ['a control byte in the server name', () => helloRecord(sni(Buffer.from('site\x01.test', 'latin1'))), 'bad-extension'],
    ['an extensions length past the end', () => helloRecord(sni(Buffer.from('site.test')), 500), 'truncated'],
  ];
  for (const [name, bytes, code] of cases) {
    test(`${name}: decode.failed ${code}, the tunnel is relayed blind`, async () => {
      const hello = await bytes();
      const { answer, connId, upstreamGot } = await sendHello(hello, false);
      assert.deepEqual(upstreamGot, hello, 'the upstream got the bytes exactly as sent');
      assert.deepEqual(answer, FAKE_ALERT, "the client got the upstream's answer unchanged");
      await proxy.flush();
      const row = getConnection(proxy.db, connId)!;
      assert.deepEqual(row.decodeErrors.map((d) => [d.decoder, d.side, d.code]), [['tls-hello', 'client', code]]);
      assert.deepEqual([row.detectedProtocol, row.intercepted], ['tls', false]);
      await stillServes();
    });
  }

  test('a real hello cut short, then the client hangs up: decode.failed truncated', async () => {
    const hello = await realHello('site.test');
    const cut = hello.subarray(0, 60);
    const { answer, connId, upstreamGot } = await sendHello(cut, true);
    assert.deepEqual(upstreamGot, cut);
    assert.deepEqual(answer, FAKE_ALERT);
    await proxy.flush();
    const row = getConnection(proxy.db, connId)!;
    assert.deepEqual(row.decodeErrors.map((d) => [d.decoder, d.code]), [['tls-hello', 'truncated']]);
    assert.match(row.decodeErrors[0].message, /after 60 bytes, inside its ClientHello/);
    await stillServes();
  });

  test('a good hello followed by garbage: the client TLS leg fails with a reason', async () => {
    const raw = await openTunnel(proxy, `site.test:${https.port}`);
    const answer = drained(raw);
    raw.write(Buffer.concat([await realHello('site.test'), Buffer.from('this is not a TLS record\r\n\r\n')]));
    const got = await answer;
    raw.destroy();
    assert.equal(got[0], 0x16, 'hopscope answered the hello (interception started) before the garbage broke it');
    const failed = await log.waitFor((e) => e.kind === 'tls.failed' && e.leg === 'client' && e.sni === 'site.test');
    assert.ok(failed.kind === 'tls.failed');
    await log.waitFor((e) => e.kind === 'conn.closed' && e.connId === failed.connId);
    await proxy.flush();
    const row = getConnection(proxy.db, failed.connId)!;
    assert.equal(row.error?.reason, 'tls');
    assert.match(row.error?.message ?? '', /wrong version number/);
    await stillServes();
  });
});

interface SeenFrame {
  type: number;
  streamId: number;
  payload: Buffer;
}

/** Splits what a peer sent into frames (it sends no preface towards the client). */
function framesIn(bytes: Buffer): SeenFrame[] {
  const frames: SeenFrame[] = [];
  for (let at = 0; at + 9 <= bytes.length; ) {
    const length = bytes.readUIntBE(at, 3);
    frames.push({ type: bytes[at + 3], streamId: bytes.readUInt32BE(at + 5) & 0x7fffffff, payload: bytes.subarray(at + 9, at + 9 + length) });
    at += 9 + length;
  }
  return frames;
}

const GOAWAY = 0x7;
const { NGHTTP2_FRAME_SIZE_ERROR, NGHTTP2_COMPRESSION_ERROR } = http2.constants;

function goawayCode(bytes: Buffer): number | null {
  const goaway = framesIn(bytes).find((f) => f.type === GOAWAY);
  return goaway ? goaway.payload.readUInt32BE(4) : null;
}

/** A minimal request header block for stream `id` (static-table fields and a literal authority). */
const requestBlock = () => Buffer.concat([hpackIndexed(2), hpackIndexed(6), hpackIndexed(4), hpackLiteral('without', 1, 'site.test')]);
const start = () => Buffer.concat([PREFACE, settingsFrame([])]);

for (const mode of ['h2c', 'h2'] as const) {
  describe(`robustness: ${mode === 'h2' ? 'intercepted h2' : 'h2c with prior knowledge'} inside CONNECT`, { timeout: 60_000 }, () => {
    const FRAME_CAP = 200;
    let proxy: TestProxy;
    let upstream: H2Upstream;
    let log: EventLog;
    let caPem: string | undefined;
    let heldOpen: http2.ClientHttp2Session;

    before(async () => {
      upstream = await startH2Upstream((stream, headers) => {
        stream.respond({ ':status': 200 });
        stream.end(`ok ${headers[':path']}`);
      }, { tls: mode === 'h2' });
      proxy = await startTestProxy({ upstreamCaFiles: [upstreamCaFile], h2FramesPerConnection: FRAME_CAP });
      log = recordEvents(proxy.bus);
      caPem = mode === 'h2' ? readFileSync(proxy.caCertPath, 'utf8') : undefined;
      heldOpen = await connectThroughProxy(proxy, 'site.test', upstream.port, { caPem });
      assert.equal((await h2Request(heldOpen, { ':path': '/before', ':authority': 'site.test' })).body.toString(), 'ok /before');
    });

    after(async () => {
      heldOpen.destroy();
      log.stop();
      await proxy.close();
      await upstream.close();
    });

    /** The client's leg after CONNECT (and TLS with ALPN h2 when intercepted), with its connection id. */
    async function openRaw(): Promise<{ socket: Duplex; connId: number; close(): void }> {
      const raw = await openTunnel(proxy, `site.test:${upstream.port}`);
      const connId = log.of('conn.tunnel').filter((e) => e.port === upstream.port).at(-1)!.connId;
      // Leaving with a reset: after its GOAWAY, nghttp2 keeps a half-closed connection open.
      const close = () => raw.resetAndDestroy();
      if (mode === 'h2c') return { socket: raw.resume(), connId, close };
      const secure = tls.connect({ socket: raw, servername: 'site.test', ca: caPem, ALPNProtocols: ['h2'] });
      await new Promise<void>((resolve, reject) => secure.once('secureConnect', resolve).once('error', reject));
      assert.equal(secure.alpnProtocol, 'h2');
      return { socket: secure, connId, close };
    }

    const stillServes = async () => {
      const fresh = await connectThroughProxy(proxy, 'site.test', upstream.port, { caPem });
      assert.equal((await h2Request(fresh, { ':path': '/fresh', ':authority': 'site.test' })).body.toString(), 'ok /fresh', 'a new connection is served');
      fresh.destroy();
      const held = await h2Request(heldOpen, { ':path': '/held', ':authority': 'site.test' });
      assert.equal(held.body.toString(), 'ok /held', 'the session opened before is undisturbed');
    };

    /**
     * Sends the bytes and returns what came back once `until` holds for it (the upstream's answer:
     * nghttp2 sends GOAWAY and then waits for the client to close) or the connection ended.
     */
    async function attack(bytes: Buffer, until: (answer: Buffer) => boolean): Promise<{ answer: Buffer; connId: number }> {
      const { socket, connId, close } = await openRaw();
      const chunks: Buffer[] = [];
      const answer = new Promise<Buffer>((resolve) => {
        const done = () => resolve(Buffer.concat(chunks));
        socket.on('data', (c: Buffer) => {
          chunks.push(c);
          if (until(Buffer.concat(chunks))) done();
        });
        socket.once('end', done);
        socket.once('close', done);
      });
      socket.on('error', () => {});
      socket.write(bytes);
      const got = await answer;
      close();
      await log.waitFor((e) => e.kind === 'conn.closed' && e.connId === connId);
      await proxy.flush();
      return { answer: got, connId };
    }

    const decodeErrors = (connId: number) => getConnection(proxy.db, connId)!.decodeErrors.map((d) => [d.decoder, d.side, d.code]);

    test('a bad preface: the upstream closes, the tap says why', async () => {
      const { answer, connId } = await attack(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n', 'latin1'), settingsFrame([])]), () => false);
      assert.ok((goawayCode(answer) ?? 0) > 0, 'the upstream refused the preface with a GOAWAY and closed');
      // h2c is recognised by its preface: without it the bytes read as an HTTP/1 request line.
      assert.deepEqual(decodeErrors(connId), mode === 'h2' ? [['h2', 'client', 'bad-preface']] : [['http1', 'client', 'bad-version']]);
      await stillServes();
    });

    const goawaySeen = (answer: Buffer) => goawayCode(answer) !== null;
    for (const [name, bytes, code] of [
      ['DATA on stream 0', () => dataFrame(0, 'x'), 'protocol'],
      ['HEADERS on stream 0', () => headersFrame(0, requestBlock(), { endStream: true }), 'protocol'],
    ] as const) {
      test(`${name}: GOAWAY with an error from the upstream, decode.failed ${code}`, async () => {
        const { answer, connId } = await attack(Buffer.concat([start(), bytes()]), goawaySeen);
        assert.ok((goawayCode(answer) ?? 0) > 0, "the upstream's GOAWAY reached the client");
        assert.deepEqual(decodeErrors(connId), [['h2', 'client', code]]);
        await stillServes();
      });
    }

    test('a frame over SETTINGS_MAX_FRAME_SIZE: GOAWAY FRAME_SIZE_ERROR, decode.failed frame-size, nothing buffered', async () => {
      const { answer, connId } = await attack(Buffer.concat([start(), headersFrame(1, requestBlock()), dataFrame(1, Buffer.alloc(70_000, 0x61))]), goawaySeen);
      assert.equal(goawayCode(answer), NGHTTP2_FRAME_SIZE_ERROR);
      assert.deepEqual(decodeErrors(connId), [['h2', 'client', 'frame-size']]);
      const [exchange] = listExchanges(proxy.db, { limit: 5, connectionId: connId });
      assert.deepEqual([exchange.state, exchange.errorReason], ['failed', 'decode'], 'the open stream ends with the decoder');
      await stillServes();
    });

    test('an HPACK bomb (one 4 KiB entry referenced 400 times): decode.failed header-list-too-large', async () => {
      const bomb = Buffer.concat([requestBlock(), hpackLiteral('incremental', 'x-bomb', 'b'.repeat(4000)), ...Array.from({ length: 400 }, () => hpackIndexed(62))]);
      assert.ok(bomb.length < 5000, 'a small block');
      const reset = (answer: Buffer) => framesIn(answer).find((f) => f.type === 0x3 && f.streamId === 1);
      const { answer, connId } = await attack(Buffer.concat([start(), headersFrame(1, bomb, { endStream: true })]), (a) => reset(a) !== undefined);
      assert.equal(reset(answer)?.payload.readUInt32BE(0), http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, 'the upstream refused the stream');
      assert.deepEqual(decodeErrors(connId), [['hpack', 'client', 'header-list-too-large']]);
      await stillServes();
    });

    test('an HPACK table size update past SETTINGS_HEADER_TABLE_SIZE: COMPRESSION_ERROR, decode.failed size-update-too-large', async () => {
      const { answer, connId } = await attack(Buffer.concat([start(), headersFrame(1, Buffer.concat([hpackSizeUpdate(1 << 30), requestBlock()]), { endStream: true })]), goawaySeen);
      assert.equal(goawayCode(answer), NGHTTP2_COMPRESSION_ERROR);
      assert.deepEqual(decodeErrors(connId), [['hpack', 'client', 'size-update-too-large']]);
      await stillServes();
    });

    test('a SETTINGS flood: relayed, no decode failure, frames stored up to the cap and summarised', async () => {
      const flood = Array.from({ length: 5000 }, (_, i) => settingsFrame([[0x3, 100 + (i % 7)]]));
      const { socket, connId, close } = await openRaw();
      const answer = drained(socket);
      // The upstream acknowledges each SETTINGS (or calls it a flood and goes away): wait for either.
      let acks = 0;
      let stop = () => {};
      const answered = new Promise<void>((resolve) => {
        stop = proxy.bus.subscribe((e) => {
          if (e.kind !== 'h2.frame' || e.connId !== connId || e.side !== 'server') return;
          if (e.typeName === 'SETTINGS' && e.flags === 1) acks++;
          if (acks === 5001 || e.typeName === 'GOAWAY') resolve();
        });
      });
      socket.write(Buffer.concat([start(), ...flood]));
      await answered;
      stop();
      close();
      await answer;
      await log.waitFor((e) => e.kind === 'conn.closed' && e.connId === connId);
      await proxy.flush();
      assert.deepEqual(decodeErrors(connId), []);
      const fromClient = log.of('h2.frame').filter((e) => e.connId === connId && e.side === 'client').length;
      assert.equal(fromClient, 5001, 'every frame was decoded');
      const rows = listH2Frames(proxy.db, connId, { limit: 10_000 });
      assert.ok(rows.filter((r) => !r.summary).length <= FRAME_CAP, `at most ${FRAME_CAP} frames stored one by one`);
      assert.ok(rows.length < FRAME_CAP + 20, 'the rest are summary rows');
      const seen = log.of('h2.frame').filter((e) => e.connId === connId).length;
      assert.equal(countH2Frames(proxy.db, connId), seen, 'stored frames and summaries count every frame decoded');
      await stillServes();
    });

    test('a rapid-reset burst (HEADERS + RST_STREAM x 500): each stream is a failed exchange, nothing is left open', async () => {
      const burst: Buffer[] = [start()];
      for (let i = 0; i < 500; i++) burst.push(headersFrame(1 + 2 * i, requestBlock()), rstStreamFrame(1 + 2 * i, http2.constants.NGHTTP2_CANCEL));
      const { socket, connId, close } = await openRaw();
      const answer = drained(socket);
      socket.write(Buffer.concat(burst));
      await log.waitFor((e) => e.kind === 'h2.frame' && e.connId === connId && e.side === 'client' && e.streamId === 999 && e.typeName === 'RST_STREAM', 15_000);
      socket.end();
      await answer;
      close();
      await log.waitFor((e) => e.kind === 'conn.closed' && e.connId === connId);
      await proxy.flush();
      assert.deepEqual(decodeErrors(connId), []);
      const exchanges = listExchanges(proxy.db, { limit: 1000, connectionId: connId });
      assert.equal(exchanges.length, 500);
      assert.ok(exchanges.every((x) => x.state === 'failed' && x.errorReason === 'reset'), 'every stream ended as reset');
      await stillServes();
    });
  });
}

