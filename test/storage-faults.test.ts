// The capture file under faults, with the real command line: kill -9 during heavy traffic leaves a
// file that opens cleanly and holds everything up to about the last flush (the sink commits every
// 100 ms, WAL, synchronous=NORMAL); a full disk (a 1 MiB tmpfs in a mount namespace of the child's
// own) and a read-only capture file (hopscope run as `nobody`) cost the recording, with one clear
// warning, but never the proxying; a second hopscope on the same file is refused, naming the first.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { WebSocket } from 'ws';
import { runCli, type CliProcess } from './helpers/cli-process.js';
import { startTestProxy, testCaDir } from './helpers/proxy.js';
import { startUpstream, type TestUpstream } from './helpers/upstream.js';
import { proxiedRequest } from './helpers/clients.js';
import { openStore } from '../packages/core/src/store/open-store.js';
import { SCHEMA_VERSION } from '../packages/core/src/store/schema.js';

const NOBODY = 65534;
/** Prints a capture file's integrity check and exchange count as JSON (run with `node -e`, the file as argument). */
const CHECK_CAPTURE = `
  const Database = require(${JSON.stringify(createRequire(import.meta.url).resolve('better-sqlite3'))});
  const db = new Database(process.argv[1]);
  const integrity = db.pragma('integrity_check', { simple: true });
  const exchanges = db.prepare('SELECT count(*) AS n FROM exchanges').get().n;
  db.close();
  process.stdout.write(JSON.stringify({ integrity, exchanges }));
`;
const WARNING = /cannot write the capture file (.+?): (.+?)\. Proxying continues; traffic is not recorded until the file can be written again/g;

/** `hopscope start` on a free port recording into `db`, headless unless `ui` (then on a free port too). */
function startCli(db: string, options: { caDir?: string; ui?: boolean; wrap?: (command: string[]) => string[] } = {}): CliProcess {
  const ui = options.ui ? ['--ui', '127.0.0.1:0'] : ['--no-ui'];
  const args = ['start', '--listen', '127.0.0.1:0', ...ui, '--quiet', '--db', db, '--ca-dir', options.caDir ?? testCaDir()];
  return runCli(args, options.wrap ? { wrap: options.wrap } : {});
}

/**
 * Resolves once the inspector's live feed announces an exchange on `path` as complete: the hub
 * announces only what the store has committed, so the row is then in the file.
 */
async function committed(cli: CliProcess, path: string): Promise<void> {
  const ui = new URL(await cli.line('ui'));
  const ws = new WebSocket(`ws://${ui.host}/api/live?token=${ui.searchParams.get('token')}`);
  try {
    await new Promise<void>((resolve, reject) => {
      ws.on('error', reject);
      ws.on('message', (data) => {
        const m = JSON.parse(data.toString()) as { type: string; n?: number; exchanges?: Array<{ url: string; state: string }> };
        if (m.type === 'hello') ws.send(JSON.stringify({ type: 'subscribe' }));
        if (m.type === 'events') ws.send(JSON.stringify({ type: 'ack', n: m.n }));
        if (m.exchanges?.some((row) => new URL(row.url).pathname === path && row.state === 'complete')) resolve();
      });
    });
  } finally {
    ws.close();
  }
}

async function proxyOf(cli: CliProcess): Promise<{ host: string; port: number }> {
  const url = new URL(await cli.line('proxy'));
  return { host: url.hostname, port: Number(url.port) };
}

/** Resolves once the process has printed something on stderr matching `pattern`. */
function stderrMatch(cli: CliProcess, pattern: RegExp): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (new RegExp(pattern.source).test(cli.stderr())) {
        cli.child.stderr!.off('data', check);
        resolve();
      }
    };
    cli.child.stderr!.on('data', check);
    cli.exited.then(() => reject(new Error(`hopscope exited; stderr: ${cli.stderr()}`)));
    check();
  });
}

function integrity(db: Database.Database): string {
  return db.pragma('integrity_check', { simple: true }) as string;
}

