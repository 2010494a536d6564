// The reverse proxy (--reverse) with protocol translation: curl over HTTP/1.1 and HTTP/2 (and Node's
// http and http2 clients where curl cannot show what matters) against the TLS reverse listener in
// front of an HTTP/1.1 backend, an HTTP/2-only TLS backend and an h2c backend. Each test checks what
// the backend received, what the client got, and what the capture holds.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { writeHar } from '../packages/core/src/export/har-writer.js';
import type { HarEntry } from '../packages/core/src/export/har-types.js';
import { getConnection, getExchange, listExchanges } from '../packages/core/src/store/queries.js';
import type { ExchangeDetail } from '../packages/core/src/store/row-types.js';
import { parseReverseRule } from '../packages/core/src/reverse/reverse-rules.js';
import { curl } from './helpers/clients.js';
import { runCli } from './helpers/cli-process.js';
import { startTestProxy, testCaDir, type TestProxy } from './helpers/proxy.js';
import { headerOf, startH1Backend, startH2Backend, type Backend } from './helpers/reverse-peers.js';
import { closedPort, selfSignedTls, startUpstream, upstreamCaFile, upstreamTls, type TestUpstream } from './helpers/upstream.js';

/** hopscope with a plain (no TLS) reverse listener for `rules`, sending the upstream's Host. */
function plainReverseProxy(...rules: string[]): Promise<TestProxy> {
  return startTestProxy({
    upstreamCaFiles: [upstreamCaFile],
    reverse: { rules: rules.map((rule) => parseReverseRule(rule)), listenHost: '127.0.0.1', listenPort: 0, tls: false, hostHeader: 'upstream' },
  });
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface Setup {
  proxy: TestProxy;
  h1: Backend;
  h2: Backend;
  h2c: Backend;
  /** An HTTPS backend (Node's https server: ALPN http/1.1 only). */
  tls1: TestUpstream;
  /** `https://127.0.0.1:PORT` of the reverse listener. */
  base: string;
  port: number;
  ca: string;
  tmp: string;
}

/** Backends behind path prefixes: /h1 (and the rest) -> HTTP/1.1, /h2 -> h2-only TLS, /h2c -> h2c. */
async function setup(hostHeader: 'keep' | 'upstream' = 'upstream'): Promise<Setup> {
  const [h1, h2, h2c, tls1] = await Promise.all([
    startH1Backend(),
    startH2Backend({ tls: true }),
    startH2Backend({ tls: false }),
    startUpstream((req, res) => res.end(`tls1 ${req.url}`), { tls: true }),
  ]);
  const proxy = await startTestProxy({
    upstreamCaFiles: [upstreamCaFile],
    reverse: {
      rules: [
        parseReverseRule(`http://127.0.0.1:${h1.port}`),
        parseReverseRule(`/h2=https://localhost:${h2.port}`),
        parseReverseRule(`/h2c=h2c://127.0.0.1:${h2c.port}`),
        parseReverseRule(`site.test/=https://127.0.0.1:${h2.port}`),
        parseReverseRule(`/tls1=https://localhost:${tls1.port}`),
      ],
      listenHost: '127.0.0.1',
      listenPort: 0,
      tls: true,
      hostHeader,
    },
  });
  const port = proxy.reverseAddress!.port;
  return { proxy, h1, h2, h2c, tls1, base: `https://127.0.0.1:${port}`, port, ca: readFileSync(proxy.caCertPath, 'utf8'), tmp: mkdtempSync(join(tmpdir(), 'hopscope-reverse-')) };
}

async function teardown(s: Setup): Promise<void> {
  await s.proxy.close();
  await Promise.all([s.h1.close(), s.h2.close(), s.h2c.close(), s.tls1.close()]);
  rmSync(s.tmp, { recursive: true, force: true });
}

async function exchanges(proxy: TestProxy): Promise<ExchangeDetail[]> {
  await proxy.flush();
  return listExchanges(proxy.db, { limit: 1000, order: 'oldest' }).map((e) => getExchange(proxy.db, e.id)!);
}

/** The captured exchange whose URL path is `path` (the last one, when repeated). */
async function exchangeFor(proxy: TestProxy, path: string): Promise<ExchangeDetail> {
  const all = (await exchanges(proxy)).filter((e) => new URL(e.url).pathname === path);
  assert.ok(all.length > 0, `no exchange for ${path}`);
  return all[all.length - 1];
}

/** curl with the test CA against the reverse listener; -D - puts the response head before the body. */
function curlReverse(s: Setup, version: '--http1.1' | '--http2', path: string, extra: string[] = []) {
  return curl(['--cacert', s.proxy.caCertPath, version, '-D', '-', ...extra, `${s.base}${path}`]);
}

describe('reverse proxy over TLS: curl, both protocols, three kinds of backend', { timeout: 30_000 }, () => {
  let s: Setup;
  before(async () => (s = await setup()));
  after(() => teardown(s));

  for (const version of ['--http1.1', '--http2'] as const) {
    const clientProtocol = version === '--http2' ? 'h2' : 'HTTP/1.1';
    for (const [prefix, backendProtocol] of [['/h1', 'HTTP/1.1'], ['/h2', 'h2'], ['/h2c', 'h2c']] as const) {
      test(`curl ${version} -> ${backendProtocol} backend: the path is kept, Host is the backend's, both protocols are captured`, async () => {
        const path = `${prefix}/hello${version.slice(2)}?q=1`;
        const r = await curlReverse(s, version, path);
        assert.equal(r.code, 0, r.stderr);
        const backend = prefix === '/h1' ? s.h1 : prefix === '/h2' ? s.h2 : s.h2c;
        assert.match(r.stdout, new RegExp(`^HTTP/${version === '--http2' ? '2' : '1.1'} 200`));
        assert.ok(r.stdout.endsWith(`${backend.name} ${path}`), r.stdout);
        // Set-Cookie stays two fields whatever the protocols.
        assert.equal(r.stdout.match(/^set-cookie: /gim)?.length, 2, r.stdout);
        const got = backend.received.find((q) => q.path === path)!;
        assert.ok(got, 'the backend got the request');
        const host = headerOf(got.headers, backendProtocol === 'HTTP/1.1' ? 'host' : ':authority');
        assert.equal(host, `${prefix === '/h2' ? 'localhost' : '127.0.0.1'}:${backend.port}`);
        assert.equal(headerOf(got.headers, 'connection'), backendProtocol === 'HTTP/1.1' ? 'keep-alive' : '');

        const ex = await exchangeFor(s.proxy, path.split('?')[0]);
        assert.equal(ex.protocol, clientProtocol);
        assert.equal(ex.responseProtocol, backendProtocol);
        assert.equal(ex.status, 200);
        assert.equal(ex.state, 'complete');
        assert.equal(ex.responseBody?.data.toString(), `${backend.name} ${path}`);
        assert.equal(ex.url, `${s.base}${path}`);
        assert.equal(ex.upstreamUrl, `${prefix === '/h2' ? 'https://localhost' : 'http://127.0.0.1'}:${backend.port}${path}`, 'where it went');
        assert.equal(ex.remotePort, backend.port);
        const conn = getConnection(s.proxy.db, ex.connectionId)!;
        assert.equal(conn.listener, 'reverse');
        assert.equal(conn.tls.client?.alpn, version === '--http2' ? 'h2' : 'http/1.1');
        assert.ok(conn.tls.client?.certificates[0]?.sans.includes('IP Address:127.0.0.1'), JSON.stringify(conn.tls.client?.certificates));
        // The upstream leg: the h2 session this connection's request went over (dialled by the first
        // test, shared by the later ones), none for the cleartext backends.
        if (prefix !== '/h2') assert.equal(conn.tls.upstream, null);
        else {
          const up = conn.tls.upstream!;
          assert.deepEqual([up.sni, up.alpnOffered, up.alpn, up.version, up.error], ['localhost', ['h2', 'http/1.1'], 'h2', 'TLSv1.3', null]);
          assert.ok(up.cipher && up.handshakeMs !== null && up.handshakeMs > 0, JSON.stringify(up));
          assert.ok(up.certificates[0]?.sans.includes('DNS:localhost'), JSON.stringify(up.certificates));
          assert.equal(up.certificates[0]?.fingerprint256, new X509Certificate(upstreamTls.cert).fingerprint256, 'the backend\'s own certificate');
        }
      });
    }
  }

  test('an https backend that picks http/1.1 by ALPN gets HTTP/1.1, the first request over the probing connection', async () => {
    for (const version of ['--http2', '--http1.1', '--http2'] as const) {
      const r = await curl(['--cacert', s.proxy.caCertPath, version, `${s.base}/tls1/x${version.slice(2)}`]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `tls1 /tls1/x${version.slice(2)}`);
    }
    assert.equal(s.tls1.handshakes[0].servername, 'localhost');
    assert.equal(s.tls1.handshakes[0].alpn, 'http/1.1', 'offered h2 and http/1.1, it chose http/1.1');
    assert.equal(s.tls1.received.length, 3);
    const captured = (await exchanges(s.proxy)).filter((e) => e.url.includes('/tls1/'));
    assert.deepEqual(captured.map((e) => [e.protocol, e.responseProtocol, e.state]), [
      ['h2', 'HTTP/1.1', 'complete'],
      ['HTTP/1.1', 'HTTP/1.1', 'complete'],
      ['h2', 'HTTP/1.1', 'complete'],
    ]);
    assert.ok(captured[0].tlsMs !== null && captured[0].connectMs !== null, 'the first one dialled');
    // Each client connection records the upstream TLS connection it used: the probe (offered both
    // protocols), then the agent's pooled connection (it offers no ALPN).
    const legs = captured.map((e) => getConnection(s.proxy.db, e.connectionId)!.tls.upstream);
    assert.deepEqual(legs.map((l) => [l?.sni, l?.alpnOffered, l?.alpn, l?.error]), [
      ['localhost', ['h2', 'http/1.1'], 'http/1.1', null],
      ['localhost', [], null, null],
      ['localhost', [], null, null],
    ]);
    assert.ok(legs.every((l) => l!.certificates[0]?.sans.includes('DNS:localhost')), JSON.stringify(legs));
  });

  test('host prefixes route by Host: site.test goes to the h2 backend, whatever the path', async () => {
    const r = await curl(['--cacert', s.proxy.caCertPath, '--http2', '--resolve', `site.test:${s.port}:127.0.0.1`, `https://site.test:${s.port}/h1/by-host`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'h2 /h1/by-host');
    const ex = await exchangeFor(s.proxy, '/h1/by-host');
    assert.equal(ex.host, 'site.test');
    assert.equal(ex.responseProtocol, 'h2');
    const conn = getConnection(s.proxy.db, ex.connectionId)!;
    assert.equal(conn.tls.client?.sni, 'site.test');
    assert.deepEqual(conn.tls.client?.certificates[0]?.sans, ['DNS:site.test']);
    // A HAR export says which front door it came through and where it went.
    const out = new PassThrough();
    const text = (async () => Buffer.concat(await out.toArray()).toString())();
    await writeHar(s.proxy.db, out, { predicate: (e) => e.id === ex.id });
    out.end();
    const [entry] = (JSON.parse(await text) as { log: { entries: HarEntry[] } }).log.entries;
    assert.deepEqual([entry._listener, entry._upstreamUrl, entry._protocols.upstream], ['reverse', ex.upstreamUrl, 'h2']);
    assert.match(entry._upstreamUrl ?? '', /^https:\/\/127\.0\.0\.1:\d+\/h1\/by-host$/, 'the path kept, the origin the rule\'s');
  });

  test('a large body streams both ways (curl --http2 to HTTP/1.1, curl --http1.1 to h2 and h2c), checked by hash', async () => {
    const body = randomBytes(3 * 1024 * 1024 + 17);
    const file = join(s.tmp, 'upload.bin');
    writeFileSync(file, body);
    for (const [version, prefix] of [['--http2', '/h1'], ['--http1.1', '/h2'], ['--http1.1', '/h2c'], ['--http2', '/h2']] as const) {
      const out = join(s.tmp, `out-${prefix.slice(1)}-${version.slice(2)}.bin`);
      const r = await curl(['--cacert', s.proxy.caCertPath, version, '--data-binary', `@${file}`, '-o', out, `${s.base}${prefix}/echo`]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(sha256(readFileSync(out)), sha256(body), `${version} ${prefix}`);
    }
    const captured = (await exchanges(s.proxy)).filter((e) => e.url.endsWith('/echo'));
    assert.equal(captured.length, 4);
    for (const ex of captured) {
      assert.equal(ex.requestBodySize, body.length);
      assert.equal(ex.responseBodySize, body.length);
      assert.equal(sha256(ex.requestBody!.data), sha256(body));
      assert.equal(sha256(ex.responseBody!.data), sha256(body));
    }
  });

  test('cookies: HTTP/2 crumbs are joined for HTTP/1.1, an HTTP/1.1 Cookie is split into crumbs for HTTP/2', async () => {
    const session = http2.connect(s.base, { ca: s.ca });
    session.on('error', () => {});
    const h2Answer = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
      const req = session.request({ ':path': '/h1/echo', ':method': 'GET', cookie: ['a=1', 'b=2', 'c=3'] });
      req.on('response', resolve);
      req.on('error', reject);
      req.resume();
    });
    session.close();
    assert.equal(h2Answer['x-got-cookie'], 'a=1; b=2; c=3');
    const atH1 = s.h1.received.filter((r) => r.path === '/h1/echo').at(-1)!;
    assert.deepEqual(atH1.headers.filter(([n]) => n.toLowerCase() === 'cookie'), [['cookie', 'a=1; b=2; c=3']]);

    const r = await curlReverse(s, '--http1.1', '/h2/echo', ['-H', 'Cookie: x=1; y=2']);
    assert.equal(r.code, 0, r.stderr);
    const atH2 = s.h2.received.filter((q) => q.path === '/h2/echo').at(-1)!;
    assert.deepEqual(atH2.headers.filter(([n]) => n === 'cookie'), [['cookie', 'x=1'], ['cookie', 'y=2']]);
    const ex = await exchangeFor(s.proxy, '/h2/echo');
    assert.deepEqual(ex.requestHeaders.filter(([n]) => n === 'Cookie'), [['Cookie', 'x=1; y=2']], 'the capture shows what the client sent');
  });

  test('trailers: an HTTP/2 client and an HTTP/1.1 backend, both directions', async () => {
    const session = http2.connect(s.base, { ca: s.ca });
    session.on('error', () => {});
    const result = await new Promise<{ headers: http2.IncomingHttpHeaders; trailers: http2.IncomingHttpHeaders | null; body: string }>((resolve, reject) => {
      const req = session.request({ ':path': '/h1/trailers', ':method': 'POST', te: 'trailers' }, { waitForTrailers: true });
      req.on('wantTrailers', () => req.sendTrailers({ 'x-client-sum': '7' }));
      let headers: http2.IncomingHttpHeaders = {};
      let trailers: http2.IncomingHttpHeaders | null = null;
      let body = '';
      req.on('response', (h) => (headers = h));
      req.on('trailers', (t) => (trailers = t));
      req.setEncoding('utf8').on('data', (d: string) => (body += d));
      req.on('close', () => resolve({ headers, trailers, body }));
      req.on('error', reject);
      req.end('request body');
    });
    session.close();
    assert.equal(result.body, 'abc');
    assert.equal(result.headers['x-got-trailers'], 'x-client-sum=7', 'the backend got the request trailer');
    assert.equal(result.trailers?.['x-checksum'], '42');
    const got = s.h1.received.filter((r) => r.path === '/h1/trailers').at(-1)!;
    assert.equal(headerOf(got.headers, 'te'), 'trailers');
    assert.equal(headerOf(got.headers, 'transfer-encoding'), 'chunked');
    const ex = await exchangeFor(s.proxy, '/h1/trailers');
    assert.deepEqual(ex.requestTrailers, [['x-client-sum', '7']]);
    assert.deepEqual(ex.responseTrailers, [['x-checksum', '42']]);
    assert.equal(ex.protocol, 'h2');
    assert.equal(ex.responseProtocol, 'HTTP/1.1');
  });

  test('trailers: an HTTP/1.1 client and an HTTP/2-only backend, both directions', async () => {
    const result = await new Promise<{ status: number; headers: http.IncomingHttpHeaders; trailers: string[]; body: string }>((resolve, reject) => {
      const req = https.request(`${s.base}/h2/trailers`, { method: 'POST', ca: s.ca, headers: { te: 'trailers', trailer: 'x-client-sum' }, agent: false });
      req.on('response', (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, trailers: res.rawTrailers, body }));
      });
      req.on('error', reject);
      req.write('request body');
      req.addTrailers({ 'x-client-sum': '7' });
      req.end();
    });
    assert.equal(result.status, 200);
    assert.equal(result.body, 'abc');
    assert.equal(result.headers['x-got-trailers'], 'x-client-sum=7');
    assert.deepEqual(result.trailers, ['x-checksum', '42']);
    const got = s.h2.received.filter((r) => r.path === '/h2/trailers').at(-1)!;
    assert.equal(headerOf(got.headers, 'te'), 'trailers');
    assert.equal(headerOf(got.headers, 'transfer-encoding'), '');
    const ex = await exchangeFor(s.proxy, '/h2/trailers');
    assert.deepEqual(ex.requestTrailers, [['x-client-sum', '7']]);
    assert.deepEqual(ex.responseTrailers, [['x-checksum', '42']]);
    assert.equal(ex.protocol, 'HTTP/1.1');
    assert.equal(ex.responseProtocol, 'h2');
  });

  test('an HTTP/1.1 client that sent TE: trailers gets an HTTP/2 response with a length chunked, so its trailers arrive; without TE they stay in the capture', async () => {
    const get = (te: boolean) =>
      new Promise<{ headers: http.IncomingHttpHeaders; trailers: string[]; body: string }>((resolve, reject) => {
        const req = https.get(`${s.base}/h2/${te ? 'asked' : 'not-asked'}/trailers-length`, { ca: s.ca, headers: te ? { te: 'trailers' } : {}, agent: false }, (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (d: string) => (body += d));
          res.on('end', () => resolve({ headers: res.headers, trailers: res.rawTrailers, body }));
        });
        req.on('error', reject);
      });
    const asked = await get(true);
    assert.equal(asked.body, 'abc');
    assert.equal(asked.headers['transfer-encoding'], 'chunked');
    assert.equal(asked.headers['content-length'], undefined);
    assert.deepEqual(asked.trailers, ['x-checksum', '42']);
    const plain = await get(false);
    assert.equal(plain.body, 'abc');
    assert.equal(plain.headers['content-length'], '3', 'a client that did not ask keeps the length');
    assert.deepEqual(plain.trailers, []);
    for (const te of [true, false]) {
      const ex = await exchangeFor(s.proxy, `/h2/${te ? 'asked' : 'not-asked'}/trailers-length`);
      assert.deepEqual(ex.responseTrailers, [['x-checksum', '42']], 'the capture has the trailers either way');
      assert.equal(headerOf(ex.responseHeaders!, 'content-length'), '3', 'and the headers the backend sent');
    }
  });

  test('300 request headers cross both ways (HTTP/2 allows 128 fields by default in Node; the byte limit is the bound here)', async () => {
    const many = Array.from({ length: 300 }, (_, i) => ['-H', `x-many-${i}: v${i}`]).flat();
    for (const [version, prefix, backend] of [['--http1.1', '/h2', s.h2], ['--http2', '/h1', s.h1]] as const) {
      const r = await curlReverse(s, version, `${prefix}/many`, many);
      assert.equal(r.code, 0, r.stderr);
      const got = backend.received.filter((q) => q.path === `${prefix}/many`).at(-1)!;
      assert.equal(got.headers.filter(([n]) => n.startsWith('x-many-')).length, 300, `${version} -> ${prefix}`);
    }
  });

  test('103 Early Hints cross to an HTTP/2 client; HEAD and 304 carry no body', async () => {
    const session = http2.connect(s.base, { ca: s.ca });
    session.on('error', () => {});
    const hinted = await new Promise<{ informational: number[]; status: number; body: string }>((resolve, reject) => {
      const req = session.request({ ':path': '/h1/hints' });
      const informational: number[] = [];
      let status = 0;
      let body = '';
      req.on('headers', (h) => informational.push(Number(h[':status'])));
      req.on('response', (h) => (status = Number(h[':status'])));
      req.setEncoding('utf8').on('data', (d: string) => (body += d));
      req.on('close', () => resolve({ informational, status, body }));
      req.on('error', reject);
    });
    session.close();
    assert.deepEqual(hinted, { informational: [103], status: 200, body: 'after hints' });

    const head = await curlReverse(s, '--http2', '/h2c/head', ['-I']);
    assert.equal(head.code, 0, head.stderr);
    assert.match(head.stdout, /^HTTP\/2 200/);
    assert.match(head.stdout, /content-length: 5/i);
    const headEx = await exchangeFor(s.proxy, '/h2c/head');
    assert.equal(headEx.method, 'HEAD');
    assert.equal(headEx.state, 'complete');
    assert.equal(headEx.responseBodySize, 0);

    const notModified = await curlReverse(s, '--http1.1', '/h2/not-modified');
    assert.equal(notModified.code, 0, notModified.stderr);
    assert.match(notModified.stdout, /^HTTP\/1.1 304/);
    assert.match(notModified.stdout, /etag: "v1"/i);
    const ex = await exchangeFor(s.proxy, '/h2/not-modified');
    assert.equal(ex.status, 304);
    assert.equal(ex.state, 'complete');
  });

  test('a backend that resets mid-response: RST_STREAM to an HTTP/2 client, a cut connection to an HTTP/1.1 client', async () => {
    const h2 = await curlReverse(s, '--http2', '/h1/reset');
    assert.notEqual(h2.code, 0, 'curl saw the stream fail');
    assert.match(h2.stderr, /INTERNAL_ERROR|stream|HTTP\/2/i);
    const h1 = await curlReverse(s, '--http1.1', '/h2/reset');
    assert.notEqual(h1.code, 0, `curl saw the transfer cut short: ${JSON.stringify(h1).slice(0, 600)}`);
    const byPath = await exchanges(s.proxy);
    for (const path of ['/h1/reset', '/h2/reset']) {
      const ex = byPath.filter((e) => e.url.endsWith(path)).at(-1)!;
      assert.equal(ex.state, 'failed', path);
      assert.equal(ex.status, 200);
      assert.ok(ex.error && ['aborted', 'reset'].includes(ex.error.reason), JSON.stringify(ex.error));
    }
  });
});

