// The pieces `hopscope run` hands its command: NO_PROXY matching, the environment (proxy
// variables, CA bundles, NODE_OPTIONS), and the Node preload in real child processes against a
// real hopscope: named ESM imports, `agent: false`, a request with its own createConnection,
// NO_PROXY going direct, and a proxy that refuses CONNECT.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestProxy, type TestProxy } from './helpers/proxy.js';
import { startTcpServer, startUpstream, upstreamCaFile, type TestUpstream } from './helpers/upstream.js';
import { proxyFor, readProxyEnv } from '../packages/core/src/preload/no-proxy.js';
import { nodeOptionsWithPreload, preloadImportUrl } from '../packages/core/src/preload/preload-path.js';
import { runEnvironment } from '../packages/core/src/preload/run-environment.js';
import { listExchanges } from '../packages/core/src/store/queries.js';

describe('NO_PROXY and proxy variables', { timeout: 10_000 }, () => {
  test('lower case wins, scheme-less proxies get http://, NO_PROXY matches hosts, suffixes, ports and *', () => {
    const env = readProxyEnv({ http_proxy: 'proxy.local:3128', HTTP_PROXY: 'http://ignored:1', HTTPS_PROXY: 'http://tls-proxy:8080',
      NO_PROXY: 'localhost, .internal.test *.corp.test,exact.test:8443 [::1]' });
    assert.equal(env.http?.href, 'http://proxy.local:3128/');
    assert.equal(env.https?.href, 'http://tls-proxy:8080/');
    const via = (scheme: 'http' | 'https', host: string, port: number) => proxyFor(env, scheme, host, port)?.host ?? 'direct';
    assert.equal(via('http', 'example.test', 80), 'proxy.local:3128');
    assert.equal(via('https', 'example.test', 443), 'tls-proxy:8080');
    assert.equal(via('http', 'LOCALHOST', 80), 'direct', 'case-insensitive');
    assert.equal(via('http', 'a.internal.test', 80), 'direct');
    assert.equal(via('http', 'internal.test', 80), 'direct', '.domain covers the domain itself');
    assert.equal(via('http', 'notinternal.test', 80), 'proxy.local:3128', 'a suffix matches at a dot only');
    assert.equal(via('http', 'x.corp.test', 80), 'direct');
    assert.equal(via('https', 'exact.test', 8443), 'direct');
    assert.equal(via('https', 'exact.test', 443), 'tls-proxy:8080', 'host:port entries match that port only');
    assert.equal(via('http', '::1', 80), 'direct');
    assert.equal(via('http', '[::1]', 80), 'direct');
    assert.equal(proxyFor(readProxyEnv({ http_proxy: 'http://p:1', no_proxy: '*' }), 'http', 'any.test', 80), null);
    assert.equal(readProxyEnv({ https_proxy: 'socks5://p:1' }).https, null, 'only plain-HTTP proxies');
  });
});

describe('the command environment', { timeout: 10_000 }, () => {
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), 'hopscope-env-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('proxy variables in both cases, CA bundles that keep the base roots, NODE_OPTIONS appended', () => {
    const ca = join(dir, 'ca.pem');
    const baseRoots = join(dir, 'roots.pem');
    const userExtra = join(dir, 'extra.pem');
    writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nHOPSCOPE\n-----END CERTIFICATE-----\n');
    writeFileSync(baseRoots, '-----BEGIN CERTIFICATE-----\nSYSTEM\n-----END CERTIFICATE-----\n');
    writeFileSync(userExtra, '-----BEGIN CERTIFICATE-----\nUSER\n-----END CERTIFICATE-----\n');
    const env = runEnvironment({
      base: { PATH: '/bin', SSL_CERT_FILE: baseRoots, NODE_EXTRA_CA_CERTS: userExtra, NODE_OPTIONS: '--max-old-space-size=512', no_proxy: 'x' },
      proxyUrl: 'http://127.0.0.1:9',
      caCertPath: ca,
      workDir: dir,
      preloadUrl: 'file:///p/register.js?undici=%2Fu',
    });
    for (const name of ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy']) assert.equal(env[name], 'http://127.0.0.1:9', name);
    assert.equal(env.NO_PROXY, '');
    assert.equal(env.no_proxy, '', 'loopback and everything else go through hopscope');
    assert.equal(env.PATH, '/bin');
    for (const name of ['SSL_CERT_FILE', 'REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE', 'GIT_SSL_CAINFO']) {
      const bundle = readFileSync(env[name]!, 'utf8');
      assert.ok(bundle.includes('SYSTEM') && bundle.includes('HOPSCOPE'), `${name}: the roots it had plus hopscope's CA`);
    }
    const nodeExtra = readFileSync(env.NODE_EXTRA_CA_CERTS!, 'utf8');
    assert.ok(nodeExtra.includes('USER') && nodeExtra.includes('HOPSCOPE') && !nodeExtra.includes('SYSTEM'));
    assert.equal(env.NODE_OPTIONS, '--max-old-space-size=512 --import=file:///p/register.js?undici=%2Fu');
    assert.equal(runEnvironment({ base: {}, proxyUrl: 'http://p:1', caCertPath: ca, workDir: dir, preloadUrl: 'file:///x', noProxy: 'localhost' }).NO_PROXY, 'localhost');
    assert.equal(nodeOptionsWithPreload(undefined, 'file:///a%20b/r.js'), '--import=file:///a%20b/r.js');
  });
});

