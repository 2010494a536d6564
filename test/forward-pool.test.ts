// The active path's own upstream pool: reuse only when both sides allow it, one exchange at a
// time per connection, a stale pooled connection replaced once, https:// targets over verified
// TLS, and upstream faults turned into clear answers. Upstreams are raw TCP servers where the
// exact bytes matter, Node servers otherwise.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type net from 'node:net';
import http from 'node:http';
import { startTestProxy, type TestProxy } from './helpers/proxy.js';
import { startTcpServer, startUpstream, type TestUpstream } from './helpers/upstream.js';
import { proxiedRequest } from './helpers/clients.js';
import { recordEvents, type EventLog } from './helpers/events.js';
import type { CaptureEvent, HttpCompleted, HttpFailed } from '../packages/core/src/capture/events.js';
import { UpstreamPool } from '../packages/core/src/net/upstream-pool.js';
import type { ConnectionOwner, UpstreamTarget } from '../packages/core/src/net/upstream-connection.js';
import { lookupWithMap } from '../packages/core/src/net/dialer.js';
import { ResolveMap } from '../packages/core/src/net/resolve-map.js';

interface RawConnection {
  socket: net.Socket;
  /** Request heads received on it, in order. */
  heads: string[];
}

/**
 * A raw HTTP upstream: `answer` gets each request head (bodies are read by Content-Length) and
 * the connection it came on, and writes whatever bytes the test wants.
 */
async function rawUpstream(answer: (conn: RawConnection, head: string) => void) {
  const connections: RawConnection[] = [];
  const server = await startTcpServer((socket) => {
    const conn: RawConnection = { socket, heads: [] };
    connections.push(conn);
    let buffered = Buffer.alloc(0);
    let bodyLeft = 0;
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      for (;;) {
        if (bodyLeft > 0) {
          const take = Math.min(bodyLeft, buffered.length);
          bodyLeft -= take;
          buffered = buffered.subarray(take);
          if (bodyLeft > 0) return;
        }
        const end = buffered.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buffered.subarray(0, end).toString('latin1');
        buffered = buffered.subarray(end + 4);
        bodyLeft = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        conn.heads.push(head);
        answer(conn, head);
        if (socket.destroyed) return;
      }
    });
  });
  return { ...server, connections };
}

const isCompleted = (e: CaptureEvent): e is HttpCompleted => e.kind === 'http.completed';
const isFailed = (e: CaptureEvent): e is HttpFailed => e.kind === 'http.failed';