describe('reverse proxy: Host kept, cleartext listener, errors', { timeout: 30_000 }, () => {
  test('--reverse-host keep sends the client\'s Host / :authority upstream', async () => {
    const s = await setup('keep');
    try {
      const a = await curlReverse(s, '--http2', '/h1/echo');
      assert.equal(a.code, 0, a.stderr);
      assert.match(a.stdout, new RegExp(`x-got-host: 127\\.0\\.0\\.1:${s.port}`));
      const b = await curlReverse(s, '--http1.1', '/h2/echo');
      assert.equal(b.code, 0, b.stderr);
      assert.match(b.stdout, new RegExp(`x-got-host: 127\\.0\\.0\\.1:${s.port}`));
      const got = s.h2.received.at(-1)!;
      assert.equal(headerOf(got.headers, ':authority'), `127.0.0.1:${s.port}`);
      assert.equal(headerOf(got.headers, 'host'), '', 'no Host beside :authority');
    } finally {
      await teardown(s);
    }
  });

  test('cleartext listener: HTTP/1.1 and h2c prior knowledge; no rule -> 404 naming the rules; a refused backend -> 502', async () => {
    const h2 = await startH2Backend({ tls: true });
    const refusedPort = await closedPort();
    const proxy = await plainReverseProxy(`/api=https://127.0.0.1:${h2.port}`, `/down=http://127.0.0.1:${refusedPort}`);
    try {
      assert.equal(proxy.reverseUrl, `http://127.0.0.1:${proxy.reverseAddress!.port}`);
      const ok1 = await curl(['--http1.1', `${proxy.reverseUrl}/api/one`]);
      assert.equal(ok1.stdout, 'h2 /api/one');
      const ok2 = await curl(['--http2-prior-knowledge', `${proxy.reverseUrl}/api/two`]);
      assert.equal(ok2.stdout, 'h2 /api/two');
      // curl --http2 on http:// asks for Upgrade: h2c; the answer stays HTTP/1.1.
      const upgrade = await curl(['--http2', '-i', `${proxy.reverseUrl}/api/three`]);
      assert.match(upgrade.stdout, /^HTTP\/1.1 200/);
      assert.ok(upgrade.stdout.endsWith('h2 /api/three'), upgrade.stdout);

      const missing = await curl(['-i', `${proxy.reverseUrl}/nothing/here`]);
      assert.match(missing.stdout, /^HTTP\/1.1 404/);
      assert.match(missing.stdout, /no --reverse rule matches 127\.0\.0\.1:\d+\/nothing\/here/);
      assert.match(missing.stdout, /\(any host\)\/api -> https:\/\/127\.0\.0\.1:\d+/);
      const down = await curl(['--http2-prior-knowledge', '-i', `${proxy.reverseUrl}/down/x`]);
      assert.match(down.stdout, /^HTTP\/2 502/);
      assert.match(down.stdout, new RegExp(`connection refused by 127\\.0\\.0\\.1:${refusedPort}`));

      const all = await exchanges(proxy);
      const byPath = (p: string) => all.find((e) => new URL(e.url).pathname === p)!;
      assert.equal(byPath('/api/one').protocol, 'HTTP/1.1');
      assert.equal(byPath('/api/two').protocol, 'h2c');
      assert.equal(byPath('/api/two').responseProtocol, 'h2');
      assert.equal(byPath('/nothing/here').error?.code, 'no-route');
      assert.equal(byPath('/down/x').error?.reason, 'refused');
      const conns = new Set(all.map((e) => getConnection(proxy.db, e.connectionId)!));
      for (const c of conns) assert.equal(c.listener, 'reverse');
      assert.deepEqual(
        [...conns].map((c) => c.detectedProtocol).sort(),
        ['h2c', 'h2c', 'http1', 'http1', 'http1'],
      );
    } finally {
      await proxy.close();
      await h2.close();
    }
  });

  test('an HTTP/2 upstream that refuses a stream (RST_STREAM REFUSED_STREAM): a bodiless request is sent again once, a POST is not', async () => {
    const attempts = new Map<string, number>();
    const backend = http2.createServer();
    backend.on('stream', (stream, headers) => {
      stream.on('error', () => {});
      const path = String(headers[':path']);
      const n = (attempts.get(path) ?? 0) + 1;
      attempts.set(path, n);
      if ((path === '/refuse-once' && n === 1) || path === '/refuse-twice') return stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      if (path === '/refuse-post') return stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      stream.respond({ ':status': 200 });
      stream.end(`attempt ${n} of ${path}`);
    });
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    const port = (backend.address() as import('node:net').AddressInfo).port;
    const proxy = await plainReverseProxy(`/=h2c://127.0.0.1:${port}`);
    try {
      const once = await curl(['-i', `${proxy.reverseUrl}/refuse-once`]);
      assert.match(once.stdout, /^HTTP\/1.1 200/);
      assert.ok(once.stdout.endsWith('attempt 2 of /refuse-once'), once.stdout);
      const twice = await curl(['-i', `${proxy.reverseUrl}/refuse-twice`]);
      assert.match(twice.stdout, /^HTTP\/1.1 502/, 'one retry only');
      const post = await curl(['-i', '--data-binary', 'payload', `${proxy.reverseUrl}/refuse-post`]);
      assert.match(post.stdout, /^HTTP\/1.1 502/);
      assert.match(post.stdout, /REFUSED_STREAM/);
      assert.deepEqual(Object.fromEntries(attempts), { '/refuse-once': 2, '/refuse-twice': 2, '/refuse-post': 1 });
      const all = await exchanges(proxy);
      assert.deepEqual(all.map((e) => [new URL(e.url).pathname, e.state, e.status, e.error?.code ?? null]), [
        ['/refuse-once', 'complete', 200, null],
        ['/refuse-twice', 'failed', null, 'REFUSED_STREAM'],
        ['/refuse-post', 'failed', null, 'REFUSED_STREAM'],
      ]);
    } finally {
      await proxy.close();
      await new Promise((resolve) => backend.close(resolve));
    }
  });

  test('an https backend with a self-signed certificate: 502 saying why, the failed handshake on the upstream leg; served with --upstream-insecure', async () => {
    const untrusted = await startUpstream((_req, res) => res.end('from the self-signed backend'), { tls: selfSignedTls });
    const proxy = await plainReverseProxy(`/=https://localhost:${untrusted.port}`);
    try {
      const r = await curl(['-i', `${proxy.reverseUrl}/x`]);
      assert.match(r.stdout, /^HTTP\/1.1 502/);
      assert.match(r.stdout, /self[- ]signed/i);
      assert.equal(untrusted.received.length, 0, 'nothing reached the untrusted backend');
      const [ex] = await exchanges(proxy);
      assert.equal(ex.error?.reason, 'upstream-cert');
      const up = getConnection(proxy.db, ex.connectionId)!.tls.upstream!;
      assert.deepEqual([up.sni, up.alpnOffered, up.alpn, up.error?.reason], ['localhost', ['h2', 'http/1.1'], null, 'upstream-cert']);
      assert.match(up.error?.message ?? '', /self[- ]signed/i);
      assert.equal(up.certificates[0]?.fingerprint256, new X509Certificate(selfSignedTls.cert).fingerprint256, 'the refused certificate is kept');
    } finally {
      await proxy.close();
    }
    // --upstream-insecure: the same backend is served, its certificate still recorded.
    const insecure = await startTestProxy({
      upstreamInsecure: true,
      reverse: { rules: [parseReverseRule(`/=https://localhost:${untrusted.port}`)], listenHost: '127.0.0.1', listenPort: 0, tls: false, hostHeader: 'upstream' },
    });
    try {
      const r = await curl([`${insecure.reverseUrl}/y`]);
      assert.equal(r.stdout, 'from the self-signed backend');
      const [ex] = await exchanges(insecure);
      assert.equal(ex.state, 'complete');
      const up = getConnection(insecure.db, ex.connectionId)!.tls.upstream!;
      assert.deepEqual([up.error, up.certificates[0]?.fingerprint256], [null, new X509Certificate(selfSignedTls.cert).fingerprint256]);
    } finally {
      await insecure.close();
      await untrusted.close();
    }
  });

  test('hopscope start --reverse prints "reverse: URL" after "proxy:" and serves it; stray reverse flags are refused', async () => {
    const h1 = await startH1Backend();
    const args = ['start', '--listen', '127.0.0.1:0', '--no-ui', '--db', ':memory:', '--ca-dir', testCaDir(), '--quiet'];
    const cli = runCli([...args, '--reverse', `/=http://127.0.0.1:${h1.port}`, '--reverse-listen', '127.0.0.1:0', '--reverse-tls', '--reverse-host', 'keep']);
    try {
      const url = await cli.line('reverse');
      assert.match(url, /^https:\/\/127\.0\.0\.1:\d+$/);
      const order = ['proxy', 'reverse', 'ca'].map((name) => cli.lines.findIndex((l) => l.startsWith(`${name}: `)));
      assert.deepEqual([...order].sort((a, b) => a - b), order, cli.lines.join('\n'));
      const r = await curl(['--cacert', await cli.line('ca'), '-D', '-', `${url}/echo`]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`x-got-host: ${url.slice('https://'.length).replace(/\./g, '\\.')}`), 'Host kept');
    } finally {
      await cli.stop();
      await h1.close();
    }
    const stray = runCli([...args, '--reverse-tls']);
    assert.notEqual(await stray.exited, 0);
    assert.match(stray.stderr(), /--reverse-tls needs at least one --reverse rule/);
  });
});