describe('the Node preload', { timeout: 30_000 }, () => {
  let proxy: TestProxy;
  let plain: TestUpstream;
  let secure: TestUpstream;
  let dir: string;
  let nodeOptions: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hopscope-preload-'));
    plain = await startUpstream((req, res) => res.end(`plain ${req.url}`));
    secure = await startUpstream((req, res) => res.end(`secure ${req.url}`), { tls: true });
    proxy = await startTestProxy({ upstreamCaFiles: [upstreamCaFile] });
    nodeOptions = nodeOptionsWithPreload(undefined, await preloadImportUrl());
  });

  after(async () => {
    await proxy.close();
    await plain.close();
    await secure.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs an ES module in a child Node with the preload and the given proxy environment. */
  const child = (source: string, env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> => {
    const file = join(dir, `script-${Math.random().toString(36).slice(2)}.mjs`);
    writeFileSync(file, source);
    return new Promise((resolve) => {
      execFile(process.execPath, [file], { env: { PATH: process.env.PATH, NODE_OPTIONS: nodeOptions, NODE_EXTRA_CA_CERTS: proxy.caCertPath, ...env }, timeout: 20_000 },
        (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
    });
  };
  const captured = async () => {
    await proxy.flush();
    return listExchanges(proxy.db, { limit: 100, order: 'oldest' }).map((e) => new URL(e.url).pathname);
  };

  test('named ESM imports, agent:false and a request with its own createConnection all go through the proxy', async () => {
    const result = await child(
      `import { request, get } from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
const text = (res) => new Promise((r) => { let t = ''; res.on('data', (c) => (t += c)); res.on('end', () => r(t)); });
const out = [];
out.push(await new Promise((r, j) => get('http://site.test:${plain.port}/named-get', (res) => text(res).then(r)).on('error', j)));
out.push(await new Promise((r, j) => { const q = request('http://site.test:${plain.port}/agent-false', { agent: false }, (res) => text(res).then(r)); q.on('error', j); q.end(); }));
out.push(await new Promise((r, j) => {
  const q = https.request({ host: 'site.test', port: ${secure.port}, path: '/own-connection', servername: 'site.test',
    createConnection: (opts) => tls.connect(opts) }, (res) => text(res).then(r));
  q.on('error', j); q.end();
}));
console.log(out.join('|'));
`,
      { HTTP_PROXY: proxy.proxyUrl, HTTPS_PROXY: proxy.proxyUrl },
    );
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.trim(), 'plain /named-get|plain /agent-false|secure /own-connection');
    const paths = await captured();
    for (const path of ['/named-get', '/agent-false', '/own-connection']) assert.ok(paths.includes(path), `${path} captured: ${paths}`);
  });

  test('NO_PROXY hosts go direct; a proxy that refuses CONNECT is an error for the request', async () => {
    const direct = await child(
      `import http from 'node:http';
http.get('http://127.0.0.1:${plain.port}/direct', (res) => { let t = ''; res.on('data', (c) => (t += c)); res.on('end', () => console.log(t)); });
`,
      { HTTP_PROXY: proxy.proxyUrl, NO_PROXY: '127.0.0.1' },
    );
    assert.equal(direct.stdout.trim(), 'plain /direct');
    assert.ok(!(await captured()).includes('/direct'), 'not through the proxy');
    assert.ok(plain.received.some((r) => r.url === '/direct'));

    // A "proxy" that forbids every CONNECT.
    const forbidding = await startTcpServer((socket) => {
      socket.once('data', () => socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n'));
    });
    try {
      const refused = await child(
        `import http from 'node:http';
http.get('http://site.test:1/x', () => console.log('unexpected response')).on('error', (err) => console.log('error:', err.message));
`,
        { HTTP_PROXY: `http://127.0.0.1:${forbidding.port}` },
      );
      assert.equal(refused.stdout.trim(), `error: proxy 127.0.0.1:${forbidding.port} refused CONNECT site.test:1: 403 Forbidden`);
    } finally {
      await forbidding.close();
    }
  });
});
