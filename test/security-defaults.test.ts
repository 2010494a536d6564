// The tool's own security, one test per statement, against the real command line:
// 1. by default the proxy and the inspector listen on loopback only;
// 2. the CA key is owner-only and its folder not writable by others;
// 3. upstream certificates are verified by default;
// 4. no capture data reaches an inspector client without the token (or with a foreign Host or
//    Origin); packages/core/test/inspector-security.test.ts checks the guard itself on /api/info,
//    /api/exchanges, static files and the live socket, this adds every data route with real data;
// 5. the preload `hopscope run` injects changes nothing in a Node process but proxy routing.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { WebSocket } from 'ws';
import { runCli, type CliProcess } from './helpers/cli-process.js';
import { testCaDir } from './helpers/proxy.js';
import { selfSignedTls, startUpstream, upstreamCaFile, type TestUpstream } from './helpers/upstream.js';
import { curl, proxiedRequest } from './helpers/clients.js';
import { ClientLog, connectClient, opened, startWsServer, type TestWsServer } from './helpers/ws-peers.js';
import { preloadImportUrl } from '../packages/core/src/preload/preload-path.js';
import { runEnvironment } from '../packages/core/src/preload/run-environment.js';

const MARKER = 'hopscope-secret-7f3a';

describe('security defaults', { timeout: 60_000 }, () => {
  let dir: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'hopscope-security-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('with no --listen and no --ui, the proxy and the inspector listen on loopback only', async () => {
    // A network namespace of its own: the default ports are free there, and lo gets a second,
    // non-loopback address that stands for the machine's LAN address.
    const cli = runCli(['start', '--db', join(dir, 'bind.sqlite'), '--ca-dir', testCaDir(), '--quiet'], {
      wrap: (command) => ['unshare', '-n', 'sh', '-c', 'ip link set lo up && ip addr add 10.77.0.1/24 dev lo && exec "$0" "$@"', ...command],
    });
    try {
      assert.equal(await cli.line('proxy'), 'http://127.0.0.1:8080');
      assert.match(await cli.line('ui'), /^http:\/\/127\.0\.0\.1:8081\/\?token=[\w-]{32,}$/);
      const inNamespace = (command: string[]) => execFileSync('nsenter', ['-t', String(cli.child.pid), '-n', ...command], { encoding: 'utf8' });
      const listening = inNamespace(['ss', '-Hltn']).trim().split('\n').map((line) => line.trim().split(/\s+/)[3]);
      assert.deepEqual(listening.sort(), ['127.0.0.1:8080', '127.0.0.1:8081'], 'every listening socket is on loopback');
      const probe = `
        const net = require('node:net');
        const tryConnect = (host, port) => new Promise((resolve) => {
          const s = net.connect({ host, port });
          s.once('connect', () => { s.destroy(); resolve('connected'); });
          s.once('error', (err) => resolve(err.code));
        });
        (async () => {
          const out = {};
          for (const host of ['127.0.0.1', '10.77.0.1']) for (const port of [8080, 8081]) out[host + ':' + port] = await tryConnect(host, port);
          process.stdout.write(JSON.stringify(out));
        })();`;
      assert.deepEqual(JSON.parse(inNamespace([process.execPath, '-e', probe])), {
        '127.0.0.1:8080': 'connected',
        '127.0.0.1:8081': 'connected',
        '10.77.0.1:8080': 'ECONNREFUSED',
        '10.77.0.1:8081': 'ECONNREFUSED',
      });
    } finally {
      assert.equal(await cli.stop(), 0, cli.stderr());
    }
  });

  test('the CA key is owner-only and its folder not writable by others, even under umask 000', async () => {
    const fresh = join(dir, 'ca-fresh');
    const cli = runCli(['ca', '--ca-dir', fresh], { wrap: (command) => ['sh', '-c', 'umask 000 && exec "$0" "$@"', ...command] });
    assert.equal(await cli.exited, 0, cli.stderr());
    assert.equal(statSync(join(fresh, 'ca-key.pem')).mode & 0o777, 0o600);
    assert.equal(statSync(fresh).mode & 0o777, 0o700);
    assert.equal(statSync(join(fresh, 'ca.pem')).mode & 0o022, 0, 'nobody else may replace the certificate either');
  });

  test('a CA folder that others can write is taken back before the CA is used', async () => {
    // Whoever can write the folder can swap in a CA of their own, which the user's clients trust.
    const open = join(dir, 'ca-open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    const cli = runCli(['ca', '--ca-dir', open]);
    await cli.exited;
    assert.equal(statSync(open).mode & 0o022, 0, `the folder is ${(statSync(open).mode & 0o777).toString(8)}; stderr: ${cli.stderr()}`);
    assert.match(cli.stderr(), /writable by (group or )?others/);
  });

  describe('through a running hopscope start', () => {
    let cli: CliProcess;
    let proxy: { host: string; port: number };
    let inspector: URL;
    let token: string;
    let selfSigned: TestUpstream;
    let plain: TestUpstream;
    let wsServer: TestWsServer;

    before(async () => {
      selfSigned = await startUpstream((_req, res) => res.end('must not be reached'), { tls: selfSignedTls });
      plain = await startUpstream((_req, res, body) => res.end(`${MARKER} response to ${body.toString()}`));
      wsServer = await startWsServer();
      // No security-related flag: what a user gets by default.
      cli = runCli(['start', '--listen', '127.0.0.1:0', '--ui', '127.0.0.1:0', '--db', join(dir, 'inspect.sqlite'), '--ca-dir', testCaDir(), '--quiet',
        '--resolve', 'self-signed.test=127.0.0.1']);
      const url = new URL(await cli.line('proxy'));
      proxy = { host: url.hostname, port: Number(url.port) };
      inspector = new URL(await cli.line('ui'));
      token = inspector.searchParams.get('token')!;
    });

    after(async () => {
      assert.equal(await cli.stop(), 0, cli.stderr());
      await Promise.all([selfSigned.close(), plain.close(), wsServer.close()]);
    });

    test('upstream certificates are verified by default: a self-signed upstream gets a 502, in absolute form and in a tunnel', async () => {
      const res = await proxiedRequest(proxy, `https://self-signed.test:${selfSigned.port}/absolute`);
      assert.equal(res.status, 502);
      assert.match(res.body.toString(), /certificate of self-signed\.test was rejected: .*self[- ]signed/i);
      const caPem = join(testCaDir(), 'ca.pem');
      const tunnelled = await curl(['-x', `http://${proxy.host}:${proxy.port}`, '--cacert', caPem, '-w', '\\n%{http_code}', `https://self-signed.test:${selfSigned.port}/tunnel`]);
      assert.equal(tunnelled.code, 0, tunnelled.stderr);
      assert.match(tunnelled.stdout, /certificate of self-signed\.test was rejected[\s\S]*\n502$/);
      assert.equal(selfSigned.received.length, 0, 'nothing reached the untrusted upstream');
      const rejected = await untilListed((rows) => {
        const failed = rows.filter((e) => e.url.includes('self-signed.test') && e.errorReason !== null);
        return failed.length === 2 ? failed : undefined;
      });
      assert.deepEqual(rejected.map((e) => e.errorReason), ['upstream-cert', 'upstream-cert'], 'both captured as rejected upstream certificates');
    });

    test('no capture data for an inspector client without the token, with a wrong one, or behind a foreign Host or Origin', async () => {
      // Capture data worth stealing: an exchange and a WebSocket carrying the marker.
      const res = await proxiedRequest(proxy, `http://127.0.0.1:${plain.port}/${MARKER}`, { method: 'POST', body: `${MARKER}-request-body` });
      assert.equal(res.status, 200);
      const socket = connectClient({ path: 'absolute-form', proxy, host: '127.0.0.1', port: wsServer.port, urlPath: `/ws-${MARKER}` });
      const client = new ClientLog(socket);
      await opened(socket);
      socket.send(`${MARKER} over ws`);
      await client.until(() => client.messages.length === 1);
      socket.close(1000);
      await client.closed;
      const exchange = await untilCaptured(`/${MARKER}`);
      const ws = await untilCaptured(`/ws-${MARKER}`);
      const { messages } = await api<{ messages: Array<{ id: number }> }>(`/api/exchanges/${ws.id}/websocket`);
      const routes = [
        '/api/info',
        '/api/exchanges',
        `/api/exchanges/${exchange.id}`,
        `/api/exchanges/${exchange.id}/body/request`,
        `/api/exchanges/${exchange.id}/body/response`,
        `/api/connections/${exchange.connectionId}`,
        `/api/connections/${exchange.connectionId}/h2-frames`,
        `/api/exchanges/${ws.id}/websocket`,
        `/api/ws-messages/${messages[0].id}`,
        '/api/har',
      ];
      const port = inspector.port;
      const refusals: Array<[string, Record<string, string>, number]> = [
        ['no token', {}, 401],
        ['a wrong token', { Authorization: `Bearer ${token.slice(0, -1)}x` }, 401],
        ['a wrong cookie', { Cookie: `hopscope_token_${port}=${token.slice(1)}` }, 401],
        ['a rebinding Host', { Authorization: `Bearer ${token}`, Host: `attacker.example:${port}` }, 421],
      ];
      for (const route of routes) {
        const allowed = await get(route, { Authorization: `Bearer ${token}` });
        assert.equal(allowed.status, 200, `${route} with the token`);
        for (const [what, headers, status] of refusals) {
          const refused = await get(route, headers);
          assert.equal(refused.status, status, `${route} with ${what}`);
          assert.ok(!refused.body.includes(MARKER), `${route} with ${what} leaked capture data`);
        }
      }
      // The routes that carry the exchange or the WebSocket show the marker to the token holder.
      for (const route of [`/api/exchanges/${exchange.id}`, `/api/exchanges/${exchange.id}/body/request`, `/api/exchanges/${ws.id}/websocket`, '/api/har']) {
        assert.ok((await get(route, { Authorization: `Bearer ${token}` })).body.includes(MARKER), `${route} serves the data to the token holder`);
      }

      // The live socket: the token is required, and a right one does not help a foreign page.
      const live = (query: string, headers: Record<string, string>) =>
        new Promise<number>((resolve) => {
          const ws = new WebSocket(`ws://127.0.0.1:${port}/api/live${query}`, { headers });
          ws.once('open', () => {
            ws.close();
            resolve(101);
          });
          ws.once('unexpected-response', (_req, r) => {
            r.resume();
            resolve(r.statusCode ?? 0);
          });
          ws.once('error', () => {});
        });
      assert.equal(await live('', {}), 401);
      assert.equal(await live(`?token=${token.slice(2)}`, {}), 401);
      assert.equal(await live(`?token=${token}`, { Origin: 'http://attacker.example' }), 403);
      assert.equal(await live(`?token=${token}`, { Host: `attacker.example:${port}` }), 421);
      assert.equal(await live(`?token=${token}`, { Origin: `http://127.0.0.1:${port}` }), 101, 'its own page gets in');
    });

    async function get(path: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
      return new Promise((resolve, reject) => {
        const req = http.get({ host: inspector.hostname, port: Number(inspector.port), path, headers, setHost: !('Host' in headers) }, (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (t: string) => (body += t));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on('error', reject);
      });
    }

    async function api<T>(path: string): Promise<T> {
      const res = await get(path, { Authorization: `Bearer ${token}` });
      assert.equal(res.status, 200, `${path}: ${res.body}`);
      return JSON.parse(res.body) as T;
    }

    type Row = { id: number; connectionId: number; url: string; errorReason: string | null };

    /** Resolves with what `check` finds in the exchange list, re-checking on each batch of the inspector's live feed. */
    async function untilListed<T>(check: (rows: Row[]) => T | undefined): Promise<T> {
      const rows = async () => (await api<{ exchanges: Row[] }>('/api/exchanges?limit=100')).exchanges;
      const ws = new WebSocket(`ws://127.0.0.1:${inspector.port}/api/live?token=${token}`);
      const batches: Array<() => void> = [];
      ws.on('error', () => {}); // closed before it opened when the first look already found it
      ws.on('message', (data) => {
        const message = JSON.parse(data.toString()) as { type: string; n?: number };
        if (message.type === 'hello') ws.send(JSON.stringify({ type: 'subscribe' }));
        if (message.type === 'events') ws.send(JSON.stringify({ type: 'ack', n: message.n }));
        batches.splice(0).forEach((wake) => wake());
      });
      try {
        for (;;) {
          const next = new Promise<void>((resolve) => batches.push(resolve));
          const found = check(await rows());
          if (found !== undefined) return found;
          await next;
        }
      } finally {
        ws.close();
      }
    }

    const untilCaptured = (suffix: string) => untilListed((rows) => rows.find((e) => e.url.endsWith(suffix)));
  });

  test('the run preload changes nothing in a Node process but proxy routing', async () => {
    const snapshotScript = join(dir, 'snapshot.cjs');
    writeFileSync(snapshotScript, SNAPSHOT);
    const workDir = mkdtempSync(join(dir, 'run-'));
    const withPreload = runEnvironment({
      base: { PATH: process.env.PATH, HOME: process.env.HOME },
      proxyUrl: 'http://127.0.0.1:9',
      caCertPath: upstreamCaFile, // any CA: both runs get the same NODE_EXTRA_CA_CERTS
      workDir,
      preloadUrl: await preloadImportUrl(),
    });
    // The same environment with an empty module in the preload's place (loading any --import module
    // costs Node an 'exit' listener of its own): every difference is the preload's doing.
    const emptyModule = join(dir, 'empty.mjs');
    writeFileSync(emptyModule, '');
    const without = { ...withPreload, NODE_OPTIONS: `--import=${pathToFileURL(emptyModule).href}` };
    const [bare, preloaded] = await Promise.all([snapshot(snapshotScript, without), snapshot(snapshotScript, withPreload)]);

    assert.deepEqual(preloaded.env, { ...bare.env, NODE_OPTIONS: withPreload.NODE_OPTIONS }, 'no variable added, removed or changed');
    assert.ok(Object.keys(bare.env).length > 10, 'the snapshot sees the environment');
    assert.deepEqual(preloaded.globals.filter((k) => !bare.globals.includes(k)), ['Symbol(undici.globalDispatcher.1)'], 'one global: the fetch dispatcher, installed when fetch first asks');
    assert.deepEqual(bare.globals.filter((k) => !preloaded.globals.includes(k)), []);
    assert.deepEqual(preloaded.prototypes, bare.prototypes, 'no built-in prototype touched');
    assert.deepEqual(preloaded.processListeners, bare.processListeners, 'no process listener added');
    assert.deepEqual(preloaded.tls, bare.tls, 'TLS defaults and roots untouched (CA trust comes from NODE_EXTRA_CA_CERTS, the same in both)');
    const changed = Object.keys(preloaded.modules).filter((k) => preloaded.modules[k] !== bare.modules[k]).sort();
    assert.deepEqual(changed, ['http.get', 'http.globalAgent', 'http.request', 'https.get', 'https.globalAgent', 'https.request'], 'only the routing entry points differ');
    for (const scheme of ['http', 'https']) {
      assert.deepEqual(preloaded.agents[scheme].options, bare.agents[scheme].options, `${scheme}.globalAgent keeps Node's own options`);
      assert.deepEqual(
        { ...preloaded.agents[scheme], options: undefined, className: undefined },
        { ...bare.agents[scheme], options: undefined, className: undefined },
        `${scheme}.globalAgent limits unchanged`,
      );
      assert.match(preloaded.agents[scheme].className, /^Tunnelling/);
    }
  });
});