describe('reverse proxy: bodies stream, and a slow reader holds the writer back', { timeout: 30_000 }, () => {
  /** Resolves once `total()` has not moved for `quietMs` (the writer is blocked), with that total. */
  async function stalled(total: () => number, quietMs = 300): Promise<number> {
    let last = -1;
    let since = Date.now();
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, 25));
      const now = total();
      if (now !== last) {
        last = now;
        since = Date.now();
      } else if (Date.now() - since >= quietMs) {
        return now;
      }
    }
  }

  const CHUNK = Buffer.alloc(64 * 1024, 0x5a);
  const TOTAL = 48 * 1024 * 1024;

  test('a response and a request body go through chunk by chunk, before they end', async () => {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let firstChunkSeen!: () => void;
    const firstChunk = new Promise<void>((resolve) => (firstChunkSeen = resolve));
    const backend = await startH2Backend({ tls: false });
    const h1 = http.createServer((req, res) => {
      if (req.url === '/drip') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('first;');
        void released.then(() => res.end('second'));
        return;
      }
      req.once('data', () => firstChunkSeen());
      let n = 0;
      req.on('data', (c: Buffer) => (n += c.length));
      req.on('end', () => res.end(`got ${n}`));
    });
    await new Promise<void>((resolve) => h1.listen(0, '127.0.0.1', resolve));
    const proxy = await plainReverseProxy(`http://127.0.0.1:${(h1.address() as import('node:net').AddressInfo).port}`);
    try {
      const session = http2.connect(proxy.reverseUrl!);
      session.on('error', () => {});
      const drip = session.request({ ':path': '/drip' });
      let text = '';
      drip.setEncoding('utf8').on('data', (d: string) => {
        text += d;
        if (text === 'first;') release(); // the backend ends only once the client saw its first chunk
      });
      await new Promise<void>((resolve) => drip.on('end', () => resolve()));
      assert.equal(text, 'first;second');

      const upload = session.request({ ':path': '/upload', ':method': 'POST' });
      upload.write('part one;');
      await firstChunk; // the backend saw it while the client still holds the rest
      upload.end('part two');
      let answer = '';
      upload.setEncoding('utf8').on('data', (d: string) => (answer += d));
      await new Promise<void>((resolve) => upload.on('end', () => resolve()));
      assert.equal(answer, 'got 17');
      session.close();
    } finally {
      await proxy.close();
      await new Promise<void>((resolve) => h1.close(() => resolve()));
      await backend.close();
    }
  });

  test('a backend that answers before reading the upload: the client gets the answer, the rest of its body is read and dropped, that connection is not reused', async () => {
    const seen: string[] = [];
    let connections = 0;
    const backend = http.createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      if (req.url === '/early') {
        res.writeHead(413, { 'content-type': 'text/plain' });
        res.end('too large');
        req.resume();
        return;
      }
      req.resume();
      req.on('end', () => res.end(`ok ${req.url}`));
    });
    backend.on('connection', () => connections++);
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    const proxy = await plainReverseProxy(`http://127.0.0.1:${(backend.address() as import('node:net').AddressInfo).port}`);
    try {
      const session = http2.connect(proxy.reverseUrl!);
      session.on('error', () => {});
      const early = await new Promise<{ status: number; body: string }>((resolve) => {
        const req = session.request({ ':path': '/early', ':method': 'POST', 'content-length': String(2 * 1024 * 1024) });
        let status = 0;
        let body = '';
        req.on('response', (h) => (status = Number(h[':status'])));
        req.setEncoding('utf8').on('data', (d: string) => (body += d));
        req.on('close', () => resolve({ status, body }));
        req.end(Buffer.alloc(2 * 1024 * 1024, 0x41));
      });
      assert.deepEqual(early, { status: 413, body: 'too large' });
      for (const path of ['/after-1', '/after-2']) {
        const r = await curl(['--http2-prior-knowledge', `${proxy.reverseUrl}${path}`]);
        assert.equal(r.stdout, `ok ${path}`);
      }
      session.close();
      assert.deepEqual(seen, ['POST /early', 'GET /after-1', 'GET /after-2']);
      assert.equal(connections, 2, 'a new connection after the cut one, then kept alive');
      const captured = await exchanges(proxy);
      assert.equal(captured[0].requestBodySize, 2 * 1024 * 1024, 'the whole body was read from the client');
      assert.equal(captured[0].status, 413);
      assert.equal(captured[0].state, 'complete');
    } finally {
      await proxy.close();
      await new Promise<void>((resolve) => backend.close(() => resolve()));
    }
  });

  test('HTTP/2 backend -> paused HTTP/1.1 client, and HTTP/1.1 backend -> paused HTTP/2 client: the backend is held back, then all arrives', async () => {
    const written = { h2: 0, h1: 0 };
    const h2server = http2.createServer();
    h2server.on('stream', (stream) => {
      stream.on('error', () => {});
      stream.respond({ ':status': 200 });
      const pump = () => {
        while (written.h2 < TOTAL) {
          written.h2 += CHUNK.length;
          if (!stream.write(CHUNK)) return void stream.once('drain', pump);
        }
        stream.end();
      };
      pump();
    });
    const h1server = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-length': String(TOTAL) });
      const pump = () => {
        while (written.h1 < TOTAL) {
          written.h1 += CHUNK.length;
          if (!res.write(CHUNK)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    });
    await Promise.all([h2server, h1server].map((srv) => new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve))));
    const port = (srv: http.Server | http2.Http2Server) => (srv.address() as import('node:net').AddressInfo).port;
    const proxy = await plainReverseProxy(`/from-h2=h2c://127.0.0.1:${port(h2server)}`, `/from-h1=http://127.0.0.1:${port(h1server)}`);
    try {
      // HTTP/1.1 client that does not read.
      const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
        const req = http.get(`${proxy.reverseUrl}/from-h2`, { agent: false }, resolve);
        req.on('error', reject);
      });
      res.pause();
      const heldH2 = await stalled(() => written.h2);
      assert.ok(heldH2 < TOTAL / 4, `the HTTP/2 backend wrote ${heldH2} of ${TOTAL} bytes to a client that read nothing`);
      let got = 0;
      res.on('data', (c: Buffer) => (got += c.length));
      res.resume();
      await new Promise<void>((resolve) => res.on('end', () => resolve()));
      assert.equal(got, TOTAL);

      // HTTP/2 client that does not read.
      const session = http2.connect(proxy.reverseUrl!);
      session.on('error', () => {});
      const stream = session.request({ ':path': '/from-h1' });
      stream.pause();
      await new Promise((resolve) => stream.once('response', resolve));
      const heldH1 = await stalled(() => written.h1);
      assert.ok(heldH1 < TOTAL / 4, `the HTTP/1.1 backend wrote ${heldH1} of ${TOTAL} bytes to a client that read nothing`);
      let got2 = 0;
      stream.on('data', (c: Buffer) => (got2 += c.length));
      stream.resume();
      await new Promise<void>((resolve) => stream.on('end', () => resolve()));
      assert.equal(got2, TOTAL);
      session.close();
      const captured = await exchanges(proxy);
      assert.deepEqual(captured.map((e) => [e.protocol, e.responseProtocol, e.responseBodySize, e.state]), [
        ['HTTP/1.1', 'h2c', TOTAL, 'complete'],
        ['h2c', 'HTTP/1.1', TOTAL, 'complete'],
      ]);
    } finally {
      await proxy.close();
      h2server.close();
      await new Promise<void>((resolve) => h1server.close(() => resolve()));
    }
  });
});

