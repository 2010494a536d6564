// The JSON API over real proxied traffic: list pages with filters, one exchange with headers in
// wire order and bodies, raw bodies with content codings undone, connections.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync, brotliCompressSync } from 'node:zlib';
import { startUpstream, type TestUpstream } from '../../../test/helpers/upstream.js';
import { proxiedRequest } from '../../../test/helpers/clients.js';
import type { ApiError, ConnectionDetailJson, ExchangeDetailJson, ExchangeListResponse, InfoResponse } from '../src/inspector/protocol.js';
import { authed, inspectorRequest, startRig, type Rig } from './inspector-harness.js';

const pathOf = (e: { url: string }) => new URL(e.url).pathname;

describe('inspector JSON API', { timeout: 20_000 }, () => {
  let rig: Rig;
  let coded: TestUpstream;
  const get = async <T>(path: string) => {
    const res = await inspectorRequest(rig, path, authed(rig));
    return { status: res.status, body: res.json<T>(), headers: res.headers, raw: res.body };
  };

  before(async () => {
    rig = await startRig({ proxyUrl: 'http://127.0.0.1:8080', caPath: '/tmp/ca/hopscope-ca.pem' });
    coded = await startUpstream((req, res) => {
      const text = Buffer.from('{"compressed":true,"text":"' + 'x'.repeat(200) + '"}');
      if (req.url === '/gzip') {
        res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' });
        res.end(gzipSync(text));
      } else if (req.url === '/br') {
        res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Encoding': 'br' });
        res.end(brotliCompressSync(text));
      } else {
        res.writeHead(200, { 'Content-Type': 'image/png' });
        res.end(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0xff, 0x00]));
      }
    });
    await rig.request('/one');
    await rig.request('/echo', { method: 'POST', body: '{"name":"Ada"}', headers: { 'Content-Type': 'application/json' } });
    await rig.request('/status/404');
    await rig.request('/status/503');
    for (const path of ['/gzip', '/br', '/png']) await proxiedRequest(rig.proxy, `http://coded.test:${coded.port}${path}`);
    rig.proxy.flush();
  });
  after(async () => {
    await rig.close();
    await coded.close();
  });

  test('info names the proxy, the CA and the capabilities of this capture file', async () => {
    const { body } = await get<InfoResponse>('/api/info');
    assert.equal(body.name, 'hopscope');
    assert.equal(body.proxyUrl, 'http://127.0.0.1:8080');
    assert.equal(body.caPath, '/tmp/ca/hopscope-ca.pem');
    const hasTable = (name: string) => rig.proxy.db.prepare(`SELECT 1 FROM sqlite_master WHERE name = ?`).get(name) !== undefined;
    assert.deepEqual(body.capabilities, { h2Frames: hasTable('h2_frames'), wsMessages: hasTable('ws_messages') });
    assert.ok(body.seq > 0);
  });

  test('lists newest first with list columns, pages with beforeId', async () => {
    const { body } = await get<ExchangeListResponse>('/api/exchanges');
    assert.equal(body.exchanges.length, 7);
    assert.equal(body.hasMore, false);
    assert.deepEqual(body.exchanges.map(pathOf), ['/png', '/br', '/gzip', '/status/503', '/status/404', '/echo', '/one']);
    const echo = body.exchanges[5];
    assert.equal(echo.method, 'POST');
    assert.equal(echo.status, 200);
    assert.equal(echo.protocol, 'HTTP/1.1');
    assert.equal(echo.host, 'site.test');
    assert.equal(echo.state, 'complete');
    assert.equal(echo.websocket, false);
    assert.equal(echo.requestBodySize, 14);
    assert.equal(echo.clientAlpn, null);

    const first = await get<ExchangeListResponse>('/api/exchanges?limit=3');
    assert.equal(first.body.hasMore, true);
    const next = await get<ExchangeListResponse>(`/api/exchanges?limit=3&beforeId=${first.body.exchanges[2].id}`);
    assert.deepEqual(next.body.exchanges.map(pathOf), ['/status/503', '/status/404', '/echo']);
    const oldest = await get<ExchangeListResponse>('/api/exchanges?order=oldest&limit=2');
    assert.deepEqual(oldest.body.exchanges.map(pathOf), ['/one', '/echo']);
  });

  test('filters with the filter language; a bad filter is a 400 with the position', async () => {
    const targets = async (filter: string) =>
      (await get<ExchangeListResponse>(`/api/exchanges?filter=${encodeURIComponent(filter)}`)).body.exchanges.map(pathOf);
    assert.deepEqual(await targets('status:4xx or status:5xx'), ['/status/503', '/status/404']);
    assert.deepEqual(await targets('method:post reqbody:ada'), ['/echo']);
    assert.deepEqual(await targets('host:coded.test not type:json'), ['/png']);
    assert.deepEqual(await targets('resheader:x-first=A status:200 -echo'), ['/one']);
    const bad = await get<ApiError>('/api/exchanges?filter=' + encodeURIComponent('host:a and stauts:200'));
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'bad-filter');
    assert.match(bad.body.error.message, /Unknown field "stauts"\. Did you mean "status"\?/);
    assert.deepEqual([bad.body.error.start, bad.body.error.end], [11, 17]);
    assert.equal((await get<ApiError>('/api/exchanges?limit=abc')).status, 400);
  });

  test('one exchange: headers in wire order as sent, text and binary bodies', async () => {
    const list = (await get<ExchangeListResponse>('/api/exchanges')).body.exchanges;
    const echoId = list.find((e) => pathOf(e) === '/echo')!.id;
    const { body: echo } = await get<ExchangeDetailJson>(`/api/exchanges/${echoId}`);
    assert.deepEqual(echo.requestHeaders.map(([n]) => n).filter((n) => n !== 'Connection'), ['Host', 'Content-Type', 'Content-Length']);
    assert.deepEqual(echo.requestBody, { size: 14, storedSize: 14, truncated: false, encoding: 'utf8', data: '{"name":"Ada"}' });
    assert.equal(echo.responseBody?.data, '{"name":"Ada"}');
    assert.equal(echo.websocket, false);

    const oneId = list.find((e) => pathOf(e) === '/one')!.id;
    const { body: one } = await get<ExchangeDetailJson>(`/api/exchanges/${oneId}`);
    assert.deepEqual(one.responseHeaders?.filter(([n]) => n.startsWith('X-')), [['X-Second', 'b'], ['X-First', 'a']]);
    assert.equal(one.requestBody, null, 'no request body');

    const pngId = list.find((e) => pathOf(e) === '/png')!.id;
    const { body: png } = await get<ExchangeDetailJson>(`/api/exchanges/${pngId}`);
    assert.equal(png.responseBody?.encoding, 'base64');
    assert.deepEqual([...Buffer.from(png.responseBody!.data!, 'base64')].slice(0, 4), [0x89, 0x50, 0x4e, 0x47]);
    const { body: noBodies } = await get<ExchangeDetailJson>(`/api/exchanges/${pngId}?body=none`);
    assert.equal(noBodies.responseBody?.encoding, 'omitted');
    assert.equal(noBodies.responseBody?.data, undefined);
    assert.equal((await get<ApiError>('/api/exchanges/99999')).status, 404);
  });

  test('raw bodies: stored bytes as a sandboxed download, or with gzip and br undone', async () => {
    const list = (await get<ExchangeListResponse>('/api/exchanges?filter=host:coded.test')).body.exchanges;
    for (const target of ['/gzip', '/br']) {
      const id = list.find((e) => pathOf(e) === target)!.id;
      const stored = await get<unknown>(`/api/exchanges/${id}/body/response`).catch(() => null);
      assert.equal(stored, null, 'raw bytes are not JSON');
      const raw = await inspectorRequest(rig, `/api/exchanges/${id}/body/response`, authed(rig));
      assert.equal(raw.headers['content-type'], 'application/octet-stream');
      assert.equal(raw.headers['content-security-policy'], 'sandbox');
      assert.notEqual(raw.body.toString().slice(0, 14), '{"compressed":');
      const decoded = await inspectorRequest(rig, `/api/exchanges/${id}/body/response?decode=1`, authed(rig));
      assert.equal(decoded.status, 200);
      assert.equal(JSON.parse(decoded.body.toString()).compressed, true, target);
    }
    // The filter searches them decoded too, though the file keeps them compressed.
    const found = (await get<ExchangeListResponse>(`/api/exchanges?filter=${encodeURIComponent('host:coded.test resbody:compressed')}`)).body.exchanges;
    assert.deepEqual(found.map(pathOf).sort(), ['/br', '/gzip']);
  });

  test('a connection with its TLS legs, decode errors and exchanges', async () => {
    const list = (await get<ExchangeListResponse>('/api/exchanges?filter=host:site.test')).body.exchanges;
    const { status, body } = await get<ConnectionDetailJson>(`/api/connections/${list[0].connectionId}`);
    assert.equal(status, 200);
    assert.equal(body.id, list[0].connectionId);
    assert.equal(body.listener, 'proxy');
    assert.deepEqual(body.tls, { client: null, upstream: null });
    assert.deepEqual(body.decodeErrors, []);
    assert.ok(body.exchangeIds.includes(list[0].id));
    assert.equal((await get<ApiError>('/api/connections/424242')).status, 404);
    assert.equal((await get<ApiError>('/api/nothing-here')).status, 404);
  });

  test('the HAR download is served behind the same checks, filtered like the list', async () => {
    const all = await inspectorRequest(rig, '/api/har', authed(rig));
    assert.equal(all.status, 200);
    assert.match(String(all.headers['content-disposition']), /attachment; filename="hopscope-.*\.har"/);
    assert.equal(all.json<{ log: { entries: unknown[] } }>().log.entries.length, 7);
    const some = await inspectorRequest(rig, `/api/har?filter=${encodeURIComponent('status:4xx or status:5xx')}`, authed(rig));
    assert.equal(some.json<{ log: { entries: unknown[] } }>().log.entries.length, 2);
    assert.equal((await inspectorRequest(rig, '/api/har')).status, 401);
  });
});
