// Malformed HTTP/1.1 on the proxy port. Each input gets a clear answer (a 400 or 431 naming the
// parser's code, or a close when an answer to an earlier request is still owed), the capture keeps
// the reason, nothing the client did not validly send reaches the upstream (no request smuggling),
// and the proxy keeps serving: a new connection and a keep-alive connection opened before.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { startTestProxy, type TestProxy } from './helpers/proxy.js';
import { startUpstream, type TestUpstream } from './helpers/upstream.js';
import { collect, proxiedRequest } from './helpers/clients.js';
import { recordEvents, type EventLog } from './helpers/events.js';
import { getConnection, getExchange, listExchanges } from '../packages/core/src/store/queries.js';

interface RawResult {
  answer: string;
  clientPort: number;
}

/** Writes raw bytes on a new connection and returns what came back until the proxy closed it. */
function sendRaw(proxy: { host: string; port: number }, bytes: string): Promise<RawResult> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(proxy.port, proxy.host);
    const chunks: Buffer[] = [];
    let clientPort = 0;
    socket.on('connect', () => {
      clientPort = socket.localPort ?? 0;
      socket.write(Buffer.from(bytes, 'latin1'));
    });
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' ? undefined : reject(err)));
    socket.on('close', () => resolve({ answer: Buffer.concat(chunks).toString('latin1'), clientPort }));
  });
}

/** An origin-form request: what an upstream would parse if it ever took body bytes for a request. */
const HIDDEN = 'GET /smuggled HTTP/1.1\r\nHost: site.test\r\n\r\n';

type Expected = { answer: 400 | 431 | 'close'; code: string; reason?: 'bad-request' | 'headers-too-large' };