interface ProcessSnapshot {
  env: Record<string, string>;
  globals: string[];
  prototypes: Record<string, string[]>;
  processListeners: Record<string, number>;
  tls: Record<string, unknown>;
  /** `module.export` → its type, and a hash of its source for functions. */
  modules: Record<string, string>;
  agents: Record<string, { className: string; options: Record<string, unknown> } & Record<string, unknown>>;
}

function snapshot(script: string, env: NodeJS.ProcessEnv): Promise<ProcessSnapshot> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [script], { env, encoding: 'utf8', timeout: 15_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout) as ProcessSnapshot),
    );
  });
}

/** What a Node process looks like from the inside, without calling anything the preload installed. */
const SNAPSHOT = `
const crypto = require('node:crypto');
const fingerprint = (value) => {
  if (typeof value === 'function') return 'function ' + crypto.createHash('sha256').update(Function.prototype.toString.call(value)).digest('hex').slice(0, 16);
  if (value && typeof value === 'object') return 'object ' + (value.constructor && value.constructor.name);
  return typeof value + ' ' + String(value);
};
const keys = (o) => Reflect.ownKeys(o).map(String).sort();
const modules = {};
for (const name of ['http', 'https', 'net', 'tls', 'dns', 'crypto', 'fs', 'child_process', 'stream', 'url', 'zlib', 'module']) {
  const mod = require('node:' + name);
  for (const key of Object.keys(mod)) modules[name + '.' + key] = fingerprint(mod[key]);
}
const agent = (a) => ({
  className: a.constructor.name,
  options: Object.fromEntries(Object.entries(a.options).filter(([k]) => k !== 'proxyEnv').sort()),
  keepAlive: a.keepAlive, keepAliveMsecs: a.keepAliveMsecs, maxSockets: a.maxSockets, maxFreeSockets: a.maxFreeSockets,
  maxTotalSockets: a.maxTotalSockets, scheduling: a.scheduling, defaultPort: a.defaultPort, protocol: a.protocol,
});
const tls = require('node:tls');
process.stdout.write(JSON.stringify({
  env: process.env,
  globals: keys(globalThis),
  prototypes: Object.fromEntries(['Object', 'Array', 'Function', 'String', 'Promise', 'Error'].map((n) => [n, keys(globalThis[n].prototype)])),
  processListeners: Object.fromEntries(process.eventNames().map((e) => [String(e), process.listenerCount(e)])),
  tls: { roots: tls.rootCertificates.length, min: tls.DEFAULT_MIN_VERSION, max: tls.DEFAULT_MAX_VERSION, ciphers: tls.DEFAULT_CIPHERS, curve: tls.DEFAULT_ECDH_CURVE },
  modules,
  agents: { http: agent(require('node:http').globalAgent), https: agent(require('node:https').globalAgent) },
}));
`;
