// `hopscope run` around real commands: curl (http and https), a Node script using fetch, http.get,
// https.get and a `ws` client, and a Python script using urllib.request. The HAR validates and
// holds the decrypted exchanges; the exit status passes through; the host allow-list fails when a
// request or tunnel went elsewhere, and only then.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import http from 'node:http';
import https from 'node:https';
import { createRequire } from 'node:module';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocketServer } from 'ws';
import { startUpstream, upstreamCaFile, upstreamTls, type TestUpstream } from './helpers/upstream.js';
import type { HarEntry } from '../packages/core/src/export/har-types.js';

const require = createRequire(import.meta.url);
const harValidator = require('har-validator') as { har(data: unknown): Promise<unknown> };
const mainScript = fileURLToPath(new URL('../packages/core/src/cli/main.ts', import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe('hopscope run', { timeout: 120_000 }, () => {
  let dir: string;
  let caDir: string;
  let plain: TestUpstream;
  let secure: TestUpstream;
  let wsServer: http.Server;
  let wssServer: https.Server;
  let wsPort: number;
  let wssPort: number;

  /** `hopscope run` with the test's CA, name mapping and upstream trust, then the given options. */
  const run = (options: string[], command: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> =>
    new Promise((resolve) => {
      const args = ['--import', 'tsx', mainScript, 'run', '--ca-dir', caDir, '--resolve', '*.test=127.0.0.1', '--upstream-ca', upstreamCaFile, ...options, '--', ...command];
      execFile(process.execPath, args, { env: { ...process.env, ...env }, timeout: 60_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr });
      });
    });

  const readHar = async (path: string): Promise<HarEntry[]> => {
    const har = JSON.parse(readFileSync(path, 'utf8'));
    try {
      await harValidator.har(har);
    } catch (err) {
      assert.fail(`not valid HAR 1.2: ${JSON.stringify((err as { errors?: unknown }).errors ?? String(err))}`);
    }
    return har.log.entries;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hopscope-run-test-'));
    caDir = join(dir, 'ca');
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end(`${req.headers['user-agent']?.split('/')[0] ?? 'client'} got ${req.url}`);
    };
    plain = await startUpstream(handler);
    secure = await startUpstream(handler, { tls: true });
    const echo = (server: http.Server) => {
      const wss = new WebSocketServer({ server });
      wss.on('connection', (socket) => socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary })));
      return new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
    };
    wsServer = http.createServer();
    wssServer = https.createServer(upstreamTls);
    wsPort = await echo(wsServer);
    wssPort = await echo(wssServer);
  });

  after(async () => {
    await plain?.close();
    await secure?.close();
    for (const server of [wsServer, wssServer]) {
      server?.closeAllConnections();
      await new Promise((resolve) => server?.close(resolve));
    }
    rmSync(dir, { recursive: true, force: true });
  });

  test('records curl, Node (fetch, http.get, https.get, ws) and Python urllib, over http and https', async () => {
    const nodeClient = join(dir, 'client.mjs');
    writeFileSync(
      nodeClient,
      `import http from 'node:http';
import https from 'node:https';
import { createRequire } from 'node:module';
const { WebSocket } = createRequire(import.meta.url)(${JSON.stringify(require.resolve('ws'))});
const text = (res) => new Promise((resolve, reject) => { let t = ''; res.setEncoding('utf8'); res.on('data', (c) => (t += c)); res.on('end', () => resolve(t)); res.on('error', reject); });
const get = (mod, url) => new Promise((resolve, reject) => mod.get(url, { headers: { 'User-Agent': 'node-get/1' } }, (res) => text(res).then(resolve, reject)).on('error', reject));
const out = [];
out.push(await fetch('http://site.test:${plain.port}/fetch-plain', { headers: { 'User-Agent': 'fetch/1' } }).then((r) => r.text()));
out.push(await fetch('https://site.test:${secure.port}/fetch-https', { headers: { 'User-Agent': 'fetch/1' } }).then((r) => r.text()));
out.push(await get(http, 'http://site.test:${plain.port}/http-get'));
out.push(await get(https, 'https://site.test:${secure.port}/https-get'));
const echo = (url, text) => new Promise((resolve, reject) => {
  const ws = new WebSocket(url);
  ws.on('open', () => ws.send(text));
  ws.on('message', (data) => { resolve('echo: ' + data); ws.close(); });
  ws.on('error', reject);
});
out.push(await echo('ws://site.test:${wsPort}/socket', 'ping over ws'));
out.push(await echo('wss://site.test:${wssPort}/secure-socket', 'ping over wss'));
console.log(out.join('\\n'));
`,
    );
    const pyClient = join(dir, 'client.py');
    writeFileSync(
      pyClient,
      `import urllib.request
for url in ['http://site.test:${plain.port}/py-plain', 'https://site.test:${secure.port}/py-https']:
    req = urllib.request.Request(url, headers={'User-Agent': 'python/3'})
    print(urllib.request.urlopen(req, timeout=10).read().decode())
`,
    );
    const harPath = join(dir, 'clients.har');
    const script = [
      `curl -sS -A curl/1 http://site.test:${plain.port}/curl-plain && echo`,
      `curl -sS -A curl/1 https://site.test:${secure.port}/curl-https && echo`,
      `node ${nodeClient}`,
      `python3 ${pyClient}`,
    ].join(' && ');
    const result = await run(['--har', harPath], ['sh', '-c', script]);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(result.stdout.trim().split('\n'), [
      'curl got /curl-plain',
      'curl got /curl-https',
      'fetch got /fetch-plain',
      'fetch got /fetch-https',
      'node-get got /http-get',
      'node-get got /https-get',
      'echo: ping over ws',
      'echo: ping over wss',
      'python got /py-plain',
      'python got /py-https',
    ]);

    const entries = await readHar(harPath);
    const byPath = new Map(entries.map((e) => [new URL(e.request.url).pathname, e]));
    const expected: Array<[string, 'http' | 'https']> = [
      ['/curl-plain', 'http'], ['/curl-https', 'https'], ['/fetch-plain', 'http'], ['/fetch-https', 'https'],
      ['/http-get', 'http'], ['/https-get', 'https'], ['/py-plain', 'http'], ['/py-https', 'https'],
    ];
    for (const [path, scheme] of expected) {
      const e = byPath.get(path);
      assert.ok(e, `${path} was captured; captured: ${[...byPath.keys()].join(', ')}`);
      assert.equal(new URL(e.request.url).protocol, `${scheme}:`);
      assert.equal(e.response.status, 200);
      assert.match(e.response.content.text ?? '', new RegExp(`got ${path}$`), `${path}: the decrypted response body`);
      if (scheme === 'https') {
        assert.equal(e._tunnel?.intercepted, true, `${path} went through an intercepted tunnel`);
        assert.ok(e._tls.client?.version && e._tls.upstream?.version, `${path}: both TLS legs recorded`);
      }
    }
    for (const [path, text] of [['/socket', 'ping over ws'], ['/secure-socket', 'ping over wss']]) {
      const ws = byPath.get(path);
      assert.equal(ws?.response.status, 101, `${path}: the handshake`);
      assert.equal(ws?._resourceType, 'websocket');
      const messages = ws?._webSocketMessages?.filter((m) => m.opcode === 1).map((m) => [m.type, m.data]);
      assert.deepEqual(messages, [['send', text], ['receive', text]], `${path}: the messages both ways`);
      const times = ws!._webSocketMessages!.map((m) => m.time);
      assert.ok(times.every((t, i) => t >= Date.parse(ws!.startedDateTime) / 1000 && (i === 0 || t >= times[i - 1])), 'message times in order');
    }
    assert.equal(byPath.get('/secure-socket')?._tunnel?.intercepted, true);
    assert.match(result.stderr, /hopscope: 10 requests to 1 host/);
    assert.match(result.stderr, /site\.test +101 ×2, 200 ×8/);
    assert.match(result.stderr, new RegExp(`HAR: ${harPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(10 entries\\)`));
  });

  test('passes the exit status through, 127 for a command that does not exist', async () => {
    assert.equal((await run(['--quiet'], ['sh', '-c', 'exit 7'])).code, 7);
    const missing = await run(['--quiet'], [join(dir, 'no-such-command')]);
    assert.equal(missing.code, 127);
    assert.match(missing.stderr, /cannot run/);
  });

  test('the allow-list passes when every request matched, then fails for a host outside it', async () => {
    const db = join(dir, 'allow.sqlite');
    const allow = ['--fail-on-unexpected-host', 'site.test', '--fail-on-unexpected-host', '*.site.test', '--db', db];
    const ok = await run([...allow, '--har', join(dir, 'ok.har')], ['sh', '-c', `curl -sS http://site.test:${plain.port}/a && curl -sS http://api.site.test:${plain.port}/b`]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.doesNotMatch(ok.stderr, /outside/);

    const harPath = join(dir, 'bad.har');
    const bad = await run([...allow, '--har', harPath], ['sh', '-c', `curl -sS http://site.test:${plain.port}/c && curl -sS http://other.test:${plain.port}/leak`]);
    assert.equal(bad.code, 3, bad.stderr);
    assert.match(bad.stderr, /1 request went to hosts outside --fail-on-unexpected-host site\.test \*\.site\.test:/);
    assert.match(bad.stderr, new RegExp(`GET http://other\\.test:${plain.port}/leak \\(exchange \\d+\\)`));
    assert.doesNotMatch(bad.stderr, /\/c \(exchange/, 'allowed requests are not listed');
    const entries = await readHar(harPath);
    assert.deepEqual(entries.map((e) => new URL(e.request.url).pathname), ['/c', '/leak'], 'the HAR of a kept --db holds only this run');

    const both = await run([...allow, '--quiet'], ['sh', '-c', `curl -sS http://other.test:${plain.port}/x; exit 5`]);
    assert.equal(both.code, 5, 'a failing command keeps its own status');
    assert.match(both.stderr, /GET http:\/\/other\.test:\d+\/x/, '--quiet still lists the offenders');
  });

  test('a tunnel relayed blind to an unexpected host fails the allow-list too', async () => {
    const result = await run(['--fail-on-unexpected-host', 'site.test', '--passthrough', 'blind.test'], [
      'curl', '-sS', '--insecure', `https://blind.test:${secure.port}/hidden`,
    ]);
    assert.equal(result.code, 3, result.stderr);
    assert.match(result.stderr, new RegExp(`CONNECT blind\\.test:${secure.port} \\(connection \\d+, TLS not decrypted\\)`));
    assert.match(result.stderr, /blind\.test +tunnel: TLS not decrypted ×1/);
  });
});
