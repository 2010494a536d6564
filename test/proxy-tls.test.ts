// The HTTPS proxy port (--listen-tls): the proxy itself reached over TLS with a certificate from
// hopscope's CA. HTTP/1.1 to the proxy (curl) works like the plain port; HTTP/2 to the proxy
// (Node's http2 client, Chromium) carries CONNECT streams as tunnels (TLS intercepted, HTTP/1 and
// WebSockets decoded inside) and plain http:// requests as proxied streams.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';
import { chromium } from 'playwright-core';
import { CHROMIUM_FLAGS, chromiumPath, serverSpkiHash } from './helpers/chromium.js';
import { startTestProxy, type TestProxy } from './helpers/proxy.js';
import { closedPort, startTcpServer, startUpstream, upstreamCaFile, type TestUpstream } from './helpers/upstream.js';
import { curl } from './helpers/clients.js';
import { recordEvents, type EventLog } from './helpers/events.js';
import { ClientLog, startWsServer, type TestWsServer } from './helpers/ws-peers.js';
import { getConnection, getExchange, getWebSocket, listExchanges } from '../packages/core/src/store/queries.js';
import type { ConnectionDetail, ExchangeDetail } from '../packages/core/src/store/row-types.js';
import type { ConnTunnelRequested } from '../packages/core/src/capture/events.js';
import { PROXY_AUTH_BODY } from '../packages/core/src/net/proxy-auth-gate.js';

const { NGHTTP2_CONNECT_ERROR } = http2.constants;

/** A page that opens ws://chat.test:PORT/chromium-chat, sends a text and shows the echo in its title. */
function wsPage(port: number): string {
  return `<!doctype html><title>waiting</title><script>
    const ws = new WebSocket('ws://chat.test:${port}/chromium-chat');
    ws.onopen = () => ws.send('hello from chromium');
    ws.onmessage = (e) => { document.title = 'echo:' + e.data; ws.close(1000); };
    ws.onerror = () => { document.title = 'echo:error'; };
  </script>`;
}

/** An agent that sends each request in absolute-form to the HTTPS proxy port over TLS (HTTP/1.1). */
function tlsProxyAgent(proxy: TestProxy, ca: string): http.Agent {
  type AddRequest = (req: http.ClientRequest, options: http.RequestOptions) => void;
  const agent = new http.Agent({ keepAlive: false }) as http.Agent & { addRequest: AddRequest; createConnection: () => Duplex };
  const addRequest = agent.addRequest.bind(agent);
  agent.addRequest = (req, options) => {
    req.path = `http://${String(req.getHeader('host'))}${req.path}`;
    addRequest(req, options);
  };
  agent.createConnection = () => tls.connect({ host: '127.0.0.1', port: proxy.proxyTlsAddress!.port, ca, ALPNProtocols: ['http/1.1'] });
  return agent;
}

/** An HTTP/2 session to the HTTPS proxy port, trusting the hopscope CA. */
async function h2ToProxy(proxy: TestProxy, caPem: string): Promise<http2.ClientHttp2Session> {
  const session = http2.connect(proxy.proxyTlsUrl!, { ca: caPem });
  session.on('error', () => {});
  await once(session, 'connect');
  return session;
}

interface StreamAnswer {
  stream: http2.ClientHttp2Stream;
  status: number;
  headers: http2.IncomingHttpHeaders;
}

/** Sends a request (a CONNECT by default) and resolves at its response head. */
function openStream(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, endStream = false): Promise<StreamAnswer> {
  const stream = session.request(headers, { endStream });
  return new Promise((resolve, reject) => {
    stream.once('response', (h) => resolve({ stream, status: Number(h[':status']), headers: h }));
    stream.once('error', reject);
  });
}

function connect(session: http2.ClientHttp2Session, authority: string, extra: http2.OutgoingHttpHeaders = {}): Promise<StreamAnswer> {
  return openStream(session, { ':method': 'CONNECT', ':authority': authority, ...extra });
}

function readAll(stream: Duplex): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.once('end', () => resolve(Buffer.concat(chunks).toString()));
    stream.once('error', reject);
  });
}

/** One HTTP/1.1 request with `Connection: close` over any duplex; resolves with everything read back. */
function http1Over(duplex: Duplex, host: string, path: string): Promise<string> {
  const text = readAll(duplex);
  duplex.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
  return text;
}

/** TLS to `servername` over a tunnel stream, trusting `ca`. */
async function tlsOver(stream: Duplex, servername: string, ca: string): Promise<tls.TLSSocket> {
  const socket = tls.connect({ socket: stream, servername, ca, ALPNProtocols: ['http/1.1'] });
  await once(socket, 'secureConnect');
  return socket;
}

