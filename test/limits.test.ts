// The limits that keep hopscope's memory and capture bounded, each shown to apply: the header block
// size (431 beyond), the body bytes stored per message, the HTTP/2 frames stored per connection,
// and the WebSocket inflater's decoded-size cap and ratio (a deflate bomb stops decoding, never the
// relay). Each limit in process against its default, then all of them as command-line flags.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import type Database from 'better-sqlite3';
import { startTestProxy, type TestProxy } from './helpers/proxy.js';
import { startUpstream, type TestUpstream } from './helpers/upstream.js';
import { openTunnel, proxiedRequest, rawExchange } from './helpers/clients.js';
import { recordEvents } from './helpers/events.js';
import { connectThroughProxy, h2Request, startH2Upstream, type H2Upstream } from './helpers/h2-peers.js';
import { ClientLog, connectClient, opened, startWsServer, type TestWsServer } from './helpers/ws-peers.js';
import { runCli } from './helpers/cli-process.js';
import { openStore } from '../packages/core/src/store/open-store.js';
import { countH2Frames, getConnection, getExchange, listExchanges, listH2Frames, listWsMessages } from '../packages/core/src/store/queries.js';

const MiB = 1024 * 1024;
/** 2 MiB that deflate to about 2 KiB: fine by the default limits, over a 1 MiB message cap. */
const ZEROS = Buffer.alloc(2 * MiB);
/** 5 MiB that deflate about 27:1: under the default ratio (400), over a ratio of 10 past the 4 MiB floor. */
const SPARSE = (() => {
  const bytes = Buffer.alloc(5 * MiB);
  let seed = 12345;
  for (let i = 0; i < bytes.length; i += 64) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    bytes[i] = seed >>> 24;
  }
  return bytes;
})();

interface Proxy {
  host: string;
  port: number;
}

/** A request whose header block is `size` bytes or so. */
/** Everything a socket receives until the other side ends it. */
function collectUntilEnd(socket: Duplex): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.resume();
  return new Promise((resolve) => socket.once('end', () => resolve(Buffer.concat(chunks))));
}

const withHeader = (url: string, size: number) => `GET ${url} HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\nX-Pad: ${'p'.repeat(size)}\r\n\r\n`;

/** Sends one compressed message over ws:// in a CONNECT tunnel and waits for its echo, intact. */
async function echoCompressed(proxy: Proxy, ws: TestWsServer, payload: Buffer): Promise<void> {
  const client = connectClient({ path: 'connect', proxy, host: 'site.test', port: ws.port, urlPath: `/limits-${payload.length}`, perMessageDeflate: true });
  const log = new ClientLog(client);
  await opened(client);
  client.send(payload);
  await log.until(() => log.messages.length === 1);
  assert.ok(log.messages[0].data.equals(payload), 'the echo came back intact: the relay never stops for the tap');
  client.close();
  await log.closed;
}

/** The client message of the WebSocket to `urlPath` and the decode errors of its connection. */
function wsOutcome(db: Database.Database, urlPath: string) {
  const exchange = listExchanges(db, { limit: 500 }).find((x) => x.url.endsWith(urlPath))!;
  const [message] = listWsMessages(db, exchange.id, { limit: 1, includeData: false });
  return { message, errors: getConnection(db, exchange.connectionId)!.decodeErrors.map((d) => [d.decoder, d.code]) };
}

