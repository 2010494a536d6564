// SOCKS5 on the proxy port and on a --socks port, with real clients: curl (--socks5 and
// --socks5-hostname, http and intercepted https, username/password) and raw sockets for the reply
// codes and the garbage cases. Checks what the client and the upstream got and what the capture holds.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { startTestProxy, testCaDir, type TestProxy } from './helpers/proxy.js';
import { startUpstream, upstreamCaFile, upstreamTls, type TestUpstream } from './helpers/upstream.js';
import { startH2Upstream, type H2Upstream } from './helpers/h2-peers.js';
import { curl } from './helpers/clients.js';
import { recordEvents, type EventLog } from './helpers/events.js';
import { runCli } from './helpers/cli-process.js';
import type { CaptureEvent, ConnTunnelRequested } from '../packages/core/src/capture/events.js';
import { getConnection, getExchange, listExchanges } from '../packages/core/src/store/queries.js';

/** A SOCKS client byte by byte: what it sends, and what it reads back until the proxy closes. */
class RawClient {
  private received = Buffer.alloc(0);
  private wake: (() => void) | null = null;
  ended = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.received = Buffer.concat([this.received, chunk]);
      this.wake?.();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.ended = true;
      this.wake?.();
    });
  }

  static connect(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port }, () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  send(bytes: number[] | Buffer | string): void {
    this.socket.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : Buffer.from(bytes));
  }

  /** The next `n` bytes (fewer only if the proxy closed first). */
  async read(n: number): Promise<number[]> {
    while (this.received.length < n && !this.ended) await new Promise<void>((resolve) => (this.wake = resolve));
    const out = this.received.subarray(0, n);
    this.received = this.received.subarray(out.length);
    return [...out];
  }

  /** Everything after what was read, once the proxy closed. */
  async rest(): Promise<Buffer> {
    while (!this.ended) await new Promise<void>((resolve) => (this.wake = resolve));
    return this.received;
  }
}

const ipv4Request = (command: number, port: number, address = [127, 0, 0, 1]) => [5, command, 0, 1, ...address, port >> 8, port & 0xff];
const failureReply = (code: number) => [5, code, 0, 1, 0, 0, 0, 0, 0, 0];

