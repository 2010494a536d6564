// `hopscope har` on a capture of real traffic: the file validates against the published HAR 1.2
// schema, and its fields match what the clients and upstreams really exchanged (plain and
// decrypted HTTPS, bodies, binary, gzip, cookies, failures, timings).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { startTestProxy, type TestProxy } from './helpers/proxy.js';
import { startUpstream, closedPort, upstreamCaFile, upstreamTls, headerPairs, type TestUpstream } from './helpers/upstream.js';
import { proxiedRequest, curl } from './helpers/clients.js';
import type { HarEntry } from '../packages/core/src/export/har-types.js';

const harValidator = createRequire(import.meta.url)('har-validator') as { har(data: unknown): Promise<unknown> };
const mainScript = fileURLToPath(new URL('../packages/core/src/cli/main.ts', import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function hopscope(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', mainScript, ...args], { maxBuffer: 256 << 20, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

async function validHar(text: string): Promise<{ log: { entries: HarEntry[] } }> {
  const har = JSON.parse(text);
  try {
    await harValidator.har(har);
  } catch (err) {
    assert.fail(`not valid HAR 1.2: ${JSON.stringify((err as { errors?: unknown }).errors ?? String(err))}`);
  }
  return har;
}

const binary = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
const json = JSON.stringify({ hello: 'wörld', list: Array.from({ length: 100 }, (_, i) => i) });

describe('hopscope har', { timeout: 60_000 }, () => {
  let dir: string;
  let dbPath: string;
  let plain: TestUpstream;
  let secure: TestUpstream;
  let proxy: TestProxy;
  let deadPort: number;
  let h2Server: http2.Http2SecureServer;
  const form = 'name=J%C3%BCrgen&tags=a+b';

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hopscope-har-'));
    dbPath = join(dir, 'capture.sqlite');
    const handler = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse, body: Buffer) => {
      const path = (req.url ?? '').split('?')[0];
      if (path === '/json') {
        res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Encoding': 'gzip', 'Set-Cookie': ['sid=s3cr3t; Path=/; HttpOnly'] });
        res.end(zlib.gzipSync(json));
      } else if (path === '/bin') {
        res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
        res.end(binary);
      } else if (path === '/form') {
        res.writeHead(201, 'Made It', { 'Content-Type': 'text/plain' });
        res.end(`got ${body.length} bytes`);
      } else if (path === '/redirect') {
        res.writeHead(302, { Location: '/json' });
        res.end();
      } else {
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        res.end(`decrypted ${req.url}`);
      }
    };
    plain = await startUpstream(handler);
    secure = await startUpstream(handler, { tls: true });
    deadPort = await closedPort();
    h2Server = http2.createSecureServer({ ...upstreamTls, ALPNProtocols: ['h2'] }, (req, res) => {
      res.setHeader('content-type', 'text/plain');
      res.end(`h2 answered ${req.url}`);
    });
    await new Promise<void>((resolve) => h2Server.listen(0, '127.0.0.1', resolve));
    const h2Port = (h2Server.address() as AddressInfo).port;
    proxy = await startTestProxy({ dbPath, upstreamCaFiles: [upstreamCaFile] });
    const p = { host: proxy.host, port: proxy.port };
    await proxiedRequest(p, `http://site.test:${plain.port}/json?q=1&q=2`, { headers: { Cookie: 'a=1; b=2' } });
    await proxiedRequest(p, `http://site.test:${plain.port}/bin`);
    await proxiedRequest(p, `http://site.test:${plain.port}/form`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: form,
    });
    await proxiedRequest(p, `http://site.test:${plain.port}/redirect`);
    await proxiedRequest(p, `http://site.test:${deadPort}/refused`);
    const https = await curl(['-x', proxy.proxyUrl, '--cacert', proxy.caCertPath, `https://api.site.test:${secure.port}/secret?x=1`]);
    assert.equal(https.code, 0, https.stderr);
    assert.equal(https.stdout, 'decrypted /secret?x=1');
    const h2 = await curl(['--http2', '-x', proxy.proxyUrl, '--cacert', proxy.caCertPath, `https://site.test:${h2Port}/over-h2`]);
    assert.equal(h2.code, 0, h2.stderr);
    assert.equal(h2.stdout, 'h2 answered /over-h2');
    await proxy.close();
  });

  after(async () => {
    await plain?.close();
    await secure?.close();
    h2Server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('writes valid HAR whose fields match the real traffic', async () => {
    const out = join(dir, 'all.har');
    const run = await hopscope(['har', dbPath, '-o', out]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /wrote 7 entries/);
    const { log } = await validHar(readFileSync(out, 'utf8'));
    const byPath = (path: string) => log.entries.find((e) => new URL(e.request.url).pathname === path)!;

    const gz = byPath('/json');
    const received = plain.received.find((r) => r.url === '/json?q=1&q=2')!;
    // The request as the client sent it; the proxy replaced the hop-by-hop Connection header upstream.
    const endToEnd = (pairs: Array<[string, string]>) => pairs.filter(([n]) => n.toLowerCase() !== 'connection');
    assert.deepEqual(gz.request.headers.map((h) => [h.name, h.value]), [['Host', `site.test:${plain.port}`], ['Cookie', 'a=1; b=2'], ['Connection', 'close']]);
    assert.deepEqual(endToEnd(gz.request.headers.map((h) => [h.name, h.value])), endToEnd(headerPairs(received.rawHeaders)));
    assert.deepEqual(gz.request.queryString, [{ name: 'q', value: '1' }, { name: 'q', value: '2' }]);
    assert.deepEqual(gz.request.cookies, [{ name: 'a', value: '1' }, { name: 'b', value: '2' }]);
    assert.equal(gz.response.status, 200);
    assert.equal(gz.response.content.text, json, 'gzip removed, UTF-8 text kept');
    assert.equal(gz.response.content.size, Buffer.byteLength(json));
    assert.equal(gz.response.bodySize, zlib.gzipSync(json).length);
    assert.deepEqual(gz.response.cookies, [{ name: 'sid', value: 's3cr3t', path: '/', httpOnly: true }]);
    assert.equal(gz.serverIPAddress, '127.0.0.1');

    const bin = byPath('/bin');
    assert.equal(bin.response.content.encoding, 'base64');
    assert.deepEqual(Buffer.from(bin.response.content.text!, 'base64'), binary);

    const post = byPath('/form');
    assert.equal(post.request.method, 'POST');
    assert.equal(post.request.postData?.text, form);
    assert.deepEqual(post.request.postData?.params, [{ name: 'name', value: 'Jürgen' }, { name: 'tags', value: 'a b' }]);
    assert.equal(post.request.bodySize, form.length);
    assert.equal(post.response.status, 201);
    assert.equal(post.response.statusText, 'Made It');
    assert.equal(post.response.content.text, `got ${form.length} bytes`);

    assert.equal(byPath('/redirect').response.redirectURL, '/json');

    const refused = byPath('/refused');
    assert.equal(refused._state, 'failed');
    assert.equal(refused._errors[0].source, 'exchange');
    assert.equal(refused._errors[0].reason, 'refused');

    const secret = byPath('/secret');
    assert.equal(secret.request.url, `https://api.site.test:${secure.port}/secret?x=1`);
    assert.equal(secret.response.content.text, 'decrypted /secret?x=1', 'the decrypted body');
    assert.equal(secret._tunnel?.host, 'api.site.test');
    assert.equal(secret._tunnel?.intercepted, true);
    assert.equal(secret._tls.client?.sni, 'api.site.test');
    assert.ok(secret._tls.client?.version?.startsWith('TLS'), 'client leg TLS version');
    assert.equal(secret._tls.upstream?.sni, 'api.site.test');
    assert.ok(secret._tls.upstream?.cipher, 'upstream leg cipher');
    assert.equal(secret._tls.upstream?.certificates[0]?.subject.includes('site.test'), true, 'the upstream certificate');

    const h2 = byPath('/over-h2');
    assert.equal(h2.request.httpVersion, 'http/2.0');
    assert.equal(h2.response.httpVersion, 'http/2.0');
    assert.deepEqual(h2._protocols, { client: 'h2', upstream: 'h2' });
    assert.equal(typeof h2._streamId, 'number');
    assert.equal(h2.request.headersSize, -1, 'HPACK-coded size not recorded');
    assert.equal(h2._tls.client?.alpn, 'h2');
    assert.equal(h2._tls.upstream?.alpn, 'h2');
    assert.equal(h2.response.content.text, 'h2 answered /over-h2');
    assert.deepEqual(h2.request.headers.filter((h) => h.name.startsWith(':')).map((h) => [h.name, h.value]), [
      [':method', 'GET'], [':path', '/over-h2'], [':scheme', 'https'], [':authority', `site.test:${new URL(h2.request.url).port}`],
    ], 'pseudo-headers in curl\'s wire order (Chrome writes them for HTTP/2 too)');
    assert.deepEqual(h2.response.headers[0], { name: ':status', value: '200' });

    // Timings: phases laid end to end and ordered in time like the requests were sent.
    const starts = log.entries.map((e) => Date.parse(e.startedDateTime));
    assert.deepEqual(starts, [...starts].sort((a, b) => a - b));
    for (const e of log.entries.filter((x) => x._state === 'complete')) {
      const { send, wait, receive } = e.timings;
      assert.ok(send >= 0 && wait >= 0 && receive >= 0, `measured phases of ${e.request.url}: ${JSON.stringify(e.timings)}`);
      const sum = [e.timings.dns, e.timings.connect, send, wait, receive].filter((t) => t > 0).reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(sum - e.time) < 0.01, 'time is the sum of the phases');
    }
  });

  test('writes to stdout without -o, and --filter keeps the matching exchanges', async () => {
    const run = await hopscope(['har', dbPath, '--filter', 'status:2xx and not host:api.site.test']);
    assert.equal(run.code, 0, run.stderr);
    const { log } = await validHar(run.stdout);
    assert.deepEqual(log.entries.map((e) => new URL(e.request.url).pathname).sort(), ['/bin', '/form', '/json', '/over-h2']);
  });

  test('a bad filter or a missing file fails with a message and writes nothing', async () => {
    const out = join(dir, 'never.har');
    const bad = await hopscope(['har', dbPath, '-o', out, '--filter', 'status:>>4']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /bad --filter/);
    assert.equal(existsSync(out), false);
    const missing = await hopscope(['har', join(dir, 'nope.sqlite'), '-o', out]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /nope\.sqlite/);
    assert.equal(existsSync(out), false);
  });
});
