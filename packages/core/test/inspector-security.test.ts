// The inspector must not be a hole in the user's machine: foreign Host (DNS rebinding), foreign
// Origin and a missing or wrong token are all refused, over HTTP and the live WebSocket.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { allowedHosts, isLoopbackHost, tokensEqual } from '../src/inspector/security.js';
import { authed, inspectorRequest, openLive, startRig, type Rig } from './inspector-harness.js';

describe('inspector security', { timeout: 20_000 }, () => {
  let rig: Rig;
  let uiDir: string;

  before(async () => {
    uiDir = mkdtempSync(join(tmpdir(), 'hopscope-ui-'));
    mkdirSync(join(uiDir, 'assets'));
    writeFileSync(join(uiDir, 'index.html'), '<!doctype html><title>hopscope</title>');
    writeFileSync(join(uiDir, 'assets', 'app-1234.js'), 'console.log(1)');
    rig = await startRig({ uiDir });
  });
  after(async () => {
    await rig.close();
    rmSync(uiDir, { recursive: true, force: true });
  });

  test('binds where asked and prints a URL carrying the token', () => {
    assert.equal(rig.inspector.address.address, '127.0.0.1');
    assert.equal(rig.inspector.url, `http://127.0.0.1:${rig.inspector.address.port}/?token=${rig.inspector.token}`);
    assert.ok(rig.inspector.token.length >= 32);
  });

  test('a foreign Host is refused even with the right token (DNS rebinding)', async () => {
    for (const host of ['evil.example', `evil.example:${rig.inspector.address.port}`, `127.0.0.1:${rig.inspector.address.port + 1}`, '']) {
      const res = await inspectorRequest(rig, '/api/info', { ...authed(rig), Host: host });
      assert.equal(res.status, 421, `Host ${host}`);
      assert.match(res.json<{ error: { message: string } }>().error.message, /answers only as/);
    }
    await assert.rejects(openLive(rig, { Host: `rebind.example:${rig.inspector.address.port}` }), { status: 421 });
  });

  test('its own loopback names are accepted', async () => {
    for (const host of [rig.hostPort, `localhost:${rig.inspector.address.port}`, `LOCALHOST:${rig.inspector.address.port}`]) {
      const res = await inspectorRequest(rig, '/api/info', { ...authed(rig), Host: host });
      assert.equal(res.status, 200, `Host ${host}`);
    }
  });

  test('a WebSocket from a foreign Origin is refused; its own origin is accepted', async () => {
    await assert.rejects(openLive(rig, { Origin: 'http://evil.example' }), { status: 403 });
    await assert.rejects(openLive(rig, { Origin: `https://${rig.hostPort}` }), { status: 403 });
    await assert.rejects(openLive(rig, { Origin: 'null' }), { status: 403 });
    const live = await openLive(rig, { Origin: `http://localhost:${rig.inspector.address.port}` });
    assert.equal((await live.next('hello')).liveProtocol, 1);
    live.close();
  });

  test('a request that changes state from a foreign Origin is refused before anything else', async () => {
    const res = await inspectorRequest(rig, '/api/info', { ...authed(rig), Origin: 'http://evil.example' }, 'POST');
    assert.equal(res.status, 403);
  });

  test('a missing or wrong token is refused on every route', async () => {
    for (const path of ['/api/info', '/api/exchanges', '/api/exchanges/1', '/', '/assets/app-1234.js']) {
      assert.equal((await inspectorRequest(rig, path)).status, 401, path);
      assert.equal((await inspectorRequest(rig, path, { Cookie: `hopscope_token_${rig.inspector.address.port}=nope` })).status, 401, path);
      assert.equal((await inspectorRequest(rig, `${path}?token=${rig.inspector.token.slice(1)}`)).status, 401, path);
    }
    const page = await inspectorRequest(rig, '/');
    assert.match(page.body.toString(), /open the inspector with the URL hopscope printed/);
    // A cookie for another inspector port does not count.
    const other = await inspectorRequest(rig, '/api/info', { Cookie: `hopscope_token_1=${rig.inspector.token}` });
    assert.equal(other.status, 401);
    await assert.rejects(openLive(rig, { Cookie: '' }), { status: 401 });
    await assert.rejects(openLive(rig, { Cookie: 'x=y' }, '?token=wrong'), { status: 401 });
  });

  test('the token in the URL becomes an HttpOnly SameSite=Strict cookie and leaves the address bar', async () => {
    const res = await inspectorRequest(rig, `/?token=${rig.inspector.token}`);
    assert.equal(res.status, 303);
    assert.equal(res.headers.location, '/');
    const cookie = res.headers['set-cookie']?.[0] ?? '';
    assert.match(cookie, new RegExp(`^hopscope_token_${rig.inspector.address.port}=${rig.inspector.token};`));
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Strict/);
    const withCookie = await inspectorRequest(rig, '/', { Cookie: cookie.split(';')[0] });
    assert.equal(withCookie.status, 200);
    assert.match(withCookie.body.toString(), /<title>hopscope<\/title>/);
    // Scripts can use a bearer token; the live socket also takes ?token=.
    assert.equal((await inspectorRequest(rig, '/api/info', { Authorization: `Bearer ${rig.inspector.token}` })).status, 200);
    const live = await openLive(rig, { Cookie: '' }, `?token=${rig.inspector.token}`);
    await live.next('hello');
    live.close();
  });

  test('responses carry protective headers', async () => {
    const res = await inspectorRequest(rig, '/', authed(rig));
    assert.match(String(res.headers['content-security-policy']), /default-src 'self'/);
    assert.match(String(res.headers['content-security-policy']), /frame-ancestors 'none'/);
    assert.equal(res.headers['x-frame-options'], 'DENY');
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
  });

  test('static files: assets, the app for client routes, nothing outside the UI folder', async () => {
    const asset = await inspectorRequest(rig, '/assets/app-1234.js', authed(rig));
    assert.equal(asset.status, 200);
    assert.match(String(asset.headers['content-type']), /javascript/);
    assert.match(String(asset.headers['cache-control']), /immutable/);
    assert.equal((await inspectorRequest(rig, '/assets/missing.js', authed(rig))).status, 404);
    const route = await inspectorRequest(rig, '/exchanges/5', authed(rig));
    assert.match(route.body.toString(), /<title>hopscope/);
    const escape = await inspectorRequest(rig, '/%2e%2e/%2e%2e/package.json', authed(rig));
    assert.doesNotMatch(escape.body.toString(), /"name"/);
  });

  test('an unbuilt UI gets a clear message, the API still works', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'hopscope-noui-'));
    const bare = await startRig({ uiDir: empty });
    try {
      const res = await inspectorRequest(bare, '/', authed(bare));
      assert.equal(res.status, 503);
      assert.match(res.body.toString(), /inspector UI is not built.*\n.*npm run build:ui/);
      assert.equal((await inspectorRequest(bare, '/api/info', authed(bare))).status, 200);
    } finally {
      await bare.close();
      rmSync(empty, { recursive: true, force: true });
    }
  });

  test('helpers: constant-time token comparison, loopback names, allowed hosts', () => {
    assert.equal(tokensEqual('abc', 'abc'), true);
    assert.equal(tokensEqual('abc', 'abd'), false);
    assert.equal(tokensEqual('abc', 'abcd'), false);
    assert.equal(tokensEqual('', 'abc'), false);
    assert.ok(isLoopbackHost('127.0.0.1') && isLoopbackHost('[::1]') && isLoopbackHost('localhost'));
    assert.ok(!isLoopbackHost('0.0.0.0') && !isLoopbackHost('192.168.1.2') && !isLoopbackHost('localhost.evil.example'));
    assert.deepEqual([...allowedHosts('::1', 9)], ['localhost:9', '127.0.0.1:9', '[::1]:9']);
    assert.deepEqual([...allowedHosts('0.0.0.0', 9)], ['localhost:9', '127.0.0.1:9', '[::1]:9']);
    assert.ok(allowedHosts('192.168.1.2', 9).has('192.168.1.2:9'));
  });
});
