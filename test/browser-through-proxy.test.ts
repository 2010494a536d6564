// The first thing a user does: point a browser at hopscope. Headless Chromium with
// --proxy-server=http://… loads an HTTPS page from an HTTP/2 server (TLS intercepted, hopscope's
// leaf trusted), the page fetches JSON and opens a wss:// WebSocket. The server advertises
// SETTINGS_ENABLE_CONNECT_PROTOCOL, so Chromium opens the WebSocket as an RFC 8441 extended CONNECT
// stream on the h2 connection it already has. Checks what the browser showed and what the capture
// holds: h2 on both legs, the exchanges, and the WebSocket's messages decoded from the h2 stream.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { chromium } from 'playwright-core';
import { CHROMIUM_FLAGS, chromiumPath, serverSpkiHash } from './helpers/chromium.js';
import { startTestProxy, type TestProxy } from './helpers/proxy.js';
import { upstreamCaFile, upstreamTls } from './helpers/upstream.js';
import { openTunnel } from './helpers/clients.js';
import { recordEvents, type EventLog } from './helpers/events.js';
import { webSocketStream } from './helpers/ws-h2-echo.js';
import { getConnection, getExchange, getWebSocket, listExchanges, listWsMessages } from '../packages/core/src/store/queries.js';
import type { ExchangeDetail } from '../packages/core/src/store/row-types.js';

const PAGE = `<!doctype html><title>loading</title><script>
(async () => {
  const data = await (await fetch('/api/data')).json();
  const ws = new WebSocket('wss://' + location.host + '/chat');
  ws.onopen = () => ws.send('hello ' + data.n);
  ws.onmessage = (e) => { document.title = 'echo:' + e.data; ws.close(1000, 'done'); };
  ws.onerror = () => { document.title = 'websocket failed'; };
})();
</script>`;

describe('a browser pointed at hopscope', { timeout: 60_000 }, () => {
  let proxy: TestProxy;
  let log: EventLog;
  let server: http2.Http2SecureServer;
  let port: number;
  const seen: string[] = [];

  before(async () => {
    server = http2.createSecureServer({ ...upstreamTls, settings: { enableConnectProtocol: true } });
    server.on('stream', (stream, headers) => {
      stream.on('error', () => {});
      const method = String(headers[':method']);
      const path = String(headers[':path']);
      seen.push(`${method} ${path ?? headers[':protocol']}`);
      if (method === 'CONNECT') return webSocketStream(stream, headers);
      if (path === '/page') {
        stream.respond({ ':status': 200, 'content-type': 'text/html; charset=utf-8' });
        stream.end(PAGE);
      } else if (path === '/api/data') {
        stream.respond({ ':status': 200, 'content-type': 'application/json' });
        stream.end(JSON.stringify({ n: 42 }));
      } else {
        stream.respond({ ':status': 404 });
        stream.end();
      }
    });
    server.on('session', (session) => session.on('error', () => {}));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    proxy = await startTestProxy({ upstreamCaFiles: [upstreamCaFile] });
    log = recordEvents(proxy.bus);
  });

  after(async () => {
    log.stop();
    await proxy.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  test('an HTTPS page over h2, a fetch and a wss:// WebSocket over the same h2 connection (RFC 8441)', async () => {
    // Every leaf hopscope mints in a run shares one key: trusting its SPKI trusts them all.
    const tunnel = await openTunnel(proxy, `site.test:${port}`);
    const spki = await serverSpkiHash('site.test', port, readFileSync(proxy.caCertPath, 'utf8'), tunnel);
    const browser = await chromium.launch({
      executablePath: chromiumPath(),
      headless: true,
      args: [...CHROMIUM_FLAGS, `--proxy-server=${proxy.proxyUrl}`, `--ignore-certificate-errors-spki-list=${spki}`],
    });
    try {
      const page = await browser.newPage();
      const response = await page.goto(`https://site.test:${port}/page`);
      assert.equal(response?.status(), 200);
      await page.waitForFunction(() => (globalThis as unknown as { document: { title: string } }).document.title !== 'loading');
      assert.equal(await page.title(), 'echo:hello 42');
    } finally {
      await browser.close();
    }
    assert.deepEqual(seen.filter((s) => !s.startsWith('GET /favicon')), ['GET /page', 'GET /api/data', 'CONNECT /chat']);

    await log.waitFor((e) => e.kind === 'ws.closed');
    await proxy.flush();
    const rows = listExchanges(proxy.db, { order: 'oldest', limit: 100 }).map((s) => getExchange(proxy.db, s.id)!);
    const byTarget = (target: string): ExchangeDetail => {
      const found = rows.find((r) => r.target === target && r.host === 'site.test');
      assert.ok(found, `no exchange for ${target}: ${rows.map((r) => `${r.method} ${r.url}`).join(', ')}`);
      return found;
    };
    const pageRow = byTarget('/page');
    const data = byTarget('/api/data');
    const chat = byTarget('/chat');
    assert.equal(pageRow.protocol, 'h2');
    assert.equal(pageRow.status, 200);
    assert.equal(data.responseBody?.data.toString(), '{"n":42}');
    assert.equal(data.connectionId, pageRow.connectionId, 'one h2 connection for the page and its fetch');
    const conn = getConnection(proxy.db, pageRow.connectionId)!;
    assert.equal(conn.intercepted, true);
    assert.equal(conn.tls.client?.alpn, 'h2');
    assert.equal(conn.tls.upstream?.alpn, 'h2');

    assert.equal(chat.connectionId, pageRow.connectionId, 'the WebSocket rode the same h2 connection');
    assert.equal(chat.method, 'CONNECT');
    assert.equal(chat.status, 200);
    assert.deepEqual(chat.requestHeaders.find(([n]) => n === ':protocol'), [':protocol', 'websocket']);
    const ws = getWebSocket(proxy.db, chat.id)!;
    assert.equal(ws.closeCode, 1000);
    const messages = listWsMessages(proxy.db, chat.id, { limit: 10 }).filter((m) => m.opcode === 1);
    assert.deepEqual(messages.map((m) => [m.side, m.data?.toString()]), [['client', 'hello 42'], ['server', 'hello 42']]);
  });
});
