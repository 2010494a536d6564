// End to end in a real browser: hopscope and the inspector in-process, real HTTP traffic through
// the proxy from Node clients, and headless Chromium (Debian's, driven by playwright-core) looking
// at the inspector. Screenshots of the main views go to test-artifacts/ui/.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startTestProxy, type TestProxy } from './helpers/proxy.js';
import { readFileSync } from 'node:fs';
import { startUpstream, upstreamCaFile, type TestUpstream } from './helpers/upstream.js';
import { ClientLog, connectClient, startWsServer, type TestWsServer } from './helpers/ws-peers.js';
import { connectThroughProxy, h2Request, startH2Upstream, type H2Upstream } from './helpers/h2-peers.js';
import { proxiedRequest } from './helpers/clients.js';
import { startInspector, type Inspector } from '../packages/core/src/inspector/index.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const artifacts = `${root}test-artifacts/ui`;
const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

function chromiumPath(): string {
  const candidates = [process.env.HOPSCOPE_CHROMIUM, '/usr/bin/chromium-headless-shell', '/usr/bin/chromium'].filter(Boolean) as string[];
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error('No Chromium found: apt-get install chromium-headless-shell (or set HOPSCOPE_CHROMIUM)');
  return found;
}

describe('inspector in Chromium', { timeout: 90_000 }, () => {
  let proxy: TestProxy;
  let upstream: TestUpstream;
  let wsServer: TestWsServer;
  let h2: H2Upstream;
  let inspector: Inspector;
  let browser: Browser;
  let page: Page;
  const origin = () => `http://site.test:${upstream.port}`;
  const rows = () => page.locator('.exchange-list [role=row][data-id]');
  /** Waits until the list holds exactly (===) or at least (>=) `n` rows; the page runs without DOM types here. */
  const waitForRows = (op: '===' | '>=', n: number) =>
    page.waitForFunction(
      ([exact, count]) => {
        const doc = (globalThis as unknown as { document: { querySelectorAll(s: string): { length: number } } }).document;
        const rowsNow = doc.querySelectorAll('.exchange-list [role=row][data-id]').length;
        return exact ? rowsNow === count : rowsNow >= count;
      },
      [op === '===', n] as const,
    );
  const shot = (name: string) => page.screenshot({ path: `${artifacts}/${name}.png` });

  before(async () => {
    if (!existsSync(`${root}packages/ui/dist/index.html`)) {
      execFileSync('npm', ['run', 'build', '-w', 'packages/ui', '--silent'], { cwd: root, stdio: 'inherit' });
    }
    mkdirSync(artifacts, { recursive: true });
    upstream = await startUpstream((req, res, body) => {
      const url = req.url ?? '/';
      if (url.startsWith('/api/users')) {
        res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip', 'Cache-Control': 'no-store' });
        res.end(gzipSync(JSON.stringify({ users: [{ id: 1, name: 'Ada Lovelace', roles: ['admin'] }, { id: 2, name: 'Alan Turing', roles: [] }], total: 2 })));
      } else if (url === '/api/login') {
        res.writeHead(201, { 'Content-Type': 'application/json', 'Set-Cookie': 'session=abc; HttpOnly' });
        res.end(JSON.stringify({ ok: true, echo: JSON.parse(body.toString() || '{}') }));
      } else if (url.startsWith('/missing')) {
        res.writeHead(404, { 'Content-Type': 'text/plain' });
        res.end('not here');
      } else if (url === '/helloworld.Greeter/SayHello') {
        // One gRPC message, {1: "hello", 2: 3}, framed as gRPC frames it (a gRPC-Web style exchange over HTTP/1.1).
        res.writeHead(200, { 'Content-Type': 'application/grpc-web+proto' });
        res.end(Buffer.from('00000000090a0568656c6c6f1003', 'hex'));
      } else if (url === '/logo.png') {
        res.writeHead(200, { 'Content-Type': 'image/png' });
        res.end(Buffer.from('iVBORw0KGgoAAAANSUhEUgAAABAAAAAQCAYAAAAf8/9hAAAAK0lEQVR4nGNgGAWMDAwM/xkYGP4zMDAwMDIyMjAwMDAwMLCwsLCwsDIyAgA5eAP9l2S7JQAAAABJRU5ErkJggg==', 'base64'));
      } else {
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
        res.end(`<!doctype html><title>page</title><p>Hello from ${url}</p>`);
      }
    });
    wsServer = await startWsServer();
    h2 = await startH2Upstream((stream) => {
      stream.respond({ ':status': 200, 'content-type': 'application/json', 'cache-control': 'max-age=60' });
      stream.end(JSON.stringify({ over: 'h2', frames: true }));
    });
    proxy = await startTestProxy({ upstreamCaFiles: [upstreamCaFile] });
    inspector = await startInspector({
      db: proxy.db, sink: proxy.sink, bus: proxy.bus, host: '127.0.0.1', port: 0,
      proxyUrl: proxy.proxyUrl, caPath: proxy.caCertPath,
    });
    browser = await chromium.launch({ executablePath: chromiumPath(), headless: true, args: CHROMIUM_FLAGS });
    page = await browser.newPage({ viewport: { width: 1440, height: 860 }, colorScheme: 'light' });
  });

  after(async () => {
    await browser?.close();
    await inspector?.close();
    await proxy?.close();
    await upstream?.close();
    await wsServer?.close();
    await h2?.close();
  });

  test('empty state tells how to set up a client', async () => {
    await page.goto(inspector.url);
    assert.ok(!page.url().includes('token='), 'the token leaves the address bar');
    await page.getByText('Waiting for traffic').waitFor();
    assert.ok(await page.getByText(proxy.proxyUrl, { exact: true }).isVisible());
    assert.ok(await page.getByText(proxy.caCertPath).first().isVisible());
    await page.locator('.live-dot.live').waitFor();
    await shot('empty-state');
  });

  test('rows arrive live as traffic passes the proxy', async () => {
    const started = performance.now();
    await proxiedRequest(proxy, `${origin()}/index.html`);
    await rows().first().waitFor();
    const firstRowMs = performance.now() - started;
    await proxiedRequest(proxy, `${origin()}/api/users?page=1`, { headers: { Accept: 'application/json', 'Accept-Encoding': 'gzip' } });
    await proxiedRequest(proxy, `${origin()}/api/login`, {
      method: 'POST', body: JSON.stringify({ user: 'ada', remember: true }), headers: { 'Content-Type': 'application/json', 'X-Request-Id': 'r-42' },
    });
    await proxiedRequest(proxy, `${origin()}/missing`);
    await proxiedRequest(proxy, `${origin()}/logo.png`);
    for (let i = 0; i < 20; i++) await proxiedRequest(proxy, `${origin()}/api/users?page=${i + 2}`, { headers: { 'Accept-Encoding': 'gzip' } });
    await waitForRows('===', 25);
    assert.match(await page.getByTestId('row-count').innerText(), /25 exchanges/);
    const login = page.locator('.exchange-list [role=row]', { hasText: '/api/login' });
    assert.match(await login.innerText(), /POST[\s\S]*201/);
    assert.match(await page.locator('.exchange-list [role=row]', { hasText: '/missing' }).innerText(), /404/);
    assert.ok(firstRowMs < 5000, `first live row after ${firstRowMs.toFixed(0)} ms`);
    await shot('list');
  });

  test('the filter narrows the rows; a bad filter is explained', async () => {
    const input = page.getByLabel('Filter exchanges');
    await input.fill('stauts:404');
    const alert = page.getByRole('alert');
    await alert.waitFor();
    assert.match(await alert.innerText(), /Unknown field "stauts"\. Did you mean "status"\?/);
    await shot('filter-error');
    await input.fill('status:4xx or method:POST');
    await input.press('Enter');
    await waitForRows('===', 2);
    const texts = await rows().allInnerTexts();
    assert.ok(texts.some((t) => t.includes('/missing')) && texts.some((t) => t.includes('/api/login')));
    // New traffic that matches appears; traffic that does not, does not.
    await proxiedRequest(proxy, `${origin()}/index.html?after-filter`);
    await proxiedRequest(proxy, `${origin()}/missing?again`);
    await waitForRows('===', 3);
    assert.ok(!(await rows().allInnerTexts()).some((t) => t.includes('after-filter')));
    await shot('filtered');
    await input.fill('');
    await input.press('Enter');
    await waitForRows('>=', 27);
  });

  test('the detail pane shows headers in wire order and decoded bodies', async () => {
    await page.locator('.exchange-list [role=row]', { hasText: '/api/login' }).click();
    const detail = page.locator('aside.detail');
    await detail.getByText('201 Created').waitFor();
    await detail.getByRole('tab', { name: 'Request' }).click();
    const names = await detail.locator('.headers-table th').allInnerTexts();
    assert.deepEqual(names.slice(0, 3), ['Host', 'Content-Type', 'X-Request-Id']);
    await detail.locator('pre.json').waitFor();
    assert.match(await detail.locator('pre.json').innerText(), /"user": "ada",\n\s+"remember": true/);
    await detail.getByRole('tab', { name: 'Raw' }).first().click();
    assert.match(await detail.locator('.raw-headers').innerText(), /^POST http:\/\/site\.test:\d+\/api\/login HTTP\/1\.1\nHost: /);
    await detail.getByRole('tab', { name: 'Parsed' }).click();

    // Copy as curl: the command sends the same request again (here through the proxy).
    await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(inspector.url).origin });
    await detail.getByRole('button', { name: 'Copy as curl' }).click();
    await detail.getByRole('button', { name: 'Copied ✓' }).waitFor();
    const command = await page.evaluate(() => (globalThis as unknown as { navigator: { clipboard: { readText(): Promise<string> } } }).navigator.clipboard.readText());
    assert.match(command, /^curl 'http:\/\/site\.test:\d+\/api\/login' -H 'Content-Type: application\/json' -H 'X-Request-Id: r-42'/);
    const receivedBefore = upstream.received.length;
    const replay = await new Promise<string>((resolve, reject) =>
      execFile('sh', ['-c', `${command} -x ${proxy.proxyUrl} --silent --show-error`], { timeout: 10_000 }, (err, out) => (err ? reject(err) : resolve(out))));
    assert.deepEqual(JSON.parse(replay), { ok: true, echo: { user: 'ada', remember: true } });
    const again = upstream.received.slice(receivedBefore).find((r) => r.url === '/api/login')!;
    assert.equal(again.method, 'POST');
    assert.equal(again.rawHeaders[again.rawHeaders.indexOf('X-Request-Id') + 1], 'r-42');

    // A gzip JSON response, decoded in the browser and pretty-printed.
    await page.locator('.exchange-list').getByText('/api/users?page=1', { exact: true }).click();
    await detail.getByRole('tab', { name: 'Response' }).click();
    await detail.locator('pre.json').waitFor();
    assert.match(await detail.locator('pre.json').innerText(), /"name": "Ada Lovelace"/);
    assert.match(await detail.locator('.body-bar').innerText(), /gzip → .*decoded gzip/);
    await shot('detail-response');

    await detail.getByRole('tab', { name: 'Timing' }).click();
    await detail.locator('.waterfall').waitFor();
    await detail.getByRole('tab', { name: 'Connection' }).click();
    await detail.getByText('No TLS on this connection').waitFor();

    // Keyboard: arrows move the selection through the grid.
    await page.locator('.exchange-list').focus();
    const before = await page.locator('.row.selected').getAttribute('data-id');
    await page.keyboard.press('ArrowDown');
    const afterDown = await page.locator('.row.selected').getAttribute('data-id');
    assert.notEqual(afterDown, before);
  });

  test('Resend sends the request again through hopscope and selects the new exchange', async () => {
    await page.locator('.exchange-list [role=row]', { hasText: '/api/login' }).first().click();
    const detail = page.locator('aside.detail');
    await detail.locator('.tabs').getByRole('tab', { name: 'Overview' }).click();
    await detail.getByText('201 Created').waitFor();
    const before = await detail.getAttribute('aria-label');
    const receivedBefore = upstream.received.length;
    await detail.getByRole('button', { name: 'Resend' }).click();
    await page.waitForFunction((label) => {
      const doc = (globalThis as unknown as { document: { querySelector(s: string): { getAttribute(n: string): string | null } | null } }).document;
      return doc.querySelector('aside.detail')?.getAttribute('aria-label') !== label;
    }, before);
    await detail.getByText('201 Created').waitFor();
    const again = upstream.received.slice(receivedBefore);
    assert.deepEqual(again.map((r) => [r.method, r.url, r.body.toString()]), [['POST', '/api/login', '{"user":"ada","remember":true}']]);
    const newId = Number((await detail.getAttribute('aria-label'))!.replace('Exchange ', ''));
    assert.ok(newId > Number(before!.replace('Exchange ', '')), `a new exchange is selected (${before} → ${newId})`);
    await page.locator(`.exchange-list [role=row][data-id="${newId}"]`).waitFor();

    // Edit and resend: another header value and another body; the length follows the body.
    await detail.getByRole('button', { name: 'Edit…' }).click();
    const editor = detail.getByRole('dialog', { name: 'Edit and resend' });
    const headers = editor.getByLabel('Headers');
    await headers.fill((await headers.inputValue()).replace('X-Request-Id: r-42', 'X-Request-Id: r-43'));
    await editor.getByLabel('Body').fill('{"user":"grace"}');
    await shot('resend-editor');
    const sentBefore = upstream.received.length;
    await editor.getByRole('button', { name: 'Send' }).click();
    await editor.waitFor({ state: 'detached' });
    await page.waitForFunction((id) => {
      const doc = (globalThis as unknown as { document: { querySelector(s: string): { getAttribute(n: string): string | null } | null } }).document;
      return doc.querySelector('aside.detail')?.getAttribute('aria-label') !== `Exchange ${id}`;
    }, newId);
    const edited = upstream.received.slice(sentBefore);
    assert.equal(edited.length, 1);
    assert.equal(edited[0].body.toString(), '{"user":"grace"}');
    const header = (name: string) => edited[0].rawHeaders[edited[0].rawHeaders.indexOf(name) + 1];
    assert.equal(header('X-Request-Id'), 'r-43');
    assert.equal(header('Content-Length'), '16');
  });

  test('a gRPC body shows its messages decoded without a schema', async () => {
    await proxiedRequest(proxy, `${origin()}/helloworld.Greeter/SayHello`, { method: 'POST', headers: { 'content-type': 'application/grpc-web+proto' } });
    await page.locator('.exchange-list [role=row]', { hasText: '/helloworld.Greeter/SayHello' }).click();
    const detail = page.locator('aside.detail');
    await detail.getByRole('tab', { name: 'Response' }).click();
    await detail.locator('pre.grpc', { hasText: 'message 1' }).waitFor();
    assert.equal(await detail.locator('pre.grpc').innerText(), 'message 1 · 9 bytes\n1: "hello"\n2: 3');
  });

  test('WebSocket messages, HTTP/2 frames and both TLS legs', async () => {
    const socket = connectClient({ path: 'absolute-form', proxy, host: 'ws.test', port: wsServer.port, urlPath: '/chat' });
    const log = new ClientLog(socket);
    await new Promise((resolve) => socket.once('open', resolve));
    socket.send(JSON.stringify({ type: 'greeting', text: 'hello over ws' }));
    socket.send(Buffer.from([1, 2, 3, 250]));
    await log.until(() => log.messages.length === 2);
    socket.close(1000, 'bye');
    await log.closed;
    const session = await connectThroughProxy(proxy, 'h2.site.test', h2.port, { caPem: readFileSync(proxy.caCertPath, 'utf8') });
    const res = await h2Request(session, { ':path': '/h2-page', ':method': 'GET' });
    assert.equal(res.headers[':status'], 200);
    session.close();

    const detail = page.locator('aside.detail');
    await page.locator('.exchange-list').getByText('/chat', { exact: true }).click();
    assert.match(await page.locator('.row.selected').innerText(), /\bws\b/);
    await detail.getByRole('tab', { name: 'WebSocket' }).click();
    await detail.locator('.ws-messages').getByText('greeting', { exact: false }).first().waitFor();
    await detail.locator('.ws-messages').getByText('1000 bye').first().waitFor();
    await detail.locator('.ws-messages tbody tr').first().click();
    await detail.locator('.ws-message pre.json').waitFor();
    await shot('websocket');

    await page.locator('.exchange-list').getByText('/h2-page', { exact: true }).click();
    assert.match(await page.locator('.row.selected').innerText(), /h2/);
    await detail.getByRole('tab', { name: 'Connection' }).click();
    await detail.locator('.legs').waitFor();
    const legs = await detail.locator('.leg').allInnerTexts();
    assert.equal(legs.length, 2);
    for (const leg of legs) assert.match(leg, /ALPN negotiated\s+h2/);
    assert.match(legs[0], /Client ↔ hopscope[\s\S]*SNI\s+h2\.site\.test/);
    await shot('connection');
    await detail.getByRole('tab', { name: 'HTTP/2 frames' }).click();
    await detail.locator('.h2-frames').getByText('HEADERS').first().click();
    await detail.locator('.frame-headers').getByText(':path').first().waitFor();
    await shot('h2-frames');
  });

  test('the WebSocket tab shows messages as they pass, while it is open', async () => {
    const socket = connectClient({ path: 'absolute-form', proxy, host: 'ws.test', port: wsServer.port, urlPath: '/live-chat' });
    const log = new ClientLog(socket);
    await new Promise((resolve) => socket.once('open', resolve));
    socket.send('first message');
    await log.until(() => log.messages.length === 1);

    const detail = page.locator('aside.detail');
    await page.locator('.exchange-list').getByText('/live-chat', { exact: true }).click();
    await detail.getByRole('tab', { name: 'WebSocket' }).click();
    await detail.locator('.ws-messages').getByText('first message').first().waitFor();
    // Sent only now, with the tab open: it must arrive without reselecting anything.
    socket.send('second message');
    await log.until(() => log.messages.length === 2);
    await detail.locator('.ws-messages').getByText('second message').first().waitFor();
    socket.close(1000, 'done');
    await log.closed;
  });

  test('the HTTP/2 frames and Connection tabs follow the connection after its last exchange', async () => {
    const session = await connectThroughProxy(proxy, 'live.site.test', h2.port, { caPem: readFileSync(proxy.caCertPath, 'utf8') });
    const res = await h2Request(session, { ':path': '/h2-live', ':method': 'GET' });
    assert.equal(res.headers[':status'], 200);

    const detail = page.locator('aside.detail');
    await page.locator('.exchange-list').getByText('/h2-live', { exact: true }).click();
    await detail.getByRole('tab', { name: 'HTTP/2 frames' }).click();
    await detail.locator('.segmented').getByRole('tab', { name: 'Connection' }).click();
    await detail.locator('.h2-frames').getByText('SETTINGS').first().waitFor();
    const pings = detail.locator('.h2-frames td.h2-type', { hasText: /^PING$/ });
    assert.equal(await pings.count(), 0);
    // Connection-level frames after the exchange ended: no exchange row changes, yet they show up.
    await new Promise<void>((resolve, reject) => session.ping((err) => (err ? reject(err) : resolve())));
    await pings.nth(1).waitFor(); // the PING and its ACK
    session.close();
    await detail.locator('.h2-frames td.h2-type', { hasText: /^GOAWAY$/ }).first().waitFor();

    await detail.locator('.tabs').getByRole('tab', { name: 'Connection' }).click();
    await detail.locator('.legs').waitFor();
    // The connection closed after its only exchange: the tab says so without being reopened.
    await page.waitForFunction(() => {
      const doc = (globalThis as unknown as { document: { querySelector(s: string): { textContent: string | null } | null } }).document;
      const text = doc.querySelector('aside.detail .tab-body')?.textContent ?? '';
      return /Closed/.test(text) && !/Closed\s*open/.test(text);
    });
  });

  test('pause holds the view; resume catches up; clear empties it', async () => {
    await page.getByRole('button', { name: /Pause/ }).click();
    await page.locator('.live-dot.paused').waitFor();
    const count = await rows().count();
    await proxiedRequest(proxy, `${origin()}/while-paused`);
    proxy.flush();
    // The server counts it for the paused view instead of sending it.
    await page.getByRole('button', { name: 'Resume · 1 new' }).waitFor();
    assert.equal(await page.locator('.exchange-list [role=row]', { hasText: '/while-paused' }).count(), 0);
    await page.getByRole('button', { name: /Resume/ }).click();
    await page.locator('.exchange-list [role=row]', { hasText: '/while-paused' }).waitFor();
    assert.ok((await rows().count()) >= Math.min(count + 1, 40));
    await page.getByRole('button', { name: 'Clear' }).click();
    await page.getByText('Waiting for traffic').waitFor();
    await proxiedRequest(proxy, `${origin()}/after-clear`);
    await page.locator('.exchange-list [role=row]', { hasText: '/after-clear' }).waitFor();
    assert.equal(await rows().count(), 1);
  });

  test('dark mode follows the system', async () => {
    const dark = await browser.newPage({ viewport: { width: 1440, height: 860 }, colorScheme: 'dark' });
    try {
      await dark.goto(inspector.url);
      await dark.locator('.exchange-list [role=row][data-id]').first().waitFor();
      const bg = await dark.locator('html').evaluate((el) =>
        (globalThis as unknown as { getComputedStyle(e: unknown): { backgroundColor: string } }).getComputedStyle(el).backgroundColor);
      assert.equal(bg, 'rgb(22, 24, 29)');
      await dark.locator('.exchange-list [role=row][data-id]').first().click();
      await dark.locator('aside.detail').getByRole('tab', { name: 'Response' }).click();
      await dark.screenshot({ path: `${artifacts}/dark.png` });
    } finally {
      await dark.close();
    }
  });

  test('columns resize by dragging their edge, keep their width across a reload, and reset on double-click', async () => {
    await proxiedRequest(proxy, `${origin()}/columns`);
    await page.locator('.exchange-list [role=row]', { hasText: '/columns' }).waitFor();
    const header = page.locator('.row.header [role=columnheader].col-host');
    const firstHost = () => page.locator('.exchange-list [role=row][data-id] .col-host').first();
    const widthOf = async (cell: ReturnType<typeof firstHost>) => Math.round((await cell.boundingBox())!.width);
    assert.equal(await widthOf(header), 170, 'the default');
    const handle = page.getByRole('separator', { name: 'Resize the Host column' });
    const box = (await handle.boundingBox())!;
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width / 2 + 60, box.y + box.height / 2, { steps: 4 });
    await page.mouse.up();
    assert.equal(await widthOf(header), 230);
    assert.equal(await widthOf(firstHost()), 230, 'the rows follow the header');
    assert.equal(await page.locator('.row.header [aria-sort]').count(), 1, 'dragging did not sort by host');
    assert.equal(await page.locator('.row.header .col-host[aria-sort]').count(), 0);

    await handle.focus();
    await page.keyboard.press('ArrowLeft');
    assert.equal(await widthOf(header), 222, 'the keyboard moves it too');

    await page.reload();
    await page.locator('.exchange-list [role=row]', { hasText: '/columns' }).waitFor();
    assert.equal(await widthOf(header), 222, 'kept across a reload');
    await page.getByRole('separator', { name: 'Resize the Host column' }).dblclick();
    assert.equal(await widthOf(header), 170, 'back to the default');
  });
});
