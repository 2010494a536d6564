// --upstream-proxy: hopscope A sends its upstream traffic through another HTTP proxy. The
// "corporate" proxy is a second, real hopscope B with proxy authentication (and interception
// off), so both sides are real and both captures can be read: http:// goes to B in absolute-form
// on pooled connections, https:// (intercepted by A, and absolute-form https://) through CONNECT
// tunnels, ws:// in absolute-form. Failures of B (wrong credentials, refused connections, broken
// answers from a hand-written fake proxy) reach the client as a 502/504 that names the upstream proxy.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { startTestProxy, type TestProxy } from './helpers/proxy.js';
import { closedPort, startTcpServer, startUpstream, upstreamCaFile, type TestUpstream } from './helpers/upstream.js';
import { curl, openTunnel, proxiedRequest, rawExchange } from './helpers/clients.js';
import { recordEvents, type EventLog } from './helpers/events.js';
import { ClientLog, connectClient, opened, startWsServer, type TestWsServer } from './helpers/ws-peers.js';
import { getConnection, getExchange, listExchanges, listWsMessages } from '../packages/core/src/store/queries.js';
import type { CaptureEvent, HttpRequestStarted } from '../packages/core/src/capture/events.js';
import { parseUpstreamProxy, type UpstreamProxy } from '../packages/core/src/net/upstream-proxy.js';

const CORP = { user: 'corp', pass: 'pa:ss' };

const headersNamed = (headers: Array<[string, string]> | string[], name: string): string[] => {
  const flat = (headers as unknown[]).flat() as string[];
  const out: string[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) if (flat[i].toLowerCase() === name) out.push(flat[i + 1]);
  return out;
};

/** Waits for the request whose URL ends with `path`, then its outcome, and reads the row. */
async function exchangeAt(proxy: TestProxy, log: EventLog, path: string) {
  const request = (await log.waitFor((e: CaptureEvent) => e.kind === 'http.request' && e.url.endsWith(path))) as HttpRequestStarted;
  await log.waitFor((e) => (e.kind === 'http.completed' || e.kind === 'http.failed') && e.exchangeId === request.exchangeId);
  await proxy.flush();
  return getExchange(proxy.db, request.exchangeId)!;
}