describe('limits, each against its default', { timeout: 60_000 }, () => {
  let upstream: TestUpstream;
  let h2: H2Upstream;
  let ws: TestWsServer;
  const proxies: TestProxy[] = [];
  const proxyWith = async (options: Parameters<typeof startTestProxy>[0]) => {
    const proxy = await startTestProxy(options);
    proxies.push(proxy);
    return proxy;
  };

  before(async () => {
    upstream = await startUpstream((req, res, body) => res.end(`got ${body.length}`));
    h2 = await startH2Upstream((stream, headers) => {
      stream.respond({ ':status': 200 });
      stream.end(`ok ${headers[':path']}`);
    }, { tls: false });
    ws = await startWsServer({ perMessageDeflate: true });
  });

  after(async () => {
    for (const proxy of proxies) await proxy.close();
    await upstream.close();
    await h2.close();
    await ws.close();
  });

  test('maxHeaderBytes: a header block over it gets 431 and is captured as headers-too-large', async () => {
    const proxy = await proxyWith({ maxHeaderBytes: 1024 });
    const log = recordEvents(proxy.bus);
    const url = `http://site.test:${upstream.port}/`;
    assert.match(await rawExchange(proxy, withHeader(url, 512)), /^HTTP\/1\.1 200 /);
    assert.match(await rawExchange(proxy, withHeader(url, 2048)), /^HTTP\/1\.1 431 /);
    const closed = await log.waitFor((e) => e.kind === 'conn.closed' && e.error?.reason === 'headers-too-large');
    await proxy.flush();
    assert.equal(getConnection(proxy.db, (closed as { connId: number }).connId)!.error?.code, 'HPE_HEADER_OVERFLOW');
    const byDefault = await proxyWith({});
    assert.match(await rawExchange(byDefault, withHeader(url, 2048)), /^HTTP\/1\.1 200 /, 'the default (64 KiB) takes it');
  });

  test('maxHeaderBytes also bounds the passive HTTP/1 decoder inside a tunnel (the relay carries on)', async () => {
    const proxy = await proxyWith({ maxHeaderBytes: 1024 });
    const log = recordEvents(proxy.bus);
    const tunnel = await openTunnel(proxy, `site.test:${upstream.port}`);
    const answer = collectUntilEnd(tunnel);
    tunnel.write(withHeader('/', 2048));
    assert.match((await answer).toString('latin1'), /^HTTP\/1\.1 200 /, 'relayed: the upstream takes 2 KiB of headers');
    tunnel.destroy();
    const failed = await log.waitFor((e) => e.kind === 'decode.failed' && e.decoder === 'http1');
    assert.equal((failed as { code: string }).code, 'headers-too-large');
    assert.match((failed as { message: string }).message, /over 1024 bytes/);
  });

  test('bodyCaptureLimit: the store keeps that many body bytes and counts the rest', async () => {
    const proxy = await proxyWith({ bodyCaptureLimit: 100 });
    const res = await proxiedRequest(proxy, `http://site.test:${upstream.port}/upload`, { method: 'POST', body: Buffer.alloc(5000, 0x61) });
    assert.equal(res.body.toString(), 'got 5000', 'the upstream got the whole body');
    await proxy.flush();
    const [row] = listExchanges(proxy.db, { limit: 1 });
    const exchange = getExchange(proxy.db, row.id)!;
    assert.deepEqual([exchange.requestBodySize, exchange.requestBody?.data.length, exchange.requestBody?.truncated], [5000, 100, true]);
  });

  test('h2FramesPerConnection: frames past it are summarised, still counted', async () => {
    const proxy = await proxyWith({ h2FramesPerConnection: 10 });
    const log = recordEvents(proxy.bus);
    const session = await connectThroughProxy(proxy, 'site.test', h2.port);
    for (let i = 0; i < 10; i++) assert.equal((await h2Request(session, { ':path': `/n/${i}` })).body.toString(), `ok /n/${i}`);
    session.close();
    const connId = log.of('http.request').find((e) => e.target === '/n/0')!.connId;
    await log.waitFor((e) => e.kind === 'conn.closed' && e.connId === connId);
    await proxy.flush();
    const rows = listH2Frames(proxy.db, connId, { limit: 1000 });
    assert.equal(rows.filter((r) => !r.summary).length, 10, 'ten frames stored one by one');
    assert.ok(rows.some((r) => r.summary), 'the rest as summary rows');
    assert.equal(countH2Frames(proxy.db, connId), log.of('h2.frame').filter((e) => e.connId === connId).length);
  });

  test('wsMessageCap: a compressed message inflating past it stops the tap (deflate-bomb), not the relay', async () => {
    const capped = await proxyWith({ wsMessageCap: MiB });
    await echoCompressed(capped, ws, ZEROS);
    await capped.flush();
    const outcome = wsOutcome(capped.db, `/limits-${ZEROS.length}`);
    assert.deepEqual(outcome.errors, [['ws', 'deflate-bomb']]);
    assert.ok(outcome.message.truncated && outcome.message.decodedSize < 2 * MiB, `stopped near the cap (${outcome.message.decodedSize})`);

    const byDefault = await proxyWith({});
    await echoCompressed(byDefault, ws, ZEROS);
    await byDefault.flush();
    const plain = wsOutcome(byDefault.db, `/limits-${ZEROS.length}`);
    assert.deepEqual([plain.errors, plain.message.decodedSize], [[], ZEROS.length], 'by default the same message decodes whole');
  });

  test('wsInflateRatio: past the 4 MiB floor, a message over the ratio is a deflate bomb', async () => {
    const ratio = SPARSE.length / zlib.deflateRawSync(SPARSE).length;
    assert.ok(ratio > 13 && ratio < 400, `the fixture deflates ${ratio.toFixed(1)}:1`);
    const strict = await proxyWith({ wsInflateRatio: 10 });
    await echoCompressed(strict, ws, SPARSE);
    await strict.flush();
    const outcome = wsOutcome(strict.db, `/limits-${SPARSE.length}`);
    assert.deepEqual(outcome.errors, [['ws', 'deflate-bomb']]);
    assert.ok(outcome.message.decodedSize >= 4 * MiB && outcome.message.decodedSize < SPARSE.length, 'stopped past the floor');

    const byDefault = await proxyWith({});
    await echoCompressed(byDefault, ws, SPARSE);
    await byDefault.flush();
    const plain = wsOutcome(byDefault.db, `/limits-${SPARSE.length}`);
    assert.deepEqual([plain.errors, plain.message.decodedSize], [[], SPARSE.length], 'by default the same message decodes whole');
  });
});

