// --proxy-auth: every absolute-form request, CONNECT and absolute-form Upgrade on the proxy port
// needs Proxy-Authorization: Basic with the right credentials, else a 407 that lets the client
// retry on the same connection. What the upstream received never carries the credentials, the
// capture keeps every refused attempt (without the secret), and a listener others can reach is
// refused without credentials.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { WebSocket } from 'ws';
import { startTestProxy, testCaDir, type TestProxy } from './helpers/proxy.js';
import { startUpstream, upstreamCaFile, type TestUpstream } from './helpers/upstream.js';
import { curl, proxiedRequest } from './helpers/clients.js';
import { recordEvents, type EventLog } from './helpers/events.js';
import { runCli } from './helpers/cli-process.js';
import { absoluteFormAgent, ClientLog, opened, refused, startWsServer, type TestWsServer } from './helpers/ws-peers.js';
import { getConnection, getExchange, listExchanges } from '../packages/core/src/store/queries.js';
import type { HttpRequestStarted } from '../packages/core/src/capture/events.js';

const USER = 'alice';
const PASS = 'open:sesame'; // a colon inside the password on purpose
const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

const headerOf = (raw: string[], name: string) => {
  for (let i = 0; i + 1 < raw.length; i += 2) if (raw[i].toLowerCase() === name) return raw[i + 1];
  return undefined;
};