describe('HTTPS proxy port', { timeout: 60_000 }, () => {
  let proxy: TestProxy;
  let plain: TestUpstream;
  let secure: TestUpstream;
  let wsServer: TestWsServer;
  let log: EventLog;
  let caPem: string;

  before(async () => {
    plain = await startUpstream((req, res, body) => {
      if (req.url === '/ws-page') {
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
        return res.end(wsPage(wsServer.port));
      }
      res.setHeader('Set-Cookie', ['a=1', 'b=2']);
      res.end(`plain ${req.method} ${req.url}${body.length ? ` ${body}` : ''}`);
    });
    secure = await startUpstream((req, res) => {
      res.setHeader('Content-Type', 'text/html; charset=utf-8');
      res.end(`secure ${req.url}`);
    }, { tls: true });
    wsServer = await startWsServer();
    // Every name goes to loopback: nothing a browser might ask for leaves the machine.
    proxy = await startTestProxy({ listenTls: { host: '127.0.0.1', port: 0 }, upstreamCaFiles: [upstreamCaFile], resolve: [{ pattern: '*', address: '127.0.0.1' }] });
    log = recordEvents(proxy.bus);
    caPem = readFileSync(proxy.caCertPath, 'utf8');
  });

  after(async () => {
    log.stop();
    await proxy.close();
    await plain.close();
    await secure.close();
    await wsServer.close();
  });

  /** The capture's view of an exchange, once it finished, with its connection. */
  async function captured(match: (url: string) => boolean): Promise<{ exchange: ExchangeDetail; conn: ConnectionDetail }> {
    const request = await log.waitFor((e) => e.kind === 'http.request' && match(e.url));
    const exchangeId = (request as { exchangeId: number }).exchangeId;
    await log.waitFor((e) => (e.kind === 'http.completed' || e.kind === 'http.failed') && e.exchangeId === exchangeId);
    await proxy.flush();
    const exchange = getExchange(proxy.db, exchangeId)!;
    return { exchange, conn: getConnection(proxy.db, exchange.connectionId)! };
  }

  test('prints its URL and presents a certificate from the hopscope CA for the address dialled and for localhost', { timeout: 10_000 }, async () => {
    assert.match(proxy.proxyTlsUrl ?? '', /^https:\/\/127\.0\.0\.1:\d+$/);
    const port = proxy.proxyTlsAddress!.port;
    for (const [host, servername, san] of [['127.0.0.1', undefined, 'IP Address:127.0.0.1'], ['127.0.0.1', 'localhost', 'DNS:localhost']] as const) {
      const socket = tls.connect({ host, port, ca: caPem, ...(servername ? { servername } : {}), ALPNProtocols: ['h2', 'http/1.1'] });
      await once(socket, 'secureConnect');
      assert.equal(socket.authorized, true, 'the hopscope CA vouches for the proxy');
      assert.equal(socket.alpnProtocol, 'h2', 'h2 is preferred');
      assert.ok(socket.getPeerX509Certificate()!.subjectAltName!.split(', ').includes(san));
      socket.destroy();
    }
  });

  test('curl over HTTP/1.1: http:// is forwarded and https:// tunnelled with CONNECT and intercepted', { timeout: 10_000 }, async () => {
    const viaProxy = ['--proxy', proxy.proxyTlsUrl!, '--proxy-cacert', proxy.caCertPath];
    const forwarded = await curl([...viaProxy, `http://site.test:${plain.port}/curl-plain`]);
    assert.equal(forwarded.code, 0, forwarded.stderr);
    assert.equal(forwarded.stdout, 'plain GET /curl-plain');
    const tunnelled = await curl([...viaProxy, '--cacert', proxy.caCertPath, `https://site.test:${secure.port}/curl-secure`]);
    assert.equal(tunnelled.code, 0, tunnelled.stderr);
    assert.equal(tunnelled.stdout, 'secure /curl-secure');

    const a = await captured((url) => url.endsWith('/curl-plain'));
    assert.equal(a.exchange.protocol, 'HTTP/1.1');
    assert.equal(a.exchange.responseProtocol, 'HTTP/1.1');
    assert.equal(a.exchange.status, 200);
    assert.equal(a.conn.listener, 'proxy-tls');
    assert.equal(a.conn.tunnel, null, 'absolute-form: no tunnel');
    assert.equal(a.conn.tls.client?.version, 'TLSv1.3', 'the TLS leg to the proxy is recorded');
    assert.match(a.conn.tls.client?.certificates[0]?.issuer ?? '', /hopscope CA/);

    const b = await captured((url) => url.endsWith('/curl-secure'));
    assert.equal(b.exchange.url, `https://site.test:${secure.port}/curl-secure`);
    assert.equal(b.exchange.protocol, 'HTTP/1.1');
    assert.equal(b.exchange.responseProtocol, 'HTTP/1.1');
    assert.equal(b.conn.listener, 'proxy-tls');
    assert.equal(b.conn.tunnel?.via, 'connect');
    assert.equal(b.conn.intercepted, true);
    assert.equal(b.conn.tls.upstream?.sni, 'site.test');
    // The tunnel is a row of its own inside the TLS connection to the proxy, so the intercepted
    // handshake (SNI site.test) does not overwrite the one with the proxy (no SNI: curl dialled an address).
    assert.equal(b.conn.tls.client?.sni, 'site.test');
    assert.ok(b.conn.parentId, 'nested in the connection to the proxy');
    const outer = getConnection(proxy.db, b.conn.parentId!)!;
    assert.deepEqual([outer.listener, outer.parentId, outer.tunnel], ['proxy-tls', null, null]);
    assert.deepEqual([outer.tls.client?.sni, outer.tls.client?.alpn], [null, 'http/1.1']);
    assert.match(outer.tls.client?.certificates[0]?.issuer ?? '', /hopscope CA/);
  });

  test('the connection to the proxy counts its bytes on the wire, TLS records included', { timeout: 10_000 }, async () => {
    const raw = net.connect(proxy.proxyTlsAddress!.port, '127.0.0.1');
    const socket = tls.connect({ socket: raw, ca: caPem, servername: 'localhost' });
    await once(socket, 'secureConnect');
    const request = `GET http://site.test:${plain.port}/wire-count HTTP/1.1\r\nHost: site.test:${plain.port}\r\nConnection: close\r\n\r\n`;
    socket.write(request);
    let plaintext = 0;
    socket.on('data', (chunk: Buffer) => (plaintext += chunk.length));
    await once(socket, 'end'); // Connection: close: the proxy ends after the response
    socket.end();
    await once(socket, 'close');
    const { exchange } = await captured((url) => url.endsWith('/wire-count'));
    assert.equal(exchange.status, 200);
    await log.waitFor((e) => e.kind === 'conn.closed' && e.connId === exchange.connectionId);
    await proxy.flush();
    const conn = getConnection(proxy.db, exchange.connectionId)!;
    assert.equal(conn.bytesFromServer, raw.bytesRead, 'every byte the client received, handshake and records');
    assert.ok(conn.bytesFromServer! > plaintext, `${conn.bytesFromServer} on the wire for ${plaintext} bytes of response`);
    assert.ok(conn.bytesFromClient! > request.length && conn.bytesFromClient! <= raw.bytesWritten, `${conn.bytesFromClient} of ${raw.bytesWritten}`);
  });

  test('a client that does not trust the hopscope CA: the failed handshake is the client TLS leg of a proxy-tls connection', { timeout: 10_000 }, async () => {
    const result = await curl(['--proxy', proxy.proxyTlsUrl!, `http://site.test:${plain.port}/untrusted`]);
    assert.notEqual(result.code, 0, 'curl refused the proxy certificate');
    const failed = await log.waitFor((e) => e.kind === 'tls.failed' && e.leg === 'client' && e.alpnOffered.length === 0 && e.sni === null);
    const closed = await log.waitFor((e) => e.kind === 'conn.closed' && e.connId === (failed as { connId: number }).connId);
    assert.equal((closed as { error: { reason: string } }).error.reason, 'cert-rejected');
    await proxy.flush();
    const conn = getConnection(proxy.db, (failed as { connId: number }).connId)!;
    assert.equal(conn.listener, 'proxy-tls');
    assert.equal(conn.tls.client?.error?.reason, 'cert-rejected');
    assert.equal(plain.received.some((r) => r.url === '/untrusted'), false);
  });

  test('HTTP/1.1 to the proxy: a ws:// WebSocket in absolute-form (Upgrade) is relayed and decoded', { timeout: 10_000 }, async () => {
    const ws = new WebSocket(`ws://chat.test:${wsServer.port}/upgrade-over-tls`, { agent: tlsProxyAgent(proxy, caPem), perMessageDeflate: false });
    ws.on('error', () => {});
    const client = new ClientLog(ws);
    await once(ws, 'open');
    ws.send('hello through the HTTPS proxy port');
    await client.until(() => client.messages.length === 1);
    assert.equal(client.messages[0].data.toString(), 'hello through the HTTPS proxy port');
    ws.close(1000);
    await client.closed;

    const { exchange, conn } = await captured((url) => url.endsWith('/upgrade-over-tls'));
    assert.equal(exchange.status, 101);
    assert.equal(exchange.protocol, 'HTTP/1.1');
    assert.equal(exchange.target, `http://chat.test:${wsServer.port}/upgrade-over-tls`, 'absolute-form');
    assert.equal(conn.listener, 'proxy-tls');
    assert.equal(conn.tls.client?.alpn, 'http/1.1');
    await log.waitFor((e) => e.kind === 'ws.closed' && e.exchangeId === exchange.id);
    await proxy.flush();
    assert.equal(getWebSocket(proxy.db, exchange.id)?.clean, true);
  });

  test('curl has no --proxy-http2 here (curl 7.88): HTTP/2 to the proxy is covered by Node and Chromium', { timeout: 10_000 }, async () => {
    const help = await curl(['--help', 'all']);
    assert.equal(help.code, 0);
    assert.equal(help.stdout.includes('--proxy-http2'), false, 'this curl learned --proxy-http2: add a test that uses it');
  });

  test('HTTP/2: several CONNECT streams on one connection, TLS intercepted inside two and plain HTTP/1 inside two', { timeout: 10_000 }, async () => {
    const session = await h2ToProxy(proxy, caPem);
    const authorities = [`site.test:${secure.port}`, `api.site.test:${secure.port}`, `site.test:${plain.port}`, `other.test:${plain.port}`];
    const answers = await Promise.all(authorities.map((a) => connect(session, a)));
    assert.deepEqual(answers.map((a) => a.status), [200, 200, 200, 200]);
    const [s1, s2] = await Promise.all([tlsOver(answers[0].stream, 'site.test', caPem), tlsOver(answers[1].stream, 'api.site.test', caPem)]);
    const texts = await Promise.all([
      http1Over(s1, 'site.test', '/h2-tls-1'),
      http1Over(s2, 'api.site.test', '/h2-tls-2'),
      http1Over(answers[2].stream, 'site.test', '/h2-plain-1'),
      http1Over(answers[3].stream, 'other.test', '/h2-plain-2'),
    ]);
    assert.match(texts[0], /^HTTP\/1\.1 200 OK[\s\S]*secure \/h2-tls-1$/);
    assert.match(texts[1], /secure \/h2-tls-2$/);
    assert.match(texts[2], /plain GET \/h2-plain-1$/);
    assert.match(texts[3], /plain GET \/h2-plain-2$/);
    assert.deepEqual(secure.handshakes.slice(-2).map((h) => h.servername).sort(), ['api.site.test', 'site.test'], 'each upstream saw its own SNI');

    const results = await Promise.all(['/h2-tls-1', '/h2-tls-2', '/h2-plain-1', '/h2-plain-2'].map((p) => captured((url) => url.endsWith(p))));
    const parents = new Set(results.map((r) => r.conn.parentId));
    assert.equal(parents.size, 1, 'all four tunnels belong to the one HTTP/2 connection');
    const parent = getConnection(proxy.db, [...parents][0]!)!;
    assert.equal(parent.listener, 'proxy-tls');
    assert.equal(parent.tls.client?.alpn, 'h2');
    for (const [i, r] of results.entries()) {
      assert.equal(r.conn.listener, 'proxy-tls');
      assert.equal(r.conn.tunnel?.via, 'h2-connect');
      assert.equal(r.conn.tunnel?.target, authorities[i]);
      assert.equal(r.exchange.protocol, 'HTTP/1.1', 'inside the tunnel the client spoke HTTP/1.1');
      assert.equal(r.exchange.responseProtocol, 'HTTP/1.1');
      assert.equal(r.exchange.status, 200);
    }
    assert.equal(results[0].conn.intercepted, true);
    assert.equal(results[0].exchange.scheme, 'https');
    assert.equal(results[0].conn.tls.client?.sni, 'site.test');
    assert.equal(results[1].conn.tls.upstream?.sni, 'api.site.test');
    assert.equal(results[2].conn.detectedProtocol, 'http1');
    assert.equal(results[2].exchange.scheme, 'http');
    session.close();
  });

  test('HTTP/2: plain http:// requests as streams are forwarded and captured as h2 exchanges', { timeout: 10_000 }, async () => {
    const session = await h2ToProxy(proxy, caPem);
    const get = await openStream(
      session,
      { ':method': 'GET', ':scheme': 'http', ':authority': `site.test:${plain.port}`, ':path': '/as-stream?q=1', cookie: ['x=1', 'y=2'], 'x-trace': 'abc' },
      true,
    );
    assert.equal(get.status, 200);
    assert.deepEqual(get.headers['set-cookie'], ['a=1', 'b=2']);
    assert.equal(await readAll(get.stream), 'plain GET /as-stream?q=1');
    const seen = plain.received.find((r) => r.url === '/as-stream?q=1')!;
    const headers = Object.fromEntries(seen.rawHeaders.flatMap((v, i, a) => (i % 2 ? [] : [[v.toLowerCase(), a[i + 1]]])));
    assert.equal(headers.host, `site.test:${plain.port}`);
    assert.equal(headers.cookie, 'x=1; y=2', 'cookie fields joined for HTTP/1.1 (RFC 9113 §8.2.3)');
    assert.equal(headers['x-trace'], 'abc');

    // A body without content-length goes upstream chunked.
    const post = session.request({ ':method': 'POST', ':scheme': 'http', ':authority': `site.test:${plain.port}`, ':path': '/upload' });
    post.write('part one, ');
    post.end('part two');
    const [postHead] = (await once(post, 'response')) as [http2.IncomingHttpHeaders];
    assert.equal(postHead[':status'], 200);
    assert.equal(await readAll(post), 'plain POST /upload part one, part two');
    assert.equal(plain.received.find((r) => r.url === '/upload')!.rawHeaders.map((h) => h.toLowerCase()).includes('chunked'), true);

    const { exchange, conn } = await captured((url) => url.endsWith('/as-stream?q=1'));
    assert.equal(exchange.protocol, 'h2', 'the client leg spoke HTTP/2');
    assert.equal(exchange.responseProtocol, 'HTTP/1.1', 'the upstream answered in HTTP/1.1');
    assert.equal(exchange.streamId, 1);
    assert.equal(exchange.url, `http://site.test:${plain.port}/as-stream?q=1`);
    assert.equal(exchange.target, '/as-stream?q=1');
    assert.deepEqual(exchange.requestHeaders.slice(0, 4).map(([n]) => n), [':method', ':scheme', ':authority', ':path']);
    assert.equal(exchange.responseBody?.data.toString(), 'plain GET /as-stream?q=1');
    assert.equal(conn.listener, 'proxy-tls');
    assert.equal(conn.tls.client?.alpn, 'h2');
    const upload = await captured((url) => url.endsWith('/upload'));
    assert.equal(upload.exchange.requestBody?.data.toString(), 'part one, part two');
    assert.equal(upload.exchange.connectionId, conn.id, 'both streams on the one connection');

    // An upstream that cannot be reached: a 502 on the stream that says why, a failed exchange.
    const down = await closedPort();
    const failed = await openStream(session, { ':method': 'GET', ':scheme': 'http', ':authority': `down.test:${down}`, ':path': '/nobody-home' }, true);
    assert.equal(failed.status, 502);
    assert.match(await readAll(failed.stream), /^hopscope: connection refused by down\.test:\d+ \(ECONNREFUSED\)\n$/);
    const refused = await captured((url) => url.endsWith('/nobody-home'));
    assert.equal(refused.exchange.state, 'failed');
    assert.equal(refused.exchange.error?.reason, 'refused');
    session.close();
  });

  test('HTTP/2: a ws:// WebSocket through a CONNECT stream is decoded', { timeout: 10_000 }, async () => {
    const session = await h2ToProxy(proxy, caPem);
    const { stream, status } = await connect(session, `chat.test:${wsServer.port}`);
    assert.equal(status, 200);
    const ws = new WebSocket(`ws://chat.test:${wsServer.port}/h2-chat`, { createConnection: () => stream as never, perMessageDeflate: false });
    ws.on('error', () => {});
    const client = new ClientLog(ws);
    await once(ws, 'open');
    ws.send('hello over an h2 tunnel');
    await client.until(() => client.messages.length === 1);
    assert.equal(client.messages[0].data.toString(), 'hello over an h2 tunnel');
    ws.close(1000, 'done');
    await client.closed;

    const { exchange, conn } = await captured((url) => url.endsWith('/h2-chat'));
    assert.equal(exchange.status, 101);
    assert.equal(exchange.protocol, 'HTTP/1.1');
    assert.equal(conn.tunnel?.via, 'h2-connect');
    assert.equal(conn.listener, 'proxy-tls');
    await log.waitFor((e) => e.kind === 'ws.closed' && e.exchangeId === exchange.id);
    await proxy.flush();
    const socket = getWebSocket(proxy.db, exchange.id)!;
    assert.equal(socket.messagesFromClient, 2, 'the text message and the close');
    assert.equal(socket.clean, true);
    session.close();
  });

  test('HTTP/2: a refused upstream gives the CONNECT stream a 502 that says why, and a failed CONNECT in the capture', { timeout: 10_000 }, async () => {
    const port = await closedPort();
    const session = await h2ToProxy(proxy, caPem);
    const { stream, status, headers } = await connect(session, `down.test:${port}`);
    assert.equal(status, 502);
    assert.match(String(headers['content-type']), /text\/plain/);
    assert.match(await readAll(stream), /connection refused by down\.test:\d+ \(ECONNREFUSED\)/);
    const tunnel = await log.waitFor((e): e is ConnTunnelRequested => e.kind === 'conn.tunnel' && e.host === 'down.test');
    const closed = await log.waitFor((e) => e.kind === 'conn.closed' && e.connId === tunnel.connId);
    assert.equal((closed as { error: { reason: string } }).error.reason, 'refused');
    await proxy.flush();
    const conn = getConnection(proxy.db, tunnel.connId)!;
    assert.equal(conn.tunnel?.via, 'h2-connect');
    assert.equal(conn.error?.reason, 'refused');
    const [failed] = listExchanges(proxy.db, { connectionId: conn.id, limit: 5 });
    assert.deepEqual([failed?.method, failed?.protocol, failed?.status], ['CONNECT', 'h2', 502]);
    // The session is still good for more streams.
    const ok = await connect(session, `site.test:${plain.port}`);
    assert.equal(ok.status, 200);
    ok.stream.close();
    session.close();
  });

  test('HTTP/2: an extended CONNECT to the proxy gets a 501 that says what to do instead', { timeout: 10_000 }, async () => {
    const session = await h2ToProxy(proxy, caPem);
    const { stream, status } = await openStream(session, { ':method': 'CONNECT', ':protocol': 'websocket', ':scheme': 'http', ':path': '/chat', ':authority': `chat.test:${wsServer.port}` });
    assert.equal(status, 501);
    assert.match(await readAll(stream), /extended CONNECT \(:protocol websocket\) .* not supported/);
    session.close();
  });

  test('HTTP/2 tunnels: half-close travels both ways, an upstream reset becomes RST_STREAM CONNECT_ERROR, a stream reset resets the upstream', { timeout: 10_000 }, async () => {
    /** How each upstream connection ended: the error code it saw, or null for a clean close. */
    const endings: Array<Promise<string | null>> = [];
    const server = await startTcpServer((socket) => {
      let error: string | null = null;
      socket.on('error', (err: NodeJS.ErrnoException) => (error ??= err.code ?? err.message));
      endings.push(new Promise((resolve) => socket.once('close', () => resolve(error))));
      socket.write('banner\n'); // speaks first: an opaque tunnel
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => {
        chunks.push(c);
        if (Buffer.concat(chunks).toString() === 'reset me') socket.resetAndDestroy();
      });
      socket.on('end', () => socket.end(`got ${Buffer.concat(chunks)}; bye`));
    });
    try {
      const session = await h2ToProxy(proxy, caPem);
      const half = await connect(session, `echo.test:${server.port}`);
      half.stream.end('hello');
      assert.equal(await readAll(half.stream), 'banner\ngot hello; bye', 'the client half-closed, the upstream answered and closed');
      assert.equal(await endings[0], null);

      const reset = await connect(session, `echo.test:${server.port}`);
      reset.stream.on('error', () => {});
      const closed = new Promise((resolve) => reset.stream.once('close', resolve));
      reset.stream.write('reset me');
      await closed;
      assert.equal(reset.stream.rstCode, NGHTTP2_CONNECT_ERROR, 'RFC 9113 §8.5: a TCP reset becomes CONNECT_ERROR');
      const resetTunnel = log.of('conn.tunnel').at(-1)!.connId;
      const resetClosed = await log.waitFor((e) => e.kind === 'conn.closed' && e.connId === resetTunnel);
      assert.equal((resetClosed as { error: { reason: string } | null }).error?.reason, 'reset');

      const dropped = await connect(session, `echo.test:${server.port}`);
      await once(dropped.stream, 'data'); // the banner: the tunnel is relaying
      dropped.stream.on('error', () => {});
      dropped.stream.destroy(new Error('the client gave up')); // RST_STREAM INTERNAL_ERROR
      assert.equal(await endings[2], 'ECONNRESET', 'the upstream saw a TCP reset, not a clean close');
      const droppedTunnel = log.of('conn.tunnel').at(-1)!.connId;
      const droppedClosed = await log.waitFor((e) => e.kind === 'conn.closed' && e.connId === droppedTunnel);
      assert.equal((droppedClosed as { error: { reason: string } | null }).error?.reason, 'reset');
      session.close();
    } finally {
      await server.close();
    }
  });

  test('proxy authentication applies to every HTTP/2 stream, refusals captured and credentials redacted as on the plain port', { timeout: 10_000 }, async () => {
    const guarded = await startTestProxy({ listenTls: { host: '127.0.0.1', port: 0 }, proxyAuth: { user: 'ada', pass: 's3cret' } });
    const events = recordEvents(guarded.bus);
    try {
      const session = await h2ToProxy(guarded, caPem);
      const refused = await connect(session, `site.test:${plain.port}`);
      assert.equal(refused.status, 407);
      assert.match(String(refused.headers['proxy-authenticate']), /^Basic realm="hopscope"/);
      assert.equal(await readAll(refused.stream), PROXY_AUTH_BODY);
      const wrong = await connect(session, `site.test:${plain.port}`, { 'proxy-authorization': `Basic ${Buffer.from('ada:nope').toString('base64')}` });
      assert.equal(wrong.status, 407);
      const get = await openStream(session, { ':method': 'GET', ':scheme': 'http', ':authority': `site.test:${plain.port}`, ':path': '/needs-auth' }, true);
      assert.equal(get.status, 407);
      const auth = { 'proxy-authorization': `Basic ${Buffer.from('ada:s3cret').toString('base64')}` };
      const ok = await connect(session, `site.test:${plain.port}`, auth);
      assert.equal(ok.status, 200);
      assert.match(await http1Over(ok.stream, 'site.test', '/authed'), /plain GET \/authed$/);
      const forwarded = await openStream(session, { ':method': 'GET', ':scheme': 'http', ':authority': `site.test:${plain.port}`, ':path': '/authed-stream', ...auth }, true);
      assert.equal(await readAll(forwarded.stream), 'plain GET /authed-stream');
      assert.equal(plain.received.some((r) => r.url === '/needs-auth'), false, 'nothing unauthenticated was forwarded');
      assert.equal(plain.received.find((r) => r.url === '/authed-stream')!.rawHeaders.some((h) => /proxy-authorization/i.test(h)), false, 'credentials stay with the proxy');

      const tunnel = await events.waitFor((e): e is ConnTunnelRequested => e.kind === 'conn.tunnel');
      assert.equal(tunnel.user, 'ada');
      assert.deepEqual(tunnel.headers.find(([n]) => n === 'proxy-authorization'), ['proxy-authorization', 'Basic [redacted]']);
      const refusedGet = await events.waitFor((e) => e.kind === 'http.request' && e.url.endsWith('/needs-auth'));
      const authedGet = await events.waitFor((e) => e.kind === 'http.request' && e.url.endsWith('/authed-stream'));
      await events.waitFor((e) => e.kind === 'http.completed' && e.exchangeId === (authedGet as { exchangeId: number }).exchangeId);
      await guarded.flush();
      const refusedRow = getExchange(guarded.db, (refusedGet as { exchangeId: number }).exchangeId)!;
      assert.equal(refusedRow.status, 407);
      assert.equal(refusedRow.protocol, 'h2');
      assert.equal(refusedRow.error?.code, 'proxy-auth-missing');
      const authedRow = getExchange(guarded.db, (authedGet as { exchangeId: number }).exchangeId)!;
      assert.deepEqual(authedRow.requestHeaders.find(([n]) => n === 'proxy-authorization'), ['proxy-authorization', 'Basic [redacted]']);
      session.close();
    } finally {
      events.stop();
      await guarded.close();
    }
  });

  test('Chromium with --proxy-server=https://…: an https page and a page that opens a ws:// WebSocket', { timeout: 30_000 }, async () => {
    const spki = await serverSpkiHash('127.0.0.1', proxy.proxyTlsAddress!.port, caPem);
    const browser = await chromium.launch({
      executablePath: chromiumPath(),
      headless: true,
      args: [...CHROMIUM_FLAGS, `--proxy-server=${proxy.proxyTlsUrl}`, `--ignore-certificate-errors-spki-list=${spki}`],
    });
    try {
      const page = await browser.newPage();
      const response = await page.goto(`https://site.test:${secure.port}/from-chromium`);
      assert.equal(response?.status(), 200);
      assert.equal(await page.textContent('body'), 'secure /from-chromium');
      await page.goto(`http://site.test:${plain.port}/ws-page`);
      await page.waitForFunction(() => (globalThis as unknown as { document: { title: string } }).document.title.startsWith('echo:'));
      assert.equal(await page.title(), 'echo:hello from chromium');
    } finally {
      await browser.close();
    }

    const https = await captured((url) => url === `https://site.test:${secure.port}/from-chromium`);
    assert.equal(https.conn.listener, 'proxy-tls');
    assert.equal(https.conn.tunnel?.via, 'h2-connect', 'Chromium spoke HTTP/2 to the proxy and asked for a CONNECT stream');
    assert.equal(https.conn.intercepted, true);
    assert.equal(https.exchange.protocol, 'HTTP/1.1', 'inside the tunnel: what the upstream (HTTP/1.1 only) agreed to');
    assert.equal(https.exchange.responseProtocol, 'HTTP/1.1');
    assert.equal(getConnection(proxy.db, https.conn.parentId!)!.tls.client?.alpn, 'h2');

    const wsPageRow = await captured((url) => url === `http://site.test:${plain.port}/ws-page`);
    assert.equal(wsPageRow.conn.listener, 'proxy-tls');
    assert.equal(wsPageRow.exchange.protocol, 'h2', 'the page came as a proxied HTTP/2 stream');
    assert.equal(wsPageRow.exchange.responseProtocol, 'HTTP/1.1');
    const ws = await captured((url) => url.endsWith('/chromium-chat'));
    assert.equal(ws.exchange.status, 101);
    assert.equal(ws.exchange.protocol, 'HTTP/1.1', 'a classic Upgrade inside the tunnel');
    assert.equal(ws.conn.listener, 'proxy-tls');
    assert.equal(ws.conn.tunnel?.via, 'h2-connect', 'through a CONNECT stream on the HTTP/2 connection to the proxy');
    await log.waitFor((e) => e.kind === 'ws.message' && e.exchangeId === ws.exchange.id && e.side === 'server');

    // Nothing but the test's own names went through the proxy.
    const hosts = new Set([...log.of('conn.tunnel').map((e) => e.host), ...log.of('http.request').map((e) => e.host)]);
    for (const host of hosts) assert.match(host, /\.test$/, `unexpected host through the proxy: ${host}`);
  });
});

