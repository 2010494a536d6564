// Resend from the inspector (POST /api/exchanges/:id/replay): a captured request goes again through
// hopscope's own proxy port, over the same protocol, to real upstreams (HTTP/1.1 in the clear and
// over TLS, HTTP/2). Checks what each upstream received the second time against the first, that
// the new exchange is in the capture and named in the answer, and what cannot be resent and why.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { startTestProxy, type TestProxy } from './helpers/proxy.js';
import { startUpstream, upstreamCaFile, type TestUpstream } from './helpers/upstream.js';
import { curl, proxiedRequest } from './helpers/clients.js';
import { connectThroughProxy, h2Request, startH2Upstream, type H2Upstream } from './helpers/h2-peers.js';
import { startWsServer, connectClient, opened, type TestWsServer } from './helpers/ws-peers.js';
import { startInspector, type Inspector } from '../packages/core/src/inspector/index.js';
import { getExchange, listExchanges } from '../packages/core/src/store/queries.js';
import type { ExchangeDetail } from '../packages/core/src/store/row-types.js';

interface Answer {
  status: number;
  body: { exchangeId?: number | null; status?: number; error?: { code: string; message: string } };
}

/** POSTs (or `method`s) to the inspector with its token cookie, from its own origin unless told otherwise. */
function callInspector(inspector: Inspector, path: string, options: { method?: string; origin?: string; token?: boolean; json?: unknown; raw?: string } = {}): Promise<Answer> {
  const host = `127.0.0.1:${inspector.address.port}`;
  const headers: Record<string, string> = { Host: host, Origin: options.origin ?? `http://${host}` };
  if (options.token !== false) headers.Cookie = `hopscope_token_${inspector.address.port}=${inspector.token}`;
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: inspector.address.port, path, method: options.method ?? 'POST', headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(options.raw ?? (options.json === undefined ? undefined : JSON.stringify(options.json)));
  });
}