describe('upstream proxy', { timeout: 60_000 }, () => {
  let corp: TestProxy; // B: the corporate proxy
  let proxy: TestProxy; // A: hopscope under test
  let corpLog: EventLog;
  let log: EventLog;
  let plain: TestUpstream;
  let plain2: TestUpstream;
  let secure: TestUpstream;
  let wsServer: TestWsServer;
  let wssServer: TestWsServer;
  let n = 0;
  const uniquePath = (name: string) => `/${name}/${++n}`;
  const viaA = () => ['-x', `http://127.0.0.1:${proxy.port}`];

  before(async () => {
    const echo = (req: http.IncomingMessage, res: http.ServerResponse) => res.end(`got ${req.url}`);
    plain = await startUpstream(echo);
    plain2 = await startUpstream(echo);
    secure = await startUpstream(echo, { tls: true });
    wsServer = await startWsServer();
    wssServer = await startWsServer({ tls: true });
    // B resolves *.test itself (startTestProxy maps it); A only knows the proxy's name.
    corp = await startTestProxy({ proxyAuth: CORP, intercept: false });
    proxy = await startTestProxy({
      resolve: [{ pattern: 'corp-proxy.test', address: '127.0.0.1' }],
      upstreamProxy: { host: 'corp-proxy.test', port: corp.port, credentials: CORP },
      upstreamCaFiles: [upstreamCaFile],
      listenTls: { host: '127.0.0.1', port: 0 },
    });
    corpLog = recordEvents(corp.bus);
    log = recordEvents(proxy.bus);
  });

  after(async () => {
    log.stop();
    corpLog.stop();
    await proxy.close();
    await corp.close();
    await Promise.all([plain.close(), plain2.close(), secure.close(), wsServer.close(), wssServer.close()]);
  });

  test('an http:// request arriving as an HTTP/2 stream on the HTTPS proxy port goes through the upstream proxy too', async () => {
    const path = uniquePath('h2-stream');
    const session = http2.connect(proxy.proxyTlsUrl!, { ca: readFileSync(proxy.caCertPath, 'utf8') });
    session.on('error', () => {});
    try {
      const stream = session.request({ ':method': 'GET', ':scheme': 'http', ':authority': `site.test:${plain.port}`, ':path': path });
      const [headers] = (await once(stream, 'response')) as [http2.IncomingHttpHeaders];
      let body = '';
      stream.setEncoding('utf8').on('data', (t: string) => (body += t));
      await once(stream, 'end');
      assert.deepEqual([headers[':status'], body], [200, `got ${path}`]);
    } finally {
      session.close();
    }
    const atCorp = await exchangeAt(corp, corpLog, path);
    assert.equal(atCorp.target, `http://site.test:${plain.port}${path}`, 'B got it in absolute-form');
    const atA = await exchangeAt(proxy, log, path);
    assert.deepEqual([atA.protocol, atA.responseProtocol, atA.status], ['h2', 'HTTP/1.1', 200]);
  });

  test('http:// goes to the upstream proxy in absolute-form with its credentials, on one pooled connection', async () => {
    const path = uniquePath('plain');
    // The client's own Proxy-Authorization (meant for A) must not travel on: B would refuse it.
    const first = await curl([...viaA(), '--proxy-user', 'client:secret', `http://site.test:${plain.port}${path}`]);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stdout, `got ${path}`);
    const second = await curl([...viaA(), `http://other.test:${plain2.port}${path}`]);
    assert.equal(second.stdout, `got ${path}`);

    const received = plain.received.find((r) => r.url === path)!;
    assert.deepEqual(headersNamed(received.rawHeaders, 'proxy-authorization'), [], 'the origin sees no proxy credentials');
    assert.deepEqual(headersNamed(received.rawHeaders, 'host'), [`site.test:${plain.port}`]);

    const atB = await exchangeAt(corp, corpLog, path);
    assert.equal(atB.target, `http://site.test:${plain.port}${path}`, 'B got an absolute-form request');
    assert.deepEqual(headersNamed(atB.requestHeaders, 'proxy-authorization'), ['Basic [redacted]'], "exactly one: A's own, which B accepted");
    assert.equal(atB.status, 200);
    const atBOther = listExchanges(corp.db, { limit: 10, search: `other.test:${plain2.port}${path}` });
    assert.equal(atBOther.length, 1);
    assert.equal(atBOther[0].connectionId, atB.connectionId, 'both targets went over one pooled connection to B');

    const atA = await exchangeAt(proxy, log, path);
    assert.deepEqual([atA.url, atA.status, atA.state], [`http://site.test:${plain.port}${path}`, 200, 'complete']);
    assert.deepEqual([atA.remoteAddress, atA.remotePort], ['127.0.0.1', corp.port], 'A talked to B');
  });

  test('https:// through A (intercepted): B sees a CONNECT tunnel from the user it authenticated, relayed blind', async () => {
    const path = uniquePath('intercepted');
    const res = await curl([...viaA(), '--cacert', proxy.caCertPath, `https://site.test:${secure.port}${path}`]);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, `got ${path}`);
    assert.ok(secure.received.some((r) => r.url === path));

    const atA = await exchangeAt(proxy, log, path);
    assert.deepEqual([atA.url, atA.status], [`https://site.test:${secure.port}${path}`, 200]);
    const connA = getConnection(proxy.db, atA.connectionId)!;
    assert.equal(connA.intercepted, true);
    assert.deepEqual([connA.upstream?.remoteAddress, connA.upstream?.remotePort], ['127.0.0.1', corp.port]);

    const tunnelAtB = corpLog.of('conn.tunnel').find((t) => t.port === secure.port)!;
    assert.ok(tunnelAtB, 'B got a CONNECT for the target');
    await corpLog.waitFor((e) => e.kind === 'conn.detected' && e.connId === tunnelAtB.connId);
    await corp.flush();
    const connB = getConnection(corp.db, tunnelAtB.connId)!;
    assert.deepEqual([connB.tunnel?.host, connB.tunnel?.user, connB.detectedProtocol, connB.intercepted], ['site.test', CORP.user, 'tls', false]);
  });

  test('absolute-form https:// (the active path) goes through a CONNECT tunnel with TLS on top', async () => {
    const path = uniquePath('absolute-https');
    const res = await proxiedRequest(proxy, `https://site.test:${secure.port}${path}`);
    assert.equal(res.status, 200);
    assert.equal(res.body.toString(), `got ${path}`);
    const atA = await exchangeAt(proxy, log, path);
    assert.deepEqual([atA.scheme, atA.status, atA.remotePort], ['https', 200, corp.port]);
    assert.ok(atA.tlsMs !== null, 'the TLS handshake inside the tunnel was timed');
    await corp.flush();
    assert.ok(corpLog.of('conn.tunnel').filter((t) => t.port === secure.port).length >= 2, 'B tunnelled this one too');
  });

  test('ws:// on the absolute-form path goes to the upstream proxy in absolute-form', async () => {
    const path = uniquePath('ws');
    const socket = connectClient({ path: 'absolute-form', proxy, host: 'site.test', port: wsServer.port, urlPath: path });
    const client = new ClientLog(socket);
    await opened(socket);
    const peer = await wsServer.nextPeer();
    assert.equal(peer.request.url, path);
    assert.equal(peer.request.headers['proxy-authorization'], undefined);
    socket.send('through two proxies');
    await client.until(() => client.messages.length === 1);
    assert.equal(client.messages[0].data.toString(), 'through two proxies');
    assert.equal(peer.received[0].data.toString(), 'through two proxies');
    socket.close(1000, 'bye');
    await client.closed;

    const atB = await exchangeAt(corp, corpLog, path);
    assert.equal(atB.status, 101);
    assert.deepEqual(headersNamed(atB.requestHeaders, 'proxy-authorization'), ['Basic [redacted]']);
    const atA = await exchangeAt(proxy, log, path);
    assert.deepEqual([atA.status, atA.remotePort], [101, corp.port]);
    await log.waitFor((e) => e.kind === 'ws.closed' && e.exchangeId === atA.id);
    await proxy.flush();
    const messages = listWsMessages(proxy.db, atA.id, { limit: 10 });
    assert.deepEqual(messages.filter((m) => m.opcode === 1).map((m) => m.side), ['client', 'server'], 'A captured the messages');
  });

  test('an absolute-form Upgrade to https:// goes through a CONNECT tunnel with TLS on top', async () => {
    const path = uniquePath('wss');
    const authority = `site.test:${wssServer.port}`;
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request({
        host: '127.0.0.1',
        port: proxy.port,
        path: `https://${authority}${path}`,
        headers: { Host: authority, Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==' },
      });
      req.on('upgrade', (res: http.IncomingMessage, socket: net.Socket) => {
        socket.end();
        resolve(res.statusCode ?? 0);
      });
      req.on('response', (res: http.IncomingMessage) => reject(new Error(`no switch: ${res.statusCode}`)));
      req.on('error', reject);
      req.end();
    });
    assert.equal(status, 101);
    const peer = await wssServer.nextPeer();
    assert.equal(peer.request.url, path, 'the TLS server behind B got the handshake');
    const atA = await exchangeAt(proxy, log, path);
    assert.deepEqual([atA.scheme, atA.status], ['https', 101]);
    assert.ok(atA.connectMs !== null, 'the tunnel dial was timed');
    const tunnelAtB = corpLog.of('conn.tunnel').find((t) => t.port === wssServer.port);
    assert.equal(tunnelAtB?.user, CORP.user, 'B opened the tunnel for A');
  });

  describe('failures of the upstream proxy', () => {
    let wrongCreds: TestProxy;
    let noCreds: TestProxy;
    let refusing: TestProxy;
    let refusedPort: number;
    let wrongLog: EventLog;

    before(async () => {
      wrongCreds = await startTestProxy({ upstreamProxy: { host: '127.0.0.1', port: corp.port, credentials: { user: CORP.user, pass: 'wrong' } } });
      noCreds = await startTestProxy({ upstreamProxy: { host: '127.0.0.1', port: corp.port, credentials: null } });
      refusedPort = await closedPort();
      refusing = await startTestProxy({ upstreamProxy: { host: '127.0.0.1', port: refusedPort, credentials: null } });
      wrongLog = recordEvents(wrongCreds.bus);
    });

    after(async () => {
      wrongLog.stop();
      await Promise.all([wrongCreds.close(), noCreds.close(), refusing.close()]);
    });

    test('wrong credentials, http://: the client gets a 502 that says the upstream proxy answered 407', async () => {
      const path = uniquePath('wrong-plain');
      const res = await proxiedRequest(wrongCreds, `http://site.test:${plain.port}${path}`);
      assert.equal(res.status, 502);
      assert.match(res.body.toString(), new RegExp(`^hopscope: upstream proxy 127\\.0\\.0\\.1:${corp.port} answered 407 Proxy Authentication Required .*check the --upstream-proxy credentials`));
      assert.equal(plain.received.some((r) => r.url === path), false);
      const row = await exchangeAt(wrongCreds, wrongLog, path);
      assert.deepEqual([row.state, row.error?.reason, row.error?.code], ['failed', 'refused', 'upstream-proxy-407']);
      const atB = await exchangeAt(corp, corpLog, path);
      assert.deepEqual([atB.status, atB.error?.code], [407, 'proxy-auth-rejected'], 'B refused the attempt');
    });

    test('wrong credentials, https:// through CONNECT: 502 naming the 407, captured on the connection and as a failed CONNECT', async () => {
      const answer = await rawExchange(wrongCreds, `CONNECT site.test:${secure.port} HTTP/1.1\r\nHost: site.test:${secure.port}\r\n\r\n`);
      assert.match(answer, /^HTTP\/1\.1 502 Bad Gateway\r\n/);
      assert.match(answer, new RegExp(`hopscope: upstream proxy 127\\.0\\.0\\.1:${corp.port} answered 407 Proxy Authentication Required to CONNECT site\\.test:${secure.port}`));
      const tunnel = wrongLog.of('conn.tunnel').find((t) => t.port === secure.port)!;
      await wrongLog.waitFor((e) => e.kind === 'conn.closed' && e.connId === tunnel.connId);
      await wrongCreds.flush();
      assert.deepEqual(getConnection(wrongCreds.db, tunnel.connId)!.error?.code, 'upstream-proxy-407');
      const [row] = listExchanges(wrongCreds.db, { limit: 5, connectionId: tunnel.connId });
      assert.deepEqual([row.method, row.status, row.errorReason], ['CONNECT', 502, 'refused']);

      const curlRes = await curl(['-x', `http://127.0.0.1:${wrongCreds.port}`, '-k', `https://site.test:${secure.port}/`]);
      assert.equal(curlRes.code, 56);
      assert.match(curlRes.stderr, /response 502/);
    });

    test('no credentials at all, ws://: 502 that says the upstream proxy wants some', async () => {
      const socket = connectClient({ path: 'absolute-form', proxy: noCreds, host: 'site.test', port: wsServer.port, urlPath: uniquePath('ws-nocreds') });
      const answer = await new Promise<{ status: number; body: string }>((resolve) => {
        socket.once('unexpected-response', (_req: http.ClientRequest, res: http.IncomingMessage) => {
          let body = '';
          res.setEncoding('utf8').on('data', (t: string) => (body += t));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
      });
      assert.equal(answer.status, 502);
      assert.match(answer.body, /upstream proxy 127\.0\.0\.1:\d+ answered 407 .*it wants credentials/);
    });

    test('an upstream proxy that refuses connections: a clear 502 for http://, CONNECT and ws://', async () => {
      const expected = new RegExp(`hopscope: upstream proxy 127\\.0\\.0\\.1:${refusedPort} refused the connection \\(ECONNREFUSED\\)`);
      const res = await proxiedRequest(refusing, `http://site.test:${plain.port}/refused`);
      assert.equal(res.status, 502);
      assert.match(res.body.toString(), expected);
      const answer = await rawExchange(refusing, `CONNECT site.test:${secure.port} HTTP/1.1\r\nHost: site.test:${secure.port}\r\n\r\n`);
      assert.match(answer, /^HTTP\/1\.1 502 /);
      assert.match(answer, expected);
      const https = await proxiedRequest(refusing, `https://site.test:${secure.port}/refused`);
      assert.equal(https.status, 502);
      assert.match(https.body.toString(), expected);
      const socket = connectClient({ path: 'absolute-form', proxy: refusing, host: 'site.test', port: wsServer.port, urlPath: '/refused' });
      const status = await new Promise<number>((resolve) => socket.once('unexpected-response', (_q: http.ClientRequest, r: http.IncomingMessage) => resolve(r.statusCode ?? 0)));
      assert.equal(status, 502);
    });
  });

  describe('answers of a hand-written upstream proxy', () => {
    let fake: { port: number; close(): Promise<void> };
    let viaFake: TestProxy;
    let fakeLog: EventLog;
    const requests: string[] = [];

    before(async () => {
      // Answers by CONNECT target: what a misbehaving or slow corporate proxy might send.
      fake = await startTcpServer((socket) => {
        let head = '';
        const onData = (chunk: Buffer) => {
          head += chunk.toString('latin1');
          if (!head.includes('\r\n\r\n')) return;
          socket.removeListener('data', onData);
          requests.push(head);
          const target = /^CONNECT ([^ ]+) /.exec(head)?.[1] ?? '';
          const answer = FAKE_ANSWERS[target.split(':')[0]];
          if (typeof answer === 'function') answer(socket);
          else if (answer !== undefined) socket.end(answer);
          else socket.destroy();
        };
        socket.on('data', onData);
      });
      viaFake = await startTestProxy({ upstreamProxy: { host: '127.0.0.1', port: fake.port, credentials: CORP }, maxHeaderBytes: 4096 });
      fakeLog = recordEvents(viaFake.bus);
    });

    after(async () => {
      fakeLog.stop();
      await viaFake.close();
      await fake.close();
    });

    test('an answer cut into single bytes, followed at once by the server speaking first: nothing is lost', async () => {
      const tunnel = await openTunnel(viaFake, 'banner.test:25');
      try {
        let text = '';
        for await (const chunk of tunnel) {
          text += (chunk as Buffer).toString('latin1');
          if (text.includes('\n')) break;
        }
        assert.equal(text, '220 banner.test ESMTP ready\r\n', 'the bytes after the answer head reached the client');
      } finally {
        tunnel.destroy();
      }
      const auth = `Basic ${Buffer.from(`${CORP.user}:${CORP.pass}`).toString('base64')}`;
      assert.equal(requests.find((r) => r.startsWith('CONNECT banner.test')), `CONNECT banner.test:25 HTTP/1.1\r\nHost: banner.test:25\r\nProxy-Authorization: ${auth}\r\n\r\n`);
    });

    const cases: Array<[string, number, RegExp, string]> = [
      ['gateway-timeout', 504, /upstream proxy 127\.0\.0\.1:\d+ answered 504 Gateway Timeout to CONNECT gateway-timeout\.test:443/, 'timeout'],
      ['forbidden', 502, /answered 403 Forbidden to CONNECT forbidden\.test:443/, 'refused'],
      ['garbage', 502, /upstream proxy 127\.0\.0\.1:\d+ did not answer CONNECT garbage\.test:443 with HTTP: "SSH-2\.0-OpenSSH_9\.2"/, 'decode'],
      ['huge', 502, /upstream proxy 127\.0\.0\.1:\d+ sent an answer head over 4096 bytes/, 'decode'],
      ['silent-close', 502, /upstream proxy 127\.0\.0\.1:\d+ closed the connection before answering CONNECT silent-close\.test:443/, 'reset'],
    ];
    for (const [name, status, message, reason] of cases) {
      test(`${name}: the client gets ${status} with why, the capture has the reason`, async () => {
        const answer = await rawExchange(viaFake, `CONNECT ${name}.test:443 HTTP/1.1\r\nHost: ${name}.test:443\r\n\r\n`);
        assert.match(answer, new RegExp(`^HTTP/1\\.1 ${status} `));
        assert.match(answer, message);
        const tunnel = fakeLog.of('conn.tunnel').find((t) => t.host === `${name}.test`)!;
        await fakeLog.waitFor((e) => e.kind === 'conn.closed' && e.connId === tunnel.connId);
        await viaFake.flush();
        assert.equal(getConnection(viaFake.db, tunnel.connId)!.error?.reason, reason);
      });
    }
  });

  test('--upstream-proxy URLs: credentials decoded, a port required, only http://', () => {
    const parsed: UpstreamProxy = parseUpstreamProxy('http://me%40corp:p%3Ass@proxy.corp:3128');
    assert.deepEqual(parsed, { host: 'proxy.corp', port: 3128, credentials: { user: 'me@corp', pass: 'p:ss' } });
    assert.deepEqual(parseUpstreamProxy('http://[::1]:8080/'), { host: '::1', port: 8080, credentials: null });
    assert.deepEqual(parseUpstreamProxy('http://proxy:80'), { host: 'proxy', port: 80, credentials: null });
    for (const bad of ['proxy:3128', 'http://proxy', 'https://proxy:3128', 'socks5://proxy:1080', 'http://proxy:3128/path', 'http://:3128']) {
      assert.throws(() => parseUpstreamProxy(bad), /--upstream-proxy wants http:\/\/\[USER:PASSWORD@\]HOST:PORT/, bad);
    }
  });
});

/** What the fake upstream proxy answers, by CONNECT target host. */
const FAKE_ANSWERS: Record<string, string | ((socket: net.Socket) => void)> = {
  'banner.test': (socket) => {
    // The 200's head one byte per write, then the target's banner in the same last write.
    const bytes = Buffer.from('HTTP/1.1 200 Connection established\r\nVia: fake\r\n\r\n', 'latin1');
    let i = 0;
    const next = () => {
      if (socket.destroyed) return;
      if (i < bytes.length - 1) {
        socket.write(bytes.subarray(i, ++i), () => setImmediate(next));
        return;
      }
      socket.write(Buffer.concat([bytes.subarray(i), Buffer.from('220 banner.test ESMTP ready\r\n', 'latin1')]));
    };
    next();
  },
  'gateway-timeout.test': 'HTTP/1.1 504 Gateway Timeout\r\nContent-Length: 0\r\n\r\n',
  'forbidden.test': 'HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n',
  'garbage.test': 'SSH-2.0-OpenSSH_9.2\r\n\r\n',
  'huge.test': `HTTP/1.1 200 OK\r\n${'X-Filler: yes\r\n'.repeat(400)}\r\n`,
  'silent-close.test': '',
};