describe('limits as command-line flags', { timeout: 60_000 }, () => {
  let dir: string;
  let upstream: TestUpstream;
  let h2: H2Upstream;
  let ws: TestWsServer;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hopscope-limits-'));
    upstream = await startUpstream((req, res, body) => res.end(`got ${body.length}`));
    h2 = await startH2Upstream((stream) => {
      stream.respond({ ':status': 200 });
      stream.end('ok');
    }, { tls: false });
    ws = await startWsServer({ perMessageDeflate: true });
  });

  after(async () => {
    await upstream.close();
    await h2.close();
    await ws.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const base = (db: string) => ['start', '--listen', '127.0.0.1:0', '--no-ui', '--db', db, '--ca-dir', join(dir, 'ca'), '--resolve', '*.test=127.0.0.1', '--quiet'];

  /** Runs `hopscope start` with the flags, lets `traffic` go through it, stops it, opens the capture. */
  async function withCli(name: string, flags: string[], traffic: (proxy: Proxy) => Promise<void>): Promise<Database.Database> {
    const dbPath = join(dir, `${name}.sqlite`);
    const cli = runCli([...base(dbPath), ...flags]);
    try {
      const { hostname: host, port } = new URL(await cli.line('proxy'));
      await traffic({ host, port: Number(port) });
      assert.equal(await cli.stop('SIGTERM'), 0, `exit code; stderr: ${cli.stderr()}`);
    } finally {
      await cli.stop('SIGKILL');
    }
    return openStore(dbPath, { readonly: true }).db;
  }

  test('--max-header-size, --body-cap, --h2-frames and --ws-message-cap reach the proxy', async () => {
    const flags = ['--max-header-size', '1024', '--body-cap', '100', '--h2-frames', '10', '--ws-message-cap', String(MiB)];
    const url = `http://site.test:${upstream.port}/`;
    const db = await withCli('limits', flags, async (proxy) => {
      assert.match(await rawExchange(proxy, withHeader(url, 2048)), /^HTTP\/1\.1 431 /, '--max-header-size');
      const posted = await proxiedRequest(proxy, `${url}upload`, { method: 'POST', body: Buffer.alloc(5000, 0x61) });
      assert.equal(posted.body.toString(), 'got 5000');
      const session = await connectThroughProxy(proxy, 'site.test', h2.port);
      for (let i = 0; i < 10; i++) await h2Request(session, { ':path': `/n/${i}` });
      session.close();
      await echoCompressed(proxy, ws, ZEROS);
    });
    try {
      const rows = listExchanges(db, { limit: 100, order: 'oldest' });
      const upload = getExchange(db, rows.find((r) => r.url.endsWith('/upload'))!.id)!;
      assert.deepEqual([upload.requestBodySize, upload.requestBody?.data.length], [5000, 100], '--body-cap');
      const h2Conn = rows.find((r) => r.url.endsWith('/n/0'))!.connectionId;
      assert.equal(listH2Frames(db, h2Conn, { limit: 1000 }).filter((r) => !r.summary).length, 10, '--h2-frames');
      assert.deepEqual(wsOutcome(db, `/limits-${ZEROS.length}`).errors, [['ws', 'deflate-bomb']], '--ws-message-cap');
    } finally {
      db.close();
    }
  });

  test('--ws-inflate-ratio reaches the proxy', async () => {
    const db = await withCli('ratio', ['--ws-inflate-ratio', '10'], (proxy) => echoCompressed(proxy, ws, SPARSE));
    try {
      const sparse = wsOutcome(db, `/limits-${SPARSE.length}`);
      assert.deepEqual(sparse.errors, [['ws', 'deflate-bomb']]);
      assert.ok(sparse.message.decodedSize >= 4 * MiB && sparse.message.decodedSize < SPARSE.length);
    } finally {
      db.close();
    }
  });

  for (const flag of ['--h2-frames', '--ws-message-cap', '--ws-inflate-ratio']) {
    test(`${flag} refuses a value that is not a whole number`, async () => {
      const cli = runCli([...base(join(dir, 'refused.sqlite')), flag, 'lots']);
      assert.notEqual(await cli.exited, 0);
      assert.match(cli.stderr(), new RegExp(`${flag} wants a whole number, got "lots"`));
    });
  }
});