describe('robustness: malformed HTTP/1.1 on the proxy port', { timeout: 60_000 }, () => {
  let proxy: TestProxy;
  let upstream: TestUpstream;
  let log: EventLog;
  let keepAlive: http.Agent;
  let url: string;

  before(async () => {
    upstream = await startUpstream((req, res, body) => res.end(`ok ${req.method} ${req.url} ${body.length}`));
    proxy = await startTestProxy();
    log = recordEvents(proxy.bus);
    url = `http://site.test:${upstream.port}/`;
    keepAlive = new http.Agent({ keepAlive: true, maxSockets: 1 });
    assert.equal((await viaKeepAlive()).reused, false, 'the long-lived connection is opened before any bad input');
  });

  after(async () => {
    keepAlive.destroy();
    log.stop();
    await proxy.close();
    await upstream.close();
  });

  /** A request on the keep-alive connection opened in before(). */
  function viaKeepAlive(): Promise<{ status: number; body: string; reused: boolean }> {
    return new Promise((resolve, reject) => {
      const req = http.request({ host: proxy.host, port: proxy.port, path: `${url}healthy`, headers: { Host: `site.test:${upstream.port}` }, agent: keepAlive });
      req.on('error', reject);
      req.on('response', (res) => collect(res).then((r) => resolve({ status: r.status, body: r.body.toString(), reused: req.reusedSocket }), reject));
      req.end();
    });
  }

  const stillServes = async () => {
    const fresh = await proxiedRequest(proxy, `${url}after`);
    assert.equal(fresh.status, 200, 'a new connection is served');
    const held = await viaKeepAlive();
    assert.deepEqual([held.status, held.reused], [200, true], 'the connection opened before is undisturbed');
  };

  const connIdOf = async (clientPort: number) => {
    const opened = await log.waitFor((e) => e.kind === 'conn.opened' && e.clientPort === clientPort);
    return (opened as { connId: number }).connId;
  };

  const neverSmuggled = () =>
    assert.ok(!upstream.received.some((r) => r.url.includes('smuggled')), 'no hidden request reached the upstream');

  /** Sends the bytes, checks the answer, the captured reason and that the proxy still serves. */
  async function rejects(bytes: string, expected: Expected): Promise<number> {
    const { answer, clientPort } = await sendRaw(proxy, bytes);
    if (expected.answer === 'close') {
      assert.doesNotMatch(answer, /^HTTP\/1\.1 [24]\d\d /, 'no answer is invented for a request still in flight');
    } else {
      assert.match(answer, new RegExp(`^HTTP/1\\.1 ${expected.answer} `));
      assert.match(answer, /\r\nConnection: close\r\n/);
      assert.ok(answer.includes(`(${expected.code})`), `the answer names the parser's code: ${answer}`);
    }
    const connId = await connIdOf(clientPort);
    await log.waitFor((e) => e.kind === 'conn.closed' && e.connId === connId);
    await proxy.flush();
    const error = getConnection(proxy.db, connId)?.error;
    assert.equal(error?.reason, expected.reason ?? 'bad-request');
    assert.equal(error?.code, expected.code);
    neverSmuggled();
    await stillServes();
    return connId;
  }

  describe('request lines', () => {
    const cases: Array<[string, string, Expected]> = [
      ['a method with a bracket', `G(T ${'URL'} HTTP/1.1\r\nHost: site.test\r\n\r\n`, { answer: 400, code: 'HPE_INVALID_METHOD' }],
      ['a lower-case method', `get URL HTTP/1.1\r\nHost: site.test\r\n\r\n`, { answer: 400, code: 'HPE_INVALID_METHOD' }],
      ['a 5,000-letter method', `${'A'.repeat(5000)} URL HTTP/1.1\r\nHost: site.test\r\n\r\n`, { answer: 400, code: 'HPE_INVALID_METHOD' }],
      ['bare LF line ends', `GET URL HTTP/1.1\nHost: site.test\n\n`, { answer: 400, code: 'HPE_INVALID_VERSION' }],
      ['a bare CR ending the request line', `GET URL HTTP/1.1\rHost: site.test\r\n\r\n`, { answer: 400, code: 'HPE_STRICT' }],
      ['a space inside the target', `GET URLa b HTTP/1.1\r\nHost: site.test\r\n\r\n`, { answer: 400, code: 'HPE_INVALID_CONSTANT' }],
      ['a NUL inside the target', `GET URL\x00 HTTP/1.1\r\nHost: site.test\r\n\r\n`, { answer: 400, code: 'HPE_INVALID_URL' }],
      ['binary garbage', '\x00\x01\x02\xff\xfe\r\n\r\n', { answer: 400, code: 'HPE_INVALID_METHOD' }],
      ['a 70 KiB target', `GET URL${'a'.repeat(70 * 1024)} HTTP/1.1\r\nHost: site.test\r\n\r\n`, { answer: 431, code: 'HPE_HEADER_OVERFLOW', reason: 'headers-too-large' }],
    ];
    for (const [name, bytes, expected] of cases) {
      test(`${name}: ${expected.answer} ${expected.code}`, async () => {
        await rejects(bytes.replace('URL', () => url), expected);
      });
    }
  });

  describe('header blocks', () => {
    const head = () => `GET ${url} HTTP/1.1\r\nHost: site.test\r\n`;
    const cases: Array<[string, () => string, Expected]> = [
      ['an obs-fold continuation line', () => `${head()}X-A: a\r\n  folded\r\n\r\n`, { answer: 400, code: 'HPE_INVALID_HEADER_TOKEN' }],
      ['whitespace before the first header', () => `GET ${url} HTTP/1.1\r\n Host: site.test\r\n\r\n`, { answer: 400, code: 'HPE_UNEXPECTED_SPACE' }],
      ['a NUL in a value', () => `${head()}X-A: a\x00b\r\n\r\n`, { answer: 400, code: 'HPE_INVALID_HEADER_TOKEN' }],
      ['a control byte in a value', () => `${head()}X-A: a\x01b\r\n\r\n`, { answer: 400, code: 'HPE_INVALID_HEADER_TOKEN' }],
      ['DEL in a value', () => `${head()}X-A: a\x7fb\r\n\r\n`, { answer: 400, code: 'HPE_INVALID_HEADER_TOKEN' }],
      ['a bare CR in a value', () => `${head()}X-A: a\rb\r\n\r\n`, { answer: 400, code: 'HPE_LF_EXPECTED' }],
      ['an empty header name', () => `${head()}: x\r\n\r\n`, { answer: 400, code: 'HPE_INVALID_HEADER_TOKEN' }],
      ['one 70 KiB header', () => `${head()}X-Big: ${'b'.repeat(70 * 1024)}\r\n\r\n`, { answer: 431, code: 'HPE_HEADER_OVERFLOW', reason: 'headers-too-large' }],
      ['12,000 small headers', () => `${head()}${Array.from({ length: 12_000 }, (_, i) => `X-${i}: v\r\n`).join('')}\r\n`, { answer: 431, code: 'HPE_HEADER_OVERFLOW', reason: 'headers-too-large' }],
    ];
    for (const [name, bytes, expected] of cases) {
      test(`${name}: ${expected.answer} ${expected.code}`, async () => {
        await rejects(bytes(), expected);
      });
    }
  });

  describe('body framing: request smuggling does not pass through', () => {
    const post = () => `POST ${url} HTTP/1.1\r\nHost: site.test\r\n`;
    const zeroChunkThenHidden = `0\r\n\r\n${HIDDEN}`;
    const cases: Array<[string, () => string, Expected]> = [
      ['Content-Length then Transfer-Encoding (CL.TE)', () => `${post()}Content-Length: ${zeroChunkThenHidden.length}\r\nTransfer-Encoding: chunked\r\n\r\n${zeroChunkThenHidden}`, { answer: 400, code: 'HPE_INVALID_TRANSFER_ENCODING' }],
      ['Transfer-Encoding then Content-Length (TE.CL)', () => `${post()}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n${zeroChunkThenHidden}`, { answer: 400, code: 'HPE_INVALID_CONTENT_LENGTH' }],
      ['two different Content-Lengths', () => `${post()}Content-Length: 4\r\nContent-Length: ${4 + HIDDEN.length}\r\n\r\nabcd${HIDDEN}`, { answer: 400, code: 'HPE_UNEXPECTED_CONTENT_LENGTH' }],
      ['two equal Content-Lengths', () => `${post()}Content-Length: 4\r\nContent-Length: 4\r\n\r\nabcd${HIDDEN}`, { answer: 400, code: 'HPE_UNEXPECTED_CONTENT_LENGTH' }],
      ['a Content-Length list', () => `${post()}Content-Length: 4, ${4 + HIDDEN.length}\r\n\r\nabcd${HIDDEN}`, { answer: 400, code: 'HPE_INVALID_CONTENT_LENGTH' }],
      ['a signed Content-Length', () => `${post()}Content-Length: +4\r\n\r\nabcd${HIDDEN}`, { answer: 400, code: 'HPE_INVALID_CONTENT_LENGTH' }],
      ['a Content-Length past 2^64', () => `${post()}Content-Length: 99999999999999999999999\r\n\r\nabcd`, { answer: 400, code: 'HPE_INVALID_CONTENT_LENGTH' }],
      ['chunked not the last coding', () => `${post()}Transfer-Encoding: chunked, gzip\r\n\r\n${zeroChunkThenHidden}`, { answer: 400, code: 'HPE_INVALID_TRANSFER_ENCODING' }],
      ['chunked then identity in two headers', () => `${post()}Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n${zeroChunkThenHidden}`, { answer: 400, code: 'HPE_INVALID_TRANSFER_ENCODING' }],
      ['a space before the colon of Transfer-Encoding', () => `${post()}Transfer-Encoding : chunked\r\n\r\n${zeroChunkThenHidden}`, { answer: 400, code: 'HPE_INVALID_HEADER_TOKEN' }],
      ['an obs-folded Transfer-Encoding', () => `${post()}Transfer-Encoding:\r\n chunked\r\n\r\n${zeroChunkThenHidden}`, { answer: 400, code: 'HPE_INVALID_HEADER_TOKEN' }],
      // The head below parses, so Node has already handed the request on when the body breaks.
      ['an unknown transfer coding', () => `${post()}Transfer-Encoding: xchunked\r\n\r\n${zeroChunkThenHidden}`, { answer: 'close', code: 'HPE_INVALID_TRANSFER_ENCODING' }],
      ['a chunk size that is not hex', () => `${post()}Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n${zeroChunkThenHidden}`, { answer: 'close', code: 'HPE_INVALID_CHUNK_SIZE' }],
      ['a negative chunk size', () => `${post()}Transfer-Encoding: chunked\r\n\r\n-1\r\nabc\r\n${zeroChunkThenHidden}`, { answer: 'close', code: 'HPE_INVALID_CHUNK_SIZE' }],
      ['a chunk size past 2^64', () => `${post()}Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\nabc\r\n${zeroChunkThenHidden}`, { answer: 'close', code: 'HPE_INVALID_CHUNK_SIZE' }],
      ['a chunk size with leading space', () => `${post()}Transfer-Encoding: chunked\r\n\r\n 3\r\nabc\r\n${zeroChunkThenHidden}`, { answer: 'close', code: 'HPE_INVALID_CHUNK_SIZE' }],
      ['bare LF chunk lines', () => `${post()}Transfer-Encoding: chunked\r\n\r\n3\nabc\n${zeroChunkThenHidden}`, { answer: 'close', code: 'HPE_CR_EXPECTED' }],
      ['chunk data longer than its size', () => `${post()}Transfer-Encoding: chunked\r\n\r\n3\r\nabcX${zeroChunkThenHidden}`, { answer: 'close', code: 'HPE_STRICT' }],
    ];
    for (const [name, bytes, expected] of cases) {
      test(`${name}: ${expected.answer} ${expected.code}`, async () => {
        const connId = await rejects(bytes(), expected);
        if (expected.answer !== 'close') return;
        // The request whose body broke is captured as a failed exchange of that connection, saying why.
        const [row] = listExchanges(proxy.db, { limit: 5, connectionId: connId });
        assert.deepEqual([row?.method, row?.state], ['POST', 'failed']);
        const failed = getExchange(proxy.db, row.id)!;
        assert.deepEqual([failed.error?.reason, failed.error?.code], ['bad-request', expected.code]);
      });
    }

    test('3,000 small headers within the byte limit all reach the upstream (none silently dropped)', async () => {
      // A raw upstream that counts the header lines it received.
      const server = net.createServer((s) => {
        s.on('error', () => {});
        let head = '';
        s.on('data', (c: Buffer) => {
          head += c.toString('latin1');
          const end = head.indexOf('\r\n\r\n');
          if (end < 0) return;
          const count = String(head.slice(0, end).split('\r\n').length - 1);
          s.end(`HTTP/1.1 200 OK\r\nContent-Length: ${count.length}\r\nConnection: close\r\n\r\n${count}`);
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const port = (server.address() as net.AddressInfo).port;
      try {
        const headers = Array.from({ length: 3000 }, (_, i) => `X-${i}: v\r\n`).join('');
        const { answer } = await sendRaw(proxy, `GET http://site.test:${port}/ HTTP/1.1\r\nHost: site.test:${port}\r\n${headers}Connection: close\r\n\r\n`);
        assert.match(answer, /^HTTP\/1\.1 200 /);
        assert.ok(answer.endsWith('\r\n\r\n3001'), `the upstream got Host and all 3,000 others: ${answer.slice(-20)}`);
      } finally {
        await new Promise((resolve) => server.close(resolve));
      }
    });

    test('Connection: content-length cannot strip the length of a body sent anyway', async () => {
      const body = `${HIDDEN}`;
      const { answer, clientPort } = await sendRaw(
        proxy,
        `${post()}Content-Length: ${body.length}\r\nConnection: content-length, close\r\n\r\n${body}`,
      );
      assert.match(answer, /^HTTP\/1\.1 200 /);
      assert.ok(answer.endsWith(`ok POST / ${body.length}`), `the upstream saw one POST with the whole body: ${answer}`);
      neverSmuggled();
      const connId = await connIdOf(clientPort);
      await log.waitFor((e) => e.kind === 'conn.closed' && e.connId === connId);
      await proxy.flush();
      const [row] = listExchanges(proxy.db, { limit: 5, connectionId: connId });
      const exchange = getExchange(proxy.db, row.id)!;
      assert.deepEqual([exchange.state, exchange.requestBodySize], ['complete', body.length]);
      assert.equal(exchange.requestBody?.data.toString('latin1'), body, 'the capture holds the body as sent');
      await stillServes();
    });

    test('a request whose body breaks after the upstream started answering: no 400 inside the response', async () => {
      // A raw upstream that answers the head at once, then waits with the body half sent.
      const server = net.createServer((s) => {
        s.on('error', () => {});
        s.once('data', () => s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhalf'));
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const port = (server.address() as net.AddressInfo).port;
      try {
        const socket = net.connect(proxy.port, proxy.host);
        const chunks: Buffer[] = [];
        let clientPort = 0;
        socket.once('connect', () => (clientPort = socket.localPort ?? 0));
        socket.on('error', () => {});
        socket.on('data', (c: Buffer) => {
          chunks.push(c);
          if (Buffer.concat(chunks).includes('half')) socket.write('zz\r\n');
        });
        socket.write(`POST http://site.test:${port}/ HTTP/1.1\r\nHost: site.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n`);
        await new Promise((resolve) => socket.once('close', resolve));
        const answer = Buffer.concat(chunks).toString('latin1');
        assert.match(answer, /^HTTP\/1\.1 200 OK\r\n/);
        assert.ok(answer.endsWith('\r\n\r\nhalf'), `nothing was written into the response body: ${JSON.stringify(answer)}`);
        const connId = await connIdOf(clientPort);
        await log.waitFor((e) => e.kind === 'conn.closed' && e.connId === connId);
        await proxy.flush();
        assert.equal(getConnection(proxy.db, connId)?.error?.code, 'HPE_INVALID_CHUNK_SIZE');
        const [row] = listExchanges(proxy.db, { limit: 5, connectionId: connId });
        assert.deepEqual([row.status, row.state], [200, 'failed'], 'the half-sent exchange is captured as failed');
      } finally {
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
      await stillServes();
    });
  });
});

describe('robustness: CONNECT targets', { timeout: 60_000 }, () => {
  let proxy: TestProxy;
  let upstream: TestUpstream;
  let log: EventLog;
  let v6: net.Server;

  before(async () => {
    upstream = await startUpstream((_req, res) => res.end('ok'));
    proxy = await startTestProxy();
    log = recordEvents(proxy.bus);
    v6 = net.createServer((s) => s.on('error', () => {}).end('v6 reached'));
    await new Promise<void>((resolve) => v6.listen(0, '::1', resolve));
  });

  after(async () => {
    log.stop();
    await proxy.close();
    await upstream.close();
    await new Promise<void>((resolve) => v6.close(() => resolve()));
  });

  const refused: Array<[string, () => string, RegExp]> = [
    ['a name without a port', () => 'site.test', /CONNECT target must be host:port/],
    ['a port without a name', () => ':443', /CONNECT target must be host:port/],
    ['an empty port', () => 'site.test:', /CONNECT target must be host:port/],
    ['port 0', () => 'site.test:0', /CONNECT port out of range: 0/],
    ['port 65536', () => 'site.test:65536', /CONNECT port out of range: 65536/],
    ['a six-digit port', () => 'site.test:443443', /CONNECT target must be host:port/],
    ['a non-numeric port', () => 'site.test:https', /CONNECT target must be host:port/],
    ['a negative port', () => 'site.test:-1', /CONNECT target must be host:port/],
    ['a signed port', () => 'site.test:+80', /CONNECT target must be host:port/],
    ['two ports', () => 'site.test:443:80', /CONNECT target must be host:port/],
    ['IPv6 without brackets', () => '::1:443', /CONNECT target must be host:port/],
    ['bracketed IPv6 without a port', () => '[::1]', /CONNECT target must be host:port/],
    ['an unclosed bracket', () => '[::1:443', /CONNECT target must be host:port/],
    ['brackets around a name', () => '[site.test]:443', /not an IPv6 address/],
    ['an absolute URI', () => 'http://site.test:443/', /CONNECT target must be host:port/],
    ['user info', () => 'user@site.test:443', /CONNECT target must be host:port/],
    ['a label of underscores and dashes only', () => '-_-.test:443', /not a valid host name/],
    ['a 300-letter name', () => `${'a'.repeat(300)}:443`, /not a valid host name/],
    ['a 20,000-letter name', () => `${'x'.repeat(20_000)}.test:443`, /not a valid host name/],
  ];
  for (const [name, target, message] of refused) {
    test(`${name}: 400 naming the fault`, async () => {
      const { answer, clientPort } = await sendRaw(proxy, `CONNECT ${target()} HTTP/1.1\r\nHost: x\r\n\r\n`);
      assert.match(answer, /^HTTP\/1\.1 400 Bad Request\r\n/);
      assert.match(answer, message);
      assert.ok(answer.length < 600, 'the answer quotes at most a bounded part of the target');
      const opened = await log.waitFor((e) => e.kind === 'conn.opened' && e.clientPort === clientPort);
      const connId = (opened as { connId: number }).connId;
      await log.waitFor((e) => e.kind === 'conn.closed' && e.connId === connId);
      await proxy.flush();
      const row = getConnection(proxy.db, connId)!;
      assert.equal(row.error?.reason, 'bad-request');
      assert.match(row.error?.message ?? '', message);
      assert.equal(row.tunnel, null, 'no tunnel was recorded for a refused target');
      assert.equal((await proxiedRequest(proxy, `http://site.test:${upstream.port}/`)).status, 200);
    });
  }

  test('a target over the header limit: 431', async () => {
    const { answer } = await sendRaw(proxy, `CONNECT ${'x'.repeat(70 * 1024)}.test:443 HTTP/1.1\r\n\r\n`);
    assert.match(answer, /^HTTP\/1\.1 431 /);
    await log.waitFor((e) => e.kind === 'conn.closed' && e.error?.reason === 'headers-too-large');
  });

  test('a non-ASCII name: 400 from the parser', async () => {
    const { answer } = await sendRaw(proxy, 'CONNECT \u00e9t\u00e9.test:443 HTTP/1.1\r\n\r\n');
    assert.match(answer, /^HTTP\/1\.1 400 .*\r\n[^]*\(HPE_INVALID_URL\)/);
  });

  for (const [name, target] of [
    ['bracketed IPv6 loopback', () => `[::1]:${(v6.address() as net.AddressInfo).port}`],
    ['an IPv4-mapped IPv6 address', () => `[::ffff:127.0.0.1]:${upstream.port}`],
  ] as const) {
    test(`${name} is a valid target: 200 and the tunnel is recorded`, async () => {
      const socket = net.connect(proxy.port, proxy.host);
      socket.write(`CONNECT ${target()} HTTP/1.1\r\nHost: x\r\n\r\n`);
      const first = await new Promise<string>((resolve) => socket.once('data', (c: Buffer) => resolve(c.toString('latin1'))));
      socket.destroy();
      assert.match(first, /^HTTP\/1\.1 200 /);
      const tunnel = await log.waitFor((e) => e.kind === 'conn.tunnel' && e.target === target());
      assert.ok(tunnel.kind === 'conn.tunnel' && tunnel.host.includes(':'), 'the host is kept without brackets');
    });
  }
});
