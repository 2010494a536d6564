// The `hopscope start` command as users run it: the printed lines scripts rely on, graceful
// shutdown that lets in-flight exchanges finish and flushes the capture, and bodies that stream
// through with bounded memory.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { runCli, peakRss } from './helpers/cli-process.js';
import { startUpstream, type TestUpstream } from './helpers/upstream.js';
import { proxiedRequest } from './helpers/clients.js';
import { openStore } from '../packages/core/src/store/open-store.js';
import { listExchanges, getExchange } from '../packages/core/src/store/queries.js';

describe('hopscope start', { timeout: 60_000 }, () => {
  let dir: string;
  let upstream: TestUpstream;
  let releaseSlow: () => void = () => {};
  const slowReleased = new Promise<void>((resolve) => (releaseSlow = resolve));

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hopscope-cli-'));
    upstream = await startUpstream((req, res) => {
      if (req.url === '/slow') {
        slowReleased.then(() => res.end('finished after the signal'));
      } else if (req.url === '/sink') {
        res.end(`got ${req.headers['content-length'] ?? 'chunked'}`);
      } else {
        res.end('quick');
      }
    });
  });

  after(async () => {
    releaseSlow();
    await upstream.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('prints the proxy line, finishes in-flight exchanges on SIGTERM and flushes the capture', async () => {
    const dbPath = join(dir, 'graceful.sqlite');
    const cli = runCli(['start', '--listen', '127.0.0.1:0', '--ui', '127.0.0.1:0', '--db', dbPath, '--resolve', '*.test=127.0.0.1', '--ca-dir', join(dir, 'ca'), '--quiet']);
    try {
      const proxyUrl = await cli.line('proxy');
      const uiUrl = new URL(await cli.line('ui'));
      assert.equal(uiUrl.hostname, '127.0.0.1');
      assert.match(uiUrl.searchParams.get('token') ?? '', /^[A-Za-z0-9_-]{20,}$/, 'the printed inspector URL carries its token');
      const withoutToken = await fetch(new URL('/api/exchanges', uiUrl.origin));
      assert.equal(withoutToken.status, 401, 'the inspector refuses requests without the token');
      await withoutToken.body?.cancel();
      assert.match(proxyUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.equal(await cli.line('ca'), join(dir, 'ca', 'ca.pem'));
      assert.equal(statSync(join(dir, 'ca', 'ca-key.pem')).mode & 0o777, 0o600, 'the CA key is owner-only');
      assert.equal(await cli.line('db'), dbPath);
      const { hostname: host, port } = new URL(proxyUrl);
      const proxy = { host, port: Number(port) };

      assert.equal((await proxiedRequest(proxy, `http://site.test:${upstream.port}/quick`)).body.toString(), 'quick');
      const inFlight = proxiedRequest(proxy, `http://site.test:${upstream.port}/slow`);
      while (!upstream.received.some((r) => r.url === '/slow')) await new Promise((r) => setImmediate(r));
      cli.child.kill('SIGTERM');
      releaseSlow();
      const slow = await inFlight;
      assert.equal(slow.body.toString(), 'finished after the signal', 'the in-flight exchange completed');
      assert.equal(await cli.exited, 0, `exit code; stderr: ${cli.stderr()}`);
    } finally {
      await cli.stop('SIGKILL');
    }

    const { db } = openStore(dbPath, { readonly: true });
    try {
      const rows = listExchanges(db, { limit: 10, order: 'oldest' });
      assert.deepEqual(rows.map((r) => [r.url.replace(/:\d+/, ''), r.state, r.status]), [
        ['http://site.test/quick', 'complete', 200],
        ['http://site.test/slow', 'complete', 200],
      ]);
      assert.equal(getExchange(db, rows[1].id)!.responseBody?.data.toString(), 'finished after the signal');
    } finally {
      db.close();
    }
  });

  test('a 1 GiB upload and a 1 GiB download stream through with bounded memory', async () => {
    const GiB = 1024 ** 3;
    const dbPath = join(dir, 'big.sqlite');
    const download = await startUpstream((_req, res) => {
      res.writeHead(200, { 'Content-Length': String(GiB) });
      Readable.from(generate(GiB)).pipe(res);
    });
    const cli = runCli(['start', '--listen', '127.0.0.1:0', '--no-ui', '--db', dbPath, '--resolve', '*.test=127.0.0.1', '--ca-dir', join(dir, 'ca'), '--quiet']);
    try {
      const { hostname: host, port } = new URL(await cli.line('proxy'));
      assert.ok(!cli.lines.some((l) => l.startsWith('ui: ')), '--no-ui starts no inspector');

      const uploadAnswer = await new Promise<string>((resolve, reject) => {
        const req = http.request({
          host,
          port: Number(port),
          method: 'POST',
          path: `http://site.test:${upstream.port}/sink`,
          headers: { Host: `site.test:${upstream.port}`, 'Content-Length': String(GiB) },
        });
        req.on('error', reject);
        req.on('response', (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (t: string) => (text += t));
          res.on('end', () => resolve(text));
        });
        Readable.from(generate(GiB)).pipe(req);
      });
      assert.equal(uploadAnswer, `got ${GiB}`);

      const downloaded = await new Promise<number>((resolve, reject) => {
        http
          .get({ host, port: Number(port), path: `http://site.test:${download.port}/`, headers: { Host: 'site.test' } }, (res) => {
            let n = 0;
            res.on('data', (c: Buffer) => (n += c.length));
            res.on('end', () => resolve(n));
          })
          .on('error', reject);
      });
      assert.equal(downloaded, GiB);

      const peak = await peakRss(cli.child.pid!);
      assert.ok(peak < 300 * 1024 ** 2, `proxy peak RSS ${Math.round(peak / 1024 ** 2)} MiB after moving 2 GiB`);
      assert.equal(await cli.stop(), 0);
    } finally {
      await cli.stop('SIGKILL');
      await download.close();
    }
    const { db } = openStore(dbPath, { readonly: true });
    try {
      const rows = listExchanges(db, { limit: 10, order: 'oldest' });
      const upload = getExchange(db, rows[0].id)!;
      assert.equal(upload.requestBody?.size, GiB);
      assert.equal(upload.requestBody?.truncated, true);
      assert.equal(upload.requestBody?.data.length, 10 * 1024 * 1024, 'stored up to the default body cap');
      assert.equal(getExchange(db, rows[1].id)!.responseBody?.size, GiB);
    } finally {
      db.close();
    }
  });
});

/** `total` bytes in 1 MiB chunks, produced lazily. */
function* generate(total: number): Generator<Buffer> {
  const chunk = Buffer.alloc(1024 * 1024, 0x61);
  for (let sent = 0; sent < total; sent += chunk.length) yield chunk;
}