describe('SOCKS5', { timeout: 90_000 }, () => {
  let proxy: TestProxy;
  let authProxy: TestProxy;
  let log: EventLog;
  let authLog: EventLog;
  let plain: TestUpstream;
  let secure: TestUpstream;
  let h2: H2Upstream;
  let v6Server: http.Server;
  let v6Port: number;
  const v6Received: string[] = [];

  before(async () => {
    plain = await startUpstream((req, res) => res.end(`plain ${req.url} host=${req.headers.host}`));
    secure = await startUpstream((req, res) => res.end(`secure ${req.url}`), { tls: { ...upstreamTls, ALPNProtocols: ['http/1.1'] } });
    h2 = await startH2Upstream((stream, headers) => {
      stream.respond({ ':status': 200 });
      stream.end(`h2 ${headers[':path']}`);
    });
    v6Server = http.createServer((req, res) => {
      v6Received.push(`${req.url} from ${req.socket.remoteAddress}`);
      res.end(`v6 ${req.url}`);
    });
    await new Promise<void>((resolve) => v6Server.listen(0, '::1', resolve));
    v6Port = (v6Server.address() as AddressInfo).port;
    const socksListen = { host: '127.0.0.1', port: 0 };
    proxy = await startTestProxy({ upstreamCaFiles: [upstreamCaFile], socksListen });
    authProxy = await startTestProxy({ upstreamCaFiles: [upstreamCaFile], socksListen, proxyAuth: { user: 'alice', pass: 's3cr:et' } });
    log = recordEvents(proxy.bus);
    authLog = recordEvents(authProxy.bus);
  });

  after(async () => {
    log.stop();
    authLog.stop();
    await Promise.all([proxy.close(), authProxy.close()]);
    await Promise.all([plain.close(), secure.close(), h2.close(), new Promise((resolve) => v6Server.close(resolve))]);
  });

  const lastSeq = (events: CaptureEvent[]) => events.at(-1)?.seq ?? 0;
  const socksPort = (p: TestProxy) => p.socksAddress!.port;

  /** The connection of the next SOCKS tunnel to host:port after `since`, once it closed, as stored. */
  const tunnelConnection = async (p: TestProxy, events: EventLog, since: number, host: string, port: number) => {
    const tunnel = await events.waitFor(
      (e): e is ConnTunnelRequested => e.kind === 'conn.tunnel' && e.seq > since && e.host === host && e.port === port,
    );
    await events.waitFor((e) => e.kind === 'conn.closed' && e.connId === tunnel.connId);
    await p.flush();
    return getConnection(p.db, tunnel.connId)!;
  };

  /** The stored connection that closed with this error code after `since`. */
  const failedConnection = async (p: TestProxy, events: EventLog, since: number, code: string) => {
    const closed = await events.waitFor((e) => e.kind === 'conn.closed' && e.seq > since && e.error?.code === code);
    await p.flush();
    return getConnection(p.db, (closed as { connId: number }).connId)!;
  };

  for (const door of ['proxy', 'socks'] as const) {
    const address = () => `127.0.0.1:${door === 'proxy' ? proxy.port : socksPort(proxy)}`;

    for (const [flag, sentHost] of [
      ['--socks5', '127.0.0.1'], // curl resolves the name (here with --resolve) and sends the IPv4 address
      ['--socks5-hostname', 'site.test'], // the proxy resolves it (its own --resolve rule)
    ] as const) {
      test(`${flag} on the ${door} port, http://: forwarded and decoded`, async () => {
        const since = lastSeq(log.events);
        const url = `http://site.test:${plain.port}/${door}${flag}?q=1`;
        const result = await curl([flag, address(), '--resolve', `site.test:${plain.port}:127.0.0.1`, url]);
        assert.equal(result.code, 0, result.stderr);
        assert.equal(result.stdout, `plain /${door}${flag}?q=1 host=site.test:${plain.port}`);
        assert.equal(plain.received.at(-1)?.url, `/${door}${flag}?q=1`, 'the upstream got the request');

        const conn = await tunnelConnection(proxy, log, since, sentHost, plain.port);
        assert.equal(conn.listener, door);
        assert.equal(conn.tunnel?.via, 'socks5');
        assert.equal(conn.tunnel?.user, null);
        assert.equal(conn.tunnel?.target, `${sentHost}:${plain.port}`);
        assert.deepEqual(conn.tunnel?.headers, []);
        assert.equal(conn.upstream?.remoteAddress, '127.0.0.1');
        assert.equal(conn.detectedProtocol, 'http1');
        assert.equal(conn.error, null);
        const [exchange] = listExchanges(proxy.db, { connectionId: conn.id, limit: 10 });
        assert.equal(exchange.url, `http://site.test:${plain.port}/${door}${flag}?q=1`);
        assert.equal(exchange.status, 200);
        assert.equal(getExchange(proxy.db, exchange.id)?.responseBody?.data.toString(), result.stdout);
      });

      test(`${flag} on the ${door} port, https://: intercepted with the hopscope CA`, async () => {
        const since = lastSeq(log.events);
        const url = `https://site.test:${secure.port}/tls-${door}${flag}`;
        const result = await curl([flag, address(), '--cacert', proxy.caCertPath, '--resolve', `site.test:${secure.port}:127.0.0.1`, url]);
        assert.equal(result.code, 0, result.stderr);
        assert.equal(result.stdout, `secure /tls-${door}${flag}`);
        assert.deepEqual(secure.handshakes.at(-1), { alpn: 'http/1.1', servername: 'site.test' }, 'upstream saw the SNI and ALPN curl sent');

        const conn = await tunnelConnection(proxy, log, since, sentHost, secure.port);
        assert.equal(conn.listener, door);
        assert.equal(conn.tunnel?.via, 'socks5');
        assert.equal(conn.intercepted, true);
        assert.equal(conn.hello?.sni, 'site.test');
        assert.match(conn.tls.client?.certificates[0].issuer ?? '', /hopscope CA/);
        const [exchange] = listExchanges(proxy.db, { connectionId: conn.id, limit: 10 });
        assert.equal(exchange.url, url);
        assert.equal(exchange.status, 200);
        assert.equal(getExchange(proxy.db, exchange.id)?.responseBody?.data.toString(), result.stdout);
      });
    }
  }

  test('HTTP/2 inside a SOCKS tunnel is decoded as h2', async () => {
    const since = lastSeq(log.events);
    const url = `https://site.test:${h2.port}/over-h2`;
    const result = await curl(['--http2', '--socks5-hostname', `127.0.0.1:${socksPort(proxy)}`, '--cacert', proxy.caCertPath, url]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'h2 /over-h2');
    const conn = await tunnelConnection(proxy, log, since, 'site.test', h2.port);
    assert.equal(conn.tls.upstream?.alpn, 'h2');
    const [exchange] = listExchanges(proxy.db, { connectionId: conn.id, limit: 10 });
    assert.equal(exchange.protocol, 'h2');
    assert.equal(exchange.url, url);
    assert.equal(exchange.status, 200);
  });

  test('an IPv6 literal target (::1)', async () => {
    const since = lastSeq(log.events);
    const result = await curl(['--socks5', `127.0.0.1:${proxy.port}`, `http://[::1]:${v6Port}/six`]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'v6 /six');
    assert.equal(v6Received.at(-1), '/six from ::1');
    const conn = await tunnelConnection(proxy, log, since, '::1', v6Port);
    assert.equal(conn.tunnel?.target, `[::1]:${v6Port}`);
    assert.equal(conn.upstream?.remoteAddress, '::1');
    const [exchange] = listExchanges(proxy.db, { connectionId: conn.id, limit: 10 });
    assert.equal(exchange.url, `http://[::1]:${v6Port}/six`);
  });

  test('data sent with the request, before the reply, goes through the tunnel first', async () => {
    const since = lastSeq(log.events);
    const client = await RawClient.connect(socksPort(proxy));
    client.send([5, 1, 0, ...ipv4Request(1, plain.port), ...Buffer.from(`GET /eager HTTP/1.1\r\nHost: eager.test\r\nConnection: close\r\n\r\n`)]);
    assert.deepEqual(await client.read(2), [5, 0]);
    const reply = await client.read(10);
    assert.deepEqual(reply.slice(0, 4), [5, 0, 0, 1], 'succeeded, bound address is IPv4');
    assert.deepEqual(reply.slice(4, 8), [127, 0, 0, 1]);
    assert.match((await client.rest()).toString(), /^HTTP\/1\.1 200 OK[\s\S]*plain \/eager host=eager\.test$/);
    const conn = await tunnelConnection(proxy, log, since, '127.0.0.1', plain.port);
    assert.equal(listExchanges(proxy.db, { connectionId: conn.id, limit: 10 })[0].url, `http://eager.test/eager`);
  });

  describe('username/password (RFC 1929)', () => {
    test('right credentials with --proxy-user, on the proxy port', async () => {
      const since = lastSeq(authLog.events);
      const result = await curl(['--socks5-hostname', `127.0.0.1:${authProxy.port}`, '--proxy-user', 'alice:s3cr:et', `http://site.test:${plain.port}/authed`]);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /^plain \/authed /);
      const conn = await tunnelConnection(authProxy, authLog, since, 'site.test', plain.port);
      assert.equal(conn.tunnel?.via, 'socks5');
      assert.equal(conn.tunnel?.user, 'alice');
      assert.equal(listExchanges(authProxy.db, { connectionId: conn.id, limit: 10 })[0].status, 200);
    });

    test('right credentials in a socks5h://user:pass@ URL, on the socks port', async () => {
      const since = lastSeq(authLog.events);
      const url = `https://site.test:${secure.port}/authed-tls`;
      const result = await curl(['-x', `socks5h://alice:s3cr%3Aet@127.0.0.1:${socksPort(authProxy)}`, '--cacert', authProxy.caCertPath, url]);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, 'secure /authed-tls');
      const conn = await tunnelConnection(authProxy, authLog, since, 'site.test', secure.port);
      assert.equal(conn.listener, 'socks');
      assert.equal(conn.tunnel?.user, 'alice');
      assert.equal(conn.intercepted, true);
      assert.equal(listExchanges(authProxy.db, { connectionId: conn.id, limit: 10 })[0].url, url);
    });

    test('a wrong password is refused with status 0x01 and recorded', async () => {
      const since = lastSeq(authLog.events);
      const before = plain.received.length;
      const result = await curl(['--socks5-hostname', `127.0.0.1:${authProxy.port}`, '--proxy-user', 'alice:wrong', `http://site.test:${plain.port}/nope`]);
      assert.notEqual(result.code, 0);
      assert.match(result.stderr, /rejected/i);
      assert.equal(plain.received.length, before, 'nothing reached the upstream');
      const conn = await failedConnection(authProxy, authLog, since, 'auth-failed');
      assert.equal(conn.error?.reason, 'bad-request');
      assert.match(conn.error?.message ?? '', /user "alice"/);
      assert.doesNotMatch(conn.error?.message ?? '', /wrong/, 'the password is not recorded');
      assert.equal(conn.tunnel, null);
    });

    test('the raw exchange of a wrong password: 0x02 chosen, then status 0x01 and a close', async () => {
      const client = await RawClient.connect(socksPort(authProxy));
      client.send([5, 2, 0, 2]);
      assert.deepEqual(await client.read(2), [5, 2]);
      client.send([1, 5, ...Buffer.from('alice'), 3, ...Buffer.from('bad')]);
      assert.deepEqual(await client.read(2), [1, 1]);
      assert.equal((await client.rest()).length, 0);
    });

    test('no credentials at all: no acceptable method (0xFF)', async () => {
      const since = lastSeq(authLog.events);
      const result = await curl(['--socks5-hostname', `127.0.0.1:${authProxy.port}`, `http://site.test:${plain.port}/anon`]);
      assert.notEqual(result.code, 0);
      assert.match(result.stderr, /method/i);
      const conn = await failedConnection(authProxy, authLog, since, 'no-acceptable-method');
      assert.match(conn.error?.message ?? '', /username\/password/);

      const client = await RawClient.connect(socksPort(authProxy));
      client.send([5, 1, 0]);
      assert.deepEqual(await client.read(2), [5, 0xff]);
      assert.equal((await client.rest()).length, 0);
    });
  });

  describe('reply codes and garbage', () => {
    test('a refused port: reply 0x05, recorded as refused', async () => {
      const closedPort = await new Promise<number>((resolve) => {
        const server = net.createServer().listen(0, '127.0.0.1', () => {
          const { port } = server.address() as AddressInfo;
          server.close(() => resolve(port));
        });
      });
      const since = lastSeq(log.events);
      const client = await RawClient.connect(proxy.port);
      client.send([5, 1, 0]);
      assert.deepEqual(await client.read(2), [5, 0]);
      client.send(ipv4Request(1, closedPort));
      assert.deepEqual(await client.read(10), failureReply(5));
      assert.equal((await client.rest()).length, 0, 'then the proxy closes');
      const conn = await tunnelConnection(proxy, log, since, '127.0.0.1', closedPort);
      assert.equal(conn.tunnel?.via, 'socks5');
      assert.equal(conn.error?.reason, 'refused');
      assert.equal(conn.error?.code, 'ECONNREFUSED');
      assert.match(conn.error?.message ?? '', /\(SOCKS5 reply 0x05\)$/, 'what the client was told');
      const [failed] = listExchanges(proxy.db, { connectionId: conn.id, limit: 10 });
      assert.equal(failed.errorReason, 'refused', 'the failed tunnel shows up in the exchange list');
      assert.deepEqual([failed.method, failed.protocol, failed.status], ['CONNECT', 'SOCKS5', null], 'as the client asked it; it got reply 05, no HTTP status');
    });

    for (const [name, command] of [['BIND', 2], ['UDP ASSOCIATE', 3]] as const) {
      test(`${name}: reply 0x07 (command not supported)`, async () => {
        const since = lastSeq(log.events);
        const client = await RawClient.connect(proxy.port);
        client.send([5, 1, 0]);
        assert.deepEqual(await client.read(2), [5, 0]);
        client.send(ipv4Request(command, plain.port));
        assert.deepEqual(await client.read(10), failureReply(7));
        assert.equal((await client.rest()).length, 0);
        const conn = await failedConnection(proxy, log, since, 'command-not-supported');
        assert.match(conn.error?.message ?? '', new RegExp(`${name} to 127\\.0\\.0\\.1:${plain.port}`));
        assert.equal(conn.tunnel, null);
      });
    }

    test('an unknown address type: reply 0x08', async () => {
      const since = lastSeq(log.events);
      const client = await RawClient.connect(socksPort(proxy));
      client.send([5, 1, 0]);
      assert.deepEqual(await client.read(2), [5, 0]);
      client.send([5, 1, 0, 0x02, 1, 2, 3, 4, 0, 80]);
      assert.deepEqual(await client.read(10), failureReply(8));
      const conn = await failedConnection(proxy, log, since, 'bad-address-type');
      assert.equal(conn.listener, 'socks');
    });

    test('garbage after the greeting: general failure, close, and the next client is served', async () => {
      const since = lastSeq(log.events);
      const client = await RawClient.connect(proxy.port);
      client.send([5, 1, 0]);
      assert.deepEqual(await client.read(2), [5, 0]);
      client.send('GET / HTTP/1.1\r\n\r\n');
      assert.deepEqual(await client.read(10), failureReply(1));
      assert.equal((await client.rest()).length, 0);
      const conn = await failedConnection(proxy, log, since, 'bad-version');
      assert.equal(conn.error?.reason, 'bad-request');
      assert.match(conn.error?.message ?? '', /version 0x47/);

      const next = await curl(['--socks5-hostname', `127.0.0.1:${proxy.port}`, `http://site.test:${plain.port}/after-garbage`]);
      assert.equal(next.code, 0, next.stderr);
      assert.match(next.stdout, /^plain \/after-garbage /);
    });

    for (const door of ['proxy', 'socks'] as const) {
      test(`a SOCKS4 request on the ${door} port: SOCKS4's own rejection, then the next client is served`, async () => {
        const since = lastSeq(log.events);
        const port = door === 'proxy' ? proxy.port : socksPort(proxy);
        const client = await RawClient.connect(port);
        client.send([4, 1, plain.port >> 8, plain.port & 0xff, 127, 0, 0, 1, 0]);
        assert.deepEqual(await client.read(8), [0, 0x5b, 0, 0, 0, 0, 0, 0]);
        assert.equal((await client.rest()).length, 0);
        const conn = await failedConnection(proxy, log, since, 'socks4');
        assert.equal(conn.listener, door);
        assert.match(conn.error?.message ?? '', /SOCKS4 is not supported/);

        const next = await curl(['--socks5', `127.0.0.1:${port}`, `http://127.0.0.1:${plain.port}/after-socks4`]);
        assert.equal(next.code, 0, next.stderr);
      });
    }

    test('HTTP on the socks port: a 400 that says what the port is', async () => {
      const since = lastSeq(log.events);
      const result = await curl(['-x', `http://127.0.0.1:${socksPort(proxy)}`, `http://site.test:${plain.port}/wrong-door`]);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /this is a SOCKS5 port/);
      const conn = await failedConnection(proxy, log, since, 'not-socks');
      assert.equal(conn.listener, 'socks');
    });

    test('a handshake that stalls is closed after the connect timeout', async () => {
      const quick = await startTestProxy({ connectTimeoutMs: 300, socksListen: { host: '127.0.0.1', port: 0 } });
      const quickLog = recordEvents(quick.bus);
      try {
        for (const port of [quick.port, socksPort(quick)]) {
          const client = await RawClient.connect(port);
          client.send([5, 2, 0]); // announces two methods, sends one, then nothing
          const started = Date.now();
          assert.equal((await client.rest()).length, 0, 'no answer to an unfinished greeting');
          assert.ok(Date.now() - started >= 250, 'not before the timeout');
        }
        const closed = await quickLog.waitFor((e) => e.kind === 'conn.closed' && e.error?.reason === 'timeout');
        await quick.flush();
        assert.match(getConnection(quick.db, (closed as { connId: number }).connId)?.error?.message ?? '', /SOCKS5 handshake not finished within 300 ms \(stalled in greeting\)/);
      } finally {
        quickLog.stop();
        await quick.close();
      }
    });
  });

  test('hopscope start --socks prints the socks line after the proxy line and serves on it', async () => {
    const cli = runCli(['start', '--listen', '127.0.0.1:0', '--socks', '127.0.0.1:0', '--no-ui', '--db', ':memory:', '--ca-dir', testCaDir(), '--quiet']);
    try {
      const socksUrl = await cli.line('socks');
      assert.match(socksUrl, /^socks5:\/\/127\.0\.0\.1:\d+$/);
      assert.ok(cli.lines.findIndex((l) => l.startsWith('proxy: ')) < cli.lines.findIndex((l) => l.startsWith('socks: ')));
      const result = await curl(['-x', socksUrl, `http://127.0.0.1:${plain.port}/from-cli`]);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /^plain \/from-cli /);
    } finally {
      await cli.stop();
    }
  });
});