describe('Resend from the inspector', { timeout: 60_000 }, () => {
  let proxy: TestProxy;
  let inspector: Inspector;
  let plain: TestUpstream;
  let secure: TestUpstream;
  let h2: H2Upstream;
  let wsServer: TestWsServer;
  const h2Received: Array<{ headers: Array<[string, string]>; body: string }> = [];

  before(async () => {
    const echo = (_req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => {
      res.writeHead(201, { 'Content-Type': 'text/plain' });
      res.end(`got ${body.length} bytes`);
    };
    plain = await startUpstream(echo);
    secure = await startUpstream(echo, { tls: true });
    h2 = await startH2Upstream((stream, headers) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        h2Received.push({ headers: Object.entries(headers).map(([n, v]) => [n, String(v)]), body: Buffer.concat(chunks).toString() });
        stream.respond({ ':status': 200, 'content-type': 'text/plain' });
        stream.end('h2 ok');
      });
    });
    wsServer = await startWsServer();
    proxy = await startTestProxy({ upstreamCaFiles: [upstreamCaFile] });
    inspector = await startInspector({
      db: proxy.db, sink: proxy.sink, bus: proxy.bus, host: '127.0.0.1', port: 0, proxyUrl: proxy.proxyUrl, caPath: proxy.caCertPath,
    });
  });

  after(async () => {
    await inspector.close();
    await proxy.close();
    await Promise.all([plain.close(), secure.close(), h2.close(), wsServer.close()]);
  });

  /** The newest exchange for `path`, after the capture is committed. */
  async function newest(path: string): Promise<ExchangeDetail> {
    await proxy.flush();
    const row = listExchanges(proxy.db, { limit: 500 }).find((s) => new URL(s.url).pathname === path);
    assert.ok(row, `no exchange for ${path}`);
    return getExchange(proxy.db, row.id)!;
  }

  test('an HTTP/1.1 POST goes again as it was: method, target, headers in order and case, body; the answer names the new exchange', async () => {
    const headers = ['X-Second', 'b', 'x-first', 'a', 'Content-Type', 'text/plain', 'X-Dup', '1', 'X-Dup', '2'];
    const first = await proxiedRequest(proxy, `http://site.test:${plain.port}/form?q=1`, { method: 'POST', headers, body: 'hello there' });
    assert.equal(first.status, 201);
    const original = await newest('/form');

    const answer = await callInspector(inspector, `/api/exchanges/${original.id}/replay`);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(answer.body.status, 201);
    const again = plain.received.at(-1)!;
    const before = plain.received.at(-2)!;
    assert.equal(again.method, 'POST');
    assert.equal(again.url, '/form?q=1');
    assert.deepEqual(again.rawHeaders, before.rawHeaders, 'the upstream got the same header list');
    assert.equal(again.body.toString(), 'hello there');

    const replayed = getExchange(proxy.db, answer.body.exchangeId!)!;
    assert.ok(replayed, 'the new exchange is committed when the answer comes');
    assert.notEqual(replayed.id, original.id);
    assert.equal(replayed.url, original.url);
    assert.equal(replayed.status, 201);
    assert.equal(replayed.requestBody?.data.toString(), 'hello there');
  });

  test('a chunked upload with trailers goes again chunked, with the same trailers', async () => {
    const first = await new Promise<number>((resolve, reject) => {
      const req = http.request({ host: proxy.host, port: proxy.port, method: 'POST', path: `http://site.test:${plain.port}/chunked`, agent: false,
        headers: { Host: `site.test:${plain.port}`, 'Transfer-Encoding': 'chunked', Trailer: 'X-Sum' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.write('part one, ');
      req.write('part two');
      req.addTrailers({ 'X-Sum': '18' });
      req.end();
    });
    assert.equal(first, 201);
    const original = await newest('/chunked');
    assert.deepEqual(original.requestTrailers, [['X-Sum', '18']]);
    const answer = await callInspector(inspector, `/api/exchanges/${original.id}/replay`);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    const [before, again] = plain.received.slice(-2);
    assert.equal(again.body.toString(), 'part one, part two');
    assert.deepEqual(again.trailers, ['X-Sum', '18']);
    assert.deepEqual(again.rawHeaders, before.rawHeaders, 'Transfer-Encoding and Trailer as the first time');
    assert.deepEqual(getExchange(proxy.db, answer.body.exchangeId!)!.requestTrailers, [['X-Sum', '18']]);
  });

  test('HTTPS over HTTP/1.1 goes through the interception again (the resending client trusts the CA)', async () => {
    const first = await curl(['-x', proxy.proxyUrl, '--cacert', proxy.caCertPath, '--http1.1', '-H', 'X-Order: 1', '--data-binary', 'tls body', `https://site.test:${secure.port}/secure`]);
    assert.equal(first.stdout, 'got 8 bytes');
    const original = await newest('/secure');
    assert.equal(original.scheme, 'https');
    const answer = await callInspector(inspector, `/api/exchanges/${original.id}/replay`);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    const again = secure.received.at(-1)!;
    assert.deepEqual(again.rawHeaders, secure.received.at(-2)!.rawHeaders);
    assert.equal(again.body.toString(), 'tls body');
    const replayed = getExchange(proxy.db, answer.body.exchangeId!)!;
    assert.equal(replayed.protocol, 'HTTP/1.1');
    assert.equal(replayed.url, `https://site.test:${secure.port}/secure`);
  });

  test('an HTTP/2 request goes again over HTTP/2', async () => {
    const session = await connectThroughProxy(proxy, 'h2.site.test', h2.port, { caPem: readFileSync(proxy.caCertPath, 'utf8') });
    const first = await h2Request(session, { ':method': 'PUT', ':path': '/thing', 'x-kind': 'h2', 'content-type': 'text/plain' }, 'h2 body');
    session.close();
    assert.equal(first.body.toString(), 'h2 ok');
    const original = await newest('/thing');
    assert.equal(original.protocol, 'h2');
    const answer = await callInspector(inspector, `/api/exchanges/${original.id}/replay`);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(answer.body.status, 200);
    assert.equal(h2Received.length, 2);
    const [a, b] = h2Received;
    assert.deepEqual(b, a, 'the same pseudo-headers, headers and body');
    const replayed = getExchange(proxy.db, answer.body.exchangeId!)!;
    assert.equal(replayed.protocol, 'h2');
    assert.equal(replayed.method, 'PUT');
  });

  test('edited before resending: method, URL, headers and body as the user wrote them, the length made true', async () => {
    const original = await newest('/form');
    const headers = [['Host', `site.test:${plain.port}`], ['X-Edited', 'yes'], ['Content-Type', 'application/json'], ['Content-Length', '3']];
    const answer = await callInspector(inspector, `/api/exchanges/${original.id}/replay`, {
      json: { method: 'PUT', url: `http://site.test:${plain.port}/other?x=2`, headers, body: '{"é":true}' },
    });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    const got = plain.received.at(-1)!;
    assert.deepEqual([got.method, got.url, got.body.toString()], ['PUT', '/other?x=2', '{"é":true}']);
    assert.deepEqual(got.rawHeaders.slice(0, 8), ['Host', `site.test:${plain.port}`, 'X-Edited', 'yes', 'Content-Type', 'application/json', 'Content-Length', '11']);
    const replayed = getExchange(proxy.db, answer.body.exchangeId!)!;
    assert.equal(replayed.url, `http://site.test:${plain.port}/other?x=2`);
    assert.equal(replayed.method, 'PUT');

    const h2Original = await newest('/thing');
    const h2Answer = await callInspector(inspector, `/api/exchanges/${h2Original.id}/replay`, {
      json: { url: `https://h2.site.test:${h2.port}/edited`, headers: [['x-kind', 'edited']], body: 'new body' },
    });
    assert.equal(h2Answer.status, 200, JSON.stringify(h2Answer.body));
    const last = h2Received.at(-1)!;
    assert.deepEqual(Object.fromEntries(last.headers.filter(([n]) => n.startsWith(':') || n.startsWith('x-') || n === 'content-length')), {
      ':method': 'PUT', ':path': '/edited', ':scheme': 'https', ':authority': `h2.site.test:${h2.port}`, 'x-kind': 'edited', 'content-length': '8',
    });
    assert.equal(last.body, 'new body');
  });

  test('edits that cannot go on the wire are refused before anything is sent', async () => {
    const original = await newest('/form');
    const sent = plain.received.length;
    const cases: Array<[unknown, RegExp]> = [
      [{ method: 'GET X' }, /not a method/],
      [{ method: 'CONNECT' }, /not a method/],
      [{ url: 'ftp://site.test/x' }, /Only http/],
      [{ url: '/relative' }, /not an absolute URL/],
      [{ headers: [['Bad Name', 'x']] }, /not a header name/],
      [{ headers: [[':path', '/x']] }, /pseudo-headers come from the method and URL/],
      [{ headers: [['X-Split', 'a\r\nInjected: yes']] }, /line break/],
      [{ headers: [['X-Only-Name']] }, /\[name, value\] pairs/],
      [{ body: 'a', bodyBase64: 'YQ==' }, /not both/],
      [['not', 'an object'], /JSON object/],
    ];
    for (const [json, message] of cases) {
      const answer = await callInspector(inspector, `/api/exchanges/${original.id}/replay`, { json });
      assert.equal(answer.status, 400, JSON.stringify(json));
      assert.match(answer.body.error!.message, message);
    }
    const notJson = await callInspector(inspector, `/api/exchanges/${original.id}/replay`, { raw: '{nope' });
    assert.equal(notJson.status, 400);
    assert.equal(plain.received.length, sent, 'nothing was sent');
  });

  test('what cannot be resent says why; the API stays closed to other origins and to requests without the token', async () => {
    const ws = connectClient({ path: 'absolute-form', proxy, host: 'site.test', port: wsServer.port });
    await opened(ws);
    ws.close();
    const handshake = await newest('/chat');
    const refusedWs = await callInspector(inspector, `/api/exchanges/${handshake.id}/replay`);
    assert.equal(refusedWs.status, 409);
    assert.equal(refusedWs.body.error?.code, 'not-replayable');
    assert.match(refusedWs.body.error!.message, /WebSocket/);

    assert.equal((await callInspector(inspector, '/api/exchanges/999999/replay')).status, 404);
    const original = await newest('/form');
    const sent = plain.received.length;
    assert.equal((await callInspector(inspector, `/api/exchanges/${original.id}/replay`, { method: 'GET' })).status, 405);
    assert.equal((await callInspector(inspector, `/api/exchanges/${original.id}/replay`, { origin: 'http://evil.example' })).status, 403);
    assert.equal((await callInspector(inspector, `/api/exchanges/${original.id}/replay`, { token: false })).status, 401);
    assert.equal(plain.received.length, sent, 'none of those sent anything');
  });
});

describe('Resend with a body cap and with proxy authentication', { timeout: 30_000 }, () => {
  test('a body not stored whole is refused; credentials the proxy asks for are presented', async () => {
    const upstream = await startUpstream((_req, res, body) => res.end(`got ${body.length}`));
    const proxy = await startTestProxy({ bodyCaptureLimit: 4, proxyAuth: { user: 'u', pass: 'p' } });
    const inspector = await startInspector({
      db: proxy.db, sink: proxy.sink, bus: proxy.bus, host: '127.0.0.1', port: 0, proxyUrl: proxy.proxyUrl, caPath: proxy.caCertPath,
      proxyAuth: { user: 'u', pass: 'p' },
    });
    try {
      const auth = ['Proxy-Authorization', `Basic ${Buffer.from('u:p').toString('base64')}`];
      await proxiedRequest(proxy, `http://site.test:${upstream.port}/big`, { method: 'POST', headers: auth, body: 'more than four bytes' });
      await proxiedRequest(proxy, `http://site.test:${upstream.port}/small`, { method: 'POST', headers: auth, body: 'tiny' });
      await proxy.flush();
      const rows = listExchanges(proxy.db, { limit: 10 });
      const idOf = (path: string) => rows.find((r) => new URL(r.url).pathname === path)!.id;

      const refused = await callInspector(inspector, `/api/exchanges/${idOf('/big')}/replay`);
      assert.equal(refused.status, 409);
      assert.match(refused.body.error!.message, /Only 4 of 20 bytes of the request body were stored/);
      const withBody = await callInspector(inspector, `/api/exchanges/${idOf('/big')}/replay`, { json: { body: 'a body of my own' } });
      assert.equal(withBody.status, 200, 'with a body of its own, it can go again');

      const answer = await callInspector(inspector, `/api/exchanges/${idOf('/small')}/replay`);
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      assert.equal(answer.body.status, 200, 'not a 407: the resend presented the credentials');
      assert.deepEqual(upstream.received.map((r) => [r.url, r.body.toString()]), [
        ['/big', 'more than four bytes'], ['/small', 'tiny'], ['/big', 'a body of my own'], ['/small', 'tiny'],
      ]);
      assert.ok(!upstream.received.at(-1)!.rawHeaders.some((h) => h.toLowerCase() === 'proxy-authorization'), 'and they went no further');
    } finally {
      await inspector.close();
      await proxy.close();
      await upstream.close();
    }
  });
});