describe('capture file faults', { timeout: 60_000 }, () => {
  let dir: string;
  let upstream: TestUpstream;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hopscope-storage-faults-'));
    upstream = await startUpstream((req, res) => res.end(req.url?.startsWith('/big') ? Buffer.alloc(64 * 1024, 'b') : `ok ${req.url}`));
  });

  after(async () => {
    await upstream.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('kill -9 during heavy traffic: the file opens cleanly, holds everything but the last moments, and takes new recordings', async () => {
    const file = join(dir, 'killed.sqlite');
    const cli = startCli(file);
    const proxy = await proxyOf(cli);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    const completedAt = new Map<string, number>();
    let next = 0;
    let killedAt = 0;
    // Eight clients keep requests in flight until the kill; it comes once 1,500 have completed.
    const killed = new Promise<void>((resolve) => {
      const client = async () => {
        while (killedAt === 0) {
          const path = `/k/${next++}`;
          try {
            const res = await proxiedRequest(proxy, `http://127.0.0.1:${upstream.port}${path}`, { agent });
            if (res.status === 200) completedAt.set(path, performance.now());
          } catch {
            return; // the proxy is gone
          }
          if (completedAt.size >= 1_500 && killedAt === 0) {
            killedAt = performance.now();
            cli.child.kill('SIGKILL');
            resolve();
          }
        }
      };
      for (let i = 0; i < 8; i++) void client();
    });
    await killed;
    assert.equal(await cli.exited, null, 'killed by the signal');
    agent.destroy();

    const db = new Database(file);
    let lastId: number;
    try {
      assert.equal(integrity(db), 'ok');
      assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
      assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION, 'schema intact');
      const stored = new Set((db.prepare('SELECT url FROM exchanges').all() as Array<{ url: string }>).map((r) => new URL(r.url).pathname));
      // Flushes come every 100 ms; a second more covers the writer thread on a busy machine.
      const durableBefore = killedAt - 1_100;
      const lost = [...completedAt].filter(([path, at]) => at < durableBefore && !stored.has(path)).map(([path]) => path);
      assert.deepEqual(lost, [], `requests completed over a second before the kill but missing from the file (${stored.size} stored of ${completedAt.size})`);
      assert.ok(stored.size >= completedAt.size * 0.5, `${stored.size} of ${completedAt.size} completed requests are in the file`);
      lastId = (db.prepare('SELECT max(id) AS id FROM exchanges').get() as { id: number }).id;
    } finally {
      db.close();
    }

    // The stale lock does not block the next start; numbering continues after the last row.
    const again = startCli(file);
    try {
      const res = await proxiedRequest(await proxyOf(again), `http://127.0.0.1:${upstream.port}/after-restart`);
      assert.equal(res.status, 200);
    } finally {
      assert.equal(await again.stop(), 0, again.stderr());
    }
    const reopened = openStore(file, { readonly: true });
    try {
      assert.equal(integrity(reopened.db), 'ok');
      const row = reopened.db.prepare("SELECT id FROM exchanges WHERE url LIKE '%/after-restart'").get() as { id: number } | undefined;
      assert.ok(row && row.id > lastId, 'the new exchange is appended after the old ones');
    } finally {
      reopened.db.close();
    }
  });

  test('a full disk: one clear warning, every response still served, the file still consistent', async () => {
    const mount = mkdtempSync(join(dir, 'full-'));
    const file = join(mount, 'capture.sqlite');
    // A 1 MiB tmpfs seen only by the child (a private mount namespace): 40 responses of 64 KiB overflow it.
    const cli = startCli(file, {
      ui: true,
      wrap: (command) => ['unshare', '-m', 'sh', '-c', `mount -t tmpfs -o size=1m tmpfs "${mount}" && exec "$0" "$@"`, ...command],
    });
    try {
      const proxy = await proxyOf(cli);
      // Read the file where the child sees it: from inside its mount namespace.
      const look = (): { integrity: string; exchanges: number } =>
        JSON.parse(execFileSync('nsenter', ['-t', String(cli.child.pid), '-m', process.execPath, '-e', CHECK_CAPTURE, file], { encoding: 'utf8' }));
      // One small exchange first, committed while there is room.
      const smallCommitted = committed(cli, '/small');
      assert.equal((await proxiedRequest(proxy, `http://127.0.0.1:${upstream.port}/small`)).status, 200);
      await smallCommitted;
      assert.equal(look().exchanges, 1);
      const warned = stderrMatch(cli, WARNING);
      for (let i = 0; i < 40; i++) {
        const res = await proxiedRequest(proxy, `http://127.0.0.1:${upstream.port}/big/${i}`);
        assert.equal(res.status, 200);
        assert.equal(res.body.length, 64 * 1024, `response ${i} came through whole`);
      }
      await warned;
      const res = await proxiedRequest(proxy, `http://127.0.0.1:${upstream.port}/after-full`);
      assert.equal(res.body.toString(), 'ok /after-full', 'still proxying after the warning');

      const seen = look();
      assert.equal(seen.integrity, 'ok');
      assert.ok(seen.exchanges >= 1 && seen.exchanges < 42, `what fitted was recorded (${seen.exchanges} of 42 exchanges), the rest not`);
    } finally {
      assert.equal(await cli.stop(), 0, cli.stderr());
    }
    const warnings = [...cli.stderr().matchAll(WARNING)];
    assert.equal(warnings.length, 1, cli.stderr());
    assert.equal(warnings[0][1], file);
    assert.match(warnings[0][2], /disk is full/);
  });

  test('a read-only capture file: one clear warning, proxying continues, the file is left as it was', async () => {
    const home = mkdtempSync(join(tmpdir(), 'hopscope-readonly-')); // not under `dir`: nobody must reach it
    const file = join(home, 'capture.sqlite');
    openStore(file).db.close(); // an existing capture
    mkdirSync(join(home, 'ca'));
    for (const path of [home, join(home, 'ca'), file]) chownSync(path, NOBODY, NOBODY);
    chmodSync(home, 0o755);
    chmodSync(file, 0o444);
    // As root every file is writable: hopscope runs as nobody, who may create files next to it but not write it.
    const cli = startCli(file, {
      caDir: join(home, 'ca'),
      wrap: (command) => ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', ...command],
    });
    try {
      const proxy = await proxyOf(cli);
      const warned = stderrMatch(cli, WARNING);
      for (let i = 0; i < 5; i++) {
        const res = await proxiedRequest(proxy, `http://127.0.0.1:${upstream.port}/ro/${i}`);
        assert.equal(res.body.toString(), `ok /ro/${i}`);
      }
      await warned;
      const res = await proxiedRequest(proxy, `http://127.0.0.1:${upstream.port}/ro/after`);
      assert.equal(res.status, 200, 'still proxying after the warning');
    } finally {
      assert.equal(await cli.stop(), 0, cli.stderr());
    }
    const warnings = [...cli.stderr().matchAll(WARNING)];
    assert.equal(warnings.length, 1, cli.stderr());
    assert.equal(warnings[0][1], file);
    assert.match(warnings[0][2], /readonly/);
    const { db } = openStore(file, { readonly: true });
    try {
      assert.equal(integrity(db), 'ok');
      assert.equal((db.prepare('SELECT count(*) AS n FROM exchanges').get() as { n: number }).n, 0, 'nothing was written');
    } finally {
      db.close();
      rmSync(home, { recursive: true, force: true });
    }
  });

  test('two hopscopes on one capture file: the second is refused, naming the file and the first one', async () => {
    const file = join(dir, 'shared.sqlite');
    const first = startCli(file);
    try {
      await proxyOf(first);
      const second = startCli(file);
      assert.equal(await second.exited, 1);
      assert.match(second.stderr(), new RegExp(`^hopscope: ${file.replace(/[.]/g, '\\.')} is being recorded by another hopscope \\(pid ${first.child.pid}, since [0-9T:.-]+Z\\)`));
      assert.match(second.stderr(), /--db FILE/);
      assert.equal(second.lines.length, 0, 'the second one never printed a proxy address');

      // So does a library user (this test's process).
      await assert.rejects(startTestProxy({ dbPath: file }), new RegExp(`being recorded by another hopscope \\(pid ${first.child.pid},`));
    } finally {
      assert.equal(await first.stop(), 0, first.stderr());
    }
    // Once the first has stopped, the file is free again.
    const proxy = await startTestProxy({ dbPath: file });
    try {
      // And within one process, a second start on the same file is refused too.
      await assert.rejects(startTestProxy({ dbPath: file }), new RegExp(`pid ${process.pid}, this very process`));
      assert.equal((await proxiedRequest(proxy, `http://127.0.0.1:${upstream.port}/free`)).status, 200);
    } finally {
      await proxy.close();
    }
  });
});