describe('proxy authentication', { timeout: 60_000 }, () => {
  let proxy: TestProxy;
  let plain: TestUpstream;
  let secure: TestUpstream;
  let wsServer: TestWsServer;
  let log: EventLog;
  let n = 0;
  const x = () => ['-x', `http://127.0.0.1:${proxy.port}`];
  const uniquePath = (name: string) => `/${name}/${++n}`;

  before(async () => {
    const echo = (req: http.IncomingMessage, res: http.ServerResponse) => res.end(`got ${req.url}`);
    plain = await startUpstream(echo);
    secure = await startUpstream(echo, { tls: true });
    wsServer = await startWsServer();
    proxy = await startTestProxy({ proxyAuth: { user: USER, pass: PASS }, upstreamCaFiles: [upstreamCaFile] });
    log = recordEvents(proxy.bus);
  });

  after(async () => {
    log.stop();
    await proxy.close();
    await Promise.all([plain.close(), secure.close(), wsServer.close()]);
  });

  const requestEvent = (path: string) => log.waitFor((e): e is HttpRequestStarted => e.kind === 'http.request' && e.url.endsWith(path));
  const exchangeAt = async (path: string) => {
    const request = await requestEvent(path);
    await log.waitFor((e) => (e.kind === 'http.completed' || e.kind === 'http.failed') && e.exchangeId === request.exchangeId);
    await proxy.flush();
    return getExchange(proxy.db, request.exchangeId)!;
  };

  test('curl http:// with the right credentials: served, and the upstream never sees them', async () => {
    const path = uniquePath('right');
    const res = await curl([...x(), '--proxy-user', `${USER}:${PASS}`, `http://site.test:${plain.port}${path}`]);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, `got ${path}`);
    const received = plain.received.find((r) => r.url === path)!;
    assert.equal(headerOf(received.rawHeaders, 'proxy-authorization'), undefined, 'Proxy-Authorization is hop-by-hop');
    const exchange = await exchangeAt(path);
    assert.deepEqual([exchange.status, exchange.state], [200, 'complete']);
    assert.equal(headerOf(exchange.requestHeaders.flat(), 'proxy-authorization'), 'Basic [redacted]', 'the capture keeps the header, not the secret');
  });

  for (const [name, creds, code] of [
    ['wrong', ['--proxy-user', `${USER}:nope`], 'proxy-auth-rejected'],
    ['missing', [], 'proxy-auth-missing'],
  ] as const) {
    test(`curl http:// with ${name} credentials: 407 with a challenge, nothing forwarded, captured`, async () => {
      const path = uniquePath(name);
      const before = plain.received.length;
      const res = await curl([...x(), ...creds, '-i', `http://site.test:${plain.port}${path}`]);
      assert.equal(res.code, 0, res.stderr);
      assert.match(res.stdout, /^HTTP\/1\.1 407 Proxy Authentication Required\r\n/);
      assert.match(res.stdout, /\r\nProxy-Authenticate: Basic realm="hopscope", charset="UTF-8"\r\n/);
      assert.match(res.stdout, /\r\n\r\nhopscope: proxy authentication required/);
      assert.equal(plain.received.length, before, 'the upstream got nothing');
      const exchange = await exchangeAt(path);
      assert.deepEqual([exchange.method, exchange.status, exchange.state, exchange.error?.reason, exchange.error?.code], ['GET', 407, 'failed', 'bad-request', code]);
      assert.equal(headerOf(exchange.responseHeaders!.flat(), 'proxy-authenticate'), 'Basic realm="hopscope", charset="UTF-8"');
      assert.match(exchange.responseBody!.data.toString(), /proxy authentication required/);
      if (name === 'wrong') {
        assert.equal(headerOf(exchange.requestHeaders.flat(), 'proxy-authorization'), 'Basic [redacted]');
        assert.match(exchange.error!.message, /"alice"/);
      }
    });
  }

  test('curl --proxy-anyauth: the 407 keeps the connection, the retry on it is served', async () => {
    const path = uniquePath('anyauth');
    const res = await curl([...x(), '--proxy-anyauth', '--proxy-user', `${USER}:${PASS}`, `http://site.test:${plain.port}${path}`]);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, `got ${path}`);
    await log.waitFor((e) => e.kind === 'http.completed');
    await proxy.flush();
    const rows = listExchanges(proxy.db, { limit: 10, search: path });
    assert.deepEqual(rows.map((r) => r.status).sort(), [200, 407], 'the refused attempt and the retry');
    assert.equal(rows[0].connectionId, rows[1].connectionId, 'both on one connection');
  });

  test('curl https:// through CONNECT with the right credentials: the tunnel records the user', async () => {
    const path = uniquePath('connect-right');
    const res = await curl([...x(), '--proxy-user', `${USER}:${PASS}`, '--cacert', proxy.caCertPath, `https://site.test:${secure.port}${path}`]);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, `got ${path}`);
    const received = secure.received.find((r) => r.url === path)!;
    assert.equal(headerOf(received.rawHeaders, 'proxy-authorization'), undefined);
    const exchange = await exchangeAt(path);
    assert.equal(exchange.status, 200);
    const tunnel = getConnection(proxy.db, exchange.connectionId)!.tunnel!;
    assert.deepEqual([tunnel.via, tunnel.user, tunnel.port], ['connect', USER, secure.port]);
    assert.equal(headerOf(tunnel.headers.flat(), 'proxy-authorization'), 'Basic [redacted]');
  });

  test('curl https:// through CONNECT with wrong credentials: 407, no tunnel, the connection carries why', async () => {
    const before = secure.connections;
    const opened = log.of('conn.opened').length;
    const res = await curl([...x(), '--proxy-user', `${USER}:wrong`, '--cacert', proxy.caCertPath, `https://site.test:${secure.port}/never`]);
    assert.equal(res.code, 56, 'curl: CONNECT tunnel failed');
    assert.match(res.stderr, /response 407/);
    const connId = log.of('conn.opened')[opened].connId;
    await log.waitFor((e) => e.kind === 'conn.closed' && e.connId === connId);
    await proxy.flush();
    const conn = getConnection(proxy.db, connId)!;
    assert.deepEqual([conn.error?.reason, conn.error?.code], ['bad-request', 'proxy-auth-rejected']);
    assert.equal(conn.tunnel, null, 'no tunnel was opened');
    assert.equal(secure.connections, before, 'the upstream was never dialled');
  });

  test('curl --proxy-anyauth https://: the CONNECT is retried on the same connection', async () => {
    const path = uniquePath('connect-anyauth');
    const opened = log.of('conn.opened').length;
    const res = await curl([...x(), '--proxy-anyauth', '--proxy-user', `${USER}:${PASS}`, '--cacert', proxy.caCertPath, `https://site.test:${secure.port}${path}`]);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, `got ${path}`);
    const exchange = await exchangeAt(path);
    assert.equal(log.of('conn.opened').length - opened >= 1, true);
    const clientConn = log.of('conn.opened')[opened].connId;
    assert.equal(exchange.connectionId, clientConn, 'the tunnel opened on the connection that got the 407');
    assert.equal(getConnection(proxy.db, clientConn)!.tunnel?.user, USER);
  });

  test('Node http client: 407 without credentials, then served on the same kept-alive socket', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const path = uniquePath('node');
      const url = `http://site.test:${plain.port}${path}`;
      const refusedRes = await proxiedRequest(proxy, url, { agent });
      assert.equal(refusedRes.status, 407);
      assert.equal(headerOf(refusedRes.rawHeaders, 'proxy-authenticate'), 'Basic realm="hopscope", charset="UTF-8"');
      const ok = await proxiedRequest(proxy, url, { agent, headers: { 'Proxy-Authorization': basic(USER, PASS) } });
      assert.equal(ok.status, 200);
      assert.equal(ok.body.toString(), `got ${path}`);
      await proxy.flush();
      const rows = listExchanges(proxy.db, { limit: 10, search: path });
      assert.deepEqual(rows.map((r) => r.status).sort(), [200, 407]);
      assert.equal(rows[0].connectionId, rows[1].connectionId, 'the 407 did not close the connection');
    } finally {
      agent.destroy();
    }
  });

  test('absolute-form WebSocket: refused with 407 without credentials, switched with them', async () => {
    const refusedUrl = `ws://site.test:${wsServer.port}${uniquePath('ws-refused')}`;
    const noCreds = new WebSocket(refusedUrl, { agent: absoluteFormAgent(proxy) });
    noCreds.on('error', () => {});
    const answer = await refused(noCreds);
    assert.equal(answer.status, 407);
    assert.equal(headerOf(answer.headers, 'proxy-authenticate'), 'Basic realm="hopscope", charset="UTF-8"');
    const refusedRow = await exchangeAt(new URL(refusedUrl).pathname);
    assert.deepEqual([refusedRow.status, refusedRow.state, refusedRow.error?.code], [407, 'failed', 'proxy-auth-missing']);

    const path = uniquePath('ws-ok');
    const socket = new WebSocket(`ws://site.test:${wsServer.port}${path}`, {
      agent: absoluteFormAgent(proxy),
      headers: { 'Proxy-Authorization': basic(USER, PASS) },
    });
    socket.on('error', () => {});
    const client = new ClientLog(socket);
    await opened(socket);
    const peer = await wsServer.nextPeer();
    assert.equal(peer.request.headers['proxy-authorization'], undefined, 'never forwarded on a switch either');
    socket.send('hello');
    await client.until(() => client.messages.length === 1);
    assert.equal(client.messages[0].data.toString(), 'hello');
    socket.close(1000);
    await client.closed;
    const row = await exchangeAt(path);
    assert.equal(row.status, 101);
  });

  test('library: listening on a non-loopback address needs proxyAuth or allowOpenProxy', async () => {
    await assert.rejects(startTestProxy({ listenHost: '0.0.0.0' }), /refusing to run the proxy on 0\.0\.0\.0 without --proxy-auth/);
    const open = await startTestProxy({ listenHost: '0.0.0.0', allowOpenProxy: true });
    await open.close();
    const guarded = await startTestProxy({ listenHost: '0.0.0.0', proxyAuth: { user: USER, pass: PASS } });
    await guarded.close();
  });

  test('CLI: --listen 0.0.0.0 without --proxy-auth is refused with a clear message and exit code 1', async () => {
    const cli = runCli(['start', '--listen', '0.0.0.0:0', '--no-ui', '--db', ':memory:', '--ca-dir', testCaDir()]);
    assert.equal(await cli.exited, 1);
    assert.match(cli.stderr(), /^hopscope: refusing to run the proxy on 0\.0\.0\.0 without --proxy-auth: anyone who can reach that address could use it as an open proxy\./);
    assert.match(cli.stderr(), /--allow-open-proxy/);
    assert.equal(cli.lines.length, 0, 'nothing was started');
  });

  test('CLI: --allow-open-proxy starts on 0.0.0.0; so does --proxy-auth, which then guards the port', async () => {
    const open = runCli(['start', '--listen', '0.0.0.0:0', '--allow-open-proxy', '--no-ui', '--db', ':memory:', '--ca-dir', testCaDir()]);
    try {
      assert.match(await open.line('proxy'), /^http:\/\/0\.0\.0\.0:\d+$/);
    } finally {
      assert.equal(await open.stop(), 0, open.stderr());
    }
    const guarded = runCli(['start', '--listen', '0.0.0.0:0', '--proxy-auth', `${USER}:${PASS}`, '--no-ui', '--db', ':memory:', '--ca-dir', testCaDir()]);
    try {
      const port = new URL(await guarded.line('proxy')).port;
      const path = uniquePath('cli');
      const refusedRes = await curl(['-x', `http://127.0.0.1:${port}`, '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${plain.port}${path}`]);
      assert.equal(refusedRes.stdout, '407');
      const served = await curl(['-x', `http://127.0.0.1:${port}`, '--proxy-user', `${USER}:${PASS}`, `http://127.0.0.1:${plain.port}${path}`]);
      assert.equal(served.stdout, `got ${path}`);
    } finally {
      assert.equal(await guarded.stop(), 0, guarded.stderr());
    }
  });
});