describe('HTTPS proxy port shutdown', { timeout: 10_000 }, () => {
  test('close() ends HTTP/2 connections and their tunnels, upstream legs included, and records every close', { timeout: 10_000 }, async () => {
    const upstreamClosed: Array<Promise<unknown>> = [];
    const server = await startTcpServer((socket) => {
      upstreamClosed.push(new Promise((resolve) => socket.once('close', resolve)));
      socket.write('hello\n'); // and keeps its side open: only the proxy can end this tunnel
      // After the proxy's FIN it keeps writing, so that it learns when the proxy is really gone.
      socket.once('end', function beat() {
        if (!socket.destroyed) socket.write('.', () => setImmediate(beat));
      });
    });
    const proxy = await startTestProxy({ listenTls: { host: '127.0.0.1', port: 0 }, shutdownGraceMs: 200 });
    const log = recordEvents(proxy.bus);
    try {
      const session = await h2ToProxy(proxy, readFileSync(proxy.caCertPath, 'utf8'));
      const sessionClosed = once(session, 'close');
      const { stream } = await connect(session, `idle.test:${server.port}`);
      stream.on('error', () => {});
      await once(stream, 'data');
      const streamClosed = new Promise((resolve) => stream.once('close', resolve));
      await proxy.close();
      // Recorded before close() resolved, so the capture file has them too.
      const closedIds = new Set(log.of('conn.closed').map((e) => e.connId));
      for (const opened of log.of('conn.opened')) assert.ok(closedIds.has(opened.connId), `connection ${opened.connId} was closed and recorded`);
      assert.equal(log.of('conn.opened').length, 2, 'the HTTP/2 connection and its tunnel');
      await Promise.all([streamClosed, sessionClosed, ...upstreamClosed]);
      assert.equal(upstreamClosed.length, 1, 'the upstream leg was closed by the proxy');
    } finally {
      log.stop();
      await proxy.close();
      await server.close();
    }
  });
});