describe('upstream pool of the active path', { timeout: 30_000 }, () => {
  let proxy: TestProxy;
  let log: EventLog;

  before(async () => {
    proxy = await startTestProxy({ responseTimeoutMs: 2_000 });
    log = recordEvents(proxy.bus);
  });

  after(async () => {
    log.stop();
    await proxy.close();
  });

  /** The capture's outcome of the exchange whose request went to `port` with `path`. */
  const outcome = async (port: number, path: string) => {
    const request = log.of('http.request').find((e) => e.port === port && e.target.endsWith(path));
    assert.ok(request, `no http.request for ${path}`);
    return log.waitFor((e) => (isCompleted(e) || isFailed(e)) && e.exchangeId === request.exchangeId) as Promise<HttpCompleted | HttpFailed>;
  };

  test('a pooled connection that died while idle is replaced once, and only for a request without a body', async () => {
    const upstream = await rawUpstream((conn, head) => {
      // The first connection's second request meets a connection that is already going away;
      // so does any POST.
      if ((conn === upstream.connections[0] && conn.heads.length === 2) || head.startsWith('POST')) {
        conn.socket.destroy();
        return;
      }
      conn.socket.write(`HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok`);
    });
    try {
      const url = (path: string) => `http://127.0.0.1:${upstream.port}${path}`;
      assert.equal((await proxiedRequest(proxy, url('/first'))).status, 200);
      const second = await proxiedRequest(proxy, url('/second'));
      assert.equal(second.status, 200);
      assert.equal(second.body.toString(), 'ok');
      assert.equal(upstream.connections.length, 2, 'the stale connection was replaced by a new one');
      assert.equal(log.of('http.request').filter((e) => e.port === upstream.port).length, 2, 'the retry is not a second exchange');
      const secondDone = await outcome(upstream.port, '/second');
      assert.equal(secondDone.kind, 'http.completed');
      assert.equal(typeof secondDone.timings.connectMs, 'number', 'the retry dialled a new connection');

      const third = await proxiedRequest(proxy, url('/third'));
      assert.equal(third.status, 200);
      const thirdDone = await outcome(upstream.port, '/third');
      assert.equal(thirdDone.kind, 'http.completed');
      assert.equal(thirdDone.timings.connectMs, null, 'a reused connection has no dial timings');
      assert.equal(upstream.connections.length, 2);

      // A request with a body is not sent twice: the client learns that the upstream went away.
      const post = await proxiedRequest(proxy, url('/post'), { method: 'POST', body: 'abc' });
      assert.equal(post.status, 502);
      assert.match(post.body.toString(), /reset the connection/);
      assert.equal(upstream.connections.length, 2, 'no new connection for a request with a body');
      assert.equal(upstream.connections[1].heads.length, 3, 'the POST went over the pooled connection, once');
      const failed = await outcome(upstream.port, '/post');
      assert.equal(failed.kind, 'http.failed');
      assert.equal((failed as HttpFailed).error.reason, 'reset');
    } finally {
      await upstream.close();
    }
  });

  test('a connection is reused only when the upstream lets it live', async () => {
    // Each path answers with different connection semantics; none of these servers closes first.
    const answers: Record<string, string> = {
      '/close': 'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nc1',
      '/http10': 'HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nh0',
      '/http10-keep': 'HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nhk',
      '/plain': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\npl',
    };
    const upstream = await rawUpstream((conn, head) => {
      const path = /^GET \S*?(\/[\w-]*) /.exec(head)?.[1] ?? '';
      conn.socket.write(answers[path] ?? 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
    });
    try {
      const get = async (path: string) => {
        const res = await proxiedRequest(proxy, `http://127.0.0.1:${upstream.port}${path}`);
        assert.equal(res.status, 200, path);
        return res.body.toString();
      };
      assert.equal(await get('/close'), 'c1');
      assert.equal(await get('/close'), 'c1');
      assert.equal(upstream.connections.length, 2, 'Connection: close is not reused');
      await Promise.all(upstream.connections.map((c) => (c.socket.readableEnded ? null : once(c.socket, 'end'))));

      assert.equal(await get('/http10'), 'h0');
      assert.equal(await get('/plain'), 'pl');
      assert.equal(upstream.connections.length, 4, 'an HTTP/1.0 response without keep-alive is not reused');

      assert.equal(await get('/http10-keep'), 'hk');
      assert.equal(await get('/plain'), 'pl');
      assert.equal(await get('/plain'), 'pl');
      assert.equal(upstream.connections.length, 4, 'HTTP/1.0 keep-alive and HTTP/1.1 connections are reused');
      assert.equal(upstream.connections[3].heads.length, 4);
    } finally {
      await upstream.close();
    }
  });

  test('a body delimited by the upstream closing is relayed whole and the connection not kept', async () => {
    const payload = 'x'.repeat(100_000);
    const upstream = await rawUpstream((conn) => {
      conn.socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n');
      conn.socket.end(payload);
    });
    try {
      const res = await proxiedRequest(proxy, `http://127.0.0.1:${upstream.port}/until-close`);
      assert.equal(res.status, 200);
      assert.equal(res.body.toString(), payload);
      const done = await outcome(upstream.port, '/until-close');
      assert.equal(done.kind, 'http.completed');
      assert.equal(done.responseBodySize, payload.length);
      assert.equal((await proxiedRequest(proxy, `http://127.0.0.1:${upstream.port}/again`)).status, 200);
      assert.equal(upstream.connections.length, 2);
    } finally {
      await upstream.close();
    }
  });

  test('a response that is not HTTP gets a 502 and is captured as a decode failure', async () => {
    const upstream = await rawUpstream((conn, head) => {
      if (head.includes('/odd-status')) conn.socket.write('HTTP/1.1 042 Odd\r\nContent-Length: 0\r\n\r\n');
      else conn.socket.write('SSH-2.0-OpenSSH_9.2\r\n\r\n');
    });
    try {
      const res = await proxiedRequest(proxy, `http://127.0.0.1:${upstream.port}/not-http`);
      assert.equal(res.status, 502);
      assert.match(res.body.toString(), /not valid HTTP/);
      const done = await outcome(upstream.port, '/not-http');
      assert.equal(done.kind, 'http.failed');
      assert.equal((done as HttpFailed).error.reason, 'decode');
      assert.equal((done as HttpFailed).error.code, 'bad-start-line');

      // Parsed, but not a status Node can send on: refused the same way, and the proxy lives on.
      const odd = await proxiedRequest(proxy, `http://127.0.0.1:${upstream.port}/odd-status`);
      assert.equal(odd.status, 502);
      const oddDone = await outcome(upstream.port, '/odd-status');
      assert.equal((oddDone as HttpFailed).error.reason, 'decode');
    } finally {
      await upstream.close();
    }
  });

  test('concurrent requests get a connection each (never pipelined) and later ones reuse them', async () => {
    const waiting: http.ServerResponse[] = [];
    const width = 4;
    let hold = width;
    const upstream: TestUpstream = await startUpstream((_req, res) => {
      // Hold every answer until all requests arrived: a pipelined request would never arrive.
      waiting.push(res);
      if (waiting.length < hold) return;
      for (const r of waiting.splice(0)) r.end('held');
    });
    try {
      const round = async () => {
        const url = `http://site.test:${upstream.port}/held`;
        const results = await Promise.all(Array.from({ length: width }, () => proxiedRequest(proxy, url)));
        for (const r of results) assert.equal(r.body.toString(), 'held');
      };
      await round();
      const firstRound = upstream.received.slice(-width).map((r) => r.socketId);
      assert.equal(new Set(firstRound).size, width, 'one upstream connection per concurrent request');
      await round();
      assert.equal(upstream.connections, width, 'the second round reused the idle connections');
      hold = 1;
      for (let i = 0; i < 3; i++) {
        assert.equal((await proxiedRequest(proxy, `http://site.test:${upstream.port}/one`)).status, 200);
      }
      assert.equal(upstream.connections, width);
      const lone = upstream.received.slice(-3).map((r) => r.socketId);
      assert.equal(new Set(lone).size, 1, 'one request at a time reuses the most recently used connection');
    } finally {
      await upstream.close();
    }
  });

  test('an interim 100 Continue is relayed and is not taken for the start of the response', async () => {
    const upstream = await startUpstream((_req, res, body) => res.end(`got ${body.length}`));
    try {
      const payload = Buffer.alloc(200_000, 7);
      const { status, body, continued } = await new Promise<{ status: number; body: string; continued: boolean }>((resolve, reject) => {
        let continued = false;
        const req = http.request({
          host: proxy.host,
          port: proxy.port,
          method: 'PUT',
          path: `http://site.test:${upstream.port}/expect`,
          headers: { Host: `site.test:${upstream.port}`, Expect: '100-continue', 'Content-Length': String(payload.length) },
          agent: false,
        });
        req.on('error', reject);
        req.on('continue', () => {
          continued = true;
          req.end(payload);
        });
        req.on('response', (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (t: string) => (text += t));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, continued }));
        });
      });
      assert.equal(status, 200);
      assert.equal(body, `got ${payload.length}`);
      assert.ok(continued, 'the client saw the upstream\'s 100 Continue');
      const done = await outcome(upstream.port, '/expect');
      assert.equal(done.kind, 'http.completed');
      const { requestEnd, responseStart } = done.timings;
      assert.ok(requestEnd !== null && responseStart !== null && responseStart >= requestEnd, `response started ${responseStart} before the request ended ${requestEnd}`);
    } finally {
      await upstream.close();
    }
  });
});

describe('UpstreamPool on its own', { timeout: 10_000 }, () => {
  test('an idle connection is closed once it has been idle for the idle timeout', async () => {
    const upstream = await rawUpstream((conn) => conn.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'));
    const pool = new UpstreamPool({ lookup: lookupWithMap(new ResolveMap()), connectTimeoutMs: 1_000, rejectUnauthorized: true, idleTimeoutMs: 100 });
    const target: UpstreamTarget = { scheme: 'http', host: '127.0.0.1', port: upstream.port, key: `http://127.0.0.1:${upstream.port}` };
    try {
      const conn = pool.dial(target);
      await new Promise<void>((resolve, reject) => {
        const owner: ConnectionOwner = {
          onReady: () => conn.socket.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${upstream.port}\r\n\r\n`),
          onData: () => {
            pool.release(conn);
            resolve();
          },
          onEnd: () => {},
          onDrain: () => {},
          onClose: (failure) => reject(new Error(failure.message)),
        };
        conn.attach(owner);
      });
      assert.equal(pool.idleCount(target.key), 1);
      const served = upstream.connections[0].socket;
      if (!served.readableEnded) await once(served, 'end'); // the sweep closes it: no fixed wait
      assert.equal(pool.idleCount(target.key), 0);
      assert.equal(pool.acquire(target), null, 'nothing stale is handed out');
    } finally {
      pool.destroy();
      await upstream.close();
    }
  });
});
